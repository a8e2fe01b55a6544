/**
 * SegmentChecker (Milvus's checkers/segment_checker.go): every sealed segment of the collection's
 * targets (current ∪ next: the next one is loaded before it becomes current) is loaded once per
 * replica, on one of the replica's alive querynodes, once the replica has a delegator for its channel.
 * Extra copies and segments of neither target are released, but never while a delegator's view still
 * points at them: the LeaderChecker first moves the view, then the copy goes. A load carries the
 * Finished builds of the segment's live indexes known so far (the IndexChecker sees to the rest), and
 * its memory counts them.
 */
import type { SegmentInfo } from "../../../protocol/meta.ts";
import { addLoad, nodeLoads, pickSegmentNode } from "../balance/node_load.ts";
import { moveKey } from "../balance/score_balancer.ts";
import type { SegmentCopy } from "../dist/dist_snapshot.ts";
import { Priority, segmentKey, straySegmentKey, type TaskSpec } from "../task/task.ts";
import {
  addBlocker,
  aliveNodesOf,
  byBigint,
  placementNodesOf,
  emptyResult,
  replicasByCollection,
  type CheckInput,
  type CheckResult,
} from "./types.ts";

export function checkSegments(input: CheckInput): CheckResult {
  const out = emptyResult();
  const reps = replicasByCollection(input.replicas);
  for (const coll of input.collections) {
    const pair = input.targets.get(coll.collectionId);
    if (!pair?.current && !pair?.next) continue;
    const wanted = new Map<bigint, SegmentInfo>([...(pair.current?.segments ?? []), ...(pair.next?.segments ?? [])]);
    const wantedIds = [...wanted.keys()].sort(byBigint);
    const replicas = reps.get(coll.collectionId) ?? [];
    const inDist = input.dist.segmentsOf(coll.collectionId);
    const builds = input.indexes?.get(coll.collectionId)?.builds;
    const dels = input.dist.delegatorsOf(coll.collectionId);
    const keys = new Set<string>();
    const emit = (t: TaskSpec) => {
      if (keys.has(t.key)) return;
      keys.add(t.key);
      out.tasks.push(t);
    };

    // What the collection's delegators point at: `segment@node` from what they acknowledged, segment
    // ids from what they report. A delegator we have not synced since we started makes us careful.
    const pointedAt = new Set<string>();
    const reportedIds = new Map<bigint, Set<bigint>>();
    const unknownViews = new Set<bigint>();
    for (const d of dels) {
      const v = input.synced.get(d.address);
      if (v) for (const e of v.sealed) pointedAt.add(`${e.segmentId}@${e.nodeId}`);
      else unknownViews.add(d.replicaId);
      let ids = reportedIds.get(d.replicaId);
      if (!ids) reportedIds.set(d.replicaId, (ids = new Set()));
      for (const id of d.sealedSegmentIds) ids.add(id);
    }

    const release = (key: string, replicaId: bigint, c: SegmentCopy) =>
      emit({
        key,
        priority: Priority.Normal,
        action: { kind: "ReleaseSegment", nodeId: c.nodeId, collectionId: coll.collectionId, replicaId, segmentId: c.segmentId },
      });

    const memberOf = new Map<string, bigint>();
    for (const r of replicas) for (const n of r.nodes) memberOf.set(n, r.replicaId);

    for (const r of replicas) {
      const alive = aliveNodesOf(r, input.dist);
      if (alive.length === 0) continue; // the ChannelChecker reports the replica
      const members = new Set(r.nodes);
      const placement = placementNodesOf(r, input.dist);
      const loads = nodeLoads(placement, input.dist, input.pending);
      const stopping = (c: SegmentCopy) => input.dist.isStopping(c.nodeId);
      const leaderChannels = new Set(dels.filter((d) => d.replicaId === r.replicaId && members.has(d.nodeId)).map((d) => d.vchannel));

      for (const segId of wantedIds) {
        const info = wanted.get(segId)!;
        const key = segmentKey(r.replicaId, segId);
        const copies = (inDist.get(segId) ?? []).filter((c) => members.has(c.nodeId));
        // a balance move: the copy on `from` gives way to one on `to`, as a stopping node's does
        const move = input.moves?.get(moveKey(r.replicaId, segId));
        const leaving = (c: SegmentCopy) => stopping(c) || (move !== undefined && c.nodeId === move.from && placement.includes(move.to));
        // a leaving copy (a stopping node's, a moved one's) is served until another copy is loaded, then released
        if (copies.length === 0 || (placement.length > 0 && copies.every(leaving))) {
          if (!leaderChannels.has(info.vchannel)) continue; // its channel's delegator comes first
          const failure = input.failures.get(key);
          if (failure) addBlocker(out, coll.collectionId, { kind: "segment", subject: `${segId}`, reason: failure.reason });
          for (const n of alive) {
            const why = input.dist.loadFailure(n, segId);
            if (why) addBlocker(out, coll.collectionId, { kind: "segment", subject: `${segId}`, reason: `node ${n} refused: ${why}` });
          }
          const indexes = [...(builds?.get(segId) ?? [])];
          const memoryBytes = info.memorySize + indexes.reduce((n, b) => n + b.memorySize, 0);
          const node =
            (copies.length > 0 && move && !failure ? loads.find((l) => l.nodeId === move.to) : undefined) ??
            pickSegmentNode(loads, { rows: info.numRows, memoryBytes }, failure ? new Set([failure.nodeId]) : undefined)!;
          addLoad(node, { rows: info.numRows, memoryBytes, segments: 1 });
          emit({
            key,
            priority: Priority.Normal,
            action: {
              kind: "LoadSegment",
              nodeId: node.nodeId,
              collectionId: coll.collectionId,
              replicaId: r.replicaId,
              segmentId: segId,
              vchannel: info.vchannel,
              rows: info.numRows,
              memoryBytes,
              ...(indexes.length > 0 ? { indexes } : {}),
            },
          });
        } else if (copies.length > 1 && !unknownViews.has(r.replicaId)) {
          // keep the copy the delegator points at, release one other per round; while no copy is
          // pointed at yet (a segment of the next target), keep them all
          // (copies on stopping nodes first; while a view still points at a stopping node's copy, only
          // stopping copies go: the LeaderChecker moves the view to the new copy first)
          const pointsAtLeaving = copies.some((c) => leaving(c) && pointedAt.has(`${segId}@${c.nodeId}`));
          const extra = copies
            .filter((c) => !pointedAt.has(`${segId}@${c.nodeId}`) && (!pointsAtLeaving || leaving(c)))
            .sort((a, b) => Number(leaving(b)) - Number(leaving(a)) || (a.nodeId < b.nodeId ? -1 : 1));
          if (extra.length < copies.length && extra[0]) release(key, r.replicaId, extra[0]);
        }
      }

      // segments of neither target on the replica's nodes
      for (const [segId, copies] of inDist) {
        if (wanted.has(segId)) continue;
        for (const c of copies) {
          if (!members.has(c.nodeId)) continue;
          if (pointedAt.has(`${segId}@${c.nodeId}`) || reportedIds.get(r.replicaId)?.has(segId) || unknownViews.has(r.replicaId)) continue;
          release(segmentKey(r.replicaId, segId), r.replicaId, c);
        }
      }
    }

    // copies on alive nodes outside every replica of the collection (a node that left its replica)
    for (const [segId, copies] of inDist) {
      for (const c of copies) {
        if (memberOf.has(c.nodeId)) continue;
        if (pointedAt.has(`${segId}@${c.nodeId}`) || unknownViews.size > 0) continue;
        release(straySegmentKey(c.nodeId, segId), -1n, c);
      }
    }
  }
  return out;
}
