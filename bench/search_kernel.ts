/**
 * The exact search kernel (`searchFlat`, actors/search/flat.ts) against a naive scan of the same data
 * in the same run: plain loops over every row, a full sort, the first k. Single thread, no servers.
 *
 * `npm run bench -- search_kernel --json [--rows 100000] [--dim 128] [--k 10] [--seconds 3]` prints
 * `{flat_qps, naive_qps, speedup, ...}`: queries per second, one query per call, L2, uniform random
 * data (also per CPU second, which other processes on the machine disturb less); beside them the other
 * metrics, a batch of 16 queries per call, and filtered searches (50% and 1% of the rows pass, the 1%
 * also as a row list).
 */
import { loadavg } from "node:os";
import { passingRows } from "../actors/search/bitset.ts";
import { searchFlat, type FlatSearchParams } from "../actors/search/flat.ts";
import { rowNorms } from "../actors/search/metric.ts";
import { option, rateFor, report, round } from "./util.ts";

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The naive L2 scan: every row scored with plain loops, all of them sorted, the first k kept. */
function naiveL2(vectors: Float32Array, dim: number, query: Float32Array, k: number): number[] {
  const n = vectors.length / dim;
  const scores = new Array<number>(n);
  for (let r = 0; r < n; r++) {
    let s = 0;
    for (let d = 0; d < dim; d++) {
      const t = query[d]! - vectors[r * dim + d]!;
      s += t * t;
    }
    scores[r] = s;
  }
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => scores[a]! - scores[b]! || a - b);
  return order.slice(0, k);
}

export async function main(args: string[]): Promise<void> {
  const n = option(args, "rows", 100_000);
  const dim = option(args, "dim", 128);
  const k = option(args, "k", 10);
  const seconds = option(args, "seconds", 3);
  const rand = mulberry32(42);
  const vectors = new Float32Array(n * dim);
  for (let i = 0; i < vectors.length; i++) vectors[i] = rand() * 2 - 1;
  const nq = 64;
  const queries = new Float32Array(nq * dim);
  for (let i = 0; i < queries.length; i++) queries[i] = rand() * 2 - 1;
  const query = (i: number) => queries.subarray((i % nq) * dim, ((i % nq) + 1) * dim);
  const filter50 = new Uint8Array(n);
  const filter1 = new Uint8Array(n);
  for (let r = 0; r < n; r++) {
    filter50[r] = rand() < 0.5 ? 1 : 0;
    filter1[r] = rand() < 0.01 ? 1 : 0;
  }
  const rowIds1 = passingRows(filter1);
  const norms = rowNorms(vectors, dim);

  const base: FlatSearchParams = { vectors, dim, queries: query(0), k, metric: "L2" };
  const one = (extra: Partial<FlatSearchParams>) => (i: number) => searchFlat({ ...base, queries: query(i), ...extra });

  // the two must agree before their speeds mean anything
  let same = true;
  for (let i = 0; i < 4; i++) {
    const [hits] = searchFlat({ ...base, queries: query(i) });
    same &&= JSON.stringify(Array.from(hits!.rows)) === JSON.stringify(naiveL2(vectors, dim, query(i), k));
  }

  const flat = rateFor(seconds, 1, one({}));
  const naive = rateFor(seconds, 1, (i) => naiveL2(vectors, dim, query(i), k));
  const batch = 16;
  const flatBatch = rateFor(seconds, batch, (i) => {
    const o = (i * batch) % (nq - batch + 1);
    return searchFlat({ ...base, queries: queries.subarray(o * dim, (o + batch) * dim) });
  });
  const ip = rateFor(seconds, 1, one({ metric: "IP" }));
  const cosine = rateFor(seconds, 1, one({ metric: "COSINE", norms }));
  const f50 = rateFor(seconds, 1, one({ filter: filter50 }));
  const f1 = rateFor(seconds, 1, one({ filter: filter1 }));
  const ids1 = rateFor(seconds, 1, one({ rowIds: rowIds1 }));

  report(args, {
    bench: "search_kernel",
    rows: n,
    dim,
    k,
    flat_qps: round(flat.wall, 1),
    naive_qps: round(naive.wall, 1),
    speedup: round(flat.wall / naive.wall, 2),
    flat_qps_cpu: round(flat.cpu, 1),
    naive_qps_cpu: round(naive.cpu, 1),
    speedup_cpu: round(flat.cpu / naive.cpu, 2),
    same_results: same,
    flat_batch16_qps: round(flatBatch.wall, 1),
    flat_ip_qps: round(ip.wall, 1),
    flat_cosine_qps: round(cosine.wall, 1),
    flat_filter50_qps: round(f50.wall, 1),
    flat_filter1_qps: round(f1.wall, 1),
    flat_rowids1_qps: round(ids1.wall, 1),
    load_avg_1m: round(loadavg()[0]!, 2),
  });
}
