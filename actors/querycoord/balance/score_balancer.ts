/**
 * BalanceChecker's planner (Milvus's ScoreBasedBalancer): inside each replica of a Loaded collection,
 * move sealed segments from the node with the highest score to the one with the lowest while that is a
 * clear gain. A node's score is the rows it holds (every collection's, plus those on their way) plus an
 * overhead per delegator, divided by its share of memory capacity (`node_load.ts`). A move is planned
 * only when it brings the two nodes closer without swapping their order and the gap is worth it; at most
 * `maxMovesPerRound` moves planned per round, and `maxMovesPerReplica` in flight per replica (a round
 * plans only what the replica's moves in flight leave); ties go by node id, then segment id.
 *
 * A move never leaves a shard without a serviceable copy: it is carried out as load on the target, the
 * delegator's view moved to the new copy (LeaderChecker), then release on the source (SegmentChecker),
 * and it is planned only for a segment with one copy in the replica whose shard has a serviceable
 * delegator.
 *
 * Channel balance (Milvus's genChannelPlan): inside each replica, the node holding the most delegators
 * (every collection's) gives one of this replica's channels to the node holding the fewest, when they
 * differ by two or more (so the move narrows the gap without reversing it). A channel moves like a
 * stopping node's delegator: watched on the target, synced by the LeaderChecker, and only once the new
 * delegator is serviceable at the current target's version is the old one unwatched — the shard always
 * has a serviceable leader. A replica whose channels are not all led by one serviceable delegator on a
 * settled node is left to the ChannelChecker. Pure functions.
 */
import type { CheckInput } from "../checkers/types.ts";
import { placementNodesOf } from "../checkers/types.ts";
import type { SegmentLoadInfo } from "../../../protocol/meta.ts";
import type { DistSegment } from "../../../protocol/messages/querynode.ts";
import { nodeLoads, type NodeLoad } from "./node_load.ts";
import type { TaskAction } from "../task/task.ts";

export interface SegmentMove {
  collectionId: bigint;
  replicaId: bigint;
  segmentId: bigint;
  vchannel: string;
  from: string;
  to: string;
  rows: number;
}

export interface BalanceOptions {
  maxMovesPerRound: number;
  maxMovesPerReplica: number;
  /** a delegator weighs like this many rows (Milvus's delegator overhead) */
  delegatorOverheadRows: number;
  /** a move only when the two nodes differ by more than this share of the higher score */
  minGapRatio: number;
  /** and by at least this many rows */
  minGapRows: number;
  /**
   * `performance.now()` past which a round plans no more moves (the rest come in the next balance
   * rounds): a large cluster's look stays short; none when absent
   */
  deadline?: number;
}

export const DEFAULT_BALANCE_OPTIONS: BalanceOptions = {
  maxMovesPerRound: 8,
  maxMovesPerReplica: 2,
  delegatorOverheadRows: 1_000,
  minGapRatio: 0.1,
  minGapRows: 1_000,
};

/** A delegator moving from one node of its replica to another. */
export interface ChannelMove {
  collectionId: bigint;
  replicaId: bigint;
  vchannel: string;
  from: string;
  to: string;
}

export interface ChannelBalanceOptions {
  maxMovesPerRound: number;
  maxMovesPerReplica: number;
}

export const DEFAULT_CHANNEL_BALANCE_OPTIONS: ChannelBalanceOptions = { maxMovesPerRound: 4, maxMovesPerReplica: 1 };

/** How channel moves in flight are named (one per replica and vchannel). */
export function channelMoveKey(replicaId: bigint, vchannel: string): string {
  return `${replicaId}/ch/${vchannel}`;
}

/** `segmentMoveKey(replica, segment)`: how moves in flight are named. */
export function moveKey(replicaId: bigint, segmentId: bigint): string {
  return `${replicaId}/${segmentId}`;
}

/**
 * Whether a task is the checkers' own work, which balance waits for: a load, a watch or an index load
 * that is not a step of a move in flight (a move's load or watch is on its target node; syncs, releases
 * and unwatches are what follows a move or a load, and hold nothing back).
 */
export function holdsBalanceBack(a: TaskAction, moves: ReadonlyMap<string, SegmentMove>, channelMoves: ReadonlyMap<string, ChannelMove>): boolean {
  if (a.kind === "LoadSegment") return moves.get(moveKey(a.replicaId, a.segmentId))?.to !== a.nodeId;
  if (a.kind === "WatchChannel") return channelMoves.get(channelMoveKey(a.replicaId, a.vchannel))?.to !== a.nodeId;
  return a.kind === "LoadIndex";
}

interface Scored {
  load: NodeLoad;
  /** weighted rows */
  score: number;
  /** capacity weight (1 for the largest node) */
  weight: number;
}

/** The score of every node given (rows + overhead per delegator) / capacity weight. */
export function nodeScores(nodeIds: readonly string[], input: Pick<CheckInput, "dist" | "pending">, overheadRows: number): Map<string, Scored> {
  const loads = nodeLoads(nodeIds, input.dist, input.pending);
  const maxLimit = Math.max(0, ...loads.map((l) => l.memoryLimitBytes));
  const out = new Map<string, Scored>();
  for (const l of loads) {
    const limit = l.memoryLimitBytes > 0 ? l.memoryLimitBytes : maxLimit;
    const weight = maxLimit > 0 && limit > 0 ? limit / maxLimit : 1;
    out.set(l.nodeId, { load: l, weight, score: (l.rows + overheadRows * l.channels) / weight });
  }
  return out;
}

export function planBalance(
  input: CheckInput,
  /** moves in flight: their segments are not moved again, and their rows count on their target */
  inFlight: ReadonlyMap<string, SegmentMove>,
  opts: BalanceOptions = DEFAULT_BALANCE_OPTIONS,
): SegmentMove[] {
  const moves: SegmentMove[] = [];
  const busyCollections = new Set([...(input.channelMoves?.values() ?? [])].map((m) => m.collectionId));
  const inFlightPerReplica = new Map<bigint, number>();
  for (const m of inFlight.values()) inFlightPerReplica.set(m.replicaId, (inFlightPerReplica.get(m.replicaId) ?? 0) + 1);
  const allNodes = [...input.dist.nodes.keys()].sort();
  const scores = nodeScores(allNodes, input, opts.delegatorOverheadRows);
  // rows already on their way count on both ends until the move is done: count them where they go
  for (const m of inFlight.values()) {
    const to = scores.get(m.to);
    const from = scores.get(m.from);
    if (to) to.score += m.rows / to.weight;
    if (from) from.score -= m.rows / from.weight;
  }
  const byId = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  const late = () => opts.deadline !== undefined && performance.now() > opts.deadline;
  for (const coll of [...input.collections].sort((a, b) => (a.collectionId < b.collectionId ? -1 : 1))) {
    if (moves.length >= opts.maxMovesPerRound || late()) break;
    if (coll.status !== "Loaded" || busyCollections.has(coll.collectionId)) continue;
    const current = settledTarget(input, coll.collectionId);
    if (!current) continue; // a handoff in progress first
    const dels = input.dist.delegatorsOf(coll.collectionId);
    const inDist = input.dist.segmentsOf(coll.collectionId);
    for (const r of input.replicas.filter((x) => x.collectionId === coll.collectionId).sort((a, b) => (a.replicaId < b.replicaId ? -1 : 1))) {
      // at most maxMovesPerReplica in flight per replica, this round's included
      let planned = inFlightPerReplica.get(r.replicaId) ?? 0;
      if (planned >= opts.maxMovesPerReplica || moves.length >= opts.maxMovesPerRound) continue;
      const nodes = placementNodesOf(r, input.dist).filter((n) => scores.has(n));
      if (nodes.length < 2) continue;
      const members = new Set(r.nodes);
      const serviceable = new Set(dels.filter((d) => d.replicaId === r.replicaId && d.serviceable && members.has(d.nodeId)).map((d) => d.vchannel));
      const moving = new Set<bigint>();
      for (const m of inFlight.values()) if (m.replicaId === r.replicaId) moving.add(m.segmentId);
      /**
       * The largest segment `src` could give whose move narrows the gap without reversing it: of the current
       * target, its only copy in the replica, on a serviceable shard, not moving already. Looked for in the
       * node's own list of the collection, largest first (then by id; kept sorted per list), checking each
       * only as it comes: a look that plans a few moves per giver does not check all it holds.
       */
      const pick = (src: Scored, dst: Scored, gap: number): SegmentLoadInfo | undefined => {
        for (const held of heldOf(input.dist, src.load.nodeId, coll.collectionId)) {
          if (moving.has(held.segmentId)) continue;
          const s = current.segments.get(held.segmentId);
          if (!s || s.numRows <= 0 || s.numRows / src.weight + s.numRows / dst.weight > gap || !serviceable.has(s.vchannel)) continue;
          let copies = 0;
          for (const c of inDist.get(s.segmentId) ?? []) if (members.has(c.nodeId)) copies++;
          if (copies === 1) return s;
        }
        return undefined;
      };
      while (planned < opts.maxMovesPerReplica && moves.length < opts.maxMovesPerRound && !late()) {
        const ranked = nodes.map((n) => scores.get(n)!);
        // the highest score gives, the lowest takes; ties to the lowest node id either way
        const src = ranked.reduce((a, b) => (b.score > a.score || (b.score === a.score && byId(b.load.nodeId, a.load.nodeId) < 0) ? b : a));
        const dst = ranked.reduce((a, b) => (b.score < a.score || (b.score === a.score && byId(b.load.nodeId, a.load.nodeId) < 0) ? b : a));
        const gap = src.score - dst.score;
        if (gap <= 0 || gap < opts.minGapRatio * src.score || gap < opts.minGapRows) break;
        // the largest segment of this replica on src whose move narrows the gap without reversing it
        const s = pick(src, dst, gap);
        if (!s) break;
        moving.add(s.segmentId);
        moves.push({
          collectionId: coll.collectionId,
          replicaId: r.replicaId,
          segmentId: s.segmentId,
          vchannel: s.vchannel,
          from: src.load.nodeId,
          to: dst.load.nodeId,
          rows: s.numRows,
        });
        src.score -= s.numRows / src.weight;
        dst.score += s.numRows / dst.weight;
        planned++;
      }
    }
  }
  return moves;
}

/** A node's segments of a collection, per list (a node's list is replaced, never changed, as it changes). */
const heldCache = new WeakMap<readonly DistSegment[], Map<bigint, DistSegment[]>>();

/**
 * The segments of a collection that a node holds, from its own list, largest first by the rows it
 * reports, then by id (picked out and sorted once per list and collection: a look at a share of the
 * collections does not sort what the node holds of the others).
 */
function heldOf(dist: CheckInput["dist"], nodeId: string, collectionId: bigint): readonly DistSegment[] {
  const list = dist.nodes.get(nodeId)?.segments;
  if (!list) return [];
  let by = heldCache.get(list);
  if (!by) heldCache.set(list, (by = new Map()));
  let held = by.get(collectionId);
  if (!held) {
    held = list.filter((s) => s.collectionId === collectionId);
    held.sort((a, b) => b.rows - a.rows || (a.segmentId < b.segmentId ? -1 : 1));
    by.set(collectionId, held);
  }
  return held;
}

/** Whether the collection is Loaded with one current target and no handoff in progress. */
function settledTarget(input: CheckInput, collectionId: bigint) {
  const pair = input.targets.get(collectionId);
  const current = pair?.current;
  if (!current || (pair?.next && pair.next.version !== current.version)) return undefined;
  return current;
}

/**
 * Channel moves for this round (see the module's comment). `inFlight` are channel moves not yet done;
 * a collection with any move in flight (channel or segment, `input.moves`) is not planned again.
 */
export function planChannelBalance(
  input: CheckInput,
  inFlight: ReadonlyMap<string, ChannelMove>,
  opts: ChannelBalanceOptions = DEFAULT_CHANNEL_BALANCE_OPTIONS,
): ChannelMove[] {
  const moves: ChannelMove[] = [];
  const busy = new Set([...inFlight.values(), ...(input.moves?.values() ?? [])].map((m) => m.collectionId));
  // delegators per node, every collection's; a move in flight counts on its target only
  const count = new Map<string, number>();
  for (const [id, d] of input.dist.nodes) count.set(id, d.delegators.length);
  for (const m of inFlight.values()) {
    if (count.has(m.from) && input.dist.delegatorOn(m.from, m.collectionId, m.vchannel, m.replicaId)) count.set(m.from, count.get(m.from)! - 1);
    if (count.has(m.to) && !input.dist.delegatorOn(m.to, m.collectionId, m.vchannel, m.replicaId)) count.set(m.to, count.get(m.to)! + 1);
  }
  const byId = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  for (const coll of [...input.collections].sort((a, b) => (a.collectionId < b.collectionId ? -1 : 1))) {
    if (moves.length >= opts.maxMovesPerRound) break;
    if (coll.status !== "Loaded" || busy.has(coll.collectionId)) continue;
    const current = settledTarget(input, coll.collectionId);
    if (!current) continue;
    const dels = input.dist.delegatorsOf(coll.collectionId);
    for (const r of input.replicas.filter((x) => x.collectionId === coll.collectionId).sort((a, b) => (a.replicaId < b.replicaId ? -1 : 1))) {
      const nodes = placementNodesOf(r, input.dist).filter((n) => count.has(n));
      if (nodes.length < 2) continue;
      const members = new Set(r.nodes);
      // each channel led by exactly one serviceable delegator on a settled node of the replica, else the ChannelChecker first
      const leader = new Map<string, string>();
      let settled = true;
      for (const v of current.channels.keys()) {
        const ds = dels.filter((d) => d.replicaId === r.replicaId && d.vchannel === v);
        const d = ds[0];
        if (ds.length !== 1 || !d!.serviceable || !members.has(d!.nodeId) || input.dist.isStopping(d!.nodeId)) settled = false;
        else leader.set(v, d!.nodeId);
      }
      if (!settled) continue;
      const moved = new Set<string>();
      let planned = 0;
      while (planned < opts.maxMovesPerReplica && moves.length < opts.maxMovesPerRound) {
        const holders = nodes.filter((n) => [...leader].some(([v, at]) => at === n && !moved.has(v)));
        // the node with the most delegators gives, the one with the fewest takes; ties to the lowest id
        const src = [...holders].sort((a, b) => count.get(b)! - count.get(a)! || byId(a, b))[0];
        const dst = [...nodes].sort((a, b) => count.get(a)! - count.get(b)! || byId(a, b))[0]!;
        if (!src || count.get(src)! - count.get(dst)! < 2) break;
        const v = [...leader].filter(([c, at]) => at === src && !moved.has(c)).map(([c]) => c).sort()[0]!;
        moves.push({ collectionId: coll.collectionId, replicaId: r.replicaId, vchannel: v, from: src, to: dst });
        moved.add(v);
        leader.set(v, dst);
        count.set(src, count.get(src)! - 1);
        count.set(dst, count.get(dst)! + 1);
        planned++;
      }
    }
  }
  return moves;
}
