/**
 * Seeded k-means for IVF's coarse quantizer (faiss's recipe, small): train on a sample of at most
 * `samplePerCentroid` rows a centroid, start from distinct sample rows, run a few Lloyd iterations,
 * and split the largest cluster into any that comes out empty. The nearest-centroid step, the heavy
 * part, is usearch's exact search (native, SIMD, on every core); the update is plain JS.
 *
 * `spherical` (COSINE): the sample is scaled to unit length and the centroids are kept at unit length,
 * so the nearest centroid by L2 is the most similar by cosine.
 */
import { exactSearch as nativeExactSearch, MetricKind } from "usearch";
import { THREADS } from "./usearch_engine.ts";

export interface KMeansOptions {
  iterations: number;
  seed: number;
  samplePerCentroid: number;
  spherical: boolean;
}

export const DEFAULT_KMEANS: Readonly<KMeansOptions> = { iterations: 10, seed: 0x5eed, samplePerCentroid: 64, spherical: false };

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `k` centroids (k × dim) for the rows of `vectors` (k ≤ rows). */
export async function trainKMeans(vectors: Float32Array, dim: number, k: number, opts: KMeansOptions): Promise<Float32Array> {
  const n = vectors.length / dim;
  const rand = mulberry32(opts.seed);
  const m = Math.min(n, Math.max(k, k * opts.samplePerCentroid));
  const picked = sampleRows(n, m, rand);
  const sample = new Float32Array(m * dim);
  for (let i = 0; i < m; i++) sample.set(vectors.subarray(picked[i]! * dim, (picked[i]! + 1) * dim), i * dim);
  if (opts.spherical) normalizeRows(sample, dim);

  // start from k distinct sample rows (the sample is already in random order)
  const centroids = sample.slice(0, k * dim);
  const sums = new Float64Array(k * dim);
  const counts = new Int32Array(k);
  for (let it = 0; it < opts.iterations; it++) {
    const assign = nearestCentroids(centroids, k, sample, dim, "l2sq");
    sums.fill(0);
    counts.fill(0);
    for (let i = 0; i < m; i++) {
      const c = assign[i]!;
      counts[c] = counts[c]! + 1;
      const so = c * dim;
      const vo = i * dim;
      for (let d = 0; d < dim; d++) sums[so + d] += sample[vo + d]!;
    }
    for (let c = 0; c < k; c++) {
      if (counts[c] === 0) continue;
      const inv = 1 / counts[c]!;
      for (let d = 0; d < dim; d++) centroids[c * dim + d] = sums[c * dim + d]! * inv;
    }
    splitEmpty(centroids, counts, dim);
    if (opts.spherical) normalizeRows(centroids, dim);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return centroids;
}

/**
 * The nearest of `k` centroids for each row of `rows`: by squared L2, or by largest inner product
 * (`ip`). Native exact search on every core.
 *
 * usearch 2.25's `exactSearch` fills a rows × centroids matrix of (offset, distance) pairs twice over
 * (16 B a pair) before it picks the best: it is called on slices of rows that keep that near 4 MB. It
 * also reads both matrices from the start of their ArrayBuffer, ignoring a typed array's byteOffset
 * (`Index.add`/`search` honour it): every slice is a copy of its own.
 */
export function nearestCentroids(centroids: Float32Array, k: number, rows: Float32Array, dim: number, metric: "l2sq" | "ip"): Int32Array {
  const nr = rows.length / dim;
  const out = new Int32Array(nr);
  if (nr === 0) return out;
  const data = centroids.byteOffset === 0 && centroids.length === k * dim ? centroids : centroids.slice(0, k * dim);
  const step = Math.max(1, Math.floor(PAIRS_PER_CALL / k));
  for (let start = 0; start < nr; start += step) {
    const end = Math.min(nr, start + step);
    const res = nativeExactSearch(
      data,
      rows.slice(start * dim, end * dim),
      dim,
      1,
      metric === "l2sq" ? MetricKind.L2sq : MetricKind.IP,
      THREADS,
    ) as { keys: BigUint64Array };
    // offsets < 2^32: the low half of each u64 key
    const low = new Uint32Array(res.keys.buffer, res.keys.byteOffset, res.keys.length * 2);
    for (let i = 0; i < end - start; i++) out[start + i] = low[2 * i]!;
  }
  return out;
}

/** Row × centroid pairs a native call scores (16 B each in its scratch matrices, twice). */
const PAIRS_PER_CALL = 1 << 17;

/** `m` distinct row offsets out of `n`, in random order (a partial Fisher–Yates shuffle). */
function sampleRows(n: number, m: number, rand: () => number): Int32Array {
  const perm = new Int32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  for (let i = 0; i < m; i++) {
    const j = i + Math.floor(rand() * (n - i));
    const t = perm[i]!;
    perm[i] = perm[j]!;
    perm[j] = t;
  }
  return perm.subarray(0, m);
}

/** An empty cluster takes half of the largest one: both centroids move a hair apart (faiss does this). */
function splitEmpty(centroids: Float32Array, counts: Int32Array, dim: number): void {
  const k = counts.length;
  for (let c = 0; c < k; c++) {
    if (counts[c] !== 0) continue;
    let big = 0;
    for (let j = 1; j < k; j++) if (counts[j]! > counts[big]!) big = j;
    if (counts[big]! < 2) return;
    const eps = 1 / 1024;
    for (let d = 0; d < dim; d++) {
      const x = centroids[big * dim + d]!;
      const sign = d % 2 === 0 ? 1 : -1;
      centroids[c * dim + d] = x * (1 + sign * eps) + sign * eps;
      centroids[big * dim + d] = x * (1 - sign * eps) - sign * eps;
    }
    counts[c] = counts[big]! >> 1;
    counts[big] = counts[big]! - counts[c]!;
  }
}

/** Scales every row to unit length in place (a zero row stays zero). */
export function normalizeRows(v: Float32Array, dim: number): void {
  for (let o = 0; o < v.length; o += dim) {
    let s = 0;
    for (let d = 0; d < dim; d++) s += v[o + d]! * v[o + d]!;
    if (s === 0) continue;
    const inv = 1 / Math.sqrt(s);
    for (let d = 0; d < dim; d++) v[o + d] = v[o + d]! * inv;
  }
}
