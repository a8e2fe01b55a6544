/**
 * querycoord (QueryCoord v2): what is loaded where. Jobs (load/release) change Meta; checkers compare
 * the target (what should be loaded: datacoord's recovery info) with the distribution (what querynodes
 * report on the feed) and emit tasks; the TargetObserver promotes next → current (the handoff).
 */
import type { SegmentLoadInfo } from "../meta.ts";

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
  /** the resource group whose querynodes serve it (`__default_resource_group` unless loaded into another) */
  resourceGroup?: string;
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

/** Milvus's rgpb.ResourceGroupConfig (node counts; node filters are not kept) */
export interface ResourceGroupConfig {
  requests: { nodeNum: number };
  limits: { nodeNum: number };
  /** groups to take nodes from first when this one is below its request */
  transferFrom?: { resourceGroup: string }[];
  /** groups to give nodes to first when this one is over its limit */
  transferTo?: { resourceGroup: string }[];
}

/** What DescribeResourceGroup answers (Milvus's ResourceGroup message). */
export interface ResourceGroupInfo {
  name: string;
  config: ResourceGroupConfig;
  /** requests.node_num */
  capacity: number;
  /** the group's querynodes (alive and not stopping: a node that goes down or drains leaves its group) */
  nodes: string[];
  numAvailableNode: number;
  /** replicas in the group, by collection */
  numLoadedReplica: { collectionId: bigint; collectionName: string; count: number }[];
  /** the group's nodes serving replicas of other groups (while they give their data away), by collection */
  numOutgoingNode: { collectionId: bigint; collectionName: string; count: number }[];
  /** nodes of other groups serving the group's replicas, by collection */
  numIncomingNode: { collectionId: bigint; collectionName: string; count: number }[];
}

/** A node querycoord moved between resource groups (or placed in one), and why. */
export interface ResourceGroupEvent {
  at: number;
  nodeId: string;
  from?: string;
  to: string;
  reason: string;
}

/** One segment of a manual LoadBalance and how it went. */
export interface ManualMove {
  collectionId: bigint;
  collectionName: string;
  replicaId: bigint;
  segmentId: bigint;
  from: string;
  to: string;
  rows: number;
  /** with `wait`: moved, or given up (with the reason); without: planned */
  state: "planned" | "moved" | "failed";
  reason?: string;
}

export type QuerycoordApi = {
  /**
   * starts the load job; returns at once (watch GetLoadingProgress), or when loaded with `wait`.
   * `resourceGroups`: one name puts every replica in that group; as many names as replicas put replica i
   * in group i (a name may repeat); none: the default group.
   */
  LoadCollection: [{ collectionId: bigint; replicaNumber?: number; resourceGroups?: string[]; wait?: boolean; timeoutMs?: number }, null];
  ReleaseCollection: [{ collectionId: bigint }, null];
  LoadPartitions: [{ collectionId: bigint; partitionIds: bigint[]; replicaNumber?: number; resourceGroups?: string[]; wait?: boolean }, null];
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
  GetSegmentInfo: [{ collectionId: bigint }, { segments: (SegmentLoadInfo & { nodeIds: string[] })[] }];
  CreateResourceGroup: [{ name: string; config?: ResourceGroupConfig }, null];
  /** the group must have limits 0 and no replica; dropping a group that does not exist is a no-op */
  DropResourceGroup: [{ name: string }, null];
  UpdateResourceGroups: [{ groups: { name: string; config: ResourceGroupConfig }[] }, null];
  DescribeResourceGroup: [{ name: string }, { group: ResourceGroupInfo }];
  ListResourceGroups: [Record<string, never>, { names: string[] }];
  /** Milvus's TransferNode: `numNode` fewer requested by the source, more by the target; answers with the nodes that moved */
  TransferNode: [{ source: string; target: string; numNode: number }, { transfers: ResourceGroupEvent[] }];
  /** moves `numReplica` of the collection's replicas from one group to another; answers their ids */
  TransferReplica: [{ source: string; target: string; collectionId: bigint; numReplica: number }, { replicaIds: bigint[] }];
  /**
   * Milvus's LoadBalance: moves sealed segments off `sourceNode` to other nodes of its replica (`dstNodes`,
   * default: every other node of the replica that can take work; `segmentIds`, default: every sealed
   * segment it holds). Without `collectionId`, every loaded collection with a replica on the node. With
   * `wait`, answers once the moves are done or given up.
   */
  LoadBalance: [
    { collectionId?: bigint; sourceNode: string; dstNodes?: string[]; segmentIds?: bigint[]; wait?: boolean; timeoutMs?: number },
    { moves: ManualMove[] },
  ];
  /** everything `vbus status` prints */
  GetStatus: [
    Record<string, never>,
    {
      nodes: QueryNodeStatus[];
      /** resource groups and their nodes */
      resourceGroups?: { name: string; requests: number; limits: number; nodes: string[] }[];
      /** the latest nodes querycoord moved between groups, newest last */
      resourceGroupEvents?: ResourceGroupEvent[];
      /** balance moves in flight: a segment's copy going from one node to another in a replica */
      moves?: { collectionId: bigint; replicaId: bigint; segmentId: bigint; rows: number; from: string; to: string; startedAt: number }[];
      /** channel balance moves in flight: a shard's delegator going from one node to another in a replica */
      channelMoves?: { collectionId: bigint; replicaId: bigint; vchannel: string; from: string; to: string; startedAt: number }[];
      collections: { collectionId: bigint; state: LoadState; progress: number; replicas: ReplicaInfo[]; blockers: LoadBlocker[] }[];
      /**
       * how querycoord reads the distribution feed: how far behind its end it takes the content, whether
       * the pulse (the heads alone, on a thread of its own, what silence is judged from) runs, and its lag
       */
      feed?: { lagMs: number; pulse: boolean; pulseLagMs: number };
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
