/**
 * LoadCollection / LoadPartitions (Milvus's job_load.go). A new load learns the collection from
 * rootcoord (schema, vchannels, partitions), gets replica ids, splits the alive querynodes into
 * `replicaNumber` replicas, stores the load and its replicas, and asks for the target; the checkers do
 * the rest. Loading again what is loaded is a no-op; LoadPartitions on a partition load widens it.
 */
import { collectionLabel, ErrorCode, VbError } from "../../../protocol/errors.ts";
import type { CollectionInfo } from "../../../protocol/meta.ts";
import type { PipeResult } from "../../../runtime/actor.ts";
import { splitNodes } from "../balance/replica_assign.ts";
import { DEFAULT_RESOURCE_GROUP } from "../meta/resource_manager.ts";
import type { QuerycoordCore } from "../core.ts";
import type { CollectionLoad, Replica } from "../meta/types.ts";
import { Job, type JobStep } from "./job.ts";

export interface LoadRequest {
  collectionId: bigint;
  /** undefined: the whole collection (LoadCollection) */
  partitionIds?: bigint[];
  replicaNumber?: number;
  /** the resource group of each replica (one name: all of them); undefined: the default group */
  resourceGroups?: string[];
  /** answer only once Loaded */
  wait: boolean;
  /** when a waiting caller gives up (ms since the epoch; 0: never) */
  deadline: number;
}

export function nodeLackError(collectionId: bigint, replicaNumber: number, alive: number): VbError {
  return new VbError(
    ErrorCode.ResourceInsufficient,
    `cannot load collection ${collectionId} with ${replicaNumber} replicas (NodeLack): ${alive} querynode${alive === 1 ? " is" : "s are"} alive, ` +
      `each replica needs at least one; start more querynodes or load with replicaNumber ≤ ${Math.max(1, alive)}`,
  );
}

const NODE_POLL_MS = 100;

/**
 * The resource group of each of `replicaNumber` replicas: one name for all of them, or one name per
 * replica (Milvus asks for as many groups as replicas when there are several); none: the default group.
 */
export function replicaGroups(core: QuerycoordCore, replicaNumber: number, resourceGroups: readonly string[] | undefined): string[] {
  const names = resourceGroups && resourceGroups.length > 0 ? resourceGroups : [DEFAULT_RESOURCE_GROUP];
  for (const g of names) core.rgs.require(g);
  if (names.length === 1) return Array.from({ length: replicaNumber }, () => names[0]!);
  if (names.length !== replicaNumber) {
    throw VbError.invalid(
      `${names.length} resource groups named for ${replicaNumber} replica(s) (1100): name one group for all replicas, or one per replica (a:1,b:1 is two replicas, one in a and one in b)`,
    );
  }
  return [...names];
}

/** A group short of nodes for its replicas: the error, else undefined. */
export function groupLack(core: QuerycoordCore, collectionId: bigint, groups: readonly string[]): VbError | undefined {
  const want = new Map<string, number>();
  for (const g of groups) want.set(g, (want.get(g) ?? 0) + 1);
  for (const [g, n] of want) {
    const have = core.rgs.nodesOf(g).length;
    if (have >= n) continue;
    if (g === DEFAULT_RESOURCE_GROUP && want.size === 1) return nodeLackError(collectionId, n, have);
    return new VbError(
      ErrorCode.ResourceInsufficient,
      `cannot load collection ${collectionId} with ${n} replica(s) in resource group "${g}" (NodeLack): it has ${have} querynode${have === 1 ? "" : "s"}, ` +
        `each replica needs at least one; give it nodes (vbus rg update ${g} --requests ${n} --limits ${n}, or vbus rg transfer-node) or load fewer replicas there`,
    );
  }
  return undefined;
}

export class LoadJob extends Job {
  readonly kind: string;
  /** what the outcome given to `resume` is */
  private phase: "nodes" | "describe" = "describe";

  constructor(private readonly req: LoadRequest) {
    super(req.collectionId);
    this.kind = req.partitionIds ? "LoadPartitions" : "LoadCollection";
  }

  start(core: QuerycoordCore): JobStep {
    const { req } = this;
    const existing = core.meta.collection(req.collectionId);
    if (existing) {
      if (req.replicaNumber !== undefined && req.replicaNumber !== existing.replicaNumber) {
        throw VbError.invalid(
          `collection ${collectionLabel(req.collectionId, existing.name)} is loaded with ${existing.replicaNumber} replica(s); release it first (vbus release ${existing.name}, or ReleaseCollection) to load it with ${req.replicaNumber}`,
        );
      }
      if (req.resourceGroups && req.resourceGroups.length > 0) {
        const have = core.meta.replicasOf(req.collectionId).map((r) => r.resourceGroup ?? DEFAULT_RESOURCE_GROUP).sort();
        const want = replicaGroups(core, existing.replicaNumber, req.resourceGroups).sort();
        if (have.join(",") !== want.join(",")) {
          throw VbError.invalid(
            `collection ${collectionLabel(req.collectionId, existing.name)} is loaded with replicas in ${have.join(", ")}; move them with vbus rg transfer-replica (TransferReplica), or release it first`,
          );
        }
      }
      if (existing.loadType === "Collection") return { stored: Promise.resolve() };
      if (req.partitionIds && req.partitionIds.every((p) => existing.partitionIds.includes(p))) return { stored: Promise.resolve() };
      this.phase = "describe";
      return { wait: core.describeCollection(req.collectionId).then((info) => ({ info })) };
    }
    return this.afterNodes(core);
  }

  /** Enough alive querynodes for the replicas: learn the collection; else fail (or, at start-up, wait a little). */
  private afterNodes(core: QuerycoordCore): JobStep {
    const replicaNumber = this.req.replicaNumber ?? 1;
    const lack = groupLack(core, this.req.collectionId, replicaGroups(core, replicaNumber, this.req.resourceGroups));
    if (lack) {
      if (!core.inStartupGrace()) throw lack;
      this.phase = "nodes";
      return { wait: new Promise((r) => setTimeout(r, NODE_POLL_MS)) };
    }
    this.phase = "describe";
    return {
      wait: Promise.all([core.describeCollection(this.req.collectionId), core.allocIds(replicaNumber)]).then(([info, ids]) => ({ info, ids })),
    };
  }

  override resume(core: QuerycoordCore, outcome: PipeResult<unknown>): JobStep {
    if (!outcome.ok) throw outcome.error;
    if (this.phase === "nodes") return this.afterNodes(core);
    const { info, ids } = outcome.value as { info: CollectionInfo; ids?: bigint[] };
    const { req } = this;
    const known = new Set(info.partitions.map((p) => p.partitionId));
    for (const p of req.partitionIds ?? []) {
      if (!known.has(p)) {
        throw new VbError(ErrorCode.PartitionNotFound, `partition ${p} not found in collection ${collectionLabel(req.collectionId, info.name)}`);
      }
    }
    const now = Date.now();
    const existing = core.meta.collection(req.collectionId);
    if (existing) {
      const partitionIds = req.partitionIds ? [...new Set([...existing.partitionIds, ...req.partitionIds])] : [...known];
      const widened: CollectionLoad = {
        ...existing,
        loadType: req.partitionIds ? existing.loadType : "Collection",
        partitionIds,
        status: partitionIds.every((p) => existing.loadedPartitionIds.includes(p)) ? existing.status : "Loading",
        schema: info.schema,
        vchannels: info.vchannels,
        loadStartedAt: now,
        progress: 0,
      };
      const stored = core.meta.putCollection(widened);
      core.requestTarget(req.collectionId);
      core.kick();
      return { stored };
    }
    const replicaNumber = req.replicaNumber ?? 1;
    const rgOf = replicaGroups(core, replicaNumber, req.resourceGroups);
    const lack = groupLack(core, req.collectionId, rgOf);
    if (lack) throw lack;
    // each group's nodes split among its replicas, least loaded first
    const byLoad = core.nodesByLoad();
    const groups: string[][] = [];
    const perGroup = new Map<string, string[][]>();
    for (const g of new Set(rgOf)) {
      const members = new Set(core.rgs.nodesOf(g));
      perGroup.set(g, splitNodes(byLoad.filter((n) => members.has(n)), rgOf.filter((x) => x === g).length) ?? []);
    }
    for (const g of rgOf) groups.push(perGroup.get(g)!.shift() ?? []);
    const load: CollectionLoad = {
      collectionId: req.collectionId,
      dbName: info.dbName,
      name: info.name,
      loadType: req.partitionIds ? "Partition" : "Collection",
      partitionIds: req.partitionIds ? [...req.partitionIds] : [...known],
      loadedPartitionIds: [],
      replicaNumber,
      status: "Loading",
      schema: info.schema,
      vchannels: info.vchannels,
      loadStartedAt: now,
      progress: 0,
    };
    const replicas: Replica[] = groups.map((nodes, i) => ({ replicaId: ids![i]!, collectionId: req.collectionId, resourceGroup: rgOf[i]!, nodes }));
    const writes = [core.meta.putCollection(load), ...replicas.map((r) => core.meta.putReplica(r))];
    core.log.info(
      { collection: req.collectionId, replicas: replicas.map((r) => ({ id: r.replicaId, group: r.resourceGroup, nodes: r.nodes })), partitions: load.partitionIds.length },
      "loading collection",
    );
    core.requestTarget(req.collectionId);
    core.kick();
    return { stored: Promise.all(writes) };
  }

  override finished(core: QuerycoordCore): void {
    if (!this.req.wait) {
      this.resolve(null);
      return;
    }
    core.waitLoaded(this.collectionId, this.req.deadline, () => this.resolve(null), (err) => this.reject(err));
  }
}

/** A partition created in a collection loaded whole: it joins the load (Milvus loads it too). */
export class AddPartitionJob extends Job {
  readonly kind = "AddPartition";

  constructor(
    collectionId: bigint,
    private readonly partitionId: bigint,
  ) {
    super(collectionId);
  }

  start(core: QuerycoordCore): JobStep {
    const c = core.meta.collection(this.collectionId);
    if (!c || c.loadType !== "Collection" || c.partitionIds.includes(this.partitionId)) return { stored: Promise.resolve() };
    const stored = core.meta.putCollection({ ...c, partitionIds: [...c.partitionIds, this.partitionId] });
    core.requestTarget(this.collectionId);
    return { stored };
  }
}
