/**
 * What a row or a query becomes before it reaches usearch: the HNSW graph ranks candidates on these
 * encodings; the final scores are always recomputed on the raw vectors (`exact.ts`), so an encoding
 * only has to keep the order of neighbours (nearly) right.
 *
 * - COSINE: rows and queries are scaled to unit length and usearch ranks them by inner product, so a
 *   zero vector has similarity 0 with everything (Milvus's convention; usearch's own `cos` calls a zero
 *   vector a perfect match).
 * - IP: inner product is not a distance, and an HNSW graph built on it leaves rows unreachable (on
 *   20k × 64 clustered rows usearch's IP graph reached 19,454 rows from its entry point, its L2 graph
 *   19,980), which a selective filter then cannot find. So IP is reduced to L2 (Bachrach et al. 2014):
 *   each row gets one more coordinate √(R² − |x|²), R the largest row norm, and each query a 0; then
 *   |q − x|² = |q|² + R² − 2 q·x, and the L2 order is the IP order.
 * - `f32` (HNSW): otherwise values go in as they are.
 * - `f16` (HNSW_FP16): every value is multiplied by 1 / max|x| of the rows, which keeps huge and tiny
 *   values inside half precision's range (a common factor changes no L2 or IP order).
 * - `i8` (HNSW_SQ8): our own scalar quantizer, because usearch's f32 → i8 cast scales each vector to
 *   unit length first (it assumes cosine) and would lose the norms L2 and IP depend on. One scale for
 *   all dimensions (a per-dimension scale would change the order): L2: round((x − c) · s) with c the
 *   per-dimension mid-range and s = 127 / the largest half-range; IP: s = 127 / R (the extra
 *   coordinate must fit too), a query scaled by its own 127 / max|q| (a positive factor on the query
 *   keeps the order); COSINE: the unit vector · 127.
 */
import { VbError } from "../../protocol/errors.ts";
import type { Metric } from "../search/metric.ts";

export type Quantization = "f32" | "f16" | "i8";

/** The metric usearch is told: squared L2 (L2, and IP once reduced to L2), or inner product (COSINE on unit vectors). */
export type EngineMetric = "l2sq" | "ip";

export interface CodecState {
  quantization: Quantization;
  metric: Metric;
  /** the common factor (1 when unused) */
  scale: number;
  /** i8 with L2: the per-dimension centre subtracted before scaling */
  shift?: Float32Array;
  /** IP: R, the largest row norm after scaling, that the extra coordinate completes rows to */
  radius?: number;
}

export class VectorCodec {
  readonly quantization: Quantization;
  readonly metric: Metric;
  readonly dim: number;
  private readonly scale: number;
  private readonly shift: Float32Array | undefined;
  private readonly radius: number | undefined;

  private constructor(dim: number, state: CodecState) {
    this.dim = dim;
    this.quantization = state.quantization;
    this.metric = state.metric;
    this.scale = state.scale;
    this.shift = state.shift;
    this.radius = state.radius;
  }

  /** Fits the codec to the rows it will encode (one pass over them, none for f32 with L2 or COSINE). */
  static fit(quantization: Quantization, metric: Metric, vectors: Float32Array, dim: number): VectorCodec {
    if (metric === "COSINE") return new VectorCodec(dim, { quantization, metric, scale: quantization === "i8" ? 127 : 1 });
    if (metric === "IP") {
      let maxNorm2 = 0;
      let maxAbs = 0;
      for (let o = 0; o < vectors.length; o += dim) {
        let s = 0;
        for (let d = 0; d < dim; d++) {
          const x = vectors[o + d]!;
          s += x * x;
          if (Math.abs(x) > maxAbs) maxAbs = Math.abs(x);
        }
        if (s > maxNorm2) maxNorm2 = s;
      }
      const norm = Math.sqrt(maxNorm2);
      const usable = (x: number) => x > 0 && Number.isFinite(x);
      const scale = quantization === "i8" ? (usable(norm) ? 127 / norm : 1) : quantization === "f16" && usable(maxAbs) ? 1 / maxAbs : 1;
      return new VectorCodec(dim, { quantization, metric, scale, radius: norm * scale });
    }
    if (quantization === "f32") return new VectorCodec(dim, { quantization, metric, scale: 1 });
    if (quantization === "f16") {
      let max = 0;
      for (let i = 0; i < vectors.length; i++) max = Math.max(max, Math.abs(vectors[i]!));
      return new VectorCodec(dim, { quantization, metric, scale: max > 0 && Number.isFinite(max) ? 1 / max : 1 });
    }
    // i8 with L2: centre each dimension on its mid-range, one scale for all
    const n = vectors.length / dim;
    const lo = new Float64Array(dim).fill(Infinity);
    const hi = new Float64Array(dim).fill(-Infinity);
    for (let r = 0, o = 0; r < n; r++, o += dim) {
      for (let d = 0; d < dim; d++) {
        const x = vectors[o + d]!;
        if (x < lo[d]!) lo[d] = x;
        if (x > hi[d]!) hi[d] = x;
      }
    }
    const shift = new Float32Array(dim);
    let half = 0;
    for (let d = 0; d < dim && n > 0; d++) {
      shift[d] = (lo[d]! + hi[d]!) / 2;
      half = Math.max(half, hi[d]! - shift[d]!, shift[d]! - lo[d]!);
    }
    return new VectorCodec(dim, { quantization, metric, scale: half > 0 && Number.isFinite(half) ? 127 / half : 1, shift });
  }

  /** The codec of an artifact, from the state `state()` gave. */
  static restore(dim: number, state: CodecState): VectorCodec {
    if (state.shift !== undefined && state.shift.length !== dim) {
      throw VbError.invalid(`bytes: codec shift has ${state.shift.length} values for dim ${dim}`);
    }
    if (!(state.scale > 0) || (state.metric === "IP") !== (state.radius !== undefined)) {
      throw VbError.invalid("bytes: codec state does not fit its metric");
    }
    return new VectorCodec(dim, state);
  }

  state(): CodecState {
    return {
      quantization: this.quantization,
      metric: this.metric,
      scale: this.scale,
      ...(this.shift ? { shift: this.shift } : {}),
      ...(this.radius !== undefined ? { radius: this.radius } : {}),
    };
  }

  get engineMetric(): EngineMetric {
    return this.metric === "COSINE" ? "ip" : "l2sq";
  }

  /** The dimensions usearch holds: one more than the vectors for IP. */
  get engineDim(): number {
    return this.radius === undefined ? this.dim : this.dim + 1;
  }

  /** Rows (n × dim) as usearch takes them for this index: Float32Array, or Int8Array codes for i8. */
  encodeRows(vectors: Float32Array): Float32Array | Int8Array {
    return this.encode(vectors, false);
  }

  /** Queries (nq × dim) as usearch must see them to rank like the rows. */
  encodeQueries(queries: Float32Array): Float32Array | Int8Array {
    return this.encode(queries, true);
  }

  private encode(v: Float32Array, queries: boolean): Float32Array | Int8Array {
    const { dim, metric, quantization, shift, radius } = this;
    if (quantization !== "i8" && metric === "L2" && this.scale === 1) return v;
    const edim = this.engineDim;
    const m = v.length / dim;
    const out = quantization === "i8" ? new Int8Array(m * edim) : new Float32Array(m * edim);
    for (let r = 0; r < m; r++) {
      const o = r * dim;
      const e = r * edim;
      let factor = this.scale;
      if (metric === "COSINE") {
        let s = 0;
        for (let d = 0; d < dim; d++) s += v[o + d]! * v[o + d]!;
        factor = s > 0 ? this.scale / Math.sqrt(s) : 0;
      } else if (metric === "IP" && quantization === "i8" && queries) {
        let max = 0;
        for (let d = 0; d < dim; d++) max = Math.max(max, Math.abs(v[o + d]!));
        factor = max > 0 ? 127 / max : 0;
      }
      let norm2 = 0;
      for (let d = 0; d < dim; d++) {
        const x = (v[o + d]! - (shift === undefined ? 0 : shift[d]!)) * factor;
        norm2 += x * x;
        out[e + d] = out instanceof Int8Array ? toI8(x) : x;
      }
      // IP reduced to L2: rows are completed to norm R, queries get 0
      if (radius !== undefined) {
        const extra = queries ? 0 : Math.sqrt(Math.max(0, radius * radius - norm2));
        out[e + dim] = out instanceof Int8Array ? toI8(extra) : extra;
      }
    }
    return out;
  }
}

function toI8(x: number): number {
  return x >= 127 ? 127 : x <= -127 ? -127 : Math.round(x);
}
