/**
 * LeaderChecker (Milvus's checkers/leader_checker.go): each delegator's view — the sealed segments of
 * the CURRENT target on its vchannel, and where in its replica each one is loaded — matches the
 * distribution, at the current target's version. A view is changed with SyncDistribution.
 *
 * Which copy a view points at: the one it points at already if still there, else a copy on the
 * delegator's own node, else the first by node id; a copy on a stopping node only when there is no other. A segment of the target with no copy left in the
 * replica (its node died) stays where the view had it until a new copy is loaded: reads then fail and
 * are retried on another replica, instead of silently missing its rows.
 */
import type { SealedEntry } from "../../../protocol/messages/querynode.ts";
import { moveKey } from "../balance/score_balancer.ts";
import { reportShows } from "../task/effects.ts";
import { leaderKey, Priority } from "../task/task.ts";
import { byBigint, emptyResult, partitionKey, replicasByCollection, type CheckInput, type CheckResult, type SyncedView } from "./types.ts";

function sameEntries(a: readonly SealedEntry[], b: readonly SealedEntry[]): boolean {
  if (a.length !== b.length) return false;
  const m = new Map(a.map((e) => [e.segmentId, e.nodeId]));
  return b.every((e) => m.get(e.segmentId) === e.nodeId);
}

export function upToDate(
  reported: { targetVersion: number; sealedSegmentIds: readonly bigint[] },
  synced: SyncedView | undefined,
  want: { targetVersion: number; sealed: readonly SealedEntry[] },
): boolean {
  return (
    synced !== undefined &&
    synced.targetVersion === want.targetVersion &&
    sameEntries(synced.sealed, want.sealed) &&
    reportShows(reported, { targetVersion: want.targetVersion, segmentIds: want.sealed.map((e) => e.segmentId) })
  );
}

export function checkLeaders(input: CheckInput): CheckResult {
  const out = emptyResult();
  const reps = replicasByCollection(input.replicas);
  for (const coll of input.collections) {
    const cur = input.targets.get(coll.collectionId)?.current;
    if (!cur) continue;
    const segs = [...cur.segments.values()].sort((a, b) => byBigint(a.segmentId, b.segmentId));
    for (const r of reps.get(coll.collectionId) ?? []) {
      const members = new Set(r.nodes);
      for (const d of input.dist.delegatorsOf(coll.collectionId)) {
        if (d.replicaId !== r.replicaId || !members.has(d.nodeId) || !cur.channels.has(d.vchannel)) continue;
        const watchedWith = input.watched?.get(d.address);
        if (watchedWith !== undefined && watchedWith !== partitionKey(coll)) continue; // about to be watched again
        const prev = input.synced.get(d.address);
        const prevNode = new Map((prev?.sealed ?? []).map((e) => [e.segmentId, e]));
        const sealed: SealedEntry[] = [];
        // A view missing a current-target segment would hide its rows (they are neither sealed nor, past
        // the seek position, growing): such a delegator is not synced until every segment has a copy.
        let incomplete = false;
        for (const s of segs) {
          if (s.vchannel !== d.vchannel) continue;
          const nodes = input.dist
            .copies(coll.collectionId, s.segmentId)
            .map((c) => c.nodeId)
            .filter((n) => members.has(n))
            .sort();
          const was = prevNode.get(s.segmentId);
          // copies on stopping nodes, or moved away by balance, only while no other copy exists
          const move = input.moves?.get(moveKey(r.replicaId, s.segmentId));
          const settled = nodes.filter((n) => !input.dist.isStopping(n) && n !== move?.from);
          const pick = (from: string[]) => (was && from.includes(was.nodeId) ? was.nodeId : from.includes(d.nodeId) ? d.nodeId : from[0]);
          const node = pick(settled) ?? pick(nodes);
          if (node === undefined) {
            if (was) sealed.push(was);
            else incomplete = true;
            continue;
          }
          sealed.push({
            segmentId: s.segmentId,
            partitionId: s.partitionId,
            nodeId: node,
            startPosition: s.startPosition,
            endPosition: s.endPosition ?? s.startPosition,
            numRows: s.numRows,
          });
        }
        if (incomplete) continue;
        const want = { targetVersion: cur.version, sealed };
        if (upToDate(d, prev, want)) continue;
        out.tasks.push({
          key: leaderKey(r.replicaId, d.vchannel, d.nodeId),
          priority: Priority.High,
          action: {
            kind: "SyncLeader",
            nodeId: d.nodeId,
            collectionId: coll.collectionId,
            replicaId: r.replicaId,
            vchannel: d.vchannel,
            address: d.address,
            targetVersion: cur.version,
            sealed,
          },
        });
      }
    }
  }
  return out;
}
