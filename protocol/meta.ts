/**
 * The records coordinators keep in KV and hand out: databases, collections, partitions, segments.
 * Ids and timestamps are bigint; positions are JetStream stream sequences (bigint).
 */
import type { CollectionSchema, ConsistencyLevel } from "./schema.ts";

export const DEFAULT_DB = "default";
export const DEFAULT_PARTITION = "_default";

export interface DatabaseInfo {
  name: string;
  dbId: bigint;
  createdTs: bigint;
}

export interface PartitionInfo {
  partitionId: bigint;
  name: string;
  createdTs: bigint;
}

/** A vchannel of a collection and the physical DML stream it lives on. */
export interface VChannelInfo {
  /** `<collectionId>v<shard>` */
  name: string;
  shard: number;
  /** index of the JetStream stream `VB_DML_<pchannel>` */
  pchannel: number;
}

export type CollectionState = "Created" | "Dropping";

export interface CollectionInfo {
  collectionId: bigint;
  dbName: string;
  name: string;
  schema: CollectionSchema;
  shardsNum: number;
  vchannels: VChannelInfo[];
  partitions: PartitionInfo[];
  aliases: string[];
  consistencyLevel: ConsistencyLevel;
  properties: Record<string, string>;
  createdTs: bigint;
  state: CollectionState;
}

export type SegmentState = "Growing" | "Sealed" | "Flushing" | "Flushed" | "Dropped";
/** L1: rows of one partition. L0: the deletes of a vchannel over a position range (every partition). */
export type SegmentLevel = "L0" | "L1";

export interface BinlogRef {
  fieldId: number;
  /** object key */
  key: string;
  rows: number;
  bytes: number;
}

export interface SegmentInfo {
  segmentId: bigint;
  collectionId: bigint;
  /** -1n for an L0 segment */
  partitionId: bigint;
  vchannel: string;
  level: SegmentLevel;
  state: SegmentState;
  numRows: number;
  /** position of the first message whose rows it holds */
  startPosition: bigint;
  /** position of the last message it covers (known once sealed) */
  endPosition?: bigint;
  /** time of the last message it covers */
  endTs?: bigint;
  binlogs: BinlogRef[];
  /** delete log objects (L0 segments) */
  deltalogs: BinlogRef[];
  /** stats objects: pk bloom filter and min/max */
  statslogs: string[];
  memorySize: number;
  createdAt: number;
  updatedAt: number;
}

/**
 * A segment as querycoord keeps it in its targets and sends it to be loaded: what loads, views and
 * balance need of it, without datacoord's times and end timestamp (for a million segments, about 100 MB
 * of boxed numbers and bigints nobody past datacoord reads).
 */
export type SegmentLoadInfo = Omit<SegmentInfo, "createdAt" | "updatedAt" | "endTs">;

export interface ChannelCheckpoint {
  vchannel: string;
  /** every message at or before this position is in a Flushed segment (or was a delete written to L0) */
  position: bigint;
  ts: bigint;
}
