/**
 * The vector index layer (actors/index) against the raw usearch library on the same data, in the same
 * run: HNSW (M 16, efConstruction 128, ef 64), L2, seeded clustered data (Gaussian clusters), one query
 * per call on one thread unless said otherwise. Recall@10 is against exact `searchFlat`.
 *
 * `npm run bench -- vector_index --json [--rows 100000] [--dim 128] [--k 10] [--seconds 2]` prints
 * `{build_s, raw_usearch_qps, layer_qps, recall_at_10, filtered_10_qps, filtered_10_recall,
 * filtered_1_qps, filtered_1_recall, ...}`; beside them a batch of 64 queries a call (both cores), the
 * HNSW_SQ8 / HNSW_FP16 / IVF_FLAT figures, memory (the layer's estimate, its figure for the loaded
 * index, and the RSS growth at load), and the filter sweep that sets `DEFAULT_FILTER_POLICY`: at each
 * pass ratio, queries a second over the index (over-fetch) and over only the passing rows (exact).
 */
import { loadavg } from "node:os";
import { Index, MetricKind, ScalarKind } from "usearch";
import {
  buildIndex,
  DEFAULT_FILTER_POLICY,
  defaultEf,
  estimateIndexMemory,
  INDEX_ONLY_POLICY,
  loadIndex,
  planFilteredSearch,
  type LoadedIndex,
} from "../actors/index/index.ts";
import { mulberry32 } from "../actors/index/kmeans.ts";
import { countPassing } from "../actors/search/bitset.ts";
import { type FlatHits, searchFlat } from "../actors/search/flat.ts";
import { option, rateFor, report, round } from "./util.ts";

function gaussian(rand: () => number): number {
  let u = 0;
  while (u === 0) u = rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

/** Rows around `clusters` Gaussian centres (N(0,1) each coordinate), N(0,1) noise; queries from the same mixture. */
function clusteredData(seed: number, n: number, nq: number, dim: number, clusters: number) {
  const rand = mulberry32(seed);
  const centres = new Float32Array(clusters * dim);
  for (let i = 0; i < centres.length; i++) centres[i] = gaussian(rand);
  const draw = (m: number) => {
    const v = new Float32Array(m * dim);
    for (let r = 0; r < m; r++) {
      const c = Math.floor(rand() * clusters);
      for (let d = 0; d < dim; d++) v[r * dim + d] = centres[c * dim + d]! + gaussian(rand);
    }
    return v;
  };
  return { vectors: draw(n), queries: draw(nq), rand };
}

function randomFilter(rand: () => number, n: number, ratio: number): Uint8Array {
  const f = new Uint8Array(n);
  for (let i = 0; i < n; i++) f[i] = rand() < ratio ? 1 : 0;
  return f;
}

function recall(got: { rows: ArrayLike<number> }[], truth: FlatHits[]): number {
  let hit = 0;
  let total = 0;
  got.forEach((g, q) => {
    const t = new Set(truth[q]!.rows);
    total += t.size;
    for (let i = 0; i < g.rows.length; i++) if (t.has(Number(g.rows[i]))) hit++;
  });
  return total === 0 ? 1 : hit / total;
}

const qps = (seconds: number, perCall: number, op: (i: number) => unknown) => rateFor(seconds, perCall, op, 20).wall;

export async function main(args: string[]): Promise<void> {
  const n = option(args, "rows", 100_000);
  const dim = option(args, "dim", 128);
  const k = option(args, "k", 10);
  const seconds = option(args, "seconds", 2);
  const nq = option(args, "queries", 200);
  const M = 16;
  const efConstruction = 128;
  const ef = defaultEf("HNSW", k);
  const metric = "L2" as const;
  const { vectors, queries, rand } = clusteredData(42, n, nq, dim, option(args, "clusters", 100));
  const query = (i: number) => queries.subarray((i % nq) * dim, ((i % nq) + 1) * dim);
  const truth = searchFlat({ vectors, dim, queries, k, metric });

  // the layer: build, load, one query a call
  const rss0 = process.memoryUsage().rss;
  let t0 = performance.now();
  const bytes = await buildIndex({ vectors, dim, metric, indexType: "HNSW", params: { M, efConstruction } });
  const buildS = (performance.now() - t0) / 1000;
  const rss1 = process.memoryUsage().rss;
  const index = loadIndex(bytes);
  const rssLoad = process.memoryUsage().rss - rss1;
  const search1 = (idx: LoadedIndex, filter?: Uint8Array) => (i: number) =>
    idx.search({ queries: query(i), nq: 1, k, vectors, ...(filter ? { filter } : {}) });
  const layer = rateFor(seconds, 1, search1(index), 20);
  const layerRecall = recall(index.search({ queries, nq, k, vectors }), truth);
  const batch = 64;
  const layerBatchQps = qps(seconds, batch, (i) => {
    const o = (i * batch) % (nq - batch + 1);
    return index.search({ queries: queries.subarray(o * dim, (o + batch) * dim), nq: batch, k, vectors });
  });

  // raw usearch: same data and params, one query a call on one thread
  t0 = performance.now();
  const raw = new Index({
    dimensions: dim,
    metric: MetricKind.L2sq,
    quantization: ScalarKind.F32,
    connectivity: M,
    expansion_add: efConstruction,
    expansion_search: ef,
    multi: false,
  });
  raw.add(BigUint64Array.from({ length: n }, (_, i) => BigInt(i)), vectors, 0);
  const rawBuildS = (performance.now() - t0) / 1000;
  const rawRate = rateFor(seconds, 1, (i) => raw.search(query(i), k, 1), 20);
  const rawRecall = recall(
    Array.from({ length: nq }, (_, q) => ({ rows: Array.from(raw.search(query(q), k, 1).keys, Number) })),
    truth,
  );
  const rawBatchQps = qps(seconds, batch, (i) => {
    const o = (i * batch) % (nq - batch + 1);
    return raw.search(queries.subarray(o * dim, (o + batch) * dim), k, 0);
  });

  // filtered: the layer as it decides, and both paths forced, at each pass ratio
  const forcedIndex = loadIndex(bytes, { filterPolicy: INDEX_ONLY_POLICY });
  const forcedExact = loadIndex(bytes, { filterPolicy: { exactMaxRows: n } });
  const filtered: Record<string, number | string> = {};
  for (const ratio of [0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.001]) {
    const f = randomFilter(rand, n, ratio);
    const name = String(ratio * 100).replace(".", "_");
    const ftruth = searchFlat({ vectors, dim, queries, k, metric, filter: f });
    const plan = planFilteredSearch(DEFAULT_FILTER_POLICY, n, countPassing(f), k, ef);
    filtered[`filtered_${name}_path`] = plan.kind === "index" ? `index(fetch ${plan.fetch})` : plan.kind;
    filtered[`filtered_${name}_qps`] = round(qps(seconds, 1, search1(index, f)), 1);
    filtered[`filtered_${name}_recall`] = round(recall(index.search({ queries, nq, k, vectors, filter: f }), ftruth), 4);
    filtered[`sweep_${name}_index_qps`] = round(qps(seconds / 2, 1, search1(forcedIndex, f)), 1);
    filtered[`sweep_${name}_index_recall`] = round(recall(forcedIndex.search({ queries, nq, k, vectors, filter: f }), ftruth), 4);
    filtered[`sweep_${name}_exact_qps`] = round(qps(seconds / 2, 1, search1(forcedExact, f)), 1);
  }

  // the other index types, briefly
  const others: Record<string, number> = {};
  for (const [type, params, name] of [
    ["HNSW_SQ8", { M, efConstruction }, "sq8"],
    ["HNSW_FP16", { M, efConstruction }, "fp16"],
    ["IVF_FLAT", { nlist: 1024 }, "ivf"],
  ] as const) {
    t0 = performance.now();
    const b = await buildIndex({ vectors, dim, metric, indexType: type, params });
    others[`${name}_build_s`] = round((performance.now() - t0) / 1000, 2);
    const idx = loadIndex(b);
    const searchParams = type === "IVF_FLAT" ? { nprobe: 32 } : {};
    others[`${name}_qps`] = round(qps(seconds, 1, (i) => idx.search({ queries: query(i), nq: 1, k, vectors, params: searchParams })), 1);
    others[`${name}_recall_at_10`] = round(recall(idx.search({ queries, nq, k, vectors, params: searchParams }), truth), 4);
    others[`${name}_memory_bytes`] = idx.memoryBytes;
    idx.close();
  }

  report(args, {
    bench: "vector_index",
    rows: n,
    dim,
    k,
    M,
    efConstruction,
    ef,
    build_s: round(buildS, 2),
    raw_build_s: round(rawBuildS, 2),
    raw_usearch_qps: round(rawRate.wall, 1),
    layer_qps: round(layer.wall, 1),
    layer_vs_raw: round(layer.wall / rawRate.wall, 3),
    raw_usearch_qps_cpu: round(rawRate.cpu, 1),
    layer_qps_cpu: round(layer.cpu, 1),
    layer_vs_raw_cpu: round(layer.cpu / rawRate.cpu, 3),
    recall_at_10: round(layerRecall, 4),
    raw_recall_at_10: round(rawRecall, 4),
    layer_batch64_qps: round(layerBatchQps, 1),
    raw_batch64_qps: round(rawBatchQps, 1),
    filtered_10_qps: filtered["filtered_10_qps"]!,
    filtered_10_recall: filtered["filtered_10_recall"]!,
    filtered_1_qps: filtered["filtered_1_qps"]!,
    filtered_1_recall: filtered["filtered_1_recall"]!,
    ...filtered,
    ...others,
    artifact_bytes: bytes.byteLength,
    memory_bytes: index.memoryBytes,
    estimate_bytes: estimateIndexMemory("HNSW", n, dim, { M, efConstruction }),
    rss_growth_at_load_bytes: rssLoad,
    rss_growth_build_bytes: rss1 - rss0,
    load_avg_1m: round(loadavg()[0]!, 2),
  });
}
