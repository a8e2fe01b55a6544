/**
 * A querynode's vector indexes on a real nats-server and a filesystem object store. The test plays the
 * datanode (it writes sealed segments and builds index artifacts with actors/index) and querycoord
 * (LoadSegments, LoadIndex, ReleaseIndex), and checks searches against brute force computed here:
 * recall through an index, exact scores, visibility (deletes, the read position) and filters at every
 * selectivity, memory accounting, refusals and failures.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClusterEnv, type ClusterEnv } from "../../actors/env.ts";
import { compileFilter } from "../../actors/expr/index.ts";
import { buildIndex } from "../../actors/index/index.ts";
import { spawnQuerynode } from "../../actors/querynode/index.ts";
import { estimateSegmentBytes } from "../../actors/segment/sealed_segment.ts";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import { asNodeId } from "../../protocol/ids.ts";
import { indexFileKey, type IndexLoadInfo, type IndexMetric, type IndexTypeName } from "../../protocol/messages/indexes.ts";
import type { MetricType, QuerynodeApi, SearchResult, SearchSpec } from "../../protocol/messages/querynode.ts";
import type { CollectionSchema } from "../../protocol/schema.ts";
import { ask } from "../../runtime/ask.ts";
import { ActorHost } from "../../runtime/host.ts";
import { FsObjectStore } from "../../runtime/object_store_fs.ts";
import { connectTest, uniquePrefix } from "../harness/index.ts";
import { embeddingVectors, writeSealedSegment, type WrittenSegment } from "../harness/sealed.ts";

const DIM = 32;
/** rows a segment: enough that filters passing 10% and more go through the index (over-fetch) */
const ROWS = 30_000;
const COLL = 1n;
const PART = 10n;
const VEC = 101;
const HNSW_ID = 501n;
const IVF_ID = 502n;
const NLIST = 64;
const MiB = 1024 * 1024;

const schema: CollectionSchema = {
  name: "idx",
  fields: [
    { fieldId: 100, name: "id", type: "Int64", isPrimaryKey: true },
    { fieldId: VEC, name: "vec", type: "FloatVector", dim: DIM },
    { fieldId: 102, name: "tag", type: "Int32" },
  ],
};

/** Every row the test wrote, across segments. */
interface Rows {
  pks: bigint[];
  vecs: Float32Array[];
  tags: number[];
  positions: bigint[];
}

interface Fixture {
  env: ClusterEnv;
  store: FsObjectStore;
  segs: WrittenSegment[];
  rows: Rows;
  /** artifacts by `${segmentId}/${indexId}` */
  infos: Map<string, IndexLoadInfo>;
  stop(): Promise<void>;
}

let fx: Fixture;

beforeAll(async () => {
  const nc = await connectTest();
  const dir = await mkdtemp(join(tmpdir(), "vb-qnidx-"));
  const store = new FsObjectStore(dir);
  const env = createClusterEnv(nc, store, { prefix: uniquePrefix("qi"), config: { heartbeatIntervalMs: 200 } });
  const host = new ActorHost(nc, { nodeId: "test" });
  await spawnQuerynode(host, env, { nodeId: "qn1", memoryLimitBytes: 1024 * MiB });
  const rows: Rows = { pks: [], vecs: [], tags: [], positions: [] };
  const segs: WrittenSegment[] = [];
  for (let s = 0; s < 2; s++) {
    const vec = embeddingVectors(ROWS, DIM, 11 + s);
    const start = BigInt(1 + s * ROWS);
    const pks = BigInt64Array.from({ length: ROWS }, (_, i) => BigInt(s * ROWS + i + 1));
    const tags = Int32Array.from({ length: ROWS }, (_, i) => (s * ROWS + i) % 1000);
    const w = await writeSealedSegment(
      store,
      schema,
      { collectionId: COLL, partitionId: PART, segmentId: BigInt(100 + s), vchannel: "1v0" },
      ROWS,
      [
        { fieldId: 100, data: pks },
        { fieldId: VEC, data: vec },
        { fieldId: 102, data: tags },
      ],
      start,
    );
    segs.push(w);
    for (let i = 0; i < ROWS; i++) {
      rows.pks.push(pks[i]!);
      rows.vecs.push(vec.subarray(i * DIM, (i + 1) * DIM));
      rows.tags.push(tags[i]!);
      rows.positions.push(w.positions[i]!);
    }
  }
  // artifacts, as a datanode's build would write them
  const infos = new Map<string, IndexLoadInfo>();
  for (const w of segs) {
    const vectors = w.columns[1]!.data as Float32Array;
    for (const [indexId, indexType, metric, params] of [
      [HNSW_ID, "HNSW", "L2", { M: 16, efConstruction: 64 }],
      [IVF_ID, "IVF_FLAT", "IP", { nlist: NLIST }],
    ] as const) {
      const bytes = await buildIndex({ vectors, dim: DIM, metric, indexType, params });
      const buildId = indexId * 10n + w.info.segmentId;
      const fileKey = indexFileKey(COLL, PART, w.info.segmentId, indexId, buildId);
      await store.put(fileKey, bytes);
      infos.set(`${w.info.segmentId}/${indexId}`, {
        segmentId: w.info.segmentId,
        fieldId: VEC,
        indexId,
        buildId,
        fileKey,
        indexType: indexType as IndexTypeName,
        metricType: metric as IndexMetric,
        memorySize: bytes.byteLength + 64 * 1024,
      });
    }
  }
  fx = {
    env,
    store,
    segs,
    rows,
    infos,
    async stop() {
      await host.stop();
      await nc.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}, 180_000);

afterAll(async () => {
  await fx?.stop();
});

function qn<V extends keyof QuerynodeApi & string>(verb: V, body: QuerynodeApi[V][0], node = "qn1"): Promise<QuerynodeApi[V][1]> {
  return ask(fx.env.nc, fx.env.subjects.querynode(asNodeId(node)), `querynode.${verb}`, body, { timeoutMs: 60_000 });
}

async function refusal(p: Promise<unknown>): Promise<VbError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(VbError);
    return err as VbError;
  }
  throw new Error("expected a refusal");
}

const info = (segmentId: bigint, indexId: bigint): IndexLoadInfo => fx.infos.get(`${segmentId}/${indexId}`)!;
const segIds = () => fx.segs.map((s) => s.info.segmentId);
const dist = (node = "qn1") => qn("GetDist", {}, node);

async function loadSegments(node = "qn1", indexes: IndexLoadInfo[] = []): Promise<void> {
  await qn("LoadSegments", { collectionId: COLL, replicaId: 1n, schema, segments: fx.segs.map((s) => s.info), l0Segments: [], indexes }, node);
}

async function loadIndexes(indexId: bigint, node = "qn1"): Promise<void> {
  await qn("LoadIndex", { collectionId: COLL, infos: segIds().map((s) => info(s, indexId)) }, node);
}

async function releaseIndexes(node = "qn1"): Promise<void> {
  for (const s of segIds()) for (const i of [HNSW_ID, IVF_ID]) await qn("ReleaseIndex", { collectionId: COLL, segmentId: s, indexId: i }, node);
}

// ---- brute force ----

/** The exact kernel's score: float64 sums of float32 values, rounded once to float32. */
function score(metric: MetricType, q: Float32Array, v: Float32Array): number {
  let s = 0;
  for (let d = 0; d < DIM; d++) s += metric === "L2" ? (q[d]! - v[d]!) * (q[d]! - v[d]!) : q[d]! * v[d]!;
  return Math.fround(s);
}

/** Exact top-k over the rows `pass` keeps (ties by pk). */
function brute(q: Float32Array, k: number, metric: MetricType, pass: (i: number) => boolean = () => true): { ids: bigint[]; scores: number[] } {
  const all: { pk: bigint; s: number }[] = [];
  for (let i = 0; i < fx.rows.pks.length; i++) if (pass(i)) all.push({ pk: fx.rows.pks[i]!, s: score(metric, q, fx.rows.vecs[i]!) });
  all.sort((a, b) => (metric === "L2" ? a.s - b.s : b.s - a.s) || (a.pk < b.pk ? -1 : 1));
  const top = all.slice(0, k);
  return { ids: top.map((x) => x.pk), scores: top.map((x) => x.s) };
}

const byPk = (): Map<bigint, number> => new Map(fx.rows.pks.map((pk, i) => [pk, i]));

function spec(queries: Float32Array, extra: Partial<SearchSpec> = {}): SearchSpec {
  return {
    collectionId: COLL,
    annsFieldId: VEC,
    metric: "L2",
    queries,
    nq: queries.length / DIM,
    topk: 10,
    partitionIds: [],
    outputFieldIds: [],
    ...extra,
  };
}

function search(queries: Float32Array, extra: Partial<SearchSpec> = {}, readPosition = 1n << 40n, node = "qn1"): Promise<SearchResult> {
  return qn("SearchSegments", { segmentIds: segIds(), spec: spec(queries, extra), readPosition }, node);
}

/** recall@k of `got` against brute force, and a check that every hit has its exact score and passes. */
function recallOf(
  res: SearchResult,
  queries: Float32Array,
  metric: MetricType,
  k: number,
  pass: (i: number) => boolean = () => true,
): number {
  const rowOf = byPk();
  let found = 0;
  let wanted = 0;
  for (let q = 0; q < res.nq; q++) {
    const qv = queries.subarray(q * DIM, (q + 1) * DIM);
    const truth = brute(qv, k, metric, pass);
    const ids = [...(res.hits[q]!.ids as BigInt64Array)];
    const want = new Set(truth.ids);
    wanted += truth.ids.length;
    ids.forEach((pk, j) => {
      const i = rowOf.get(pk)!;
      expect(pass(i), `hit ${pk} of query ${q} must be visible and pass the filter`).toBe(true);
      expect(res.hits[q]!.scores[j]).toBe(score(metric, qv, fx.rows.vecs[i]!));
      if (want.has(pk)) found++;
    });
    expect(new Set(ids).size).toBe(ids.length);
  }
  return wanted === 0 ? 1 : found / wanted;
}

function expectExact(res: SearchResult, queries: Float32Array, metric: MetricType, k: number, pass?: (i: number) => boolean): void {
  for (let q = 0; q < res.nq; q++) {
    const truth = brute(queries.subarray(q * DIM, (q + 1) * DIM), k, metric, pass);
    expect([...(res.hits[q]!.ids as BigInt64Array)]).toEqual(truth.ids);
    expect([...res.hits[q]!.scores]).toEqual(truth.scores);
  }
}

const queries = () => embeddingVectors(40, DIM, 777);

describe("querynode vector indexes", () => {
  it("loads an index for a loaded segment, lists it in the dist, and searches through it with exact scores", async () => {
    await loadSegments();
    const before = await dist();
    expect(before.segments.map((s) => s.indexIds)).toEqual([[], []]);
    const q = queries();
    expectExact(await search(q), q, "L2", 10);

    await loadIndexes(HNSW_ID);
    const after = await dist();
    for (const s of after.segments) expect(s.indexIds).toEqual([HNSW_ID]);
    expect(after.memoryBytes).toBeGreaterThan(before.memoryBytes + 2 * ROWS * 16 * 4);
    expect(after.loading).toEqual([]);

    const res = await search(q);
    expect(recallOf(res, q, "L2", 10)).toBeGreaterThanOrEqual(0.95);
    // loading it again is a no-op
    await loadIndexes(HNSW_ID);
    expect((await dist()).memoryBytes).toBe(after.memoryBytes);
    // ef below k is the caller's mistake
    const e = await refusal(search(q, { searchParams: { ef: 5 } }));
    expect(e.code).toBe(ErrorCode.ParameterInvalid);
    expect(e.message).toMatch(/ef/);
  });

  it("searches an index of the search's metric only, and passes nprobe to IVF_FLAT", async () => {
    await loadSegments();
    await loadIndexes(HNSW_ID);
    await loadIndexes(IVF_ID);
    for (const s of (await dist()).segments) expect([...s.indexIds].sort()).toEqual([HNSW_ID, IVF_ID]);
    const q = queries();
    // IP goes through IVF_FLAT: one probe of 64 lists misses some neighbours, every probe finds them all
    const oneProbe = recallOf(await search(q, { metric: "IP", searchParams: { nprobe: 1 } }), q, "IP", 10);
    expect(oneProbe).toBeLessThan(1);
    expectExact(await search(q, { metric: "IP", searchParams: { nprobe: NLIST } }), q, "IP", 10);
    // L2 goes through HNSW; COSINE has no index: exact (compared with the L2-normalized brute force below)
    expect(recallOf(await search(q), q, "L2", 10)).toBeGreaterThanOrEqual(0.95);
    const cos = await search(q, { metric: "COSINE" });
    for (let i = 0; i < cos.nq; i++) expect(cos.hits[i]!.ids.length).toBe(10);
  });

  it("keeps deleted, not yet visible and filtered-out rows out of index searches at every selectivity", async () => {
    await loadSegments();
    await loadIndexes(HNSW_ID);
    const q = queries();
    // delete the true top 3 of every query at a position after every row
    const del = new Set<bigint>();
    for (let i = 0; i < 40; i++) for (const pk of brute(q.subarray(i * DIM, (i + 1) * DIM), 3, "L2").ids) del.add(pk);
    const at = BigInt(2 * ROWS + 100);
    const pks = BigInt64Array.from(del);
    await qn("ApplyDelete", { collectionId: COLL, segmentIds: segIds(), pks, positions: new BigInt64Array(pks.length).fill(at) });
    const rowOf = byPk();
    const deleted = new Set([...del].map((pk) => rowOf.get(pk)!));

    // before the delete they are hits, after it never
    const beforeDelete = await search(q, {}, at - 1n);
    expect(beforeDelete.hits.some((h) => [...(h.ids as BigInt64Array)].some((pk) => del.has(pk)))).toBe(true);
    expect(recallOf(await search(q, {}, at), q, "L2", 10, (i) => !deleted.has(i))).toBeGreaterThanOrEqual(0.95);

    // a read position inside the second segment: later rows are not visible yet
    const r = BigInt(ROWS + ROWS / 2);
    expect(recallOf(await search(q, {}, r), q, "L2", 10, (i) => fx.rows.positions[i]! <= r)).toBeGreaterThanOrEqual(0.95);

    // filters passing 50 %, 10 %, 1 %, 0.1 % of the rows, with the deletes
    for (const [expr, below] of [
      ["tag < 500", 500],
      ["tag < 100", 100],
      ["tag < 10", 10],
      ["tag < 1", 1],
    ] as const) {
      const filter = compileFilter(expr, schema);
      const res = await search(q, { filter }, at);
      const pass = (i: number) => fx.rows.tags[i]! < below && !deleted.has(i);
      expect(recallOf(res, q, "L2", 10, pass), expr).toBeGreaterThanOrEqual(0.95);
    }
  });

  it("falls back to exact search when the index is released, and frees its memory", async () => {
    await loadSegments();
    await loadIndexes(HNSW_ID);
    const withIndex = await dist();
    await releaseIndexes();
    const after = await dist();
    expect(after.segments.map((s) => s.indexIds)).toEqual([[], []]);
    expect(after.memoryBytes).toBeLessThan(withIndex.memoryBytes);
    expect(after.memoryBytes).toBe(after.segments.reduce((n, s) => n + s.memoryBytes, 0));
    const q = queries();
    // the deletes of the previous test stand: exact over the rows they left
    const live = await search(q);
    for (let i = 0; i < live.nq; i++) expect(live.hits[i]!.ids.length).toBe(10);
    expectExact(await search(q, {}, BigInt(2 * ROWS)), q, "L2", 10);
    // a range search on an indexed segment is exact too
    await loadIndexes(HNSW_ID);
    const radius = brute(q.subarray(0, DIM), 30, "L2").scores[29]!;
    const ranged = await search(q.subarray(0, DIM), { topk: 100, radius }, BigInt(2 * ROWS));
    const truth = brute(q.subarray(0, DIM), 100, "L2").ids.filter((_, j) => brute(q.subarray(0, DIM), 100, "L2").scores[j]! < radius);
    expect([...(ranged.hits[0]!.ids as BigInt64Array)]).toEqual(truth);
  });

  it("loads a segment's indexes with it, and releases them with it", async () => {
    await qn("ReleaseSegments", { collectionId: COLL, segmentIds: segIds() });
    const empty = await dist();
    expect(empty.segments).toEqual([]);
    expect(empty.memoryBytes).toBe(0);
    await loadSegments("qn1", segIds().map((s) => info(s, HNSW_ID)));
    const d = await dist();
    for (const s of d.segments) expect(s.indexIds).toEqual([HNSW_ID]);
    const q = queries();
    expect(recallOf(await search(q, {}, BigInt(2 * ROWS)), q, "L2", 10)).toBeGreaterThanOrEqual(0.95);
    await qn("ReleaseSegments", { collectionId: COLL, segmentIds: segIds() });
    expect((await dist()).memoryBytes).toBe(0);
  });

  it("refuses an index that does not fit with 3, shows it in the dist, and keeps the segment searchable", async () => {
    // a node whose limit holds both segments (at their estimate, reserved while they load) and not their indexes
    const segBytes = fx.segs.reduce((n, s) => n + estimateSegmentBytes(s.info, schema), 0);
    const host = new ActorHost(fx.env.nc, { nodeId: "small" });
    try {
      await spawnQuerynode(host, fx.env, { nodeId: "qn-small", memoryLimitBytes: segBytes + 1024 });
      await loadSegments("qn-small");
      const e = await refusal(loadIndexes(HNSW_ID, "qn-small"));
      expect(e.code).toBe(ErrorCode.MemoryLimitExceeded);
      expect(e.message).toMatch(/cannot load index 501/);
      const d = await dist("qn-small");
      expect(d.segments.map((s) => s.indexIds)).toEqual([[], []]);
      expect(d.loading).toContainEqual(expect.objectContaining({ indexId: HNSW_ID, state: "failed", reason: expect.stringMatching(/index 501/) }));
      const q = queries();
      expectExact(await search(q, {}, BigInt(2 * ROWS), "qn-small"), q, "L2", 10);
      // carried by LoadSegments, an index that does not fit leaves its segment loading alone
      await qn("ReleaseSegments", { collectionId: COLL, segmentIds: segIds() }, "qn-small");
      await loadSegments("qn-small", segIds().map((s) => info(s, HNSW_ID)));
      const d2 = await dist("qn-small");
      expect(d2.segments.map((s) => s.indexIds)).toEqual([[], []]);
      expect(d2.loading.filter((l) => l.indexId === HNSW_ID && l.state === "failed")).toHaveLength(2);
    } finally {
      await host.stop();
    }
  });

  it("fails a missing, damaged or foreign artifact with its code, and answers malformed requests with 1100", async () => {
    await loadSegments();
    await releaseIndexes();
    const [a, b] = segIds() as [bigint, bigint];
    const missing = { ...info(a, HNSW_ID), indexId: 900n, fileKey: "index_files/none/index.bin" };
    expect((await refusal(qn("LoadIndex", { collectionId: COLL, infos: [missing] }))).code).toBe(ErrorCode.IoKeyNotFound);
    await fx.store.put("index_files/damaged/index.bin", new TextEncoder().encode("not an index"));
    const damaged = { ...info(a, HNSW_ID), indexId: 901n, fileKey: "index_files/damaged/index.bin" };
    const e1 = await refusal(qn("LoadIndex", { collectionId: COLL, infos: [damaged] }));
    expect(e1.code).toBe(ErrorCode.ParameterInvalid);
    // an artifact of another segment (other rows)
    const foreign = { ...info(b, HNSW_ID), segmentId: a, indexId: 902n };
    const other = await writeSealedSegment(fx.store, schema, { collectionId: COLL, partitionId: PART, segmentId: 200n, vchannel: "1v0" }, 10, [
      { fieldId: 100, data: BigInt64Array.from({ length: 10 }, (_, i) => BigInt(10_000_000 + i)) },
      { fieldId: VEC, data: embeddingVectors(10, DIM, 5) },
      { fieldId: 102, data: new Int32Array(10) },
    ]);
    await qn("LoadSegments", { collectionId: COLL, replicaId: 1n, schema, segments: [other.info], l0Segments: [] });
    const e2 = await refusal(qn("LoadIndex", { collectionId: COLL, infos: [{ ...foreign, segmentId: 200n }] }));
    expect(e2.code).toBe(ErrorCode.ParameterInvalid);
    expect(e2.message).toMatch(/covers 30000 rows, the segment holds 10/);
    const d = await dist();
    for (const id of [900n, 901n, 902n]) expect(d.loading).toContainEqual(expect.objectContaining({ indexId: id, state: "failed" }));
    expect(d.segments.every((s) => s.indexIds.length === 0)).toBe(true);
    // releasing forgets the failure
    await qn("ReleaseIndex", { collectionId: COLL, segmentId: a, indexId: 900n });
    expect((await dist()).loading.some((l) => l.indexId === 900n)).toBe(false);
    await qn("ReleaseSegments", { collectionId: COLL, segmentIds: [200n] });

    const e3 = await refusal(qn("LoadIndex", { collectionId: COLL, infos: [{ ...info(a, HNSW_ID), segmentId: 999n }] }));
    expect(e3.code).toBe(ErrorCode.SegmentNotLoaded);
    expect(e3.retriable).toBe(true);
    for (const bad of [{ collectionId: COLL }, { collectionId: COLL, infos: [{ ...info(a, HNSW_ID), fileKey: 3 }] }, { collectionId: COLL, infos: [{ ...info(a, HNSW_ID), fieldId: 102 }] }]) {
      expect((await refusal(qn("LoadIndex", bad as never))).code).toBe(ErrorCode.ParameterInvalid);
    }
    expect((await refusal(qn("ReleaseIndex", { collectionId: COLL, segmentId: a } as never))).code).toBe(ErrorCode.ParameterInvalid);
    // and still serves
    const q = queries();
    expectExact(await search(q, {}, BigInt(2 * ROWS)), q, "L2", 10);
  });
});
