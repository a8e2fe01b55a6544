import { beforeAll, describe, expect, it } from "vitest";
import {
  buildIndex,
  decodeArtifact,
  estimateIndexMemory,
  INDEX_ONLY_POLICY,
  loadIndex,
  resolveSearchKnobs,
  validateIndexParams,
  type IndexType,
  type LoadedIndex,
} from "../../actors/index/index.ts";
import { type FlatHits, searchFlat } from "../../actors/search/flat.ts";
import type { Metric } from "../../actors/search/metric.ts";
import { ErrorCode, VbError } from "../../protocol/errors.ts";

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function gaussian(rand: () => number): number {
  let u = 0;
  while (u === 0) u = rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

const N = 20_000;
const DIM = 64;
const CLUSTERS = 50;
const NQ = 100;
const K = 10;

/** Rows around 50 Gaussian centres (N(0,1) a coordinate) with N(0,1) noise; queries from the same mixture. */
const rand = mulberry32(20240601);
const centres = Float32Array.from({ length: CLUSTERS * DIM }, () => gaussian(rand));
function draw(m: number): Float32Array {
  const v = new Float32Array(m * DIM);
  for (let r = 0; r < m; r++) {
    const c = Math.floor(rand() * CLUSTERS);
    for (let d = 0; d < DIM; d++) v[r * DIM + d] = centres[c * DIM + d]! + gaussian(rand);
  }
  return v;
}
const vectors = draw(N);
const queries = draw(NQ);

const RATIOS = [1, 0.5, 0.1, 0.01, 0.001] as const;
const filters = new Map<number, Uint8Array | undefined>(
  RATIOS.map((r) => [r, r === 1 ? undefined : Uint8Array.from({ length: N }, () => (rand() < r ? 1 : 0))]),
);

const METRICS: readonly Metric[] = ["L2", "IP", "COSINE"];
const TYPES: { type: IndexType; params: Record<string, unknown>; search?: { nprobe?: number; ef?: number } }[] = [
  { type: "FLAT", params: {} },
  { type: "HNSW", params: { M: 16, efConstruction: 128 } },
  { type: "IVF_FLAT", params: { nlist: 128 }, search: { nprobe: 16 } },
  { type: "HNSW_SQ8", params: { M: 16, efConstruction: 128 } },
  { type: "HNSW_FP16", params: { M: 16, efConstruction: 128 } },
  { type: "AUTOINDEX", params: {} },
];

function recall(got: FlatHits[], truth: FlatHits[]): number {
  let hit = 0;
  let total = 0;
  got.forEach((g, q) => {
    const t = new Set(truth[q]!.rows);
    total += t.size;
    for (const r of g.rows) if (t.has(r)) hit++;
  });
  return hit / total;
}

/** Every hit carries the exact score of its row and passes the filter; hits come best first. */
function expectExactScores(got: FlatHits[], metric: Metric, filter?: Uint8Array): void {
  got.forEach((g, q) => {
    if (g.rows.length === 0) return;
    const rows = Int32Array.from(g.rows).sort();
    const [exact] = searchFlat({ vectors, dim: DIM, queries: queries.subarray(q * DIM, (q + 1) * DIM), k: rows.length, metric, rowIds: rows });
    const scoreOf = new Map<number, number>();
    exact!.rows.forEach((r, i) => scoreOf.set(r, exact!.scores[i]!));
    g.rows.forEach((r, i) => {
      expect(g.scores[i]).toBe(scoreOf.get(r));
      if (filter) expect(filter[r]).toBe(1);
      if (i > 0) {
        const prev = g.scores[i - 1]!;
        expect(metric === "L2" ? prev <= g.scores[i]! : prev >= g.scores[i]!).toBe(true);
      }
    });
  });
}

function expectInvalid(fn: () => unknown, field: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(VbError);
  expect((caught as VbError).code).toBe(ErrorCode.ParameterInvalid);
  expect((caught as VbError).message.startsWith(`${field}:`)).toBe(true);
}

async function expectInvalidAsync(fn: () => Promise<unknown>, field: string): Promise<void> {
  const err = await fn().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(VbError);
  expect((err as VbError).code).toBe(ErrorCode.ParameterInvalid);
  expect((err as VbError).message.startsWith(`${field}:`)).toBe(true);
}

for (const metric of METRICS) {
  describe(`vector indexes, ${metric}`, () => {
    const truth = new Map<number, FlatHits[]>();
    const artifacts = new Map<IndexType, Uint8Array>();
    beforeAll(async () => {
      for (const r of RATIOS) {
        const filter = filters.get(r);
        truth.set(r, searchFlat({ vectors, dim: DIM, queries, k: K, metric, ...(filter ? { filter } : {}) }));
      }
      // each index is built once per metric and reused across filter ratios
      for (const t of TYPES) artifacts.set(t.type, await buildIndex({ vectors, dim: DIM, metric, indexType: t.type, params: t.params }));
    }, 120_000);

    for (const t of TYPES) {
      it(`${t.type}: recall@10 ≥ 0.95 against exact search, unfiltered and at 50%, 10%, 1%, 0.1% passing`, () => {
        const index = loadIndex(artifacts.get(t.type)!);
        expect(index.indexType).toBe(t.type);
        expect(index.metric).toBe(metric);
        expect(index.rows).toBe(N);
        for (const r of RATIOS) {
          const filter = filters.get(r);
          const got = index.search({ queries, nq: NQ, k: K, vectors, ...(t.search ? { params: t.search } : {}), ...(filter ? { filter } : {}) });
          expect(got).toHaveLength(NQ);
          const rec = recall(got, truth.get(r)!);
          expect(rec, `${t.type} ${metric} at ${r * 100}% passing: recall ${rec}`).toBeGreaterThanOrEqual(0.95);
          for (const g of got) expect(g.rows.length).toBe(K);
          expectExactScores(got, metric, filter);
        }
        // 20k rows: only the 50% filter is cheaper on the graph than on the passing rows
        if (t.type !== "FLAT") expect(index.stats.indexQueries).toBeGreaterThanOrEqual(2 * NQ);
        expect(index.stats.exactQueries).toBeGreaterThanOrEqual(t.type === "FLAT" ? 5 * NQ : 3 * NQ);
        index.close();
      });

      if (t.type !== "FLAT") {
        it(`${t.type}: the index path alone (over-fetch, list scan) keeps recall at every filter ratio`, () => {
          const index = loadIndex(artifacts.get(t.type)!, { filterPolicy: INDEX_ONLY_POLICY });
          for (const r of RATIOS) {
            const filter = filters.get(r);
            // a quarter of the queries: at 0.1% the graph is asked for every row
            const nq = NQ / 4;
            const got = index.search({
              queries: queries.subarray(0, nq * DIM),
              nq,
              k: K,
              vectors,
              ...(t.search ? { params: t.search } : {}),
              ...(filter ? { filter } : {}),
            });
            const rec = recall(got, truth.get(r)!.slice(0, nq));
            expect(rec, `${t.type} ${metric} index path at ${r * 100}% passing: recall ${rec}`).toBeGreaterThanOrEqual(0.95);
            expectExactScores(got, metric, filter);
          }
          if (t.type === "IVF_FLAT") {
            expect(index.stats.exactQueries).toBe(0);
            expect(index.stats.indexQueries).toBe(RATIOS.length * (NQ / 4));
          } else {
            // at 0.1% the graph would have to be asked for every row (ef / ratio ≥ rows): exact instead
            expect(index.stats.exactQueries).toBe(NQ / 4);
            expect(index.stats.indexQueries).toBe((RATIOS.length - 1) * (NQ / 4));
          }
        });
      }
    }

    it("HNSW: a filtered search that comes up short asks again with a larger fetch, then goes exact", () => {
      // ef = k and no margin: about k of the first fetch pass, so many queries come up short
      const index = loadIndex(artifacts.get("HNSW")!, {
        filterPolicy: { ...INDEX_ONLY_POLICY, overfetchMargin: 1, maxFetch: 4096 },
      });
      const filter = filters.get(0.01)!;
      const got = index.search({ queries, nq: NQ, k: K, vectors, filter, params: { ef: K } });
      expect(index.stats.refetches).toBeGreaterThan(0);
      expect(recall(got, truth.get(0.01)!)).toBeGreaterThanOrEqual(0.95);
      expectExactScores(got, metric, filter);
      // at 0.1% the first fetch (10 / 0.001) is past maxFetch 4096: every query goes exact
      const before = index.stats.exactQueries;
      const rare = index.search({ queries, nq: NQ, k: K, vectors, filter: filters.get(0.001)!, params: { ef: K } });
      expect(index.stats.exactQueries - before).toBe(NQ);
      expect(recall(rare, truth.get(0.001)!)).toBe(1);
    });

    it("build → bytes → load round trip: same header, same results from any copy of the bytes, batch = one by one", () => {
      for (const t of TYPES) {
        const bytes = artifacts.get(t.type)!;
        const header = decodeArtifact(bytes).header;
        expect(header).toMatchObject({ indexType: t.type, metric, dim: DIM, rows: N });
        // a copy at an odd offset inside a larger buffer, as bytes read from an object store may be
        const holder = new Uint8Array(bytes.byteLength + 3);
        holder.set(bytes, 3);
        const a = loadIndex(bytes);
        const b = loadIndex(holder.subarray(3));
        const filter = filters.get(0.5)!;
        const params = t.search ?? {};
        for (const f of [undefined, filter]) {
          const ra = a.search({ queries, nq: NQ, k: K, vectors, params, ...(f ? { filter: f } : {}) });
          const rb = b.search({ queries, nq: NQ, k: K, vectors, params, ...(f ? { filter: f } : {}) });
          expect(rb).toEqual(ra);
          // a batch runs on every core; one query at a time on the calling thread: the same answers
          for (let q = 0; q < NQ; q += 9) {
            const [one] = a.search({ queries: queries.subarray(q * DIM, (q + 1) * DIM), nq: 1, k: K, vectors, params, ...(f ? { filter: f } : {}) });
            expect(one).toEqual(ra[q]);
          }
        }
        a.close();
        b.close();
      }
    });
  });
}

describe("vector index artifacts", () => {
  it("FLAT and IVF_FLAT builds are deterministic (seeded k-means)", async () => {
    const small = vectors.subarray(0, 3000 * DIM);
    for (const [type, params] of [
      ["FLAT", {}],
      ["IVF_FLAT", { nlist: 32 }],
    ] as const) {
      const a = await buildIndex({ vectors: small, dim: DIM, metric: "L2", indexType: type, params });
      const b = await buildIndex({ vectors: small, dim: DIM, metric: "L2", indexType: type, params });
      expect(b).toEqual(a);
    }
  });

  it("refuses damaged, truncated and foreign bytes with 1100 naming bytes", async () => {
    const bytes = await buildIndex({ vectors: vectors.subarray(0, 2000 * DIM), dim: DIM, metric: "L2", indexType: "HNSW", params: { M: 8 } });
    const damaged = bytes.slice();
    damaged[damaged.length - 100]! ^= 0xff;
    expectInvalid(() => loadIndex(damaged), "bytes");
    expectInvalid(() => loadIndex(bytes.subarray(0, bytes.length - 1000)), "bytes");
    expectInvalid(() => loadIndex(new TextEncoder().encode("not an index at all")), "bytes");
    expectInvalid(() => loadIndex(bytes.subarray(0, 10)), "bytes");
  });

  it("searching a closed index is 700; bad search input is 1100 naming the field", async () => {
    const small = vectors.subarray(0, 1000 * DIM);
    const index: LoadedIndex = loadIndex(await buildIndex({ vectors: small, dim: DIM, metric: "IP", indexType: "HNSW", params: {} }));
    const q = queries.subarray(0, DIM);
    expectInvalid(() => index.search({ queries: q, nq: 1, k: 10, vectors: small, params: { ef: 5 } }), "ef");
    expectInvalid(() => index.search({ queries: q, nq: 1, k: 0, vectors: small }), "k");
    expectInvalid(() => index.search({ queries: q, nq: 2, k: 10, vectors: small }), "queries");
    expectInvalid(() => index.search({ queries: q, nq: 1, k: 10, vectors: vectors }), "vectors");
    expectInvalid(() => index.search({ queries: q, nq: 1, k: 10, vectors: small, filter: new Uint8Array(5) }), "filter");
    index.close();
    let err: unknown;
    try {
      index.search({ queries: q, nq: 1, k: 10, vectors: small });
    } catch (e) {
      err = e;
    }
    expect((err as VbError).code).toBe(ErrorCode.IndexNotFound);
  });

  it("nlist above the rows is accepted and clamped: one list a row, all probed = exact", async () => {
    const tiny = vectors.subarray(0, 40 * DIM);
    const bytes = await buildIndex({ vectors: tiny, dim: DIM, metric: "L2", indexType: "IVF_FLAT", params: { nlist: 1000 } });
    expect(decodeArtifact(bytes).header).toMatchObject({ params: { nlist: 1000 }, extra: { lists: 40 } });
    const index = loadIndex(bytes);
    const got = index.search({ queries, nq: NQ, k: 5, vectors: tiny, params: { nprobe: 1000 } });
    expect(got).toEqual(searchFlat({ vectors: tiny, dim: DIM, queries, k: 5, metric: "L2" }));
    expectInvalid(() => index.search({ queries, nq: NQ, k: 5, vectors: tiny, params: { nprobe: 1001 } }), "nprobe");
  });

  it("fewer passing rows than k: every passing row, exactly", async () => {
    const small = vectors.subarray(0, 5000 * DIM);
    const filter = new Uint8Array(5000);
    filter[17] = filter[4000] = filter[4999] = 1;
    for (const type of ["HNSW", "IVF_FLAT", "FLAT"] as const) {
      const index = loadIndex(await buildIndex({ vectors: small, dim: DIM, metric: "COSINE", indexType: type, params: {} }), {
        filterPolicy: INDEX_ONLY_POLICY,
      });
      const got = index.search({ queries: queries.subarray(0, 3 * DIM), nq: 3, k: K, vectors: small, filter });
      expect(got).toEqual(searchFlat({ vectors: small, dim: DIM, queries: queries.subarray(0, 3 * DIM), k: K, metric: "COSINE", filter }));
      expect(index.search({ queries: queries.subarray(0, 3 * DIM), nq: 3, k: K, vectors: small, filter: new Uint8Array(5000) })).toEqual(
        Array.from({ length: 3 }, () => ({ rows: new Int32Array(0), scores: new Float32Array(0) })),
      );
    }
  });

  it("an empty segment builds and answers nothing", async () => {
    for (const type of ["FLAT", "HNSW", "IVF_FLAT"] as const) {
      const index = loadIndex(await buildIndex({ vectors: new Float32Array(0), dim: DIM, metric: "L2", indexType: type, params: {} }));
      expect(index.search({ queries: queries.subarray(0, DIM), nq: 1, k: K, vectors: new Float32Array(0) })).toEqual([
        { rows: new Int32Array(0), scores: new Float32Array(0) },
      ]);
    }
  });
});

describe("index params", () => {
  it("normalizes params as Milvus names them, with defaults", () => {
    expect(validateIndexParams("hnsw", "l2", { M: "32", efConstruction: 200 }, "FloatVector", 128)).toEqual({
      indexType: "HNSW",
      metric: "L2",
      params: { M: 32, efConstruction: 200 },
    });
    expect(validateIndexParams("AUTOINDEX", undefined, undefined, "FloatVector", 8)).toEqual({
      indexType: "AUTOINDEX",
      metric: "COSINE",
      params: { M: 16, efConstruction: 128 },
    });
    expect(validateIndexParams("IVF_FLAT", "IP", {}, "FloatVector", 8).params).toEqual({ nlist: 128 });
    expect(validateIndexParams("FLAT", "COSINE", {}, "FloatVector", 8).params).toEqual({});
    const hnsw = validateIndexParams("HNSW_SQ8", "L2", {}, "FloatVector", 8);
    expect(resolveSearchKnobs(hnsw, 10, undefined).ef).toBe(128);
    expect(resolveSearchKnobs(hnsw, 300, undefined).ef).toBe(300);
    expect(resolveSearchKnobs(validateIndexParams("AUTOINDEX", "L2", {}, "FloatVector", 8), 100, {}).ef).toBe(200);
    // what DescribeIndex shows of an AUTOINDEX may be given back as it is
    const auto = validateIndexParams("AUTOINDEX", "L2", {}, "FloatVector", 8);
    expect(validateIndexParams("AUTOINDEX", "L2", auto.params, "FloatVector", 8)).toEqual(auto);
    expect(validateIndexParams("AUTOINDEX", "L2", { M: "16" }, "FloatVector", 8)).toEqual(auto);
    expect(resolveSearchKnobs(validateIndexParams("IVF_FLAT", "L2", { nlist: 4 }, "FloatVector", 8), 10, {}).nprobe).toBe(4);
  });

  it("bad params are 1100 naming the parameter", async () => {
    const v = (t: unknown, m: unknown, p: unknown, f: "FloatVector" | "Int64" = "FloatVector", dim = 8) => () =>
      validateIndexParams(t, m, p, f, dim);
    expectInvalid(v("HNSW", "L2", { M: 0 }), "M");
    expectInvalid(v("HNSW", "L2", { M: 2049 }), "M");
    expectInvalid(v("HNSW_FP16", "L2", { M: 1.5 }), "M");
    expectInvalid(v("HNSW", "L2", { efConstruction: 7 }), "efConstruction");
    expectInvalid(v("HNSW", "L2", { efConstruction: "lots" }), "efConstruction");
    expectInvalid(v("IVF_FLAT", "L2", { nlist: 0 }), "nlist");
    expectInvalid(v("IVF_FLAT", "L2", { nlist: 65537 }), "nlist");
    expectInvalid(v("DISKANN", "L2", {}), "index_type");
    expectInvalid(v(undefined, "L2", {}), "index_type");
    expectInvalid(v("HNSW", "L1", {}), "metric_type");
    expectInvalid(v("HNSW", "L2", { nlist: 16 }), "nlist");
    expectInvalid(v("AUTOINDEX", "L2", { M: 32 }), "M");
    expectInvalid(v("AUTOINDEX", "L2", { efConstruction: "64" }), "efConstruction");
    expectInvalid(v("AUTOINDEX", "L2", { nlist: 16 }), "nlist");
    expectInvalid(v("FLAT", "L2", { M: 16 }), "M");
    expectInvalid(v("HNSW", "L2", [16]), "params");
    expectInvalid(v("HNSW", "L2", {}, "Int64"), "metric_type");
    expectInvalid(v("HNSW", undefined, {}, "Int64"), "index_type");
    expectInvalid(v("HNSW", "L2", {}, "FloatVector", 0), "dim");
    expectInvalid(() => validateIndexParams("HNSW", "IP", {}, "VarChar", 8), "metric_type");
    await expectInvalidAsync(() => buildIndex({ vectors, dim: DIM, metric: "L2", indexType: "HNSW", params: { M: 0 } }), "M");
    await expectInvalidAsync(() => buildIndex({ vectors: new Float32Array(10), dim: DIM, metric: "L2", indexType: "FLAT" }), "vectors");
    const ivf = validateIndexParams("IVF_FLAT", "L2", { nlist: 16 }, "FloatVector", 8);
    expectInvalid(() => resolveSearchKnobs(ivf, 10, { nprobe: 17 }), "nprobe");
    expectInvalid(() => resolveSearchKnobs(ivf, 10, { nprobe: 0 }), "nprobe");
    const hnsw = validateIndexParams("HNSW", "L2", {}, "FloatVector", 8);
    expectInvalid(() => resolveSearchKnobs(hnsw, 10, { ef: 9 }), "ef");
    expectInvalid(() => resolveSearchKnobs(hnsw, 10, { ef: 40_000 }), "ef");
  });

  it("estimates memory close to what the index holds", () => {
    expect(estimateIndexMemory("FLAT", N, DIM)).toBe(0);
    const ivf = estimateIndexMemory("IVF_FLAT", N, DIM, { nlist: 128 });
    expect(ivf).toBe(128 * DIM * 4 + 128 * 8 + 129 * 4 + N * 4);
    const f32 = estimateIndexMemory("HNSW", N, DIM, { M: 16 });
    expect(estimateIndexMemory("HNSW_FP16", N, DIM, { M: 16 })).toBeLessThan(f32);
    expect(estimateIndexMemory("HNSW_SQ8", N, DIM, { M: 16 })).toBeLessThan(estimateIndexMemory("HNSW_FP16", N, DIM, { M: 16 }));
    expectInvalid(() => estimateIndexMemory("HNSW", N, DIM, { M: 0 }), "M");
  });

  it("the estimate is within 25% of the loaded index's own figure and above usearch's serialized size", async () => {
    const small = vectors.subarray(0, 5000 * DIM);
    for (const type of ["HNSW", "HNSW_SQ8", "HNSW_FP16", "IVF_FLAT"] as const) {
      const params = type === "IVF_FLAT" ? { nlist: 64 } : { M: 12, efConstruction: 64 };
      const bytes = await buildIndex({ vectors: small, dim: DIM, metric: "L2", indexType: type, params });
      const index = loadIndex(bytes);
      const estimate = estimateIndexMemory(type, 5000, DIM, params);
      expect(Math.abs(estimate - index.memoryBytes) / index.memoryBytes).toBeLessThan(0.25);
      if (type !== "IVF_FLAT") expect(estimate).toBeGreaterThan(decodeArtifact(bytes).section("usearch").byteLength);
    }
  });
});
