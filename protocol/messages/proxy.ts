/**
 * The native API: what clients send to the proxy subject (`vb.proxy`, a queue group). DDL calls take
 * the same bodies as rootcoord's; writes take rows (objects) or columns.
 */
import type { CollectionInfo, PartitionInfo, DatabaseInfo } from "../meta.ts";
import type { CollectionRef, CreateCollectionReq } from "./rootcoord.ts";

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

export type ProxyApi = {
  CreateDatabase: [{ dbName: string }, DatabaseInfo];
  DropDatabase: [{ dbName: string }, null];
  ListDatabases: [Record<string, never>, { databases: string[] }];
  CreateCollection: [CreateCollectionReq, CollectionInfo];
  DropCollection: [CollectionRef, null];
  DescribeCollection: [CollectionRef, CollectionInfo];
  HasCollection: [CollectionRef, { has: boolean }];
  ListCollections: [{ dbName?: string }, { collections: string[] }];
  RenameCollection: [{ dbName?: string; oldName: string; newName: string; newDbName?: string }, null];
  CreatePartition: [CollectionRef & { partitionName: string }, PartitionInfo];
  DropPartition: [CollectionRef & { partitionName: string }, null];
  HasPartition: [CollectionRef & { partitionName: string }, { has: boolean }];
  ListPartitions: [CollectionRef, { partitions: string[] }];
  CreateAlias: [{ dbName?: string; alias: string; collectionName: string }, null];
  DropAlias: [{ dbName?: string; alias: string }, null];
  AlterAlias: [{ dbName?: string; alias: string; collectionName: string }, null];
  DescribeAlias: [{ dbName?: string; alias: string }, { alias: string; collectionName: string; dbName: string }];
  ListAliases: [{ dbName?: string; collectionName?: string }, { aliases: string[] }];
  Insert: [InsertReq, InsertRes];
  Upsert: [InsertReq, InsertRes];
  Delete: [DeleteReq, { deleteCount: number; timestamp: bigint }];
  /** seals and writes every growing segment; with `wait` (default true) replies once they are Flushed */
  Flush: [{ dbName?: string; collectionNames: string[]; wait?: boolean; timeoutMs?: number }, FlushRes];
  GetFlushState: [{ dbName?: string; collectionName: string; flushTs?: bigint }, { flushed: boolean }];
  /** rows per Flushed segment, for `vbus collection describe` and tests */
  GetCollectionStatistics: [CollectionRef, { rowCount: number; flushedRows: number; segments: number }];
};

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
] as const satisfies readonly (keyof ProxyApi)[];
