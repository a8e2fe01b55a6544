/**
 * ResourceManager (Milvus's querycoordv2/meta/resource_manager.go): querynodes in named resource groups.
 * Every alive querynode that is not stopping is in exactly one group. A group's config asks for a
 * number of nodes (`requests`) and caps it (`limits`); querycoord keeps the groups there by moving nodes:
 * a group below its request takes nodes from groups above their limits first, then from groups above
 * their requests (preferring those its `transferFrom` names); a group above its limit gives nodes to groups
 * below their request, then to groups with room under their limit (preferring its `transferTo`), else to
 * the default group. A new node joins the group missing the most nodes, else the one with the most room
 * under its limit, else the default group (`__default_resource_group`, requests 0, limits 1,000,000).
 *
 * Changes happen in the actor's mailbox; each writes the changed groups through a MetaWriter (KV). The
 * decisions are pure functions of the groups and the nodes given, unit-tested without NATS.
 */
import { decode } from "../../../protocol/codec.ts";
import { ErrorCode, VbError } from "../../../protocol/errors.ts";
import type { ResourceGroupConfig } from "../../../protocol/messages/querycoord.ts";
import type { KvMeta } from "../../../runtime/kv_meta.ts";
import { resourceGroupKey } from "../kv_layout.ts";
import type { MetaWriter } from "./kv_writer.ts";

export const DEFAULT_RESOURCE_GROUP = "__default_resource_group";
/** Milvus's defaultResourceGroupCapacity: the default group's limit */
export const DEFAULT_RESOURCE_GROUP_CAPACITY = 1_000_000;
/** Milvus's quotaAndLimits.limits.maxResourceGroupNumOfQueryNode */
export const MAX_RESOURCE_GROUPS = 1024;
const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,254}$/;

/** A group as stored in KV (`qc_resource_groups/<name>`). */
export interface ResourceGroupRecord {
  name: string;
  config: ResourceGroupConfig;
  nodes: string[];
}

/** A node moved between groups by querycoord (recovery) or placed in one (a new node), and why. */
export interface NodeTransfer {
  nodeId: string;
  /** undefined: the node was in no group (it is new, or came back) */
  from?: string;
  to: string;
  reason: string;
}

export function resourceGroupConfig(requests: number, limits: number): ResourceGroupConfig {
  return { requests: { nodeNum: requests }, limits: { nodeNum: limits }, transferFrom: [], transferTo: [] };
}

function sameConfig(a: ResourceGroupConfig, b: ResourceGroupConfig): boolean {
  const names = (l: { resourceGroup: string }[] | undefined) => (l ?? []).map((x) => x.resourceGroup).join(",");
  return (
    a.requests.nodeNum === b.requests.nodeNum &&
    a.limits.nodeNum === b.limits.nodeNum &&
    names(a.transferFrom) === names(b.transferFrom) &&
    names(a.transferTo) === names(b.transferTo)
  );
}

export function resourceGroupNotFound(name: string): VbError {
  return new VbError(ErrorCode.ResourceGroupNotFound, `resource group "${name}" not found (300): list them with vbus rg list (ListResourceGroups)`);
}

class Group {
  constructor(
    readonly name: string,
    public config: ResourceGroupConfig,
    readonly nodes = new Set<string>(),
  ) {}
  get requests(): number {
    return this.config.requests.nodeNum;
  }
  get limits(): number {
    return this.config.limits.nodeNum;
  }
  /** nodes short of the request */
  missing(): number {
    return Math.max(0, this.requests - this.nodes.size);
  }
  /** nodes over the limit */
  redundant(): number {
    return Math.max(0, this.nodes.size - this.limits);
  }
  /** nodes over the request */
  oversized(): number {
    return Math.max(0, this.nodes.size - this.requests);
  }
  /** room under the limit */
  room(): number {
    return Math.max(0, this.limits - this.nodes.size);
  }
  hasFrom(name: string): boolean {
    return (this.config.transferFrom ?? []).some((t) => t.resourceGroup === name);
  }
  hasTo(name: string): boolean {
    return (this.config.transferTo ?? []).some((t) => t.resourceGroup === name);
  }
  record(): ResourceGroupRecord {
    return { name: this.name, config: this.config, nodes: [...this.nodes].sort() };
  }
}

export class ResourceManager {
  private readonly groups = new Map<string, Group>();
  /** the group each node was last in (not stored): a node that comes back goes there first when it may */
  private readonly lastGroup = new Map<string, string>();

  constructor(private readonly writer: MetaWriter) {
    this.groups.set(DEFAULT_RESOURCE_GROUP, new Group(DEFAULT_RESOURCE_GROUP, resourceGroupConfig(0, DEFAULT_RESOURCE_GROUP_CAPACITY)));
  }

  static async open(kv: KvMeta, writer: MetaWriter): Promise<ResourceManager> {
    const rm = new ResourceManager(writer);
    for (const v of (await kv.entries()).values()) {
      const r = decode<ResourceGroupRecord>(v.value);
      rm.restore(r);
    }
    return rm;
  }

  /** Installs a group read back from KV. */
  restore(r: ResourceGroupRecord): void {
    const g = new Group(r.name, r.config, new Set(r.nodes.filter((n) => this.groupOf(n) === undefined)));
    this.groups.set(r.name, g);
    for (const n of g.nodes) this.lastGroup.set(n, r.name);
  }

  // ---- reads ----

  /** Every group's config and nodes in one string: equal strings, equal groups. */
  signature(): string {
    return [...this.groups.values()].map((g) => JSON.stringify(g.record())).join("|");
  }

  names(): string[] {
    return [...this.groups.keys()].sort(byName);
  }

  has(name: string): boolean {
    return this.groups.has(name);
  }

  get(name: string): ResourceGroupRecord | undefined {
    return this.groups.get(name)?.record();
  }

  /** The group's record, or 300. */
  require(name: string): ResourceGroupRecord {
    const g = this.groups.get(name);
    if (!g) throw resourceGroupNotFound(name);
    return g.record();
  }

  nodesOf(name: string): string[] {
    return [...(this.groups.get(name)?.nodes ?? [])].sort();
  }

  groupOf(nodeId: string): string | undefined {
    for (const g of this.groups.values()) if (g.nodes.has(nodeId)) return g.name;
    return undefined;
  }

  // ---- changes asked for (CreateResourceGroup, UpdateResourceGroups, DropResourceGroup, TransferNode) ----

  /** Creates a group (requests 0, limits 0 unless configured). The same name with the same config is a no-op. */
  create(name: string, config: ResourceGroupConfig = resourceGroupConfig(0, 0)): Promise<void> {
    if (!name) throw VbError.invalid(`CreateResourceGroup: the resource group name must not be empty (1100)`);
    if (!NAME.test(name)) {
      throw VbError.invalid(`CreateResourceGroup: invalid resource group name "${name}" (1100): letters, digits and _, not starting with a digit, at most 255`);
    }
    const existing = this.groups.get(name);
    if (existing) {
      if (sameConfig(existing.config, config)) return Promise.resolve();
      throw VbError.invalid(`resource group "${name}" already exists with another config (1100): change it with vbus rg update (UpdateResourceGroups)`);
    }
    if (this.groups.size >= MAX_RESOURCE_GROUPS) throw VbError.invalid(`cannot create resource group "${name}": at most ${MAX_RESOURCE_GROUPS} groups (1100)`);
    this.validate(name, config);
    const g = new Group(name, normalized(config));
    this.groups.set(name, g);
    return this.store(g);
  }

  /** Changes the configs of several groups at once (nodes move in the next `recover`). */
  update(configs: ReadonlyMap<string, ResourceGroupConfig>): Promise<void> {
    for (const [name, cfg] of configs) {
      if (!this.groups.has(name)) throw resourceGroupNotFound(name);
      this.validate(name, cfg);
    }
    const writes: Promise<void>[] = [];
    for (const [name, cfg] of configs) {
      const g = this.groups.get(name)!;
      g.config = normalized(cfg);
      writes.push(this.store(g));
    }
    return Promise.all(writes).then(() => undefined);
  }

  /**
   * Drops a group. The default group cannot go; a group must be configured with limits 0 first and named
   * by no other group's transferFrom/transferTo (the caller checks that no replica is in it). Its nodes go
   * where recovery sends redundant nodes. Dropping a group that does not exist is a no-op.
   */
  drop(name: string): { stored: Promise<void>; transfers: NodeTransfer[] } {
    const g = this.groups.get(name);
    if (!g) return { stored: Promise.resolve(), transfers: [] };
    if (name === DEFAULT_RESOURCE_GROUP) throw VbError.invalid(`the default resource group ${DEFAULT_RESOURCE_GROUP} cannot be dropped (1100)`);
    if (g.limits !== 0) {
      throw VbError.invalid(
        `resource group "${name}" has limits.node_num ${g.limits} (1100): set its requests and limits to 0 first (vbus rg update ${name} --requests 0 --limits 0)`,
      );
    }
    for (const o of this.groups.values()) {
      if (o.hasFrom(name) || o.hasTo(name)) {
        throw VbError.invalid(`resource group "${name}" is named in the transfer_from/transfer_to of "${o.name}" (1100): remove it there first`);
      }
    }
    const transfers: NodeTransfer[] = [];
    const writes: Promise<void>[] = [];
    for (const n of [...g.nodes].sort()) {
      const to = this.redundantTarget(g) ?? this.groups.get(DEFAULT_RESOURCE_GROUP)!;
      g.nodes.delete(n);
      to.nodes.add(n);
      this.lastGroup.set(n, to.name);
      transfers.push({ nodeId: n, from: name, to: to.name, reason: `resource group "${name}" was dropped` });
      writes.push(this.store(to));
    }
    this.groups.delete(name);
    writes.push(this.writer.delete(resourceGroupKey(name)));
    return { stored: Promise.all(writes).then(() => undefined), transfers };
  }

  /**
   * Milvus's TransferNode (declared as a config change): the source asks for `num` nodes fewer (and, unless
   * it is the default group, caps them so), the target for `num` more. The nodes move in `recover`.
   */
  transferNode(source: string, target: string, num: number): Promise<void> {
    if (source === target) throw VbError.invalid(`TransferNode: source and target resource group are both "${source}" (1100)`);
    if (!Number.isInteger(num) || num <= 0) throw VbError.invalid(`TransferNode: num_node must be an integer > 0, got ${num} (1100)`);
    const src = this.groups.get(source);
    if (!src) throw resourceGroupNotFound(source);
    const dst = this.groups.get(target);
    if (!dst) throw resourceGroupNotFound(target);
    if (src.nodes.size < num) {
      throw VbError.invalid(`TransferNode: resource group "${source}" has ${src.nodes.size} node(s), fewer than the ${num} asked for (1100)`);
    }
    const s = structuredClone(src.config);
    const t = structuredClone(dst.config);
    s.requests.nodeNum = Math.max(0, s.requests.nodeNum - num);
    if (source !== DEFAULT_RESOURCE_GROUP) s.limits.nodeNum = Math.max(0, s.limits.nodeNum - num);
    t.requests.nodeNum += num;
    if (t.requests.nodeNum > t.limits.nodeNum) t.limits.nodeNum = t.requests.nodeNum;
    return this.update(
      new Map([
        [source, s],
        [target, t],
      ]),
    );
  }

  // ---- recovery (every reconcile round) ----

  /**
   * Brings the groups in line with the querynodes that can take work (`nodes`: alive, not stopping):
   * nodes gone leave their group; new ones join one; groups below their request take nodes, groups over
   * their limit give them away. Returns what moved, and the KV writes.
   */
  recover(nodes: ReadonlySet<string>): { transfers: NodeTransfer[]; stored: Promise<void> } {
    const changed = new Set<Group>();
    const transfers: NodeTransfer[] = [];
    for (const g of this.groups.values()) {
      for (const n of g.nodes) {
        if (nodes.has(n)) continue;
        g.nodes.delete(n);
        changed.add(g);
      }
    }
    const assigned = new Set([...this.groups.values()].flatMap((g) => [...g.nodes]));
    for (const n of [...nodes].filter((x) => !assigned.has(x)).sort()) {
      const to = this.incomingTarget(n);
      to.nodes.add(n);
      changed.add(to);
      this.lastGroup.set(n, to.name);
      const why =
        to.name === DEFAULT_RESOURCE_GROUP && to.missing() === 0
          ? "a new querynode joins the default group"
          : `a new querynode joins "${to.name}" (${to.nodes.size - 1} of ${to.requests} requested, limit ${to.limits})`;
      transfers.push({ nodeId: n, to: to.name, reason: why });
    }
    const move = (node: string, from: Group, to: Group, reason: string) => {
      from.nodes.delete(node);
      to.nodes.add(node);
      this.lastGroup.set(node, to.name);
      changed.add(from).add(to);
      transfers.push({ nodeId: node, from: from.name, to: to.name, reason });
    };
    // groups below their request take nodes, the one missing the most first
    for (;;) {
      const needy = this.sorted()
        .filter((g) => g.missing() > 0)
        .sort((a, b) => b.missing() - a.missing());
      const found = needy.map((g) => ({ g, pick: this.missingSource(g) })).find((x) => x.pick !== undefined);
      if (!found) break;
      const { g, pick } = found;
      move(pick!.node, pick!.source, g, `"${g.name}" has ${g.nodes.size} of the ${g.requests} node(s) it requests; "${pick!.source.name}" ${pick!.why}`);
    }
    // groups over their limit give nodes away
    for (const g of this.sorted()) {
      for (let to = this.redundantTarget(g); g.redundant() > 0 && to; to = this.redundantTarget(g)) {
        move([...g.nodes].sort().at(-1)!, g, to, `"${g.name}" holds ${g.nodes.size} node(s), over its limit of ${g.limits}`);
      }
    }
    const stored = Promise.all([...changed].map((g) => this.store(g))).then(() => undefined);
    return { transfers, stored };
  }

  // ---- helpers ----

  private sorted(): Group[] {
    return [...this.groups.values()].sort((a, b) => byName(a.name, b.name));
  }

  /** Milvus's mustSelectAssignIncomingNodeTargetRG, with the group a node was last in first when it may take it. */
  private incomingTarget(nodeId: string): Group {
    const last = this.groups.get(this.lastGroup.get(nodeId) ?? "");
    if (last && last.missing() > 0) return last;
    const max = (filter: (g: Group) => boolean, attr: (g: Group) => number) =>
      this.sorted()
        .filter(filter)
        .sort((a, b) => attr(b) - attr(a))[0];
    return (
      max((g) => g.missing() > 0, (g) => g.missing()) ??
      max((g) => g.room() > 0, (g) => g.room()) ??
      this.groups.get(DEFAULT_RESOURCE_GROUP)!
    );
  }

  /** The group with the highest priority (> 0) among the others that pass `eligible`; ties to the first by name. */
  private best(except: Group, eligible: (g: Group) => boolean, priority: (g: Group) => number): Group | undefined {
    let best: { g: Group; p: number } | undefined;
    for (const g of this.sorted()) {
      if (g === except || !eligible(g)) continue;
      const p = priority(g);
      if (!best || p > best.p) best = { g, p };
    }
    return best?.g;
  }

  /** Milvus's selectNodeForMissingRecover: over-limit groups first, then groups over their request named in transferFrom, then any over its request. */
  private missingSource(target: Group): { node: string; source: Group; why: string } | undefined {
    const s = this.best(
      target,
      (g) => g.oversized() > 0,
      (g) => (g.redundant() > 0 ? g.redundant() * 1_000_000 : target.hasFrom(g.name) ? g.oversized() * 100_000 : g.oversized()),
    );
    if (!s) return undefined;
    const why = s.redundant() > 0 ? `holds ${s.nodes.size}, over its limit of ${s.limits}` : `holds ${s.nodes.size}, over its request of ${s.requests}`;
    return { node: [...s.nodes].sort().at(-1)!, source: s, why };
  }

  /** Milvus's selectNodeForRedundantRecover: groups missing nodes first, then those with room (transferTo first), else the default group. */
  private redundantTarget(source: Group): Group | undefined {
    const to = this.best(
      source,
      (g) => g.room() > 0,
      (g) => (g.missing() > 0 ? g.missing() * 1_000_000 : source.hasTo(g.name) ? g.room() * 100_000 : g.room()),
    );
    if (to) return to;
    return source.name === DEFAULT_RESOURCE_GROUP ? undefined : this.groups.get(DEFAULT_RESOURCE_GROUP);
  }

  private validate(name: string, cfg: ResourceGroupConfig): void {
    const bad = (why: string) => VbError.invalid(`resource group "${name}": illegal config (1100): ${why}`);
    if (!cfg || !cfg.requests || !cfg.limits) throw bad("requests and limits are required");
    const r = cfg.requests.nodeNum;
    const l = cfg.limits.nodeNum;
    if (!Number.isInteger(r) || !Number.isInteger(l) || r < 0 || l < 0) throw bad("requests.node_num and limits.node_num must be integers ≥ 0");
    if (l < r) throw bad(`limits.node_num (${l}) must not be below requests.node_num (${r})`);
    for (const [field, list] of [
      ["transfer_from", cfg.transferFrom],
      ["transfer_to", cfg.transferTo],
    ] as const) {
      for (const t of list ?? []) {
        if (t.resourceGroup === name) throw bad(`${field} names the group itself`);
        if (!this.groups.has(t.resourceGroup)) throw bad(`${field} names "${t.resourceGroup}", which does not exist`);
      }
    }
  }

  private store(g: Group): Promise<void> {
    if (!this.groups.has(g.name)) return Promise.resolve();
    return this.writer.put(resourceGroupKey(g.name), g.record());
  }
}

function normalized(cfg: ResourceGroupConfig): ResourceGroupConfig {
  return {
    requests: { nodeNum: cfg.requests.nodeNum },
    limits: { nodeNum: cfg.limits.nodeNum },
    transferFrom: (cfg.transferFrom ?? []).map((t) => ({ resourceGroup: t.resourceGroup })),
    transferTo: (cfg.transferTo ?? []).map((t) => ({ resourceGroup: t.resourceGroup })),
  };
}

/** the default group first, then by name */
function byName(a: string, b: string): number {
  if (a === b) return 0;
  if (a === DEFAULT_RESOURCE_GROUP) return -1;
  if (b === DEFAULT_RESOURCE_GROUP) return 1;
  return a < b ? -1 : 1;
}
