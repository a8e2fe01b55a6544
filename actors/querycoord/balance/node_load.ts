/**
 * Node choice (Milvus's querycoordv2/balance, RowCountBasedBalancer weighted by capacity): a querynode's
 * score is the rows it holds (plus those on their way) divided by its share of memory capacity, so a
 * node with twice the memory takes twice the rows. New work goes to the lowest score within the
 * replica's nodes. Pure functions.
 */
import type { DistSnapshot } from "../dist/dist_snapshot.ts";

export interface NodeLoad {
  nodeId: string;
  rows: number;
  memoryBytes: number;
  memoryLimitBytes: number;
  segments: number;
  channels: number;
}

/** Work already sent to a node but not yet in its distribution. */
export interface PendingLoad {
  rows: number;
  memoryBytes: number;
  segments: number;
  channels: number;
}

export function nodeLoads(nodeIds: readonly string[], dist: DistSnapshot, pending?: ReadonlyMap<string, PendingLoad>): NodeLoad[] {
  const out: NodeLoad[] = [];
  for (const id of nodeIds) {
    const d = dist.nodes.get(id);
    if (!d) continue;
    const p = pending?.get(id);
    out.push({
      nodeId: id,
      rows: d.rows + (p?.rows ?? 0),
      memoryBytes: d.memoryBytes + (p?.memoryBytes ?? 0),
      memoryLimitBytes: d.memoryLimitBytes,
      segments: d.segments.length + (p?.segments ?? 0),
      channels: d.delegators.length + (p?.channels ?? 0),
    });
  }
  return out;
}

/** rows / (capacity / largest capacity): lower is less loaded. A node that reports no limit counts as the largest. */
export function scoreOf(n: NodeLoad, maxLimit: number): number {
  const limit = n.memoryLimitBytes > 0 ? n.memoryLimitBytes : maxLimit;
  const weight = maxLimit > 0 && limit > 0 ? limit / maxLimit : 1;
  return n.rows / weight;
}

function freeOf(n: NodeLoad): number {
  return n.memoryLimitBytes > 0 ? n.memoryLimitBytes - n.memoryBytes : Number.POSITIVE_INFINITY;
}

function byId(a: NodeLoad, b: NodeLoad): number {
  return a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0;
}

/**
 * The node a segment should go to: among the candidates not in `avoid` (nodes that just refused it;
 * used only if nothing else is left), those with room for it, else the one with the most room (it will
 * refuse with a reason that the load reports); lowest score first, then fewest segments, then id.
 */
export function pickSegmentNode(
  candidates: readonly NodeLoad[],
  need: { rows: number; memoryBytes: number },
  avoid: ReadonlySet<string> = new Set(),
): NodeLoad | undefined {
  if (candidates.length === 0) return undefined;
  const preferred = candidates.filter((c) => !avoid.has(c.nodeId));
  const pool = preferred.length > 0 ? preferred : [...candidates];
  const fits = pool.filter((c) => freeOf(c) >= need.memoryBytes);
  if (fits.length === 0) return [...pool].sort((a, b) => freeOf(b) - freeOf(a) || byId(a, b))[0];
  const maxLimit = Math.max(...candidates.map((c) => c.memoryLimitBytes));
  return fits.sort((a, b) => scoreOf(a, maxLimit) - scoreOf(b, maxLimit) || a.segments - b.segments || byId(a, b))[0];
}

/** The node a channel's delegator should go to: fewest delegators, then lowest score, then id. */
export function pickChannelNode(candidates: readonly NodeLoad[], avoid: ReadonlySet<string> = new Set()): NodeLoad | undefined {
  if (candidates.length === 0) return undefined;
  const preferred = candidates.filter((c) => !avoid.has(c.nodeId));
  const pool = preferred.length > 0 ? preferred : [...candidates];
  const maxLimit = Math.max(...candidates.map((c) => c.memoryLimitBytes));
  return [...pool].sort((a, b) => a.channels - b.channels || scoreOf(a, maxLimit) - scoreOf(b, maxLimit) || byId(a, b))[0];
}

/** Counts work just assigned to a node, so that the next choice of the same round sees it. */
export function addLoad(n: NodeLoad, add: Partial<PendingLoad>): void {
  n.rows += add.rows ?? 0;
  n.memoryBytes += add.memoryBytes ?? 0;
  n.segments += add.segments ?? 0;
  n.channels += add.channels ?? 0;
}

/**
 * `pickSegmentNode` for many segments in one round: the candidates in a heap by (score, segments, id),
 * so that placing the segments of a large load costs O(log n) each instead of a sort per segment. The
 * choice is the same as `pickSegmentNode`'s; `place` counts the segment on the chosen node.
 */
export class SegmentPlacer {
  private readonly heap: NodeLoad[];
  private readonly pos = new Map<string, number>();
  private readonly maxLimit: number;
  /** nodes out of the heap for good: no task slot left this round */
  private readonly busy = new Set<string>();

  /**
   * `slots`, when given: the tasks each node may still start this round (shared by the placers of one
   * round and counted down as they place); a node with none is passed over.
   */
  constructor(
    readonly loads: NodeLoad[],
    private readonly slots?: Map<string, number>,
  ) {
    this.maxLimit = Math.max(0, ...loads.map((l) => l.memoryLimitBytes));
    this.heap = [...loads];
    this.heap.forEach((l, i) => this.pos.set(l.nodeId, i));
    for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.down(i);
  }

  /** Picks the node for a segment (as `pickSegmentNode`) and counts the segment on it. */
  place(need: { rows: number; memoryBytes: number }, avoid?: ReadonlySet<string>): NodeLoad | undefined {
    let node: NodeLoad | undefined;
    // the best node with room and not to avoid: the heap's order, skipping full and avoided ones (a
    // segment retried after a failure avoids one node); when there is none, pickSegmentNode's fallbacks
    const skipped: NodeLoad[] = [];
    while (this.heap.length > 0) {
      const top = this.heap[0]!;
      if (this.slots && (this.slots.get(top.nodeId) ?? 0) <= 0) {
        this.busy.add(this.pop().nodeId);
        continue;
      }
      if (freeOf(top) >= need.memoryBytes && !avoid?.has(top.nodeId)) {
        node = top;
        break;
      }
      skipped.push(this.pop());
    }
    for (const s of skipped) this.push(s);
    if (!node) {
      if (this.heap.length === 0) return undefined; // every node busy this round
      node = pickSegmentNode(this.busy.size > 0 ? this.loads.filter((l) => !this.busy.has(l.nodeId)) : this.loads, need, avoid);
    }
    if (node) {
      this.add(node, { rows: need.rows, memoryBytes: need.memoryBytes, segments: 1 });
      if (this.slots) this.slots.set(node.nodeId, (this.slots.get(node.nodeId) ?? 0) - 1);
    }
    return node;
  }

  /** Counts work on a node chosen another way (a balance move's target). */
  add(node: NodeLoad, load: Partial<PendingLoad>): void {
    addLoad(node, load);
    const i = this.pos.get(node.nodeId);
    if (i !== undefined) this.down(i);
  }

  private less(a: NodeLoad, b: NodeLoad): boolean {
    const d = scoreOf(a, this.maxLimit) - scoreOf(b, this.maxLimit) || a.segments - b.segments;
    return d < 0 || (d === 0 && a.nodeId < b.nodeId);
  }

  private swap(i: number, j: number): void {
    const h = this.heap;
    [h[i], h[j]] = [h[j]!, h[i]!];
    this.pos.set(h[i]!.nodeId, i);
    this.pos.set(h[j]!.nodeId, j);
  }

  private down(i: number): void {
    const h = this.heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
      if (m === i) return;
      this.swap(i, m);
      i = m;
    }
  }

  private up(i: number): void {
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(this.heap[i]!, this.heap[p]!)) return;
      this.swap(i, p);
      i = p;
    }
  }

  private pop(): NodeLoad {
    const top = this.heap[0]!;
    this.swap(0, this.heap.length - 1);
    this.heap.pop();
    this.pos.delete(top.nodeId);
    if (this.heap.length > 0) this.down(0);
    return top;
  }

  private push(n: NodeLoad): void {
    this.heap.push(n);
    this.pos.set(n.nodeId, this.heap.length - 1);
    this.up(this.heap.length - 1);
  }
}
