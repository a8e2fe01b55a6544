/**
 * Vector indexes end to end on a standalone with 2 querynodes, through the proxy: an index created
 * after the collection is loaded is built on the datanode and picked up by the querynodes without a
 * release; searches go through it (recall@10 against brute force computed here, with and without
 * filters at 50 %, 10 %, 1 %, 0.1 % of the rows passing); dropping it makes searches exact again; an
 * index that does not fit a querynode shows in GetStatus while the segment stays searchable.
 */
import { describe, expect, it } from "vitest";
import type { CollectionSchema } from "../../protocol/schema.ts";
import type { QueryNodeDist } from "../../protocol/messages/querynode.ts";
import type { SearchHits } from "../../protocol/messages/proxy.ts";
import { asNodeId } from "../../protocol/ids.ts";
import { ask } from "../../runtime/ask.ts";
import { startTestCluster, type TestCluster } from "../harness/standalone.ts";
import { waitFor } from "../harness/index.ts";
import { embeddingVectors } from "../harness/sealed.ts";

const DIM = 32;
const K = 10;

const schema = (name: string): CollectionSchema => ({
  name,
  fields: [
    { name: "id", type: "Int64", isPrimaryKey: true },
    { name: "tag", type: "Int32" },
    { name: "vec", type: "FloatVector", dim: DIM },
  ],
});

interface Data {
  n: number;
  vecs: Float32Array;
  /** tag = i % 1000: `tag < t` passes t / 1000 of the rows */
  tags: Int32Array;
}

function data(n: number, seed: number): Data {
  return { n, vecs: embeddingVectors(n, DIM, seed), tags: Int32Array.from({ length: n }, (_, i) => i % 1000) };
}

async function insert(tc: TestCluster, name: string, d: Data): Promise<void> {
  for (let off = 0; off < d.n; off += 4_000) {
    const end = Math.min(d.n, off + 4_000);
    await tc.client.insert({
      collectionName: name,
      columns: {
        id: BigInt64Array.from({ length: end - off }, (_, i) => BigInt(off + i)),
        tag: d.tags.subarray(off, end),
        vec: d.vecs.subarray(off * DIM, end * DIM),
      },
    });
  }
}

/** The exact kernel's L2: float64 sums of float32 values, rounded once to float32. */
function l2(q: Float32Array, d: Data, i: number): number {
  let s = 0;
  for (let j = 0; j < DIM; j++) {
    const t = q[j]! - d.vecs[i * DIM + j]!;
    s += t * t;
  }
  return Math.fround(s);
}

function brute(d: Data, q: Float32Array, k: number, pass: (i: number) => boolean = () => true): { ids: bigint[]; scores: number[] } {
  const all: { i: number; s: number }[] = [];
  for (let i = 0; i < d.n; i++) if (pass(i)) all.push({ i, s: l2(q, d, i) });
  all.sort((a, b) => a.s - b.s || a.i - b.i);
  const top = all.slice(0, k);
  return { ids: top.map((x) => BigInt(x.i)), scores: top.map((x) => x.s) };
}

async function search(tc: TestCluster, name: string, queries: Float32Array, filter?: string): Promise<SearchHits[]> {
  const res = await tc.client.search({
    collectionName: name,
    data: queries,
    limit: K,
    metricType: "L2",
    consistencyLevel: "Strong",
    ...(filter ? { filter } : {}),
  });
  return res.results;
}

/** recall@K against brute force; every hit must pass and carry its exact score. */
function recall(d: Data, queries: Float32Array, hits: SearchHits[], pass: (i: number) => boolean = () => true): number {
  let found = 0;
  let wanted = 0;
  hits.forEach((h, q) => {
    const qv = queries.subarray(q * DIM, (q + 1) * DIM);
    const truth = new Set(brute(d, qv, K, pass).ids);
    wanted += truth.size;
    [...(h.ids as BigInt64Array)].forEach((pk, j) => {
      expect(pass(Number(pk)), `hit ${pk} passes`).toBe(true);
      expect(h.scores[j]).toBe(l2(qv, d, Number(pk)));
      if (truth.has(pk)) found++;
    });
  });
  return found / wanted;
}

function expectExact(d: Data, queries: Float32Array, hits: SearchHits[]): void {
  hits.forEach((h, q) => {
    const truth = brute(d, queries.subarray(q * DIM, (q + 1) * DIM), K);
    expect([...(h.ids as BigInt64Array)]).toEqual(truth.ids);
    expect([...h.scores]).toEqual(truth.scores);
  });
}

function dists(tc: TestCluster, nodes: string[]): Promise<QueryNodeDist[]> {
  return Promise.all(
    nodes.map((n) => ask<QueryNodeDist>(tc.sa.nc, tc.sa.env.subjects.querynode(asNodeId(n)), "querynode.GetDist", {}, { timeoutMs: 10_000 })),
  );
}

/** The loaded copies of the collection's segments and the index ids each lists. */
async function copies(tc: TestCluster, collectionId: bigint): Promise<{ segmentId: bigint; indexIds: bigint[] }[]> {
  return (await dists(tc, ["qn1", "qn2"])).flatMap((d) => d.segments.filter((s) => s.collectionId === collectionId));
}

describe("vector indexes end to end", () => {
  it("picks up an index built after load without a release, keeps recall under filters, and searches exactly once it is dropped", async () => {
    await using tc = await startTestCluster({ querynodes: 2 });
    const name = "indexed";
    const d = data(60_000, 3);
    const info = await tc.client.createCollection({ schema: schema(name), shardsNum: 2 });
    await insert(tc, name, d);
    await tc.client.flush({ collectionNames: [name] });
    await tc.client.loadCollection({ collectionName: name, wait: true });
    const queries = embeddingVectors(40, DIM, 1234);
    expectExact(d, queries, await search(tc, name, queries));

    await tc.client.createIndex({ collectionName: name, fieldName: "vec", indexType: "HNSW", metricType: "L2", params: { M: 16, efConstruction: 64 } });
    const idx = await waitFor(
      async () => {
        const x = (await tc.client.describeIndex({ collectionName: name })).indexes[0];
        return x?.state === "Finished" && x.indexedRows === d.n ? x : undefined;
      },
      { timeoutMs: 120_000, what: "the index build" },
    );
    // querycoord's IndexChecker loads it on the copies already loaded: no release, no reload
    await waitFor(async () => {
      const cs = await copies(tc, info.collectionId);
      return cs.length > 0 && cs.every((c) => c.indexIds.includes(idx.indexId));
    }, { timeoutMs: 60_000, what: "the querynodes' dists to list the index" });
    expect(await tc.client.getLoadState({ collectionName: name })).toMatchObject({ state: "Loaded" });

    expect(recall(d, queries, await search(tc, name, queries))).toBeGreaterThanOrEqual(0.95);
    for (const t of [500, 100, 10, 1]) {
      const r = recall(d, queries, await search(tc, name, queries, `tag < ${t}`), (i) => d.tags[i]! < t);
      expect(r, `${t / 10} % passing`).toBeGreaterThanOrEqual(0.95);
    }

    await tc.client.dropIndex({ collectionName: name });
    await waitFor(async () => {
      const cs = await copies(tc, info.collectionId);
      return cs.length > 0 && cs.every((c) => c.indexIds.length === 0);
    }, {
      timeoutMs: 60_000,
      what: "the querynodes to release the dropped index",
    });
    expectExact(d, queries, await search(tc, name, queries));
  }, 300_000);

  it("says in GetStatus which index does not fit a querynode, and keeps searching its segment exactly", async () => {
    const d = data(20_000, 5);
    // each node holds its segment (≈ 20k × 164 B) and not an HNSW graph on top of it
    const prev = process.env.VB_QN_MEMORY_LIMIT;
    process.env.VB_QN_MEMORY_LIMIT = String(4 * 1024 * 1024);
    let tc: TestCluster;
    try {
      tc = await startTestCluster({ querynodes: 1 });
    } finally {
      if (prev === undefined) delete process.env.VB_QN_MEMORY_LIMIT;
      else process.env.VB_QN_MEMORY_LIMIT = prev;
    }
    await using _ = tc;
    const name = "tight";
    await tc.client.createCollection({ schema: schema(name), shardsNum: 1 });
    await insert(tc, name, d);
    await tc.client.flush({ collectionNames: [name] });
    await tc.client.loadCollection({ collectionName: name, wait: true });
    await tc.client.createIndex({ collectionName: name, fieldName: "vec", indexType: "HNSW", metricType: "L2" });
    const blocker = await waitFor(
      async () => {
        const st = await tc.client.getStatus({});
        return st.collections.flatMap((c) => c.blockers).find((b) => b.kind === "index");
      },
      { timeoutMs: 120_000, what: "an index blocker in GetStatus" },
    );
    expect(blocker.reason).toMatch(/does not load on node qn1: .*cannot load index/);
    const queries = embeddingVectors(10, DIM, 99);
    expectExact(d, queries, await search(tc, name, queries));
  }, 300_000);
});
