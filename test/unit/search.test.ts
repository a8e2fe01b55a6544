import { describe, expect, it } from "vitest";
import { andFilters, countPassing, passingRows } from "../../actors/search/bitset.ts";
import { searchFlat, type FlatHits } from "../../actors/search/flat.ts";
import { largerIsBetter, normalize, parseMetric, rowNorms, type Metric } from "../../actors/search/metric.ts";
import { inRange } from "../../actors/search/range.ts";
import {
  comparePks,
  mergeQueryRows,
  mergeTopK,
  reduceQueryResults,
  reduceSearchResults,
  sumCounts,
  type TopKList,
} from "../../actors/search/reduce.ts";
import type { QueryResult, SearchResult } from "../../protocol/messages/querynode.ts";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import type { Column } from "../../protocol/schema.ts";

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

function randomVectors(rand: () => number, n: number, dim: number): Float32Array {
  const v = new Float32Array(n * dim);
  for (let i = 0; i < v.length; i++) v[i] = rand() * 2 - 1;
  return v;
}

function randomFilter(rand: () => number, n: number, passRate: number): Uint8Array {
  const f = new Uint8Array(n);
  for (let i = 0; i < n; i++) f[i] = rand() < passRate ? 1 : 0;
  return f;
}

interface RefParams {
  vectors: Float32Array;
  dim: number;
  queries: Float32Array;
  k: number;
  metric: Metric;
  filter?: Uint8Array;
  rowIds?: Int32Array;
  radius?: number;
  rangeFilter?: number;
}

/** The naive reference: every eligible row scored with plain loops, a full sort, the first k. */
function referenceSearch(p: RefParams): FlatHits[] {
  const { vectors, dim, queries, k, metric } = p;
  const n = vectors.length / dim;
  const nq = queries.length / dim;
  const eligible = new Set<number>(p.rowIds ?? Array.from({ length: n }, (_, i) => i));
  const out: FlatHits[] = [];
  for (let qi = 0; qi < nq; qi++) {
    const hits: { row: number; score: number }[] = [];
    for (let r = 0; r < n; r++) {
      if (!eligible.has(r) || (p.filter && p.filter[r] === 0)) continue;
      let s = 0;
      if (metric === "L2") {
        for (let d = 0; d < dim; d++) {
          const t = queries[qi * dim + d]! - vectors[r * dim + d]!;
          s += t * t;
        }
      } else {
        let dot = 0;
        let qq = 0;
        let vv = 0;
        for (let d = 0; d < dim; d++) {
          dot += queries[qi * dim + d]! * vectors[r * dim + d]!;
          qq += queries[qi * dim + d]! ** 2;
          vv += vectors[r * dim + d]! ** 2;
        }
        s = metric === "IP" ? dot : qq === 0 || vv === 0 ? 0 : dot / (Math.sqrt(qq) * Math.sqrt(vv));
      }
      const score = Math.fround(s);
      if (p.radius !== undefined) {
        const inside =
          metric === "L2"
            ? score < p.radius && (p.rangeFilter === undefined || score >= p.rangeFilter)
            : score > p.radius && (p.rangeFilter === undefined || score <= p.rangeFilter);
        if (!inside) continue;
      }
      hits.push({ row: r, score });
    }
    hits.sort((a, b) => (metric === "L2" ? a.score - b.score : b.score - a.score) || a.row - b.row);
    const top = hits.slice(0, k);
    out.push({ rows: Int32Array.from(top.map((h) => h.row)), scores: Float32Array.from(top.map((h) => h.score)) });
  }
  return out;
}

function expectSameHits(got: FlatHits[], want: FlatHits[], what: string): void {
  expect(got.length, what).toBe(want.length);
  for (let q = 0; q < want.length; q++) {
    expect(Array.from(got[q]!.rows), `${what}, query ${q}: rows`).toEqual(Array.from(want[q]!.rows));
    const g = got[q]!.scores;
    const w = want[q]!.scores;
    expect(g.length).toBe(w.length);
    for (let i = 0; i < w.length; i++) {
      const tol = 1e-4 * Math.max(Math.abs(w[i]!), 1e-12);
      if (!(Math.abs(g[i]! - w[i]!) <= tol)) {
        throw new Error(`${what}, query ${q}, hit ${i}: score ${g[i]} vs reference ${w[i]}`);
      }
    }
  }
}

function expectInvalid(fn: () => unknown, field: string): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(VbError);
  expect((err as VbError).code).toBe(ErrorCode.ParameterInvalid);
  expect((err as VbError).message).toContain(field);
}

// One data set for the kernel tests: dim 37 (not a multiple of 4), n not a multiple of the block,
// some rows duplicated so that equal scores occur and must go to the smaller row.
const DIM = 37;
const N = 3001;
const rand = mulberry32(20240601);
const VECTORS = randomVectors(rand, N, DIM);
for (let i = 0; i < 40; i++) VECTORS.copyWithin((2000 + i * 17) * DIM, (100 + i) * DIM, (101 + i) * DIM);
VECTORS.fill(0, 2500 * DIM, 2501 * DIM); // a zero row: COSINE scores it 0
const QUERIES = randomVectors(rand, 5, DIM);
// a query equal to a duplicated row, so its best hits tie
QUERIES.set(VECTORS.subarray(105 * DIM, 106 * DIM), 2 * DIM);
const FILTERS: Record<string, Uint8Array | undefined> = {
  none: undefined,
  "50%": randomFilter(rand, N, 0.5),
  "1%": randomFilter(rand, N, 0.01),
};
const SUBSET = passingRows(randomFilter(rand, N, 0.3));

describe("searchFlat", () => {
  const metrics: Metric[] = ["L2", "IP", "COSINE"];
  const cases = metrics.flatMap((metric) =>
    Object.keys(FILTERS).flatMap((filter) => (["filter", "rowIds", "rowIds+filter"] as const).map((mode) => ({ metric, filter, mode }))),
  );

  it.each(cases)("equals the naive reference: $metric, filter $filter, as $mode", ({ metric, filter, mode }) => {
    const f = FILTERS[filter];
    let params: { filter?: Uint8Array; rowIds?: Int32Array };
    if (mode === "filter") params = { filter: f };
    else if (mode === "rowIds") params = { rowIds: f ? passingRows(f) : SUBSET };
    else params = { rowIds: SUBSET, filter: f };
    for (const nq of [1, 5]) {
      const queries = QUERIES.subarray(0, nq * DIM);
      for (const k of [1, 10, 100]) {
        const p = { vectors: VECTORS, dim: DIM, queries, k, metric, ...params };
        const want = referenceSearch(p);
        // the fixture exercises what it claims: k hits unless fewer rows pass
        if (mode === "filter") expect(want[0]!.rows.length).toBe(Math.min(k, f ? countPassing(f) : N));
        expectSameHits(searchFlat(p), want, `${metric} ${filter} ${mode} nq=${nq} k=${k}`);
      }
    }
  });

  it("breaks equal scores by the smaller row offset", () => {
    for (const metric of ["L2", "IP", "COSINE"] as const) {
      const [hits] = searchFlat({ vectors: VECTORS, dim: DIM, queries: QUERIES.subarray(2 * DIM, 3 * DIM), k: 5, metric });
      // query 2 is row 105, duplicated at row 2000 + 5 * 17
      expect(Array.from(hits!.rows.subarray(0, 2))).toEqual([105, 2085]);
      expect(hits!.scores[0]).toBe(hits!.scores[1]);
    }
  });

  it("returns all eligible rows when k exceeds them, and nothing for an empty row list", () => {
    const rowIds = Int32Array.from([3, 7, 2999]);
    const [hits] = searchFlat({ vectors: VECTORS, dim: DIM, queries: QUERIES.subarray(0, DIM), k: 100, metric: "L2", rowIds });
    expect(Array.from(hits!.rows).sort((a, b) => a - b)).toEqual([3, 7, 2999]);
    const empty = searchFlat({ vectors: VECTORS, dim: DIM, queries: QUERIES, k: 10, metric: "IP", rowIds: new Int32Array(0) });
    expect(empty.map((h) => h.rows.length)).toEqual([0, 0, 0, 0, 0]);
    expect(searchFlat({ vectors: VECTORS, dim: DIM, queries: new Float32Array(0), k: 10, metric: "IP" })).toEqual([]);
  });

  it("equals the naive reference at other dims (1, 4, 128) and an odd row count", () => {
    const r = mulberry32(5);
    for (const dim of [1, 4, 128]) {
      const vectors = randomVectors(r, 257, dim);
      const queries = randomVectors(r, 3, dim);
      for (const metric of ["L2", "IP", "COSINE"] as const) {
        const p = { vectors, dim, queries, k: 10, metric };
        expectSameHits(searchFlat(p), referenceSearch(p), `dim ${dim} ${metric}`);
      }
    }
  });

  it("reads a filter that is an unaligned view of a larger buffer", () => {
    for (const [name, f] of Object.entries(FILTERS)) {
      if (!f) continue;
      const backing = new Uint8Array(N + 3);
      backing.set(f, 1);
      const view = backing.subarray(1, N + 1);
      const p = { vectors: VECTORS, dim: DIM, queries: QUERIES, k: 10, metric: "IP" as const };
      expectSameHits(searchFlat({ ...p, filter: view }), referenceSearch({ ...p, filter: f }), `unaligned ${name}`);
    }
  });

  it("reuses precomputed COSINE norms, and COSINE equals IP on normalized vectors", () => {
    const norms = rowNorms(VECTORS, DIM);
    const p = { vectors: VECTORS, dim: DIM, queries: QUERIES, k: 10, metric: "COSINE" as const };
    const cos = searchFlat({ ...p, norms });
    expectSameHits(cos, referenceSearch(p), "COSINE with norms");
    const ip = searchFlat({ ...p, metric: "IP", vectors: normalize(VECTORS, DIM), queries: normalize(QUERIES, DIM) });
    expectSameHits(ip, cos, "IP on normalized");
  });

  describe("range search", () => {
    // bounds taken from the reference's own score distribution of query 0
    function quantiles(metric: Metric): number[] {
      const [all] = referenceSearch({ vectors: VECTORS, dim: DIM, queries: QUERIES.subarray(0, DIM), k: N, metric });
      return [0.02, 0.05, 0.2].map((q) => all!.scores[Math.floor(q * N)]!);
    }

    it.each(["L2", "IP", "COSINE"] as const)("keeps exactly the reference's in-range hits: %s", (metric) => {
      const [near, mid, far] = quantiles(metric);
      // outer bound = radius, inner = rangeFilter (for L2 radius is the larger distance)
      const ranges: { radius: number; rangeFilter?: number }[] = [
        { radius: mid! },
        { radius: far!, rangeFilter: near! },
        { radius: far!, rangeFilter: mid! }, // a bound equal to a reported score: that hit is inside
      ];
      for (const r of ranges) {
        for (const [filterName, f] of Object.entries(FILTERS)) {
          for (const k of [10, 100, N]) {
            const p = { vectors: VECTORS, dim: DIM, queries: QUERIES, k, metric, filter: f, ...r };
            const want = referenceSearch(p);
            const got = searchFlat(p);
            expectSameHits(got, want, `${metric} range ${JSON.stringify(r)} filter ${filterName} k=${k}`);
            for (const h of got) for (const s of h.scores) expect(inRange(metric, s, r.radius, r.rangeFilter)).toBe(true);
          }
        }
      }
      // the inclusive inner bound keeps the hit whose score it equals
      const [withBound] = searchFlat({ vectors: VECTORS, dim: DIM, queries: QUERIES.subarray(0, DIM), k: N, metric, radius: far!, rangeFilter: mid! });
      expect(withBound!.scores[0]).toBe(mid);
      // the exclusive outer bound drops the hit whose score it equals
      const [outer] = searchFlat({ vectors: VECTORS, dim: DIM, queries: QUERIES.subarray(0, DIM), k: N, metric, radius: mid! });
      expect(outer!.rows.length).toBe(Math.floor(0.05 * N));
      expect(Array.from(outer!.scores)).not.toContain(mid);
    });

    it("rejects a range the wrong way round (1100)", () => {
      const base = { vectors: VECTORS, dim: DIM, queries: QUERIES, k: 10 };
      expectInvalid(() => searchFlat({ ...base, metric: "L2", radius: 1, rangeFilter: 2 }), "range_filter");
      expectInvalid(() => searchFlat({ ...base, metric: "IP", radius: 0.5, rangeFilter: 0.5 }), "range_filter");
      expectInvalid(() => searchFlat({ ...base, metric: "COSINE", rangeFilter: 0.5 }), "range_filter");
    });
  });

  it("answers bad input with 1100 naming the field", () => {
    const base = { vectors: VECTORS, dim: DIM, queries: QUERIES, k: 10, metric: "L2" as const };
    expectInvalid(() => searchFlat({ ...base, queries: new Float32Array(DIM + 1) }), "queries");
    expectInvalid(() => searchFlat({ ...base, dim: 0 }), "dim");
    expectInvalid(() => searchFlat({ ...base, k: 0 }), "k");
    expectInvalid(() => searchFlat({ ...base, filter: new Uint8Array(N - 1) }), "filter");
    expectInvalid(() => searchFlat({ ...base, rowIds: Int32Array.from([5, 3]) }), "rowIds");
    expectInvalid(() => searchFlat({ ...base, rowIds: Int32Array.from([N]) }), "rowIds");
    expectInvalid(() => searchFlat({ ...base, metric: "HAMMING" as Metric }), "metric");
    expectInvalid(() => searchFlat({ ...base, metric: "COSINE", norms: new Float64Array(3) }), "norms");
  });
});

describe("metrics", () => {
  it("say which way is better and parse names", () => {
    expect(largerIsBetter("L2")).toBe(false);
    expect(largerIsBetter("IP")).toBe(true);
    expect(largerIsBetter("COSINE")).toBe(true);
    expect(parseMetric("cosine")).toBe("COSINE");
    expectInvalid(() => parseMetric("JACCARD"), "metric_type");
  });

  it("normalize scales rows to unit length and leaves zero rows at zero", () => {
    const v = Float32Array.from([3, 4, 0, 0, 1, 0]);
    expect(Array.from(normalize(v, 2))).toEqual([Math.fround(0.6), Math.fround(0.8), 0, 0, 1, 0]);
    expect(Array.from(rowNorms(v, 2))).toEqual([5, 0, 1]);
    const norms = rowNorms(normalize(VECTORS, DIM), DIM);
    for (let r = 0; r < N; r++) expect(Math.abs(norms[r]! - (r === 2500 ? 0 : 1))).toBeLessThan(1e-6);
  });
});

describe("bitset", () => {
  it("counts, lists and ANDs filters (also unaligned views)", () => {
    const r = mulberry32(7);
    const big = randomFilter(r, 1003, 0.2);
    big[5] = 7; // any non-zero byte passes
    for (const f of [big, big.subarray(1), big.subarray(3, 1000), new Uint8Array(0)]) {
      const naive: number[] = [];
      f.forEach((b, i) => b !== 0 && naive.push(i));
      expect(countPassing(f)).toBe(naive.length);
      expect(Array.from(passingRows(f))).toEqual(naive);
    }
    const other = randomFilter(r, 1003, 0.5);
    const both = andFilters(big, other);
    for (let i = 0; i < 1003; i++) expect(both[i]).toBe(big[i] !== 0 && other[i] !== 0 ? 1 : 0);
    expectInvalid(() => andFilters(big, other.subarray(1)), "filter");
  });
});

describe("mergeTopK", () => {
  type Item = { id: bigint; score: number };

  /** A data set of hits with float32 scores, some equal, split into lists as segments would return them. */
  function makeSplit(seed: number, metric: Metric, total: number, parts: number, perList: number, dupRate: number) {
    const r = mulberry32(seed);
    const items: Item[] = [];
    for (let i = 0; i < total; i++) {
      // coarse scores so that ties happen
      items.push({ id: BigInt(i * 7 + 1000), score: Math.fround(Math.floor(r() * total * 0.5) / 64) });
    }
    const better = (a: Item, b: Item) => (largerIsBetter(metric) ? b.score - a.score : a.score - b.score) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
    const buckets: Item[][] = Array.from({ length: parts }, () => []);
    for (const it of items) {
      buckets[Math.floor(r() * parts)]!.push(it);
      // the same pk in a second list (a segment being handed off), with a worse or equal score
      if (r() < dupRate) {
        const worse = largerIsBetter(metric) ? it.score - Math.floor(r() * 3) / 64 : it.score + Math.floor(r() * 3) / 64;
        buckets[Math.floor(r() * parts)]!.push({ id: it.id, score: Math.fround(worse) });
      }
    }
    const lists: TopKList<BigInt64Array>[] = buckets.map((b) => {
      // one list holds a pk once: a segment returns its best occurrence
      const best = new Map<bigint, Item>();
      for (const it of b) if (!best.has(it.id) || better(it, best.get(it.id)!) < 0) best.set(it.id, it);
      const top = [...best.values()].sort(better).slice(0, perList);
      return { ids: BigInt64Array.from(top.map((t) => t.id)), scores: Float32Array.from(top.map((t) => t.score)) };
    });
    const global = [...items].sort(better);
    return { lists, global };
  }

  for (const metric of ["L2", "IP", "COSINE"] as const) {
    it(`equals the top-k of the whole over random splits: ${metric}`, () => {
      for (let seed = 1; seed <= 30; seed++) {
        const parts = 1 + (seed % 6);
        for (const [k, offset] of [
          [1, 0],
          [10, 0],
          [10, 5],
          [100, 20],
          [50, 400],
        ] as const) {
          const { lists, global } = makeSplit(seed, metric, 300, parts, k + offset, seed % 2 === 0 ? 0.3 : 0);
          const merged = mergeTopK(lists, k, offset, metric);
          const want = global.slice(offset, offset + k);
          expect(Array.from(merged.ids), `seed ${seed} k ${k} offset ${offset}`).toEqual(want.map((w) => w.id));
          expect(Array.from(merged.scores)).toEqual(want.map((w) => w.score));
          expect(new Set(merged.ids).size).toBe(merged.ids.length);
          for (let i = 0; i < merged.ids.length; i++) {
            const src = lists[merged.sources[i]!]!;
            expect(src.ids[merged.positions[i]!]).toBe(merged.ids[i]);
          }
        }
      }
    });
  }

  it("keeps a duplicated pk once, at its better score", () => {
    const a = { ids: BigInt64Array.from([5n, 1n]), scores: Float32Array.from([0.9, 0.5]) };
    const b = { ids: BigInt64Array.from([1n, 5n, 2n]), scores: Float32Array.from([0.8, 0.7, 0.1]) };
    const m = mergeTopK([a, b], 10, 0, "IP");
    expect(Array.from(m.ids)).toEqual([5n, 1n, 2n]);
    expect(Array.from(m.scores)).toEqual([Math.fround(0.9), Math.fround(0.8), Math.fround(0.1)]);
    expect(Array.from(m.sources)).toEqual([0, 1, 1]);
    // offset counts distinct hits
    expect(Array.from(mergeTopK([a, b], 10, 1, "IP").ids)).toEqual([1n, 2n]);
  });

  it("orders equal scores by pk even when a list does not, and merges VarChar pks", () => {
    const a = { ids: ["b", "a", "c"], scores: Float32Array.from([1, 1, 2]) };
    const b = { ids: ["aa"], scores: Float32Array.from([1]) };
    expect(mergeTopK([a, b], 3, 0, "L2").ids).toEqual(["a", "aa", "b"]);
    expect(mergeTopK([a, b], 2, 0, "IP").ids).toEqual(["c", "a"]);
    expect(mergeTopK([], 3, 0, "IP").ids.length).toBe(0);
    expectInvalid(() => mergeTopK([{ ids: ["x"], scores: new Float32Array(2) }], 1, 0, "IP"), "lists");
    expectInvalid(() => mergeTopK([a], -1, 0, "IP"), "k");
  });
});

describe("mergeQueryRows", () => {
  function part(pks: bigint[], vecs: number[][], names: string[], valid?: number[]): { pks: BigInt64Array; columns: Column[] } {
    const name: Column = { fieldId: 102, data: names };
    if (valid) name.valid = Uint8Array.from(valid);
    return {
      pks: BigInt64Array.from(pks),
      columns: [
        { fieldId: 100, data: BigInt64Array.from(pks) },
        { fieldId: 101, data: Float32Array.from(vecs.flat()) },
        name,
      ],
    };
  }

  it("merges by ascending pk, drops repeats, applies offset then limit, gathers the columns", () => {
    const r = mulberry32(99);
    for (let round = 0; round < 20; round++) {
      const parts = Array.from({ length: 1 + (round % 4) }, (_, pi) => {
        const pks = new Set<bigint>();
        const size = Math.floor(r() * 40);
        while (pks.size < size) pks.add(BigInt(Math.floor(r() * 120) - 20));
        const list = [...pks];
        if (round % 2 === 0) list.sort((a, b) => (a < b ? -1 : 1)); // shards send them sorted; cope if not
        return part(
          list,
          list.map((pk) => [Number(pk), pi, 0.5]),
          list.map((pk) => `${pk}@${pi}`),
          list.map((pk) => (pk % 3n === 0n ? 0 : 1)),
        );
      });
      // the reference: the first part that has a pk wins, then pk order, then offset and limit
      const first = new Map<bigint, number>();
      parts.forEach((p, pi) => p.pks.forEach((pk) => !first.has(pk) && first.set(pk, pi)));
      const all = [...first.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1));
      for (const [offset, limit] of [
        [0, undefined],
        [0, 10],
        [7, 5],
        [30, 1000],
        [500, 10],
        [3, 0],
      ] as const) {
        const m = mergeQueryRows(parts, offset, limit);
        const want = all.slice(offset, limit === undefined ? undefined : offset + limit);
        expect(Array.from(m.pks)).toEqual(want.map((w) => w[0]));
        expect(m.columns.map((c) => c.fieldId)).toEqual([100, 101, 102]);
        expect(Array.from(m.columns[0]!.data as BigInt64Array)).toEqual(want.map((w) => w[0]));
        expect(Array.from(m.columns[1]!.data as Float32Array)).toEqual(want.flatMap(([pk, pi]) => [Number(pk), pi, 0.5]));
        expect(m.columns[2]!.data).toEqual(want.map(([pk, pi]) => `${pk}@${pi}`));
        expect(Array.from(m.columns[2]!.valid!)).toEqual(want.map(([pk]) => (pk % 3n === 0n ? 0 : 1)));
        expect(Array.from(m.sources)).toEqual(want.map((w) => w[1]));
      }
    }
  });

  it("orders VarChar pks by code point as Milvus does, not by UTF-16 unit", () => {
    const m = mergeQueryRows([{ pks: ["😀", "b"] }, { pks: ["\uff61", "a", "b"] }], 0);
    expect(m.pks).toEqual(["a", "b", "\uff61", "😀"]);
    expect(Array.from(m.sources)).toEqual([1, 0, 1, 0]);
    expect(m.columns).toEqual([]);
    expect(comparePks("😀", "\uff61")).toBeGreaterThan(0);
    expect(comparePks(-5n, 3n)).toBeLessThan(0);
  });

  it("counts: count(*) sums the shards", () => {
    expect(sumCounts([3, 4n, 0])).toBe(7n);
    expect(sumCounts([])).toBe(0n);
    expectInvalid(() => sumCounts([-1]), "counts");
    expectInvalid(() => mergeQueryRows([], -1), "offset");
  });
});

describe("reduceSearchResults and reduceQueryResults (the proxy's and the delegator's merge)", () => {
  /** code point order of two strings, written out independently of reduce.ts */
  const byCodePoint = (a: string, b: string) => {
    const x = [...a].map((c) => c.codePointAt(0)!);
    const y = [...b].map((c) => c.codePointAt(0)!);
    for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
    return x.length - y.length;
  };
  // keys whose UTF-16 order differs from their code point order: "\uff61" < "😀" by code point only
  const KEYS = ["😀1", "\uff611", "a", "😀0", "\uff610", "b", "𝔸", "\ue000", "z", "é"];

  it("breaks equal scores by pk as the shards do (VarChar by code point), then pages one sorted list", () => {
    // two shards, every hit at one of two scores: ties across the shards decide the order
    const hits = KEYS.map((id, i) => ({ id, score: i < 5 ? 0.5 : 0.25, shard: i % 2 }));
    const shard = (n: number): SearchResult => {
      const mine = hits.filter((h) => h.shard === n).sort((a, b) => b.score - a.score || byCodePoint(a.id, b.id));
      return {
        nq: 1,
        hits: [{ ids: mine.map((h) => h.id), scores: Float32Array.from(mine.map((h) => h.score)), fields: { 7: mine.map((h) => `v:${h.id}`) } }],
      };
    };
    const global = [...hits].sort((a, b) => b.score - a.score || byCodePoint(a.id, b.id));
    // UTF-16 order would put "😀" before "\uff61" among the 0.5s: the reference must not be that order
    expect(global.map((h) => h.id)).not.toEqual([...hits].sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map((h) => h.id));
    for (const [offset, k] of [
      [0, 10],
      [0, 3],
      [2, 3],
      [5, 5],
      [9, 4],
      [12, 1],
    ] as const) {
      const r = reduceSearchResults([shard(0), shard(1)], { nq: 1, k, offset, metric: "IP", outputFieldIds: [7], int64Pk: false });
      const want = global.slice(offset, offset + k);
      expect(r.hits[0]!.ids, `offset ${offset} k ${k}`).toEqual(want.map((h) => h.id));
      expect(Array.from(r.hits[0]!.scores)).toEqual(want.map((h) => h.score));
      expect(r.hits[0]!.fields[7]).toEqual(want.map((h) => `v:${h.id}`));
    }
    // L2: smaller first, equal distances by pk
    const l2 = reduceSearchResults(
      [
        { nq: 1, hits: [{ ids: BigInt64Array.from([9n, 4n]), scores: Float32Array.from([1, 2]), fields: {} }] },
        { nq: 1, hits: [{ ids: BigInt64Array.from([3n, 8n]), scores: Float32Array.from([1, 2]), fields: {} }] },
      ],
      { nq: 1, k: 3, offset: 1, metric: "L2", outputFieldIds: [], int64Pk: true },
    );
    expect(Array.from(l2.hits[0]!.ids as BigInt64Array)).toEqual([9n, 4n, 8n]);
  });

  it("groups: the best hit of each group value, offset and limit counted in groups", () => {
    const part = (ids: bigint[], scores: number[], groups: number[]): SearchResult => ({
      nq: 1,
      hits: [{ ids: BigInt64Array.from(ids), scores: Float32Array.from(scores), fields: { 5: groups } }],
    });
    const parts = [part([1n, 2n, 3n], [0.9, 0.8, 0.5], [10, 10, 20]), part([4n, 5n, 6n], [0.9, 0.7, 0.6], [30, 20, 10])];
    const all = reduceSearchResults(parts, { nq: 1, k: 10, offset: 0, metric: "IP", outputFieldIds: [5], int64Pk: true, groupFieldId: 5 });
    // 1 and 4 tie at 0.9 (pk order); 2 is group 10 again; 5 is the best of group 20
    expect(Array.from(all.hits[0]!.ids as BigInt64Array)).toEqual([1n, 4n, 5n]);
    expect(all.hits[0]!.fields[5]).toEqual([10, 30, 20]);
    const page = reduceSearchResults(parts, { nq: 1, k: 1, offset: 1, metric: "IP", outputFieldIds: [5], int64Pk: true, groupFieldId: 5 });
    expect(Array.from(page.hits[0]!.ids as BigInt64Array)).toEqual([4n]);
  });

  it("merges query rows by pk with offset and limit, and sums count(*)", () => {
    const part = (pks: string[]): QueryResult => ({ count: pks.length, pks, fields: { 3: pks.map((p) => p.length) } });
    const sorted = [...KEYS].sort(byCodePoint);
    const parts = [part(KEYS.filter((_, i) => i % 2 === 0).sort(byCodePoint)), part(KEYS.filter((_, i) => i % 2 === 1).sort(byCodePoint))];
    for (const [offset, limit] of [
      [0, undefined],
      [0, 4],
      [4, 4],
      [8, 4],
      [11, 2],
    ] as const) {
      const r = reduceQueryResults(parts, { offset, limit, countOnly: false, outputFieldIds: [3], int64Pk: false });
      const want = sorted.slice(offset, limit === undefined ? undefined : offset + limit);
      expect(r.pks, `offset ${offset} limit ${limit}`).toEqual(want);
      expect(r.fields[3]).toEqual(want.map((k) => k.length));
      expect(r.count).toBe(want.length);
    }
    const counts = reduceQueryResults(
      [
        { count: 3, pks: [], fields: {} },
        { count: 4, pks: [], fields: {} },
      ],
      { offset: 0, countOnly: true, outputFieldIds: [], int64Pk: true },
    );
    expect(counts.count).toBe(7);
    const none = reduceQueryResults([], { offset: 0, countOnly: false, outputFieldIds: [3], int64Pk: true });
    expect(none.pks).toBeInstanceOf(BigInt64Array);
    expect(none.fields).toEqual({ 3: [] });
  });
});
