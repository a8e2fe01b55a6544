/**
 * The native API: what clients send to the proxy subject (`vb.proxy`, a queue group). DDL calls take
 * the same bodies as rootcoord's; writes take rows (objects) or columns.
 */
import type { CollectionRef, RootcoordApi } from "./rootcoord.ts";
import type { ConsistencyLevel } from "../schema.ts";
import type { LoadBlocker, LoadState, ManualMove, QuerycoordApi, ResourceGroupConfig, ResourceGroupInfo } from "./querycoord.ts";
import type { MetricType } from "./querynode.ts";
import type { IndexProgress } from "./indexes.ts";

export interface ReadOptions {
  dbName?: string;
  collectionName: string;
  partitionNames?: string[];
  /** a boolean expression over the fields (Milvus's grammar) */
  filter?: string;
  /** values of `{name}` template parameters in the filter */
  filterParams?: Record<string, unknown>;
  outputFields?: string[];
  limit?: number;
  offset?: number;
  /** default: the collection's */
  consistencyLevel?: ConsistencyLevel;
  /** Session: the timestamp of the caller's last write (InsertRes.timestamp) */
  guaranteeTimestamp?: bigint;
}

export interface SearchReq extends ReadOptions {
  /** query vectors: one Float32Array / number[] per query, or one flat Float32Array of nq × dim */
  data: Float32Array | Float32Array[] | number[][];
  /** the vector field (default: the collection's only one) */
  annsField?: string;
  metricType?: MetricType;
  /** radius / range_filter for range search; ef / nprobe for indexes */
  searchParams?: Record<string, unknown>;
  /**
   * Group the hits by this scalar field (Bool, Int8–Int64, VarChar): each query returns the best hit of
   * up to `limit` distinct values (Milvus's group_by_field; also accepted as searchParams.group_by_field).
   */
  groupByField?: string;
}

export interface SearchHits {
  ids: BigInt64Array | string[];
  scores: Float32Array;
  /** the output fields of each hit */
  entities: Record<string, unknown>[];
}

export interface QueryReq extends ReadOptions {
  /** get by primary keys (with or without a filter) */
  ids?: BigInt64Array | bigint[] | number[] | string[];
}

export const PROXY = "proxy";

export interface WriteTarget {
  dbName?: string;
  collectionName: string;
  partitionName?: string;
}

/**
 * Rows as objects (`{id: 1n, vec: Float32Array | number[], title: "..."}`), or columns by field name
 * (`{id: BigInt64Array, vec: Float32Array (rows × dim), title: string[]}`): one of the two.
 */
export interface InsertReq extends WriteTarget {
  rows?: Record<string, unknown>[];
  columns?: Record<string, unknown>;
}

export interface InsertRes {
  insertCount: number;
  /** the primary keys of the inserted rows, in order (allocated ones for autoId) */
  ids: BigInt64Array | string[];
  /** the insert's hybrid timestamp: a Session read at or after it sees the rows */
  timestamp: bigint;
}

export interface DeleteReq {
  dbName?: string;
  collectionName: string;
  partitionName?: string;
  /** primary keys to delete */
  ids?: BigInt64Array | bigint[] | number[] | string[];
  /** a boolean expression: the rows it selects are deleted (query then delete) */
  filter?: string;
}

export interface FlushRes {
  collections: Record<string, { segmentIds: bigint[]; flushTs: bigint; flushed: boolean }>;
}

/** DDL the proxy forwards to rootcoord as it is (same bodies, same replies). */
export const FORWARDED_DDL = [
  "CreateDatabase",
  "DropDatabase",
  "ListDatabases",
  "CreateCollection",
  "DropCollection",
  "DescribeCollection",
  "HasCollection",
  "RenameCollection",
  "AlterCollection",
  "CreatePartition",
  "DropPartition",
  "HasPartition",
  "CreateAlias",
  "DropAlias",
  "AlterAlias",
  "DescribeAlias",
  "ListAliases",
] as const;
export type ForwardedDdl = (typeof FORWARDED_DDL)[number];

export type ProxyApi = Pick<RootcoordApi, ForwardedDdl> & {
  /** names only (rootcoord answers with the infos) */
  ListCollections: [{ dbName?: string }, { collections: string[] }];
  ListPartitions: [CollectionRef, { partitions: string[] }];
  Insert: [InsertReq, InsertRes];
  Upsert: [InsertReq, InsertRes];
  Delete: [DeleteReq, { deleteCount: number; timestamp: bigint }];
  /** seals and writes every growing segment; with `wait` (default true) replies once they are Flushed */
  Flush: [{ dbName?: string; collectionNames: string[]; wait?: boolean; timeoutMs?: number }, FlushRes];
  GetFlushState: [{ dbName?: string; collectionName: string; flushTs?: bigint }, { flushed: boolean }];
  /** rows per Flushed segment, for `vbus collection describe` and tests */
  GetCollectionStatistics: [CollectionRef, { rowCount: number; flushedRows: number; segments: number }];
  /** the same, for the rows of one partition */
  GetPartitionStatistics: [CollectionRef & { partitionName: string }, { rowCount: number; flushedRows: number; segments: number }];
  /**
   * `resourceGroups`: one group for every replica, or one per replica (a name may repeat); default: the
   * default group. With groups and no `replicaNumber`: one replica per group named.
   */
  LoadCollection: [CollectionRef & { replicaNumber?: number; resourceGroups?: string[]; wait?: boolean; timeoutMs?: number }, null];
  ReleaseCollection: [CollectionRef, null];
  LoadPartitions: [CollectionRef & { partitionNames: string[]; replicaNumber?: number; resourceGroups?: string[]; wait?: boolean }, null];
  ReleasePartitions: [CollectionRef & { partitionNames: string[] }, null];
  GetLoadState: [CollectionRef & { partitionNames?: string[] }, { state: LoadState; progress: number }];
  GetLoadingProgress: [CollectionRef, { progress: number; state: LoadState; blockers: LoadBlocker[] }];
  Search: [SearchReq, { results: SearchHits[] }];
  Query: [QueryReq, { rows: Record<string, unknown>[] }];
  /** an index on a vector field: FLAT, HNSW, HNSW_SQ8, HNSW_FP16, IVF_FLAT or AUTOINDEX; L2, IP or COSINE */
  CreateIndex: [
    CollectionRef & { fieldName: string; indexName?: string; indexType: string; metricType: string; params?: Record<string, unknown> },
    null,
  ];
  DescribeIndex: [CollectionRef & { indexName?: string }, { indexes: IndexProgress[] }];
  DropIndex: [CollectionRef & { indexName?: string }, null];
  GetIndexBuildProgress: [CollectionRef & { indexName?: string }, { totalRows: number; indexedRows: number; pendingBuilds: number }];
  /** nodes, replicas, per-node delegators/segments/rows/memory, load progress and what it waits on */
  GetStatus: [Record<string, never>, QuerycoordApi["GetStatus"][1]];
  /** resource groups (Milvus's): querynodes by name, with requests and limits on their number */
  CreateResourceGroup: [{ resourceGroup: string; config?: ResourceGroupConfig }, null];
  DropResourceGroup: [{ resourceGroup: string }, null];
  UpdateResourceGroups: [{ resourceGroups: Record<string, ResourceGroupConfig> }, null];
  DescribeResourceGroup: [{ resourceGroup: string }, { resourceGroup: ResourceGroupInfo }];
  ListResourceGroups: [Record<string, never>, { resourceGroups: string[] }];
  TransferNode: [{ sourceResourceGroup: string; targetResourceGroup: string; numNode?: number }, QuerycoordApi["TransferNode"][1]];
  TransferReplica: [
    { dbName?: string; collectionName: string; sourceResourceGroup: string; targetResourceGroup: string; numReplica?: number },
    QuerycoordApi["TransferReplica"][1],
  ];
  /**
   * Milvus's LoadBalance: sealed segments off `srcNode` to other nodes of its replica (default: all of
   * them, every sealed segment it holds); without `collectionName`, of every loaded collection. With
   * `wait`, answers once the moves are done.
   */
  LoadBalance: [
    { dbName?: string; collectionName?: string; srcNode: string; dstNodes?: string[]; sealedSegmentIds?: bigint[]; wait?: boolean; timeoutMs?: number },
    { moves: ManualMove[] },
  ];
};

/** The native API's resource-group verbs and LoadBalance (the proxy passes them to querycoord). */
export const RESOURCE_GROUP_VERBS = [
  "CreateResourceGroup",
  "DropResourceGroup",
  "UpdateResourceGroups",
  "DescribeResourceGroup",
  "ListResourceGroups",
  "TransferNode",
  "TransferReplica",
  "LoadBalance",
] as const;

/** Every verb of the native API (the typed client makes one method of each). */
export const PROXY_VERBS = [
  "CreateDatabase",
  "DropDatabase",
  "ListDatabases",
  "CreateCollection",
  "DropCollection",
  "DescribeCollection",
  "HasCollection",
  "ListCollections",
  "RenameCollection",
  "AlterCollection",
  "CreatePartition",
  "DropPartition",
  "HasPartition",
  "ListPartitions",
  "CreateAlias",
  "DropAlias",
  "AlterAlias",
  "DescribeAlias",
  "ListAliases",
  "Insert",
  "Upsert",
  "Delete",
  "Flush",
  "GetFlushState",
  "GetCollectionStatistics",
  "GetPartitionStatistics",
  "LoadCollection",
  "ReleaseCollection",
  "LoadPartitions",
  "ReleasePartitions",
  "GetLoadState",
  "GetLoadingProgress",
  "Search",
  "Query",
  "GetStatus",
  "CreateIndex",
  "DescribeIndex",
  "DropIndex",
  "GetIndexBuildProgress",
  ...RESOURCE_GROUP_VERBS,
] as const satisfies readonly (keyof ProxyApi)[];
