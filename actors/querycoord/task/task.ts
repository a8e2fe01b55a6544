/**
 * Tasks (Milvus's querycoordv2/task): one action on one querynode or delegator, with a key that
 * deduplicates it per (replica, segment | channel) and a priority (channel > segment > balance).
 */
import type { IndexLoadInfo } from "../../../protocol/messages/indexes.ts";
import type { SealedEntry } from "../../../protocol/messages/querynode.ts";

/** channel > segment > index and balance */
export const Priority = { High: 0, Normal: 1, Low: 2 } as const;
export type Priority = (typeof Priority)[keyof typeof Priority];

export type TaskAction =
  | { kind: "WatchChannel"; nodeId: string; collectionId: bigint; replicaId: bigint; vchannel: string }
  | { kind: "UnsubChannel"; nodeId: string; collectionId: bigint; replicaId: bigint; vchannel: string }
  | {
      kind: "LoadSegment";
      nodeId: string;
      collectionId: bigint;
      replicaId: bigint;
      segmentId: bigint;
      vchannel: string;
      rows: number;
      /** the segment's and its indexes' */
      memoryBytes: number;
      /** Finished builds of the segment's live indexes, loaded with it */
      indexes?: IndexLoadInfo[];
    }
  | { kind: "ReleaseSegment"; nodeId: string; collectionId: bigint; replicaId: bigint; segmentId: bigint }
  | { kind: "LoadIndex"; nodeId: string; collectionId: bigint; replicaId: bigint; segmentId: bigint; indexId: bigint; info: IndexLoadInfo }
  | { kind: "ReleaseIndex"; nodeId: string; collectionId: bigint; replicaId: bigint; segmentId: bigint; indexId: bigint }
  | {
      kind: "SyncLeader";
      /** the delegator's querynode */
      nodeId: string;
      collectionId: bigint;
      replicaId: bigint;
      vchannel: string;
      /** the delegator's address */
      address: string;
      targetVersion: number;
      sealed: SealedEntry[];
    }
  | { kind: "ReleaseCollection"; nodeId: string; collectionId: bigint };

export type TaskKind = TaskAction["kind"];

/** What a checker asks for. */
export interface TaskSpec {
  key: string;
  priority: Priority;
  action: TaskAction;
}

export type TaskState = "pending" | "running" | "confirming";

export interface Task extends TaskSpec {
  id: string;
  state: TaskState;
  attempt: number;
  startedAt: number;
  repliedAt: number;
  /** the revision of its node's distribution at which its change was last looked for and not seen */
  lookedAt?: number;
}

// ---- keys: one task at a time per key ----
export const channelKey = (replicaId: bigint, vchannel: string): string => `r${replicaId}/ch/${vchannel}`;
export const segmentKey = (replicaId: bigint, segmentId: bigint): string => `r${replicaId}/seg/${segmentId}`;
/** The replica and segment of a `segmentKey`; undefined for a key of another kind. */
export function segmentOfKey(key: string): { replicaId: bigint; segmentId: bigint } | undefined {
  const m = /^r(-?\d+)\/seg\/(\d+)$/.exec(key);
  return m ? { replicaId: BigInt(m[1]!), segmentId: BigInt(m[2]!) } : undefined;
}
export const leaderKey = (replicaId: bigint, vchannel: string, nodeId: string): string => `r${replicaId}/leader/${vchannel}@${nodeId}`;
/** a segment of a loaded collection on a node outside its replicas */
export const straySegmentKey = (nodeId: string, segmentId: bigint): string => `n${nodeId}/seg/${segmentId}`;
/** one index of one segment copy (a node holds at most one copy of a segment) */
export const indexKey = (nodeId: string, segmentId: bigint, indexId: bigint): string => `n${nodeId}/idx/${segmentId}/${indexId}`;
/** a collection that is not loaded, still on a node */
export const strayCollectionKey = (nodeId: string, collectionId: bigint): string => `n${nodeId}/coll/${collectionId}`;

/** A short description for logs and progress reports. */
export function describeAction(a: TaskAction): string {
  switch (a.kind) {
    case "WatchChannel":
      return `watch channel ${a.vchannel} on ${a.nodeId} (replica ${a.replicaId})`;
    case "UnsubChannel":
      return `unwatch channel ${a.vchannel} on ${a.nodeId} (replica ${a.replicaId})`;
    case "LoadSegment":
      return `load segment ${a.segmentId} on ${a.nodeId} (replica ${a.replicaId})`;
    case "ReleaseSegment":
      return `release segment ${a.segmentId} on ${a.nodeId}`;
    case "LoadIndex":
      return `load index ${a.indexId} (${a.info.indexType}) of segment ${a.segmentId} on ${a.nodeId}`;
    case "ReleaseIndex":
      return `release index ${a.indexId} of segment ${a.segmentId} on ${a.nodeId}`;
    case "SyncLeader":
      return `sync delegator ${a.vchannel} on ${a.nodeId} (replica ${a.replicaId}) to target ${a.targetVersion} with ${a.sealed.length} sealed segments`;
    case "ReleaseCollection":
      return `release collection ${a.collectionId} on ${a.nodeId}`;
  }
}
