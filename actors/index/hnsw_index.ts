/**
 * The HNSW family (HNSW, HNSW_SQ8, HNSW_FP16, AUTOINDEX) on usearch.
 *
 * The artifact holds usearch's serialized graph (section `usearch`) and the codec that turned rows
 * into what the graph holds (`vector_codec.ts`; section `shift` for SQ8 with L2). A search asks the
 * graph for `max(k, ef)` candidates (an ef search: see usearch_engine.ts) and scores candidates exactly
 * on the raw vectors (`exact.ts`): all of them for the quantized types (the refinement that restores
 * full-precision order), the first k for f32, whose graph distances already rank them (there it only
 * makes the scores exactly those of `searchFlat`). Filtered searches follow `filter_policy.ts`.
 */
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import type { FlatHits } from "../search/flat.ts";
import type { Metric } from "../search/metric.ts";
import { type Artifact, bytesOf, encodeArtifact, viewAs } from "./artifact.ts";
import { exactSearch, rescore } from "./exact.ts";
import { type FilterPolicy, nextFetch, planFilteredSearch } from "./filter_policy.ts";
import { type HnswIndexType, type HnswParams, type IndexSpec, resolveSearchKnobs } from "./index_params.ts";
import { usearchLoadedBytes } from "./memory.ts";
import { countPassing } from "../search/bitset.ts";
import { checkSearch, type IndexSearchParams, type LoadedIndex, newSearchStats } from "./loaded_index.ts";
import { buildEngine, Engine, type EngineConfig } from "./usearch_engine.ts";
import { type Quantization, VectorCodec } from "./vector_codec.ts";

export function quantizationOf(t: HnswIndexType): Quantization {
  return t === "HNSW_SQ8" ? "i8" : t === "HNSW_FP16" ? "f16" : "f32";
}

export async function buildHnsw(spec: IndexSpec & { params: HnswParams }, vectors: Float32Array, dim: number): Promise<Uint8Array> {
  const rows = vectors.length / dim;
  const quantization = quantizationOf(spec.indexType as HnswIndexType);
  const codec = VectorCodec.fit(quantization, spec.metric, vectors, dim);
  const config: EngineConfig = {
    dim: codec.engineDim,
    metric: codec.engineMetric,
    quantization,
    M: spec.params.M,
    efConstruction: spec.params.efConstruction,
  };
  const graph = await buildEngine(config, rows, (start, end) => codec.encodeRows(vectors.subarray(start * dim, end * dim)));
  const state = codec.state();
  return encodeArtifact(
    {
      indexType: spec.indexType,
      metric: spec.metric,
      dim,
      rows,
      params: spec.params,
      extra: {
        engine: "usearch",
        quantization,
        engineMetric: config.metric,
        engineDim: config.dim,
        codecScale: state.scale,
        ...(state.radius !== undefined ? { codecRadius: state.radius } : {}),
      },
    },
    [{ name: "usearch", bytes: graph }, ...(state.shift ? [{ name: "shift", bytes: bytesOf(state.shift) }] : [])],
  );
}

export class LoadedHnswIndex implements LoadedIndex {
  readonly indexType: HnswIndexType;
  readonly metric: Metric;
  readonly dim: number;
  readonly rows: number;
  readonly spec: IndexSpec;
  readonly memoryBytes: number;
  readonly stats = newSearchStats();
  private readonly engine: Engine;
  private readonly codec: VectorCodec;
  /** f32 candidates come ranked by their true distance: only the first k need exact scores */
  private readonly refineAll: boolean;

  constructor(
    artifact: Artifact,
    private readonly policy: FilterPolicy,
  ) {
    const h = artifact.header;
    this.indexType = h.indexType as HnswIndexType;
    this.metric = h.metric;
    this.dim = h.dim;
    this.rows = h.rows;
    this.spec = { indexType: this.indexType, metric: h.metric, params: h.params as HnswParams };
    const quantization = quantizationOf(this.indexType);
    const hasShift = h.sections.some((s) => s.name === "shift");
    this.codec = VectorCodec.restore(h.dim, {
      quantization,
      metric: h.metric,
      scale: Number(h.extra["codecScale"] ?? 1),
      ...(h.extra["codecRadius"] !== undefined ? { radius: Number(h.extra["codecRadius"]) } : {}),
      ...(hasShift ? { shift: Float32Array.from(viewAs(artifact.section("shift"), Float32Array)) } : {}),
    });
    this.refineAll = quantization !== "f32";
    const graph = artifact.section("usearch");
    const params = h.params as HnswParams;
    this.engine = Engine.open(
      { dim: this.codec.engineDim, metric: this.codec.engineMetric, quantization, M: params.M, efConstruction: params.efConstruction },
      graph,
    );
    if (this.engine.size !== h.rows) throw VbError.invalid(`bytes: usearch index holds ${this.engine.size} rows, header says ${h.rows}`);
    this.memoryBytes = usearchLoadedBytes(graph.byteLength, h.rows);
  }

  search(p: IndexSearchParams): FlatHits[] {
    const { dim, rows, metric } = this;
    if (this.engine.closed) throw new VbError(ErrorCode.IndexNotFound, "index: closed; load it again");
    const nq = checkSearch(p, dim, rows);
    const { k, vectors, filter } = p;
    const { ef } = resolveSearchKnobs(this.spec, k, p.params);
    const empty = () => Array.from({ length: nq }, () => ({ rows: new Int32Array(0), scores: new Float32Array(0) }));
    if (rows === 0 || nq === 0) return empty();
    const base = Math.min(rows, Math.max(k, ef));
    const passing = filter === undefined ? rows : countPassing(filter);
    const plan = planFilteredSearch(this.policy, rows, passing, k, Math.max(k, ef));
    const query = (q: number) => p.queries.subarray(q * dim, (q + 1) * dim);
    const stats = this.stats;
    stats.queries += nq;
    if (plan.kind === "none") return empty();
    if (plan.kind === "exact") {
      stats.exactQueries += nq;
      return exactSearch({ vectors, dim, queries: p.queries, k, metric, filter: filter!, passing, ...(p.norms ? { norms: p.norms } : {}) });
    }
    const encoded = this.codec.encodeQueries(p.queries);
    if (plan.kind === "all") {
      stats.indexQueries += nq;
      const cands = this.engine.search(encoded, nq, base);
      return cands.map((c, q) => rescore(vectors, dim, query(q), this.depth(c, k), k, metric));
    }

    // over-fetch, drop the rows the filter rejects, grow the fetch for the queries that came up short
    const out: (FlatHits | undefined)[] = new Array(nq);
    const need = Math.min(k, passing);
    let pending = Array.from({ length: nq }, (_, q) => q);
    let fetch = plan.fetch;
    while (pending.length > 0) {
      const cands = this.engine.search(gatherRows(encoded, this.codec.engineDim, pending), pending.length, fetch);
      const short: number[] = [];
      pending.forEach((q, i) => {
        const kept = keepPassing(cands[i]!, filter!);
        if (kept.length >= need) {
          out[q] = rescore(vectors, dim, query(q), this.depth(kept, k), k, metric);
          stats.indexQueries++;
        } else {
          short.push(q);
        }
      });
      pending = short;
      fetch = nextFetch(fetch, plan.maxFetch, rows);
      if (pending.length > 0 && fetch !== 0) stats.refetches += pending.length;
      if (pending.length > 0 && fetch === 0) {
        stats.exactQueries += pending.length;
        const hits = exactSearch({
          vectors,
          dim,
          queries: gatherRows(p.queries, dim, pending) as Float32Array,
          k,
          metric,
          filter: filter!,
          passing,
          ...(p.norms ? { norms: p.norms } : {}),
        });
        pending.forEach((q, i) => (out[q] = hits[i]!));
        pending = [];
      }
    }
    return out as FlatHits[];
  }

  /** The candidates to score exactly: all of them, or the first k for f32. */
  private depth(cands: Int32Array, k: number): Int32Array {
    return this.refineAll || cands.length <= k ? cands : cands.subarray(0, k);
  }

  close(): void {
    this.engine.close();
  }
}

/** The rows of `which` of a row-major matrix of `width` columns, in order (the matrix itself when it is all of them). */
function gatherRows<T extends Float32Array | Int8Array>(m: T, width: number, which: number[]): T {
  if (which.length * width === m.length) return m;
  const out = new (m.constructor as { new (n: number): T })(which.length * width);
  which.forEach((r, i) => out.set(m.subarray(r * width, (r + 1) * width), i * width));
  return out;
}

function keepPassing(cands: Int32Array, filter: Uint8Array): Int32Array {
  let m = 0;
  for (let i = 0; i < cands.length; i++) if (filter[cands[i]!] !== 0) m++;
  if (m === cands.length) return cands;
  const out = new Int32Array(m);
  m = 0;
  for (let i = 0; i < cands.length; i++) if (filter[cands[i]!] !== 0) out[m++] = cands[i]!;
  return out;
}
