/**
 * Exact scoring for the index layer, on the segment's raw vectors with the FLAT kernel (`searchFlat`),
 * so every hit an index returns carries the very score (and tie order) an exact search gives it:
 *
 * - `exactSearch`: the whole segment, or only the rows a filter passes (given as a list when few pass);
 * - `rescore`: one query over a short list of candidates (an index's answer): the candidate rows are
 *   gathered into a small matrix first, so COSINE needs the norms of those rows only.
 *
 * COSINE over the whole segment needs every row's norm: the caller may pass them (a segment keeps
 * them), else they are computed once per vectors array and kept while that array lives.
 */
import { passingRows } from "../search/bitset.ts";
import { type FlatHits, searchFlat } from "../search/flat.ts";
import { type Metric, rowNorms } from "../search/metric.ts";

const normsCache = new WeakMap<Float32Array, Float64Array>();

/** The rows' norms for COSINE: `given` when it fits, else computed once per `vectors` array. */
export function normsOf(vectors: Float32Array, dim: number, given?: Float64Array): Float64Array {
  if (given !== undefined && given.length * dim === vectors.length) return given;
  let norms = normsCache.get(vectors);
  if (norms === undefined) {
    norms = rowNorms(vectors, dim);
    normsCache.set(vectors, norms);
  }
  return norms;
}

export interface ExactParams {
  vectors: Float32Array;
  dim: number;
  queries: Float32Array;
  k: number;
  metric: Metric;
  filter?: Uint8Array;
  /** how many rows the filter passes, when known */
  passing?: number;
  norms?: Float64Array;
}

/** Exact top-k of every query over the rows the filter passes (all rows without one). */
export function exactSearch(p: ExactParams): FlatHits[] {
  const { vectors, dim, filter } = p;
  const n = vectors.length / dim;
  const norms = p.metric === "COSINE" ? normsOf(vectors, dim, p.norms) : undefined;
  // a list of passing rows beats a byte scan when few pass (read_kernel makes the same choice)
  const selective = filter !== undefined && p.passing !== undefined && p.passing * 16 < n;
  return searchFlat({
    vectors,
    dim,
    queries: p.queries,
    k: p.k,
    metric: p.metric,
    ...(filter === undefined ? {} : selective ? { rowIds: passingRows(filter) } : { filter }),
    ...(norms === undefined ? {} : { norms }),
  });
}

/**
 * The exact top-k of one query among `candidates` (row offsets in any order, no repeats), with the
 * scores and tie order `searchFlat` gives over the whole segment.
 */
export function rescore(vectors: Float32Array, dim: number, query: Float32Array, candidates: Int32Array, k: number, metric: Metric): FlatHits {
  const m = candidates.length;
  if (m === 0) return { rows: new Int32Array(0), scores: new Float32Array(0) };
  // increasing row order, so equal scores fall to the smaller row offset as they do in a full scan
  const sorted = Int32Array.from(candidates).sort();
  const gathered = new Float32Array(m * dim);
  for (let i = 0; i < m; i++) {
    const o = sorted[i]! * dim;
    gathered.set(vectors.subarray(o, o + dim), i * dim);
  }
  const [hits] = searchFlat({ vectors: gathered, dim, queries: query, k, metric });
  const rows = hits!.rows;
  for (let i = 0; i < rows.length; i++) rows[i] = sorted[rows[i]!]!;
  return hits!;
}
