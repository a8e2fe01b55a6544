/**
 * querycoord (QueryCoord v2): what is loaded where. Jobs (load/release) change Meta; checkers compare
 * the target (what should be loaded: datacoord's recovery info) with the distribution (what querynodes
 * report on the feed) and emit tasks; the TargetObserver promotes next → current (the handoff).
 */
import type { SegmentInfo } from "../meta.ts";

export const QUERYCOORD = "querycoord";

export type LoadState = "NotExist" | "NotLoad" | "Loading" | "Loaded";

export interface ShardLeader {
  vchannel: string;
  replicaId: bigint;
  nodeId: string;
  /** the delegator's address */
  address: string;
  serviceable: boolean;
}

export interface ReplicaInfo {
  replicaId: bigint;
  collectionId: bigint;
  nodes: string[];
  shardLeaders: ShardLeader[];
}

/** What a load waits on, said so that a person can act on it. */
export interface LoadBlocker {
  /** `index`: a segment's index does not load (searches on it stay exact); it does not hold a load back */
  kind: "channel" | "segment" | "index" | "node" | "replica" | "target";
  /** the vchannel, segment id (also of an index), node id, replica id, or collection id (its target) it concerns */
  subject: string;
  reason: string;
}

export type QuerycoordApi = {
  /** starts the load job; returns at once (watch GetLoadingProgress), or when loaded with `wait` */
  LoadCollection: [{ collectionId: bigint; replicaNumber?: number; wait?: boolean; timeoutMs?: number }, null];
  ReleaseCollection: [{ collectionId: bigint }, null];
  LoadPartitions: [{ collectionId: bigint; partitionIds: bigint[]; replicaNumber?: number; wait?: boolean }, null];
  ReleasePartitions: [{ collectionId: bigint; partitionIds: bigint[] }, null];
  GetLoadState: [{ collectionId: bigint; partitionIds?: bigint[] }, { state: LoadState; progress: number }];
  GetLoadingProgress: [
    { collectionId: bigint },
    { progress: number; state: LoadState; loadedSegments: number; targetSegments: number; blockers: LoadBlocker[] },
  ];
  ShowCollections: [
    Record<string, never>,
    { collections: { collectionId: bigint; inMemoryPercentage: number; replicaNumber: number; loadedPartitions: bigint[] }[] },
  ];
  GetShardLeaders: [{ collectionId: bigint }, { shards: { vchannel: string; leaders: ShardLeader[] }[] }];
  GetReplicas: [{ collectionId: bigint }, { replicas: ReplicaInfo[] }];
  GetSegmentInfo: [{ collectionId: bigint }, { segments: (SegmentInfo & { nodeIds: string[] })[] }];
  /** everything `vbus status` prints */
  GetStatus: [
    Record<string, never>,
    {
      nodes: QueryNodeStatus[];
      /** balance moves in flight: a segment's copy going from one node to another in a replica */
      moves?: { collectionId: bigint; replicaId: bigint; segmentId: bigint; rows: number; from: string; to: string; startedAt: number }[];
      collections: { collectionId: bigint; state: LoadState; progress: number; replicas: ReplicaInfo[]; blockers: LoadBlocker[] }[];
    },
  ];
};

export interface QueryNodeStatus {
  nodeId: string;
  alive: boolean;
  /** up; stopping (draining before it exits); down (no heartbeat, or its process is gone) */
  state: "up" | "stopping" | "down";
  /** the balancer's score: rows plus an overhead per delegator, over the node's share of memory capacity */
  score?: number;
  lastHeartbeatMs: number;
  memoryBytes: number;
  memoryLimitBytes: number;
  rows: number;
  segments: number;
  delegators: number;
}
