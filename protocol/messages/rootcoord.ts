/** rootcoord: databases, collections, partitions, aliases, TSO and ids (DESIGN §1). */
import type { CollectionInfo, DatabaseInfo, PartitionInfo } from "../meta.ts";
import type { CollectionSchema, ConsistencyLevel } from "../schema.ts";

export const ROOTCOORD = "rootcoord";

/** Names a collection: by name (or alias) in a database, or by id. */
export interface CollectionRef {
  dbName?: string;
  collectionName?: string;
  collectionId?: bigint;
}

export interface CreateCollectionReq {
  dbName?: string;
  schema: CollectionSchema;
  shardsNum?: number;
  consistencyLevel?: ConsistencyLevel;
  properties?: Record<string, string>;
}

export type RootcoordApi = {
  CreateDatabase: [{ dbName: string }, DatabaseInfo];
  DropDatabase: [{ dbName: string }, null];
  ListDatabases: [Record<string, never>, { databases: string[] }];
  CreateCollection: [CreateCollectionReq, CollectionInfo];
  DropCollection: [CollectionRef, null];
  /** resolves aliases; 100 when missing */
  DescribeCollection: [CollectionRef, CollectionInfo];
  HasCollection: [CollectionRef, { has: boolean }];
  ListCollections: [{ dbName?: string }, { collections: CollectionInfo[] }];
  RenameCollection: [{ dbName?: string; oldName: string; newName: string; newDbName?: string }, null];
  /** sets `properties` and removes `deleteKeys` from the collection's properties (Milvus's AlterCollection) */
  AlterCollection: [CollectionRef & { properties?: Record<string, string>; deleteKeys?: string[] }, null];
  CreatePartition: [CollectionRef & { partitionName: string }, PartitionInfo];
  DropPartition: [CollectionRef & { partitionName: string }, null];
  HasPartition: [CollectionRef & { partitionName: string }, { has: boolean }];
  ListPartitions: [CollectionRef, { partitions: PartitionInfo[] }];
  CreateAlias: [{ dbName?: string; alias: string; collectionName: string }, null];
  DropAlias: [{ dbName?: string; alias: string }, null];
  AlterAlias: [{ dbName?: string; alias: string; collectionName: string }, null];
  DescribeAlias: [{ dbName?: string; alias: string }, { alias: string; collectionName: string; dbName: string }];
  ListAliases: [{ dbName?: string; collectionName?: string }, { aliases: string[] }];
  /** `count` strictly increasing hybrid timestamps: the first is `ts`, the rest follow by +1 */
  AllocTimestamp: [{ count?: number }, { ts: bigint; count: number }];
  /** `count` unique ids: [start, start + count) */
  AllocId: [{ count: number }, { start: bigint; count: number }];
};

/** Published on the events stream (`vb.events.<kind>`) after the change is in KV. */
export type DdlEvent =
  | { kind: "collection.created"; collection: CollectionInfo }
  | { kind: "collection.dropped"; collectionId: bigint; dbName: string; name: string }
  | { kind: "collection.altered"; collection: CollectionInfo }
  | { kind: "partition.created"; collectionId: bigint; partition: PartitionInfo }
  | { kind: "partition.dropped"; collectionId: bigint; partitionId: bigint }
  | { kind: "database.dropped"; dbName: string };
