/**
 * SegmentChecker (Milvus's checkers/segment_checker.go): every sealed segment of the collection's
 * targets (current ∪ next: the next one is loaded before it becomes current) is loaded once per
 * replica, on one of the replica's alive querynodes, once the replica has a delegator for its channel.
 * Extra copies and segments of neither target are released, but never while a delegator's view still
 * points at them: the LeaderChecker first moves the view, then the copy goes. A load carries the
 * Finished builds of the segment's live indexes known so far (the IndexChecker sees to the rest), and
 * its memory counts them.
 */
import type { SegmentLoadInfo } from "../../../protocol/meta.ts";
import { nodeLoads, SegmentPlacer } from "../balance/node_load.ts";
import type { SegmentMove } from "../balance/score_balancer.ts";
import type { TargetPair } from "../meta/target_manager.ts";
import type { CollectionTarget } from "../meta/types.ts";
import { ChangeMemo, type SegmentCopy } from "../dist/dist_snapshot.ts";
import { Priority, segmentKey, segmentOfKey, straySegmentKey, type TaskSpec } from "../task/task.ts";
import {
  addBlocker,
  aliveNodesOf,
  byBigint,
  placementNodesOf,
  emptyResult,
  idOf,
  inShare,
  replicasByCollection,
  placesOf,
  targetOrder,
  viewIndex,
  type CheckInput,
  type CheckResult,
  type TargetOrder,
  type ViewIndex,
} from "./types.ts";

/**
 * (current, next) → their segments together and the ids sorted: targets are replaced, never changed, so
 * this holds. With one target (a load's first, or between refreshes: most of the time) it is the
 * target's own map and order, shared with the other checkers, rather than a copy of a million entries.
 */
interface Wanted extends TargetOrder {
  wanted: ReadonlyMap<bigint, SegmentLoadInfo>;
}
const wantedCache = new WeakMap<CollectionTarget, WeakMap<CollectionTarget, Wanted>>();
const NOTHING_WANTED: Wanted = { wanted: new Map(), ids: [], pos: new Map() };

function wantedOf(pair: TargetPair): Wanted {
  const { current: a, next: b } = pair;
  if (!a || !b || a === b) {
    const t = a ?? b;
    return t ? { wanted: t.segments, ...targetOrder(t) } : NOTHING_WANTED;
  }
  let inner = wantedCache.get(a);
  if (!inner) wantedCache.set(a, (inner = new WeakMap()));
  let w = inner.get(b);
  if (!w) {
    const wanted = new Map<bigint, SegmentLoadInfo>([...a.segments, ...b.segments]);
    const ids = [...wanted.keys()].sort(byBigint);
    w = { wanted, ids, pos: placesOf(ids, (id) => id) };
    inner.set(b, w);
  }
  return w;
}

/**
 * What the memos below are kept under: the targets whose segments are wanted. One target is the same
 * wanted segments whether it is the next one or, promoted, the current one: a promotion does not have
 * every replica's million segments looked at again.
 */
function wantedKey(pair: TargetPair): string {
  const { current: a, next: b } = pair;
  return a && b && a !== b ? `${idOf(a)}|${idOf(b)}` : `${idOf(a ?? b)}`;
}

/**
 * What a replica's wanted segments need, per snapshot, by their place in the sorted wanted ids:
 * SETTLED (one copy, on a settled member, not moving), ATTENTION, or MISSING (no copy in the replica).
 * Kept up to date from the snapshot's change log: a round looks again at the segments whose copies
 * changed and the ones moving (now or at the last look), not at the million that did not; everything is
 * looked at again when the targets, the replica's nodes or its stopping nodes changed, or the log no
 * longer reaches back.
 */
const SETTLED = 0;
const ATTENTION = 1;
const MISSING = 2;
interface Attention {
  state: Uint8Array;
  /** the places in `state` that are ATTENTION (few: a round that has no loads to plan looks at these only) */
  attention: Set<number>;
  /** the segments moving at the last look */
  moving: bigint[];
}

function attentionOf(state: Uint8Array): Attention {
  const attention = new Set<number>();
  for (let i = 0; i < state.length; i++) if (state[i] === ATTENTION) attention.add(i);
  return { state, attention, moving: [] };
}
const attentionMemo = new ChangeMemo<Attention>();
const NO_COPIES: readonly SegmentCopy[] = [];

/** Per snapshot and collection, the segments with copies that neither target wants, kept up to date the same way. */
const unwantedMemo = new ChangeMemo<Set<bigint>>();

export function checkSegments(input: CheckInput): CheckResult {
  const out = emptyResult();
  const reps = replicasByCollection(input.replicas);
  // new loads this round at most, over every collection (the scheduler runs a few per node at a time;
  // the rest are asked for in the next rounds)
  // (loads in flight count against it, and their segments are not asked for again while they run)
  let inFlight = 0;
  for (const set of input.loading?.values() ?? []) inFlight += set.size;
  let budget = input.loadsPerNode === undefined ? Number.POSITIVE_INFINITY : Math.max(1, Math.max(1, input.dist.nodes.size) * input.loadsPerNode - inFlight);
  if (input.loadsPerRound !== undefined) budget = Math.min(budget, Math.max(1, input.loadsPerRound));
  // the tasks each node may still start this round, counted down as loads are placed (shared by every replica's placer)
  const cap = input.loadsPerNode;
  const running = input.runningPerNode;
  const slots = cap !== undefined && running ? new Map([...input.dist.nodes.keys()].map((n) => [n, cap - (running.get(n) ?? 0)])) : undefined;
  // the segments whose load failed (backing off), per replica: read from the failures' keys once a round
  const failedLoads = new Map<bigint, Set<bigint>>();
  for (const f of input.failures.values()) {
    const k = segmentOfKey(f.key);
    if (!k) continue;
    let set = failedLoads.get(k.replicaId);
    if (!set) failedLoads.set(k.replicaId, (set = new Set()));
    set.add(k.segmentId);
  }
  for (const coll of input.collections) {
    if (!inShare(input, coll.collectionId)) continue;
    const pair = input.targets.get(coll.collectionId);
    if (!pair?.current && !pair?.next) continue;
    const { wanted, ids: wantedIds, pos: wantedPos } = wantedOf(pair);
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

    // What the collection's delegators point at: a segment's copy on a node, from what they
    // acknowledged (looked up by each view's places, made once per list and shared by the views patched
    // from it), and segment ids from what they
    // report (gathered only when a copy of neither target is found). A delegator we have not synced
    // since we started makes us careful.
    const views: ViewIndex[] = [];
    const unknownViews = new Set<bigint>();
    for (const d of dels) {
      const v = input.synced.get(d.address);
      if (v) views.push(viewIndex(v));
      else unknownViews.add(d.replicaId);
    }
    const pointedAt = (segId: bigint, nodeId: string) => views.some((v) => v.get(segId)?.nodeId === nodeId);
    let reported: Map<bigint, Set<bigint>> | undefined;
    const reportedIds = (replicaId: bigint) => {
      if (!reported) {
        reported = new Map();
        for (const d of dels) {
          let ids = reported.get(d.replicaId);
          if (!ids) reported.set(d.replicaId, (ids = new Set()));
          for (const id of d.sealedSegmentIds) ids.add(id);
        }
      }
      return reported.get(replicaId);
    };

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
    // copies of segments of neither target
    const isUnwanted = (id: bigint) => !wanted.has(id) && inDist.has(id);
    const unwantedIds = unwantedMemo.get(
      input.dist,
      coll.collectionId,
      `${coll.collectionId}`,
      wantedKey(pair),
      () => new Set([...inDist.keys()].filter(isUnwanted)),
      (ids, changed) => {
        for (const id of changed) {
          if (isUnwanted(id)) ids.add(id);
          else ids.delete(id);
        }
      },
    );
    const unwanted: [bigint, SegmentCopy[]][] = [];
    for (const id of unwantedIds) {
      const copies = inDist.get(id);
      if (copies) unwanted.push([id, copies]);
    }
    const loadFailures = input.dist.loadFailureCount > 0;
    const loadFailed = loadFailures ? input.dist.segmentsWithLoadFailures() : [];

    for (const r of replicas) {
      const alive = aliveNodesOf(r, input.dist);
      if (alive.length === 0) continue; // the ChannelChecker reports the replica
      const members = new Set(r.nodes);
      const placement = placementNodesOf(r, input.dist);
      const stoppingMembers = new Set(r.nodes.filter((n) => input.dist.isStopping(n)));
      let placer: SegmentPlacer | undefined;
      const placerOf = () => (placer ??= new SegmentPlacer(nodeLoads(placement, input.dist, input.pending), slots));
      /** every node of the replica busy with as many tasks as it may run: no more loads here this round */
      let busy = false;
      const stopping = (c: SegmentCopy) => stoppingMembers.has(c.nodeId);
      const leaderChannels = new Set(dels.filter((d) => d.replicaId === r.replicaId && members.has(d.nodeId)).map((d) => d.vchannel));
      const moves = movesOf.get(r.replicaId);
      const memoKey = wantedKey(pair);
      const memoNodes = r.nodes.map((n) => (stoppingMembers.has(n) ? `${n} stopping` : n));
      /** the common case is SETTLED: one copy in the replica, on a settled member, not moving */
      const stateOf = (segId: bigint): number => {
        let mine = 0;
        let settled = true;
        for (const c of inDist.get(segId) ?? []) {
          if (!members.has(c.nodeId)) continue;
          mine++;
          if (stoppingMembers.has(c.nodeId)) settled = false;
        }
        if (mine === 1 && settled && !moves?.has(segId)) return SETTLED;
        return mine === 0 ? MISSING : ATTENTION;
      };
      const attention = attentionMemo.get(
        input.dist,
        coll.collectionId,
        `${coll.collectionId}/${r.replicaId}`,
        memoKey,
        () => attentionOf(Uint8Array.from(wantedIds, stateOf)),
        (a, changed) => {
          const look = (id: bigint) => {
            const i = wantedPos.get(id);
            if (i === undefined) return;
            const s = stateOf(id);
            a.state[i] = s;
            if (s === ATTENTION) a.attention.add(i);
            else a.attention.delete(i);
          };
          for (const id of changed) look(id);
          for (const id of a.moving) look(id);
          for (const id of moves?.keys() ?? []) look(id);
        },
        memoNodes,
      );
      attention.moving = [...(moves?.keys() ?? [])];

      // once the budget is spent, a segment with no copy waits for a later round, unless it has a failure to report
      const loadingHere = input.loading?.get(r.replicaId);
      const failed = new Set<bigint>(loadFailed);
      for (const id of failedLoads.get(r.replicaId) ?? []) failed.add(id);
      const state = attention.state;
      const anyFailed = failed.size > 0;
      /** what segment `i` (its place in the wanted ids) needs, if anything */
      const visit = (i: number): void => {
        const s = state[i];
        if (s === SETTLED || (s === MISSING && (budget <= 0 || busy) && !anyFailed)) return;
        const segId = wantedIds[i]!;
        if (s === MISSING && (!anyFailed || !failed.has(segId)) && (budget <= 0 || loadingHere?.has(segId))) return;
        const raw = inDist.get(segId);
        const move = moves?.get(segId);
        const info = wanted.get(segId)!;
        const copies = raw ? raw.filter((c) => members.has(c.nodeId)) : NO_COPIES;
        // a balance move: the copy on `from` gives way to one on `to`, as a stopping node's does
        const leaving = (c: SegmentCopy) => stopping(c) || (move !== undefined && c.nodeId === move.from && placement.includes(move.to));
        // a leaving copy (a stopping node's, a moved one's) is served until another copy is loaded, then released
        if (copies.length === 0 || (placement.length > 0 && copies.every(leaving))) {
          if (!leaderChannels.has(info.vchannel)) return; // its channel's delegator comes first
          const key = segmentKey(r.replicaId, segId);
          const failure = input.failures.get(key);
          if (failure) addBlocker(out, coll.collectionId, { kind: "segment", subject: `${segId}`, reason: failure.reason });
          if (loadFailures) {
            for (const n of alive) {
              const why = input.dist.loadFailure(n, segId);
              if (why) addBlocker(out, coll.collectionId, { kind: "segment", subject: `${segId}`, reason: `node ${n} refused: ${why}` });
            }
          }
          if (placement.length === 0) {
            // every alive node of the replica is stopping: nowhere to load it until a node joins
            addBlocker(out, coll.collectionId, { kind: "segment", subject: `${segId}`, reason: `replica ${r.replicaId} has no node taking new work (its nodes are stopping)` });
            return;
          }
          if (budget <= 0) return;
          budget--;
          const indexes = builds?.get(segId) ?? [];
          const memoryBytes = info.memorySize + indexes.reduce((n, b) => n + b.memorySize, 0);
          const p = placerOf();
          const to = copies.length > 0 && move && !failure ? p.loads.find((l) => l.nodeId === move.to) : undefined;
          if (to) p.add(to, { rows: info.numRows, memoryBytes, segments: 1 });
          const node = to ?? p.place({ rows: info.numRows, memoryBytes }, failure ? new Set([failure.nodeId]) : undefined);
          if (!node) {
            budget++;
            busy = true;
            return;
          }
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
              ...(indexes.length > 0 ? { indexes: [...indexes] } : {}),
            },
          });
        } else if (copies.length > 1 && !unknownViews.has(r.replicaId)) {
          // keep the copy the delegator points at, release one other per round; while no copy is
          // pointed at yet (a segment of the next target), keep them all
          // (copies on stopping nodes first; while a view still points at a stopping node's copy, only
          // stopping copies go: the LeaderChecker moves the view to the new copy first)
          const pointsAtLeaving = copies.some((c) => leaving(c) && pointedAt(segId, c.nodeId));
          const extra = copies
            .filter((c) => !pointedAt(segId, c.nodeId) && (!pointsAtLeaving || leaving(c)))
            .sort((a, b) => Number(leaving(b)) - Number(leaving(a)) || (a.nodeId < b.nodeId ? -1 : 1));
          if (extra.length < copies.length && extra[0]) release(segmentKey(r.replicaId, segId), r.replicaId, extra[0]);
        }
      };
      // in id order: every segment while loads are to be planned, then only the ones that need attention
      // or have a failed load (a replica of a million settled or loading segments costs a round a few of
      // them, not a walk of its million)
      // (the common cases are looked at here: calling visit, whose closures capture its locals, costs an
      // allocation, which for millions of segments a round was most of querycoord's garbage)
      // (a segment with a failure to report is looked at wherever it is: its failure says why the load waits)
      let i = 0;
      for (; i < state.length && budget > 0 && !busy; i++) {
        const s = state[i];
        if (s === SETTLED || (s === MISSING && !(anyFailed && failed.has(wantedIds[i]!)) && loadingHere?.has(wantedIds[i]!))) continue;
        visit(i);
      }
      if (i < state.length) {
        const rest = new Set<number>();
        for (const j of attention.attention) if (j >= i) rest.add(j);
        for (const id of failed) {
          const j = wantedPos.get(id);
          if (j !== undefined && j >= i) rest.add(j);
        }
        for (const j of [...rest].sort((a, b) => a - b)) visit(j);
      }

      // segments of neither target on the replica's nodes
      for (const [segId, copies] of unwanted) {
        // (by node id: the same copy goes first however the snapshot came to list them)
        for (const c of copies.length > 1 ? [...copies].sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1)) : copies) {
          if (!members.has(c.nodeId)) continue;
          if (pointedAt(segId, c.nodeId) || reportedIds(r.replicaId)?.has(segId) || unknownViews.has(r.replicaId)) continue;
          release(segmentKey(r.replicaId, segId), r.replicaId, c);
        }
      }
    }

    // copies on alive nodes outside every replica of the collection (a node that left its replica)
    if (memberOf.size === 0 || [...input.dist.nodes.keys()].some((n) => !memberOf.has(n))) {
      for (const [segId, copies] of inDist) {
        for (const c of copies) {
          if (memberOf.has(c.nodeId)) continue;
          if (pointedAt(segId, c.nodeId) || unknownViews.size > 0) continue;
          release(straySegmentKey(c.nodeId, segId), -1n, c);
        }
      }
    }
  }
  return out;
}
