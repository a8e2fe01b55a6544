/** Plain-data fixtures for querycoord's checker, scheduler and observer tests (no NATS). */
import type { SegmentInfo } from "../../protocol/meta.ts";
import { decode, encode } from "../../protocol/codec.ts";
import type { QueryNodeDist } from "../../protocol/messages/querynode.ts";
import type { IndexInfo, IndexLoadInfo } from "../../protocol/messages/indexes.ts";
import { collectionIndexes, type CheckInput, type SyncedView } from "../../actors/querycoord/checkers/types.ts";
import { DistSnapshot } from "../../actors/querycoord/dist/dist_snapshot.ts";
import type { TargetPair } from "../../actors/querycoord/meta/target_manager.ts";
import type { CollectionLoad, CollectionTarget, Replica } from "../../actors/querycoord/meta/types.ts";
import type { TaskFailure } from "../../actors/querycoord/task/scheduler.ts";

export const COLL = 100n;

/** A value as it arrives where it is sent (a view's entries go on the wire as plain records). */
export const onWire = <T>(x: T): T => decode<T>(encode(x));
export const MiB = 1024 * 1024;

export function seg(id: bigint, opts: Partial<SegmentInfo> = {}): SegmentInfo {
  return {
    segmentId: id,
    collectionId: COLL,
    partitionId: 1n,
    vchannel: "100v0",
    level: "L1",
    state: "Flushed",
    numRows: 1000,
    startPosition: id * 10n,
    endPosition: id * 10n + 9n,
    binlogs: [],
    deltalogs: [],
    statslogs: [],
    memorySize: 1 * MiB,
    createdAt: 0,
    updatedAt: 0,
    ...opts,
  };
}

export function target(version: number, segments: SegmentInfo[], channels = ["100v0"], collectionId = COLL): CollectionTarget {
  return {
    collectionId,
    version,
    partitionIds: [1n],
    channels: new Map(channels.map((v, i) => [v, { vchannel: v, pchannel: i, seekPosition: 5n, checkpointTs: 0n }])),
    segments: new Map(segments.filter((s) => s.level === "L1").map((s) => [s.segmentId, s])),
    l0Segments: new Map(segments.filter((s) => s.level === "L0").map((s) => [s.segmentId, s])),
  };
}

export function load(opts: Partial<CollectionLoad> = {}): CollectionLoad {
  return {
    collectionId: COLL,
    dbName: "default",
    name: "c",
    loadType: "Collection",
    partitionIds: [1n],
    loadedPartitionIds: [],
    replicaNumber: 1,
    status: "Loading",
    schema: { name: "c", fields: [], enableDynamicField: false } as unknown as CollectionLoad["schema"],
    vchannels: [{ name: "100v0", shard: 0, pchannel: 0 }],
    loadStartedAt: 0,
    progress: 0,
    ...opts,
  };
}

export function replica(replicaId: bigint, nodes: string[], collectionId = COLL): Replica {
  return { replicaId, collectionId, nodes };
}

type DelegatorInput = Partial<QueryNodeDist["delegators"][number]> & { vchannel: string; replicaId: bigint };

export function node(
  nodeId: string,
  opts: {
    segments?: (SegmentInfo | { segmentId: bigint; collectionId?: bigint; vchannel?: string; rows?: number; indexIds?: bigint[] })[];
    delegators?: DelegatorInput[];
    memoryBytes?: number;
    memoryLimitBytes?: number;
    rows?: number;
    loading?: QueryNodeDist["loading"];
    /** draining before it stops */
    stopping?: boolean;
  } = {},
): QueryNodeDist {
  const segments = (opts.segments ?? []).map((s) => ({
    segmentId: s.segmentId,
    collectionId: s.collectionId ?? COLL,
    partitionId: "partitionId" in s ? s.partitionId : 1n,
    vchannel: s.vchannel ?? "100v0",
    rows: "numRows" in s ? s.numRows : ((s as { rows?: number }).rows ?? 1000),
    memoryBytes: MiB,
    indexIds: (s as { indexIds?: bigint[] }).indexIds ?? [],
  }));
  return {
    nodeId,
    at: 0,
    memoryBytes: opts.memoryBytes ?? 0,
    memoryLimitBytes: opts.memoryLimitBytes ?? 1024 * MiB,
    rows: opts.rows ?? segments.reduce((n, s) => n + s.rows, 0),
    segments,
    delegators: (opts.delegators ?? []).map((d) => ({
      collectionId: COLL,
      address: `vb.dlg.${d.collectionId ?? COLL}.${d.vchannel}.${d.replicaId}`,
      serviceable: true,
      targetVersion: 0,
      tSafe: 0n,
      sealedSegmentIds: [],
      ...d,
    })),
    loading: opts.loading ?? [],
    ...(opts.stopping ? { stopping: true } : {}),
  };
}

export function input(opts: {
  collections?: CollectionLoad[];
  replicas?: Replica[];
  targets?: [bigint, TargetPair][];
  nodes?: QueryNodeDist[];
  failures?: TaskFailure[];
  synced?: [string, SyncedView][];
  /** per collection: GetIndexInfos' answer */
  indexes?: [bigint, { indexes: IndexInfo[]; builds: IndexLoadInfo[] }][];
}): CheckInput {
  return {
    collections: opts.collections ?? [load()],
    replicas: opts.replicas ?? [replica(1n, ["qn1"])],
    targets: new Map(opts.targets ?? []),
    dist: new DistSnapshot(opts.nodes ?? []),
    failures: new Map((opts.failures ?? []).map((f) => [f.key, f])),
    synced: new Map(opts.synced ?? []),
    pending: new Map(),
    ...(opts.indexes ? { indexes: new Map(opts.indexes.map(([c, r]) => [c, collectionIndexes(r)])) } : {}),
  };
}

/** A live HNSW index on field 101. */
export function indexInfo(indexId: bigint, indexName = `idx${indexId}`): IndexInfo {
  return {
    indexId,
    collectionId: COLL,
    fieldId: 101,
    fieldName: "vec",
    indexName,
    indexType: "HNSW",
    metricType: "L2",
    params: { M: 16, efConstruction: 128 },
    createdTs: 0n,
  };
}

/** The Finished build of `indexId` for a segment. */
export function build(segmentId: bigint, indexId: bigint, memorySize = 2 * MiB): IndexLoadInfo {
  return {
    segmentId,
    fieldId: 101,
    indexId,
    buildId: indexId * 1000n + segmentId,
    fileKey: `index_files/${COLL}/1/${segmentId}/${indexId}/${indexId * 1000n + segmentId}/index.bin`,
    indexType: "HNSW",
    metricType: "L2",
    memorySize,
  };
}

export function failure(key: string, nodeId: string, reason: string): TaskFailure {
  const kind = key.includes("/ch/") ? "WatchChannel" : key.includes("/idx/") ? "LoadIndex" : "LoadSegment";
  return { key, kind, collectionId: COLL, nodeId, what: "", reason, attempts: 1, at: 0, retryAt: Number.MAX_SAFE_INTEGER };
}
