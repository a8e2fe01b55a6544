/**
 * Resource groups in querycoord (Milvus's querycoordv2 services for resource groups, with the
 * ResourceObserver and ReplicaObserver folded into the reconcile round): the API verbs CreateResourceGroup,
 * DropResourceGroup, UpdateResourceGroups, DescribeResourceGroup, ListResourceGroups, TransferNode and
 * TransferReplica, and `recoverResourceGroups`, which every round keeps the groups at their requests and
 * limits and each replica on its group's querynodes.
 */
import { collectionLabel, collectionNotLoaded, ErrorCode, VbError } from "../../protocol/errors.ts";
import type { QuerycoordApi, ResourceGroupConfig, ResourceGroupEvent } from "../../protocol/messages/querycoord.ts";
import { optionalInt, requiredId, requiredString } from "../request_fields.ts";
import { recoverReplicaNodes } from "./balance/replica_assign.ts";
import { idOf } from "./checkers/types.ts";
import type { QuerycoordCore } from "./core.ts";
import { DistSnapshot } from "./dist/dist_snapshot.ts";
import { DEFAULT_RESOURCE_GROUP, type NodeTransfer, resourceGroupConfig } from "./meta/resource_manager.ts";

type Res<V extends keyof QuerycoordApi> = QuerycoordApi[V][1];

/** how many of the latest node transfers GetStatus shows */
const EVENTS_KEPT = 20;
const events: WeakMap<QuerycoordCore, ResourceGroupEvent[]> = new WeakMap();

/** The latest nodes querycoord moved between groups, newest last. */
export function resourceGroupEvents(core: QuerycoordCore): ResourceGroupEvent[] {
  return [...(events.get(core) ?? [])];
}

function report(core: QuerycoordCore, transfers: readonly NodeTransfer[]): ResourceGroupEvent[] {
  let list = events.get(core);
  if (!list) events.set(core, (list = []));
  const at = Date.now();
  const out: ResourceGroupEvent[] = [];
  for (const t of transfers) {
    const ev: ResourceGroupEvent = { at, nodeId: t.nodeId, ...(t.from === undefined ? {} : { from: t.from }), to: t.to, reason: t.reason };
    out.push(ev);
    list.push(ev);
    core.log.info({ node: t.nodeId, from: t.from, to: t.to }, `resource group: querynode ${t.nodeId} ${t.from ? `moved from "${t.from}" ` : ""}to "${t.to}": ${t.reason}`);
  }
  if (list.length > EVENTS_KEPT) list.splice(0, list.length - EVENTS_KEPT);
  return out;
}

/**
 * Every round: the groups follow the querynodes that can take work (alive, not stopping), then each
 * collection's replicas follow their groups. Returns the nodes leaving a replica's group that still hold
 * some of its collection: the checkers treat them as stopping until their work is elsewhere.
 */
export function recoverResourceGroups(core: QuerycoordCore, snap: DistSnapshot): Set<string> {
  const alive = new Set(core.dist.aliveNodes());
  const stopping = new Set([...alive].filter((n) => snap.isStopping(n)));
  // the same nodes, groups and replicas as a round that changed nothing and left no node leaving: nothing to do
  // (a thousand nodes in forty replicas cost tens of ms a round otherwise)
  const key = settleKey(core, alive, stopping);
  if (settled.get(core) === key) return new Set();
  settled.delete(core);
  const serving = new Set([...alive].filter((n) => !stopping.has(n)));
  const { transfers, stored } = core.rgs.recover(serving);
  stored.catch((err: unknown) => core.log.error({ err }, "could not store the resource groups"));
  report(core, transfers);
  let changedAny = transfers.length > 0;
  const leaving = new Set<string>();
  for (const c of core.meta.allCollections()) {
    const { changed, leaving: l } = recoverReplicaNodes(
      core.meta.replicasOf(c.collectionId),
      {
        alive,
        stopping,
        groupOf: (n) => core.rgs.groupOf(n),
        groupNodes: (g) => core.rgs.nodesOf(g),
        hint: (n) => snap.delegatorsOf(c.collectionId).find((d) => d.nodeId === n)?.replicaId,
        holds: (n) => snap.holdsCollection(n, c.collectionId),
      },
      DEFAULT_RESOURCE_GROUP,
    );
    for (const n of l) leaving.add(n);
    if (changed.length > 0) changedAny = true;
    for (const r of changed) {
      core.log.info({ collection: c.collectionId, replica: r.replicaId, group: r.resourceGroup ?? DEFAULT_RESOURCE_GROUP, nodes: r.nodes }, "replica nodes changed");
      void core.meta.putReplica(r).catch(() => undefined);
    }
  }
  if (!changedAny && leaving.size === 0) settled.set(core, key);
  return leaving;
}

/** per querycoord, what the last round that changed nothing saw (settleKey) */
const settled: WeakMap<QuerycoordCore, string> = new WeakMap();

/** The alive and stopping nodes, the groups and each collection's replicas (their objects: a changed replica is a new one). */
function settleKey(core: QuerycoordCore, alive: ReadonlySet<string>, stopping: ReadonlySet<string>): string {
  const replicas = core.meta.allCollections().map((c) => `${c.collectionId}:${core.meta.replicasOf(c.collectionId).map(idOf).join(",")}`);
  return `${[...alive].join(",")}|${[...stopping].join(",")}|${core.rgs.signature()}|${replicas.join(";")}`;
}

/** The distribution with `leaving` nodes marked stopping, as the checkers are to see it. */
export function withLeaving(snap: DistSnapshot, leaving: ReadonlySet<string>): DistSnapshot {
  if (leaving.size === 0) return snap;
  return new DistSnapshot([...snap.nodes.values()].map((d) => (leaving.has(d.nodeId) && !d.stopping ? { ...d, stopping: true } : d)));
}

// ---- request fields ----

function configOf(verb: string, v: unknown, field: string): ResourceGroupConfig {
  if (v === null || typeof v !== "object") throw VbError.invalid(`${verb}: field "${field}" must be an object with requests and limits`);
  const c = v as Record<string, unknown>;
  const num = (k: "requests" | "limits") => {
    const x = c[k];
    if (x === undefined) return undefined;
    const n = x !== null && typeof x === "object" ? (x as Record<string, unknown>).nodeNum : undefined;
    if (typeof n !== "number" || !Number.isInteger(n) || n < 0) throw VbError.invalid(`${verb}: field "${field}.${k}.nodeNum" must be an integer ≥ 0`);
    return n;
  };
  const requests = num("requests");
  const limits = num("limits");
  if (requests === undefined || limits === undefined) throw VbError.invalid(`${verb}: field "${field}" needs requests.nodeNum and limits.nodeNum`);
  const list = (k: "transferFrom" | "transferTo") => {
    const x = c[k];
    if (x === undefined) return [];
    if (!Array.isArray(x)) throw VbError.invalid(`${verb}: field "${field}.${k}" must be a list of { resourceGroup }`);
    return x.map((t, i) => {
      const g = t !== null && typeof t === "object" ? (t as Record<string, unknown>).resourceGroup : undefined;
      if (typeof g !== "string" || !g) throw VbError.invalid(`${verb}: field "${field}.${k}[${i}].resourceGroup" must be a group name`);
      return { resourceGroup: g };
    });
  };
  return { ...resourceGroupConfig(requests, limits), transferFrom: list("transferFrom"), transferTo: list("transferTo") };
}

// ---- verbs ----

export function createResourceGroup(core: QuerycoordCore, b: Record<string, unknown>): Promise<null> {
  const name = requiredString("querycoord.CreateResourceGroup", b, "name");
  const config = b.config === undefined ? undefined : configOf("querycoord.CreateResourceGroup", b.config, "config");
  const existed = core.rgs.has(name);
  const stored = core.rgs.create(name, config);
  if (!existed) {
    core.log.info({ group: name, config }, "resource group created");
    core.kick();
  }
  return stored.then(() => null);
}

export function dropResourceGroup(core: QuerycoordCore, b: Record<string, unknown>): Promise<null> {
  const name = requiredString("querycoord.DropResourceGroup", b, "name");
  if (!core.rgs.has(name)) return Promise.resolve(null);
  const replicas = core.meta.allReplicas().filter((r) => (r.resourceGroup ?? DEFAULT_RESOURCE_GROUP) === name);
  if (replicas.length > 0) {
    const names = [...new Set(replicas.map((r) => core.meta.collection(r.collectionId)?.name ?? `${r.collectionId}`))];
    throw VbError.invalid(
      `resource group "${name}" still holds ${replicas.length} replica(s) of ${names.join(", ")} (1100): release them or move them (vbus rg transfer-replica, TransferReplica) first`,
    );
  }
  const { stored, transfers } = core.rgs.drop(name);
  report(core, transfers);
  core.log.info({ group: name }, "resource group dropped");
  core.kick();
  return stored.then(() => null);
}

export function updateResourceGroups(core: QuerycoordCore, b: Record<string, unknown>): Promise<null> {
  const verb = "querycoord.UpdateResourceGroups";
  if (!Array.isArray(b.groups)) throw VbError.invalid(`${verb}: field "groups" must be a list of { name, config }`);
  const configs = new Map<string, ResourceGroupConfig>();
  b.groups.forEach((g, i) => {
    const o = (g ?? {}) as Record<string, unknown>;
    const name = requiredString(verb, o, "name");
    configs.set(name, configOf(verb, o.config, `groups[${i}].config`));
  });
  const stored = core.rgs.update(configs);
  for (const [name, config] of configs) core.log.info({ group: name, config }, "resource group updated");
  applyNow(core);
  return stored.then(() => null);
}

/** Moves nodes at once (the caller sees them moved in its answer), then lets the round place the work. */
function applyNow(core: QuerycoordCore): ResourceGroupEvent[] {
  const serving = new Set(core.dist.aliveNodes().filter((n) => !core.snapshot.isStopping(n)));
  const { transfers, stored } = core.rgs.recover(serving);
  stored.catch((err: unknown) => core.log.error({ err }, "could not store the resource groups"));
  core.kick();
  return report(core, transfers);
}

export function transferNode(core: QuerycoordCore, b: Record<string, unknown>): Promise<Res<"TransferNode">> {
  const verb = "querycoord.TransferNode";
  const source = requiredString(verb, b, "source");
  const target = requiredString(verb, b, "target");
  const numNode = optionalInt(verb, b, "numNode", 1, 1_000_000) ?? 1;
  const stored = core.rgs.transferNode(source, target, numNode);
  core.log.info({ from: source, to: target, nodes: numNode }, "resource group: transfer node");
  const transfers = applyNow(core);
  return stored.then(() => ({ transfers }));
}

export function transferReplica(core: QuerycoordCore, b: Record<string, unknown>): Promise<Res<"TransferReplica">> {
  const verb = "querycoord.TransferReplica";
  const source = requiredString(verb, b, "source");
  const target = requiredString(verb, b, "target");
  const collectionId = requiredId(verb, b, "collectionId");
  const numReplica = optionalInt(verb, b, "numReplica", 1, 64) ?? 1;
  if (source === target) throw VbError.invalid(`${verb}: source and target resource group are both "${source}" (1100)`);
  core.rgs.require(source);
  core.rgs.require(target);
  const c = core.meta.collection(collectionId);
  if (!c) throw collectionNotLoaded(collectionId);
  const label = collectionLabel(collectionId, c.name);
  const inSource = core.meta.replicasOf(collectionId).filter((r) => (r.resourceGroup ?? DEFAULT_RESOURCE_GROUP) === source);
  if (inSource.length < numReplica) {
    throw VbError.invalid(`${verb}: collection ${label} has ${inSource.length} replica(s) in resource group "${source}", fewer than the ${numReplica} asked for (1100)`);
  }
  const inTarget = core.meta.replicasOf(collectionId).filter((r) => (r.resourceGroup ?? DEFAULT_RESOURCE_GROUP) === target).length;
  const have = core.rgs.nodesOf(target).length;
  if (have < inTarget + numReplica) {
    throw new VbError(
      ErrorCode.ResourceInsufficient,
      `${verb}: resource group "${target}" has ${have} querynode(s), too few for ${inTarget + numReplica} replica(s) of collection ${label} (each needs one): give it nodes first (vbus rg update ${target} --requests ${inTarget + numReplica} --limits ${inTarget + numReplica})`,
    );
  }
  // the replica's nodes stay while they hold its data (they leave the replica once the target group's nodes took it over)
  const moved = inSource.slice(0, numReplica);
  const writes = moved.map((r) => core.meta.putReplica({ ...r, resourceGroup: target }));
  core.log.info({ collection: collectionId, replicas: moved.map((r) => r.replicaId), from: source, to: target }, "resource group: transfer replica");
  core.kick();
  return Promise.all(writes).then(() => ({ replicaIds: moved.map((r) => r.replicaId) }));
}

export function listResourceGroups(core: QuerycoordCore): Res<"ListResourceGroups"> {
  return { names: core.rgs.names() };
}

export function describeResourceGroup(core: QuerycoordCore, b: Record<string, unknown>): Res<"DescribeResourceGroup"> {
  const name = requiredString("querycoord.DescribeResourceGroup", b, "name");
  const g = core.rgs.require(name);
  const loaded = new Map<bigint, number>();
  const outgoing = new Map<bigint, number>();
  const incoming = new Map<bigint, number>();
  const add = (m: Map<bigint, number>, c: bigint, n = 1) => m.set(c, (m.get(c) ?? 0) + n);
  const members = new Set(g.nodes);
  for (const r of core.meta.allReplicas()) {
    const rg = r.resourceGroup ?? DEFAULT_RESOURCE_GROUP;
    if (rg === name) {
      add(loaded, r.collectionId);
      const foreign = r.nodes.filter((n) => !members.has(n)).length;
      if (foreign > 0) add(incoming, r.collectionId, foreign);
    } else {
      const ours = r.nodes.filter((n) => members.has(n)).length;
      if (ours > 0) add(outgoing, r.collectionId, ours);
    }
  }
  const list = (m: Map<bigint, number>) =>
    [...m].map(([collectionId, count]) => ({ collectionId, collectionName: core.meta.collection(collectionId)?.name ?? `${collectionId}`, count }));
  return {
    group: {
      name: g.name,
      config: g.config,
      capacity: g.config.requests.nodeNum,
      nodes: g.nodes,
      numAvailableNode: g.nodes.filter((n) => core.snapshot.isAlive(n) && !core.snapshot.isStopping(n)).length,
      numLoadedReplica: list(loaded),
      numOutgoingNode: list(outgoing),
      numIncomingNode: list(incoming),
    },
  };
}

/** The groups as `vbus status` shows them. */
export function resourceGroupsStatus(core: QuerycoordCore): NonNullable<Res<"GetStatus">["resourceGroups"]> {
  return core.rgs.names().map((name) => {
    const g = core.rgs.get(name)!;
    return { name, requests: g.config.requests.nodeNum, limits: g.config.limits.nodeNum, nodes: g.nodes };
  });
}

