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
import { nodeLoads, SegmentPlacer } from "../balance/node_load.ts";
import type { SegmentMove } from "../balance/score_balancer.ts";
import type { TargetPair } from "../meta/target_manager.ts";
import type { DistSnapshot, SegmentCopy } from "../dist/dist_snapshot.ts";
import { Priority, segmentKey, straySegmentKey, type TaskSpec } from "../task/task.ts";
import {
  addBlocker,
  aliveNodesOf,
  byBigint,
  placementNodesOf,
  emptyResult,
  idOf,
  replicasByCollection,
  type CheckInput,
  type CheckResult,
} from "./types.ts";

/** (current, next) → their segments together and the ids sorted: targets are replaced, never changed, so this holds. */
const NO_TARGET = {};
const wantedCache = new WeakMap<object, WeakMap<object, { wanted: Map<bigint, SegmentInfo>; ids: bigint[] }>>();

function wantedOf(pair: TargetPair): { wanted: Map<bigint, SegmentInfo>; ids: bigint[] } {
  const a = pair.current ?? NO_TARGET;
  const b = pair.next ?? NO_TARGET;
  let inner = wantedCache.get(a);
  if (!inner) wantedCache.set(a, (inner = new WeakMap()));
  let w = inner.get(b);
  if (!w) {
    const wanted = new Map<bigint, SegmentInfo>([...(pair.current?.segments ?? []), ...(pair.next?.segments ?? [])]);
    w = { wanted, ids: [...wanted.keys()].sort(byBigint) };
    inner.set(b, w);
  }
  return w;
}

/**
 * What the last full look at a replica's segments found, per snapshot: the wanted segments that are not
 * simply settled (one copy, on a settled member, not moving). Looked at again only when the collection's
 * copies, the targets, the replica's nodes, its stopping nodes or its moves changed; until then a round
 * costs the segments that need something, not the million that do not.
 */
const attentionCache = new WeakMap<DistSnapshot, Map<string, { key: string; ids: bigint[]; missing: Uint8Array }>>();

const unwantedCache = new WeakMap<DistSnapshot, Map<bigint, { key: string; ids: bigint[] }>>();

export function checkSegments(input: CheckInput): CheckResult {
  const out = emptyResult();
  const reps = replicasByCollection(input.replicas);
  // new loads this round at most, over every collection (the scheduler runs a few per node at a time;
  // the rest are asked for in the next rounds)
  let budget = input.loadsPerNode === undefined ? Number.POSITIVE_INFINITY : Math.max(1, input.dist.nodes.size) * input.loadsPerNode;
  for (const coll of input.collections) {
    const pair = input.targets.get(coll.collectionId);
    if (!pair?.current && !pair?.next) continue;
    const { wanted, ids: wantedIds } = wantedOf(pair);
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
    // balance moves of the collection, per replica
    const movesOf = new Map<bigint, Map<bigint, SegmentMove>>();
    for (const m of input.moves?.values() ?? []) {
      if (m.collectionId !== coll.collectionId) continue;
      let ms = movesOf.get(m.replicaId);
      if (!ms) movesOf.set(m.replicaId, (ms = new Map()));
      ms.set(m.segmentId, m);
    }
    // copies of segments of neither target (looked for again when the copies or the targets changed)
    let memo = attentionCache.get(input.dist);
    if (!memo) attentionCache.set(input.dist, (memo = new Map()));
    const collKey = `${input.dist.collectionVersion(coll.collectionId)}|${idOf(pair.current)}|${idOf(pair.next)}`;
    let unwantedMemo = unwantedCache.get(input.dist)?.get(coll.collectionId);
    if (unwantedMemo?.key !== collKey) {
      const unwanted: bigint[] = [];
      if (inDist.size !== wanted.size || wantedIds.some((id) => !inDist.has(id))) {
        for (const id of inDist.keys()) if (!wanted.has(id)) unwanted.push(id);
      }
      unwantedMemo = { key: collKey, ids: unwanted };
      let m = unwantedCache.get(input.dist);
      if (!m) unwantedCache.set(input.dist, (m = new Map()));
      m.set(coll.collectionId, unwantedMemo);
    }
    const unwanted = unwantedMemo.ids.flatMap((id) => {
      const copies = inDist.get(id);
      return copies ? [[id, copies] as [bigint, SegmentCopy[]]] : [];
    });
    const loadFailures = input.dist.loadFailureCount > 0;

    for (const r of replicas) {
      const alive = aliveNodesOf(r, input.dist);
      if (alive.length === 0) continue; // the ChannelChecker reports the replica
      const members = new Set(r.nodes);
      const placement = placementNodesOf(r, input.dist);
      const stoppingMembers = new Set(r.nodes.filter((n) => input.dist.isStopping(n)));
      let placer: SegmentPlacer | undefined;
      const placerOf = () => (placer ??= new SegmentPlacer(nodeLoads(placement, input.dist, input.pending)));
      const stopping = (c: SegmentCopy) => stoppingMembers.has(c.nodeId);
      const leaderChannels = new Set(dels.filter((d) => d.replicaId === r.replicaId && members.has(d.nodeId)).map((d) => d.vchannel));
      const moves = movesOf.get(r.replicaId);
      const memoKey = [
        input.dist.collectionVersion(coll.collectionId),
        idOf(pair.current),
        idOf(pair.next),
        r.nodes.join(","),
        [...stoppingMembers].join(","),
        [...(moves?.keys() ?? [])].join(","),
      ].join("|");
      let attention = memo.get(`${coll.collectionId}/${r.replicaId}`);
      if (attention?.key !== memoKey) {
        const ids: bigint[] = [];
        const missing: number[] = [];
        for (const segId of wantedIds) {
          const raw = inDist.get(segId);
          // the common case: one copy in the replica, on a settled member, not moving
          let mine = 0;
          let settled = true;
          for (const c of raw ?? []) {
            if (!members.has(c.nodeId)) continue;
            mine++;
            if (stoppingMembers.has(c.nodeId)) settled = false;
          }
          if (mine === 1 && settled && !moves?.has(segId)) continue;
          if (mine === 0) missing.push(ids.length);
          ids.push(segId);
        }
        const flags = new Uint8Array(ids.length);
        for (const i of missing) flags[i] = 1;
        attention = { key: memoKey, ids, missing: flags };
        memo.set(`${coll.collectionId}/${r.replicaId}`, attention);
      }

      // with no failure to report, a segment with no copy waits for a later round once the budget is spent
      const quiet = input.failures.size === 0 && !loadFailures;
      for (let i = 0; i < attention.ids.length; i++) {
        if (budget <= 0 && quiet && attention.missing[i] === 1) continue;
        const segId = attention.ids[i]!;
        const raw = inDist.get(segId);
        const move = moves?.get(segId);
        const info = wanted.get(segId)!;
        const copies = (raw ?? []).filter((c) => members.has(c.nodeId));
        // a balance move: the copy on `from` gives way to one on `to`, as a stopping node's does
        const leaving = (c: SegmentCopy) => stopping(c) || (move !== undefined && c.nodeId === move.from && placement.includes(move.to));
        // a leaving copy (a stopping node's, a moved one's) is served until another copy is loaded, then released
        if (copies.length === 0 || (placement.length > 0 && copies.every(leaving))) {
          if (!leaderChannels.has(info.vchannel)) continue; // its channel's delegator comes first
          const key = segmentKey(r.replicaId, segId);
          const failure = input.failures.get(key);
          if (failure) addBlocker(out, coll.collectionId, { kind: "segment", subject: `${segId}`, reason: failure.reason });
          if (loadFailures) {
            for (const n of alive) {
              const why = input.dist.loadFailure(n, segId);
              if (why) addBlocker(out, coll.collectionId, { kind: "segment", subject: `${segId}`, reason: `node ${n} refused: ${why}` });
            }
          }
          if (budget <= 0) continue;
          budget--;
          const indexes = [...(builds?.get(segId) ?? [])];
          const memoryBytes = info.memorySize + indexes.reduce((n, b) => n + b.memorySize, 0);
          const p = placerOf();
          const to = copies.length > 0 && move && !failure ? p.loads.find((l) => l.nodeId === move.to) : undefined;
          if (to) p.add(to, { rows: info.numRows, memoryBytes, segments: 1 });
          const node = to ?? p.place({ rows: info.numRows, memoryBytes }, failure ? new Set([failure.nodeId]) : undefined)!;
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
          if (extra.length < copies.length && extra[0]) release(segmentKey(r.replicaId, segId), r.replicaId, extra[0]);
        }
      }

      // segments of neither target on the replica's nodes
      for (const [segId, copies] of unwanted) {
        for (const c of copies) {
          if (!members.has(c.nodeId)) continue;
          if (pointedAt.has(`${segId}@${c.nodeId}`) || reportedIds.get(r.replicaId)?.has(segId) || unknownViews.has(r.replicaId)) continue;
          release(segmentKey(r.replicaId, segId), r.replicaId, c);
        }
      }
    }

    // copies on alive nodes outside every replica of the collection (a node that left its replica)
    if (memberOf.size === 0 || [...input.dist.nodes.keys()].some((n) => !memberOf.has(n))) {
      for (const [segId, copies] of inDist) {
        for (const c of copies) {
          if (memberOf.has(c.nodeId)) continue;
          if (pointedAt.has(`${segId}@${c.nodeId}`) || unknownViews.size > 0) continue;
          release(straySegmentKey(c.nodeId, segId), -1n, c);
        }
      }
    }
  }
  return out;
}
