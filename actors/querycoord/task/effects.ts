/**
 * When a task's change shows in the distribution: a task is finished only when its reply came back
 * AND the querynode's distribution says the change happened (Milvus's task "step" checks). Pure.
 */
import type { DistSnapshot } from "../dist/dist_snapshot.ts";
import type { TaskAction } from "./task.ts";

export function sameIds(a: readonly bigint[], b: readonly bigint[]): boolean {
  if (a.length !== b.length) return false;
  const s = new Set(a);
  return b.every((x) => s.has(x)) && s.size === new Set(b).size;
}

/**
 * Whether a delegator's report shows a view of these segments at this version. A querynode whose
 * distribution is too large for one message leaves the delegators' segment lists out (an empty list):
 * then the version alone tells.
 */
export function reportShows(
  reported: { targetVersion: number; sealedSegmentIds: readonly bigint[] },
  want: { targetVersion: number; segmentIds: readonly bigint[] },
): boolean {
  if (reported.targetVersion !== want.targetVersion) return false;
  if (reported.sealedSegmentIds.length === 0 && want.segmentIds.length > 0) return true;
  return sameIds(reported.sealedSegmentIds, want.segmentIds);
}

export function effectVisible(a: TaskAction, dist: DistSnapshot): boolean {
  switch (a.kind) {
    case "WatchChannel":
      return dist.delegatorOn(a.nodeId, a.collectionId, a.vchannel, a.replicaId) !== undefined;
    case "UnsubChannel":
      return !dist.isAlive(a.nodeId) || dist.delegatorOn(a.nodeId, a.collectionId, a.vchannel, a.replicaId) === undefined;
    case "LoadSegment":
      return dist.hasSegment(a.nodeId, a.collectionId, a.segmentId);
    case "ReleaseSegment":
      return !dist.isAlive(a.nodeId) || !dist.hasSegment(a.nodeId, a.collectionId, a.segmentId);
    case "LoadIndex": {
      // done when the copy lists the index, or moot when the copy is gone
      const c = dist.copies(a.collectionId, a.segmentId).find((x) => x.nodeId === a.nodeId);
      return c === undefined || c.indexIds.includes(a.indexId);
    }
    case "ReleaseIndex": {
      const c = dist.copies(a.collectionId, a.segmentId).find((x) => x.nodeId === a.nodeId);
      return !dist.isAlive(a.nodeId) || c === undefined || !c.indexIds.includes(a.indexId);
    }
    case "SyncLeader": {
      const d = dist.delegatorOn(a.nodeId, a.collectionId, a.vchannel, a.replicaId);
      return d !== undefined && reportShows(d, { targetVersion: a.targetVersion, segmentIds: a.sealed.map((e) => e.segmentId) });
    }
    case "ReleaseCollection":
      return !dist.isAlive(a.nodeId) || !dist.holdsCollection(a.nodeId, a.collectionId);
  }
}
