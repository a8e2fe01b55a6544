/**
 * Exact (FLAT) top-k search over a segment's vectors, in plain JS.
 *
 * The rows are visited in blocks of candidates (every row, the rows that pass the filter, or the given
 * `rowIds`); each block is scored against every query while it is still in cache, two rows a pass
 * with the loop over dimensions unrolled by four (see the kernels at the bottom). Scores are summed in
 * float64, rounded once to float32 (the score a hit is reported with), and ranked on that float32
 * value; equal scores go to the smaller row offset, so a result never depends on the visiting order.
 * Each query keeps its best k in a bounded heap that turns most rows away with one comparison.
 *
 * COSINE normalizes the queries once and divides each row's inner product by the row's norm (pass
 * `norms` from `rowNorms` to reuse them across searches).
 */
import { VbError } from "../../protocol/errors.ts";
import { checkShape, type Metric, rowNorms } from "./metric.ts";
import { checkRange } from "./range.ts";
import { TopKHeap } from "./topk_heap.ts";

export interface FlatSearchParams {
  /** n × dim, row major */
  vectors: Float32Array;
  dim: number;
  /** nq × dim */
  queries: Float32Array;
  /** at most this many hits a query (≥ 1) */
  k: number;
  metric: Metric;
  /** one byte a row: non-zero = the row passes (Milvus's bitset, inverted: here 1 means kept) */
  filter?: Uint8Array;
  /** search only these rows: strictly increasing offsets (a selective filter already turned into a list) */
  rowIds?: Int32Array;
  /** range search: see range.ts for the bounds per metric */
  radius?: number;
  rangeFilter?: number;
  /** COSINE: the rows' norms from `rowNorms(vectors, dim)`; computed here when absent */
  norms?: Float64Array;
}

/** One query's hits, best first. */
export interface FlatHits {
  /** row offsets into `vectors` */
  rows: Int32Array;
  scores: Float32Array;
}

/** Floats of vectors a block of candidates holds: a block stays in L1/L2 while every query scores it. */
const BLOCK_FLOATS = 16_384;

/**
 * The best `k` rows for each query (at most k; fewer when fewer rows pass or lie in the range), best
 * first, equal scores by row offset. Bad input throws 1100 naming the field.
 */
export function searchFlat(p: FlatSearchParams): FlatHits[] {
  const { vectors, dim, queries, k, metric, filter, rowIds } = p;
  if (metric !== "L2" && metric !== "IP" && metric !== "COSINE") {
    throw VbError.invalid(`metric: unknown metric ${JSON.stringify(metric)}; use L2, IP or COSINE`);
  }
  checkShape(vectors, dim, "vectors");
  checkShape(queries, dim, "queries");
  if (!Number.isInteger(k) || k < 1) throw VbError.invalid(`k: must be a positive integer, got ${k}`);
  checkRange(metric, p.radius, p.rangeFilter);
  const n = vectors.length / dim;
  const nq = queries.length / dim;
  if (filter !== undefined && filter.length !== n) {
    throw VbError.invalid(`filter: has ${filter.length} entries for ${n} rows`);
  }
  if (rowIds !== undefined) checkRowIds(rowIds, n);
  let norms: Float64Array | undefined;
  if (metric === "COSINE") {
    norms = p.norms ?? rowNorms(vectors, dim);
    if (norms.length !== n) throw VbError.invalid(`norms: has ${norms.length} entries for ${n} rows`);
  }

  // queries in float64 (unit length for COSINE), so the inner loop converts only the row values
  const q = new Float64Array(queries.length);
  for (let i = 0; i < nq; i++) {
    const o = i * dim;
    let scale = 1;
    if (metric === "COSINE") {
      let s = 0;
      for (let d = 0; d < dim; d++) s += queries[o + d]! * queries[o + d]!;
      scale = s === 0 ? 0 : 1 / Math.sqrt(s);
    }
    for (let d = 0; d < dim; d++) q[o + d] = queries[o + d]! * scale;
  }

  // Keys: smaller is better. L2: the distance; IP/COSINE: the negated score. The range becomes
  // lo <= key < hi in both cases (L2: rangeFilter <= d < radius; IP: -rangeFilter <= -s < -radius).
  const ranged = p.radius !== undefined;
  let lo = -Infinity;
  let hi = Infinity;
  if (ranged) {
    if (metric === "L2") {
      hi = p.radius!;
      if (p.rangeFilter !== undefined) lo = p.rangeFilter;
    } else {
      hi = -p.radius!;
      if (p.rangeFilter !== undefined) lo = -p.rangeFilter;
    }
  }

  const maxHits = Math.min(k, rowIds !== undefined ? rowIds.length : n);
  const heaps: TopKHeap[] = [];
  const thresholds = new Float64Array(nq);
  for (let i = 0; i < nq; i++) {
    heaps.push(new TopKHeap(maxHits));
    thresholds[i] = maxHits > 0 ? Infinity : -Infinity;
  }

  const blockRows = Math.max(4, Math.floor(BLOCK_FLOATS / dim) & ~3);
  const cand = new Int32Array(blockRows);
  const keys = new Float64Array(blockRows);
  const cursor = new CandidateCursor(n, filter, rowIds);
  // the loops live in small functions, each optimized on its own: this one stays cold
  for (let m = cursor.fill(cand); m > 0; m = cursor.fill(cand)) {
    for (let qi = 0; qi < nq; qi++) {
      const qo = qi * dim;
      if (metric === "L2") {
        l2Block(vectors, dim, q, qo, cand, m, keys);
        l2Keys(keys, m);
      } else {
        dotBlock(vectors, dim, q, qo, cand, m, keys);
        if (metric === "IP") ipKeys(keys, m);
        else cosineKeys(keys, cand, m, norms!);
      }
      const t = thresholds[qi]!;
      thresholds[qi] = ranged ? admitInRange(heaps[qi]!, keys, cand, m, t, lo, hi) : admit(heaps[qi]!, keys, cand, m, t);
    }
  }

  const out: FlatHits[] = [];
  for (let qi = 0; qi < nq; qi++) {
    const { keys, rows } = heaps[qi]!.drain();
    const scores = new Float32Array(keys.length);
    for (let i = 0; i < keys.length; i++) scores[i] = metric === "L2" ? keys[i]! : 0 - keys[i]!;
    out.push({ rows, scores });
  }
  return out;
}

function checkRowIds(rowIds: Int32Array, n: number): void {
  let prev = -1;
  for (let i = 0; i < rowIds.length; i++) {
    const r = rowIds[i]!;
    if (r <= prev || r >= n) {
      throw VbError.invalid(
        r >= n
          ? `rowIds: row ${r} at index ${i} is out of range for ${n} rows`
          : `rowIds: must be strictly increasing, found ${r} after ${prev} at index ${i}`,
      );
    }
    prev = r;
  }
}

/** Hands out the candidates block by block: every row, the rows that pass the filter, or the rowIds (that pass). */
class CandidateCursor {
  private next = 0;
  private readonly end: number;
  /** the filter four rows a word, to skip four rejected rows at once (when its bytes are aligned) */
  private readonly words: Uint32Array | undefined;

  constructor(
    n: number,
    private readonly filter: Uint8Array | undefined,
    private readonly rowIds: Int32Array | undefined,
  ) {
    this.end = rowIds !== undefined ? rowIds.length : n;
    this.words =
      filter !== undefined && rowIds === undefined && (filter.byteOffset & 3) === 0
        ? new Uint32Array(filter.buffer, filter.byteOffset, filter.length >>> 2)
        : undefined;
  }

  /** Fills `cand` with the next candidates; returns how many (0: done). */
  fill(cand: Int32Array): number {
    const { filter, rowIds, end } = this;
    const cap = cand.length;
    let next = this.next;
    let m = 0;
    if (rowIds !== undefined) {
      if (filter === undefined) {
        for (const stop = Math.min(end, next + cap); next < stop; next++) cand[m++] = rowIds[next]!;
      } else {
        for (; next < end && m < cap; next++) {
          const r = rowIds[next]!;
          if (filter[r] !== 0) cand[m++] = r;
        }
      }
    } else if (filter === undefined) {
      for (const stop = Math.min(end, next + cap); next < stop; next++) cand[m++] = next;
    } else if (this.words !== undefined) {
      const words = this.words;
      const whole = words.length << 2;
      while (next < end && m < cap) {
        if ((next & 3) === 0 && next < whole && words[next >> 2] === 0) {
          next += 4;
          continue;
        }
        if (filter[next] !== 0) cand[m++] = next;
        next++;
      }
    } else {
      for (; next < end && m < cap; next++) if (filter[next] !== 0) cand[m++] = next;
    }
    this.next = next;
    return m;
  }
}

// Keys: smaller is better, on the float32 score. L2: the distance; IP and COSINE: the negated score
// (0 - x, which never yields -0).

function l2Keys(keys: Float64Array, m: number): void {
  for (let j = 0; j < m; j++) keys[j] = Math.fround(keys[j]!);
}

function ipKeys(keys: Float64Array, m: number): void {
  for (let j = 0; j < m; j++) keys[j] = 0 - Math.fround(keys[j]!);
}

function cosineKeys(keys: Float64Array, cand: Int32Array, m: number, norms: Float64Array): void {
  for (let j = 0; j < m; j++) {
    const norm = norms[cand[j]!]!;
    keys[j] = 0 - Math.fround(norm === 0 ? 0 : keys[j]! / norm);
  }
}

/** Offers the block's candidates to the heap; `t` is its threshold. NaN never enters. */
function admit(heap: TopKHeap, keys: Float64Array, cand: Int32Array, m: number, t: number): number {
  for (let j = 0; j < m; j++) {
    const key = keys[j]!;
    if (key <= t) t = heap.offer(key, cand[j]!);
  }
  return t;
}

/** The same for a range search: only keys in [lo, hi) enter. */
function admitInRange(heap: TopKHeap, keys: Float64Array, cand: Int32Array, m: number, t: number, lo: number, hi: number): number {
  for (let j = 0; j < m; j++) {
    const key = keys[j]!;
    if (key <= t && key >= lo && key < hi) t = heap.offer(key, cand[j]!);
  }
  return t;
}

// The kernels. Measured on Node 20 with the arrays passed in (as here, not module constants, which
// V8 folds and which make other shapes look faster): two rows a pass with four accumulators each, the
// query's four values loaded once for both rows, beat one row (≈ 1.2×) and four rows (≈ 1.9×). A row
// is always summed the same way (dimension d into accumulator d mod 4, the rest of dim % 4 into the
// first, then s0 + s1 + s2 + s3), whichever kernel takes it: its score never depends on the rows that
// share its block. The odd row of a block goes to a separate function: inside the same one, V8
// compiles the two-row loop to code half as fast.

/** out[j] = Σ q·v over the row cand[j], for j < m; two rows at a time. */
function dotBlock(v: Float32Array, dim: number, q: Float64Array, qo: number, cand: Int32Array, m: number, out: Float64Array): void {
  const d4 = dim & ~3;
  let j = 0;
  for (; j + 2 <= m; j += 2) {
    const a = cand[j]! * dim;
    const b = cand[j + 1]! * dim;
    let a0 = 0;
    let a1 = 0;
    let a2 = 0;
    let a3 = 0;
    let b0 = 0;
    let b1 = 0;
    let b2 = 0;
    let b3 = 0;
    let d = 0;
    for (; d < d4; d += 4) {
      const x0 = q[qo + d]!;
      const x1 = q[qo + d + 1]!;
      const x2 = q[qo + d + 2]!;
      const x3 = q[qo + d + 3]!;
      a0 += x0 * v[a + d]!;
      a1 += x1 * v[a + d + 1]!;
      a2 += x2 * v[a + d + 2]!;
      a3 += x3 * v[a + d + 3]!;
      b0 += x0 * v[b + d]!;
      b1 += x1 * v[b + d + 1]!;
      b2 += x2 * v[b + d + 2]!;
      b3 += x3 * v[b + d + 3]!;
    }
    for (; d < dim; d++) {
      const x = q[qo + d]!;
      a0 += x * v[a + d]!;
      b0 += x * v[b + d]!;
    }
    out[j] = a0 + a1 + a2 + a3;
    out[j + 1] = b0 + b1 + b2 + b3;
  }
  if (j < m) dotRow(v, dim, q, qo, cand[j]! * dim, out, j);
}

/** out[j] = Σ q·v over the row at offset a, summed as `dotBlock` sums it. */
function dotRow(v: Float32Array, dim: number, q: Float64Array, qo: number, a: number, out: Float64Array, j: number): void {
  const d4 = dim & ~3;
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let d = 0;
  for (; d < d4; d += 4) {
    s0 += q[qo + d]! * v[a + d]!;
    s1 += q[qo + d + 1]! * v[a + d + 1]!;
    s2 += q[qo + d + 2]! * v[a + d + 2]!;
    s3 += q[qo + d + 3]! * v[a + d + 3]!;
  }
  for (; d < dim; d++) s0 += q[qo + d]! * v[a + d]!;
  out[j] = s0 + s1 + s2 + s3;
}

/** out[j] = Σ (q−v)² over the row cand[j], for j < m; two rows at a time. */
function l2Block(v: Float32Array, dim: number, q: Float64Array, qo: number, cand: Int32Array, m: number, out: Float64Array): void {
  const d4 = dim & ~3;
  let j = 0;
  for (; j + 2 <= m; j += 2) {
    const a = cand[j]! * dim;
    const b = cand[j + 1]! * dim;
    let a0 = 0;
    let a1 = 0;
    let a2 = 0;
    let a3 = 0;
    let b0 = 0;
    let b1 = 0;
    let b2 = 0;
    let b3 = 0;
    let d = 0;
    for (; d < d4; d += 4) {
      const x0 = q[qo + d]!;
      const x1 = q[qo + d + 1]!;
      const x2 = q[qo + d + 2]!;
      const x3 = q[qo + d + 3]!;
      let t = x0 - v[a + d]!;
      a0 += t * t;
      t = x1 - v[a + d + 1]!;
      a1 += t * t;
      t = x2 - v[a + d + 2]!;
      a2 += t * t;
      t = x3 - v[a + d + 3]!;
      a3 += t * t;
      t = x0 - v[b + d]!;
      b0 += t * t;
      t = x1 - v[b + d + 1]!;
      b1 += t * t;
      t = x2 - v[b + d + 2]!;
      b2 += t * t;
      t = x3 - v[b + d + 3]!;
      b3 += t * t;
    }
    for (; d < dim; d++) {
      const x = q[qo + d]!;
      let t = x - v[a + d]!;
      a0 += t * t;
      t = x - v[b + d]!;
      b0 += t * t;
    }
    out[j] = a0 + a1 + a2 + a3;
    out[j + 1] = b0 + b1 + b2 + b3;
  }
  if (j < m) l2Row(v, dim, q, qo, cand[j]! * dim, out, j);
}

/** out[j] = Σ (q−v)² over the row at offset a, summed as `l2Block` sums it. */
function l2Row(v: Float32Array, dim: number, q: Float64Array, qo: number, a: number, out: Float64Array, j: number): void {
  const d4 = dim & ~3;
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let d = 0;
  for (; d < d4; d += 4) {
    let t = q[qo + d]! - v[a + d]!;
    s0 += t * t;
    t = q[qo + d + 1]! - v[a + d + 1]!;
    s1 += t * t;
    t = q[qo + d + 2]! - v[a + d + 2]!;
    s2 += t * t;
    t = q[qo + d + 3]! - v[a + d + 3]!;
    s3 += t * t;
  }
  for (; d < dim; d++) {
    const t = q[qo + d]! - v[a + d]!;
    s0 += t * t;
  }
  out[j] = s0 + s1 + s2 + s3;
}
