/**
 * querycoord's records: what is loaded (CollectionLoad), by which querynodes (Replica), and what should
 * be loaded (CollectionTarget: a current one that delegators serve and a next one being loaded).
 */
import type { SegmentLoadInfo, VChannelInfo } from "../../../protocol/meta.ts";
import type { CollectionSchema } from "../../../protocol/schema.ts";

/** LoadCollection loads every partition (and those created later); LoadPartitions the ones it names. */
export type LoadType = "Collection" | "Partition";
export type LoadStatus = "Loading" | "Loaded";

export interface CollectionLoad {
  collectionId: bigint;
  dbName: string;
  name: string;
  loadType: LoadType;
  /** the partitions to load */
  partitionIds: bigint[];
  /** the partitions that reached Loaded (a partition stays Loaded once it was) */
  loadedPartitionIds: bigint[];
  replicaNumber: number;
  status: LoadStatus;
  schema: CollectionSchema;
  vchannels: VChannelInfo[];
  /** ms since the epoch: when this load (or the LoadPartitions that widened it) started */
  loadStartedAt: number;
  loadedAt?: number;
  /** the highest progress reported for this load: GetLoadingProgress never goes back */
  progress: number;
}

/** A replica: a set of querynodes that together hold one copy of the collection. */
export interface Replica {
  replicaId: bigint;
  collectionId: bigint;
  /** the resource group whose querynodes serve it; absent: the default group (records written before groups existed) */
  resourceGroup?: string;
  /**
   * querynodes of the replica; a querynode is in at most one replica of a collection. A node that left
   * the replica's group stays here while it still holds some of the collection (Milvus's read-only
   * nodes): it serves until its segments and channels are elsewhere, and takes nothing new.
   */
  nodes: string[];
}

export interface ChannelTarget {
  vchannel: string;
  pchannel: number;
  /** a delegator watching the channel consumes after this position (the channel checkpoint) */
  seekPosition: bigint;
  checkpointTs: bigint;
}

/** What should be loaded: sealed segments and channels, from one datacoord recovery info. */
export interface CollectionTarget {
  collectionId: bigint;
  /** what delegators are told in SyncDistribution; grows with every new target */
  version: number;
  partitionIds: bigint[];
  channels: Map<string, ChannelTarget>;
  /** L1 flushed segments, by id */
  segments: Map<bigint, SegmentLoadInfo>;
  /** L0 delete segments, by id */
  l0Segments: Map<bigint, SegmentLoadInfo>;
}

/**
 * The target as stored in KV. Its segments are in pages of their own (`pages`): segment `s` is on page
 * `s mod pages.count`, stored under the key made with `pages.versions[i]`, the version of the target that
 * last changed that page. Written before the head, so the head is what commits a new target. (A head
 * with `segmentIds` and no `pages` is of the older layout: one key per segment.)
 */
export interface PersistedTarget {
  collectionId: bigint;
  version: number;
  partitionIds: bigint[];
  channels: ChannelTarget[];
  pages?: { count: number; versions: number[] };
  segmentIds?: bigint[];
  l0SegmentIds?: bigint[];
}

/** One page of a stored target's segments. */
export interface PersistedTargetPage {
  segments: SegmentLoadInfo[];
  l0Segments: SegmentLoadInfo[];
}
