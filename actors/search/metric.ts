/**
 * Similarity metrics as Milvus defines them for float vectors:
 *
 * - `L2`: the squared Euclidean distance Σ(q−x)², smaller is better (Milvus does not take the root);
 * - `IP`: the inner product Σq·x, larger is better;
 * - `COSINE`: the cosine similarity q·x / (|q|·|x|) in [−1, 1], larger is better. A zero vector has
 *   no direction: its similarity with anything is 0.
 *
 * Scores leave the search plane as float32 (a `Float32Array`), as Milvus returns them; sums are taken
 * in float64 and rounded once.
 */
import { VbError } from "../../protocol/errors.ts";

export type Metric = "L2" | "IP" | "COSINE";

export const METRICS: readonly Metric[] = ["L2", "IP", "COSINE"];

/** Whether a larger score is a better hit: true for IP and COSINE, false for L2. */
export function largerIsBetter(metric: Metric): boolean {
  return metric !== "L2";
}

/** Whether score `a` ranks strictly before score `b` under `metric`. */
export function isBetter(metric: Metric, a: number, b: number): boolean {
  return metric === "L2" ? a < b : a > b;
}

/** A metric name from a request (any case, as Milvus accepts it), or 1100 naming the field. */
export function parseMetric(value: unknown, field = "metric_type"): Metric {
  const name = typeof value === "string" ? value.toUpperCase() : undefined;
  if (name === "L2" || name === "IP" || name === "COSINE") return name;
  throw VbError.invalid(`${field}: unknown metric ${JSON.stringify(value)}; use one of ${METRICS.join(", ")}`);
}

/** The Euclidean norm of every row of `vectors` (n × dim), in float64: what COSINE divides by. */
export function rowNorms(vectors: Float32Array, dim: number): Float64Array {
  checkShape(vectors, dim, "vectors");
  const n = vectors.length / dim;
  const out = new Float64Array(n);
  for (let r = 0, o = 0; r < n; r++, o += dim) out[r] = Math.sqrt(sumSquares(vectors, o, dim));
  return out;
}

/**
 * A copy of `vectors` (n × dim) with every row scaled to unit length; a zero row stays zero. With
 * normalized rows and queries, COSINE equals IP.
 */
export function normalize(vectors: Float32Array, dim: number): Float32Array {
  checkShape(vectors, dim, "vectors");
  const out = new Float32Array(vectors.length);
  for (let o = 0; o < vectors.length; o += dim) {
    const norm = Math.sqrt(sumSquares(vectors, o, dim));
    if (norm === 0) continue;
    const inv = 1 / norm;
    for (let d = 0; d < dim; d++) out[o + d] = vectors[o + d]! * inv;
  }
  return out;
}

function sumSquares(v: Float32Array, o: number, dim: number): number {
  let s = 0;
  for (let d = 0; d < dim; d++) {
    const x = v[o + d]!;
    s += x * x;
  }
  return s;
}

/** `values` must hold whole rows of `dim` floats; 1100 naming `field` otherwise. */
export function checkShape(values: Float32Array, dim: number, field: string): void {
  if (!Number.isInteger(dim) || dim < 1) throw VbError.invalid(`dim: must be a positive integer, got ${dim}`);
  if (values.length % dim !== 0) {
    throw VbError.invalid(`${field}: ${values.length} floats is not a whole number of rows of dim ${dim}`);
  }
}
