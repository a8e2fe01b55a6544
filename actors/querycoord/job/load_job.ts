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
import type { QuerycoordCore } from "../core.ts";
import type { CollectionLoad, Replica } from "../meta/types.ts";
import { Job, type JobStep } from "./job.ts";

export interface LoadRequest {
  collectionId: bigint;
  /** undefined: the whole collection (LoadCollection) */
  partitionIds?: bigint[];
  replicaNumber?: number;
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
    const alive = core.dist.aliveAt(Date.now()).length;
    if (alive < replicaNumber) {
      if (!core.inStartupGrace()) throw nodeLackError(this.req.collectionId, replicaNumber, alive);
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
    const alive = core.nodesByLoad();
    const groups = splitNodes(alive, replicaNumber);
    if (!groups) throw nodeLackError(req.collectionId, replicaNumber, alive.length);
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
    const replicas: Replica[] = groups.map((nodes, i) => ({ replicaId: ids![i]!, collectionId: req.collectionId, nodes }));
    const writes = [core.meta.putCollection(load), ...replicas.map((r) => core.meta.putReplica(r))];
    core.log.info(
      { collection: req.collectionId, replicas: replicas.map((r) => ({ id: r.replicaId, nodes: r.nodes })), partitions: load.partitionIds.length },
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
