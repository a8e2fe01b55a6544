/**
 * Index definition and building on a standalone (rootcoord, datacoord, datanodes, proxy) on the suite's
 * nats-server with a filesystem object store: CreateIndex schedules a build for every Flushed L1
 * segment (and for segments flushed later), datanodes build in worker threads and write the artifacts
 * under index_files/, DescribeIndex reports progress, DropIndex removes meta and artifacts, bad
 * definitions get 1100, and a build lost with its datanode is given to another one.
 */
import { describe, expect, it } from "vitest";
import { spawnDatanode } from "../../actors/datanode/index.ts";
import { loadIndex } from "../../actors/index/index.ts";
import { readSegment } from "../../actors/storage/index.ts";
import { searchFlat } from "../../actors/search/index.ts";
import { decode } from "../../protocol/codec.ts";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import { asNodeId } from "../../protocol/ids.ts";
import type { CollectionInfo, SegmentInfo } from "../../protocol/meta.ts";
import type { DatanodeApi } from "../../protocol/messages/datacoord.ts";
import type { IndexInfo, IndexLoadInfo, SegmentIndex } from "../../protocol/messages/indexes.ts";
import type { CollectionSchema } from "../../protocol/schema.ts";
import { listAll } from "../../runtime/object_store.ts";
import { waitFor } from "../harness/index.ts";
import { startTestCluster, type TestCluster } from "../harness/standalone.ts";

const DIM = 16;

function schemaOf(name: string, dim = DIM): CollectionSchema {
  return {
    name,
    fields: [
      { name: "id", type: "Int64", isPrimaryKey: true },
      { name: "title", type: "VarChar", maxLength: 32 },
      { name: "vec", type: "FloatVector", dim },
    ],
  };
}

/** Deterministic pseudo-random vectors (no two rows alike). */
function vectors(from: number, n: number, dim = DIM): Float32Array {
  const out = new Float32Array(n * dim);
  let x = (from + 1) * 2654435761;
  for (let i = 0; i < out.length; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    out[i] = x / 1073741824 - 1;
  }
  return out;
}

async function insertFlushed(tc: TestCluster, name: string, from: number, n: number, dim = DIM): Promise<void> {
  for (let off = from; off < from + n; off += 4_000) {
    const m = Math.min(4_000, from + n - off);
    await tc.client.insert({
      collectionName: name,
      columns: {
        id: BigInt64Array.from({ length: m }, (_, i) => BigInt(off + i)),
        title: Array.from({ length: m }, (_, i) => `t${off + i}`),
        vec: vectors(off, m, dim),
      },
    });
  }
  const res = await tc.client.flush({ collectionNames: [name] });
  expect(res.collections[name]!.flushed).toBe(true);
}

function datacoord<R>(tc: TestCluster, verb: string, body: unknown): Promise<R> {
  return tc.sa.host.ask<R>(tc.sa.env.subjects.datacoord(), `datacoord.${verb}`, body, { timeoutMs: 10_000 });
}

async function flushedL1(tc: TestCluster, collectionId: bigint): Promise<SegmentInfo[]> {
  const { segments } = await datacoord<{ segments: SegmentInfo[] }>(tc, "ListSegments", { collectionId, states: ["Flushed"] });
  return segments.filter((s) => s.level === "L1" && s.numRows > 0);
}

async function describeOne(tc: TestCluster, name: string) {
  const { indexes } = await tc.client.describeIndex({ collectionName: name });
  expect(indexes).toHaveLength(1);
  return indexes[0]!;
}

async function waitIndexed(tc: TestCluster, name: string, rows: number) {
  return waitFor(
    async () => {
      const p = await describeOne(tc, name);
      return p.state === "Finished" && p.totalRows === rows && p.indexedRows === rows && p.pendingBuilds === 0 ? p : undefined;
    },
    { timeoutMs: 40_000, intervalMs: 50, what: `index of "${name}" built over ${rows} rows` },
  );
}

/**
 * Loads every build of the collection's index from the object store and searches it against brute force
 * over the segment's vectors: every hit carries the exact kernel's score, best first; IVF_FLAT with
 * nprobe = nlist scans every list, so its answer is the exact one; HNSW is approximate (a usearch graph
 * may leave a row unreachable), so its top-10 must hold at least 9 of the true 10 on average.
 */
async function checkArtifacts(tc: TestCluster, info: CollectionInfo, segments: SegmentInfo[], index: IndexInfo | { indexId: bigint; indexType: string; metricType: string; params: Record<string, unknown> }) {
  const infos = await datacoord<{ indexes: IndexInfo[]; builds: IndexLoadInfo[] }>(tc, "GetIndexInfos", { collectionId: info.collectionId });
  expect(infos.indexes.map((i) => i.indexId)).toEqual([index.indexId]);
  expect(infos.builds.map((b) => b.segmentId).sort()).toEqual(segments.map((s) => s.segmentId).sort());
  const files = await listAll(tc.sa.env.objectStore, `index_files/${info.collectionId}/`);
  expect(files.map((f) => f.key).sort()).toEqual(infos.builds.map((b) => b.fileKey).sort());
  let found = 0;
  let wanted = 0;
  for (const b of infos.builds) {
    const seg = segments.find((s) => s.segmentId === b.segmentId)!;
    expect(b.fileKey).toBe(`index_files/${info.collectionId}/${seg.partitionId}/${seg.segmentId}/${index.indexId}/${b.buildId}/index.bin`);
    expect([b.indexType, b.metricType]).toEqual([index.indexType, index.metricType]);
    const data = await readSegment(tc.sa.env.objectStore, seg, info.schema);
    const vecs = data.columns[2]!.data as Float32Array;
    const loaded = loadIndex(await tc.sa.env.objectStore.get(b.fileKey));
    expect([loaded.indexType, loaded.metric, loaded.dim, loaded.rows]).toEqual([index.indexType, index.metricType, DIM, seg.numRows]);
    const metric = loaded.metric;
    const nq = 8;
    const queries = vectors(99_000 + Number(b.segmentId % 1000n), nq);
    const exact = searchFlat({ vectors: vecs, dim: DIM, queries, k: 10, metric });
    const params = index.indexType === "IVF_FLAT" ? { nprobe: index.params.nlist as number } : { ef: 64 };
    const hits = loaded.search({ queries, nq, k: 10, vectors: vecs, params });
    hits.forEach((h, q) => {
      expect(h.rows.length).toBe(10);
      const truth = searchFlat({ vectors: vecs, dim: DIM, queries: queries.subarray(q * DIM, (q + 1) * DIM), k: seg.numRows, metric })[0]!;
      const exactScore = new Map(Array.from(truth.rows, (r, i) => [r, truth.scores[i]!]));
      h.rows.forEach((r, i) => expect(h.scores[i]).toBe(exactScore.get(r)));
      if (index.indexType === "IVF_FLAT") {
        expect(Array.from(h.rows)).toEqual(Array.from(exact[q]!.rows));
        expect(Array.from(h.scores)).toEqual(Array.from(exact[q]!.scores));
      }
      found += Array.from(h.rows).filter((r) => exact[q]!.rows.includes(r)).length;
      wanted += 10;
    });
    loaded.close();
  }
  expect(found / wanted).toBeGreaterThanOrEqual(0.9);
  return infos;
}

async function kvRecords<T>(tc: TestCluster, bucket: string): Promise<Map<string, T>> {
  const kv = await tc.sa.env.meta(bucket);
  const out = new Map<string, T>();
  for (const [k, v] of await kv.entries()) out.set(k, decode<T>(v.value));
  return out;
}

async function expectCode(p: Promise<unknown>, code: number, text?: RegExp): Promise<VbError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(VbError);
  expect((err as VbError).code).toBe(code);
  if (text) expect((err as VbError).message).toMatch(text);
  return err as VbError;
}

const FAST = { heartbeatIntervalMs: 200, heartbeatAvailableMs: 3_000, dmlChannelNum: 2 };

describe("index building", () => {
  it("builds every Flushed segment, later ones too; artifacts load and search; DropIndex removes them", async () => {
    await using tc = await startTestCluster({
      roles: { rootcoord: true, datacoord: true, datanodes: ["dn1", "dn2"], proxy: true },
      cluster: FAST,
    });
    const name = "books";
    const info: CollectionInfo = await tc.client.createCollection({ schema: schemaOf(name), shardsNum: 2 });
    await insertFlushed(tc, name, 0, 1_500);
    await insertFlushed(tc, name, 1_500, 1_000);
    const before = await flushedL1(tc, info.collectionId);
    expect(before.length).toBeGreaterThanOrEqual(3);

    await tc.client.createIndex({ collectionName: name, fieldName: "vec", indexType: "HNSW", metricType: "COSINE", params: { M: 16, efConstruction: 64 } });
    const done = await waitIndexed(tc, name, 2_500);
    expect(done).toMatchObject({ indexName: "vec", fieldName: "vec", indexType: "HNSW", metricType: "COSINE", params: { M: 16, efConstruction: 64 }, failedBuilds: [] });
    expect(await tc.client.getIndexBuildProgress({ collectionName: name })).toEqual({ totalRows: 2_500, indexedRows: 2_500, pendingBuilds: 0 });

    // one artifact per segment, where GetIndexInfos says; each loads and searches
    const infos = await checkArtifacts(tc, info, before, done);
    expect(infos.builds.every((b) => b.memorySize > 0)).toBe(true);

    // the KV layout: one IndexInfo per index, one SegmentIndex per (segment, index)
    const indexRecs = await kvRecords<IndexInfo>(tc, "indexes");
    expect([...indexRecs.keys()]).toEqual([`${info.collectionId}/${done.indexId}`]);
    const buildRecs = await kvRecords<SegmentIndex>(tc, "segment_indexes");
    expect([...buildRecs.keys()].sort()).toEqual(before.map((s) => `${info.collectionId}/${s.segmentId}/${done.indexId}`).sort());
    expect([...buildRecs.values()].every((r) => r.state === "Finished" && r.nodeId !== undefined)).toBe(true);

    // a segment flushed after CreateIndex is built too
    await insertFlushed(tc, name, 2_500, 700);
    await waitIndexed(tc, name, 3_200);
    const after = await flushedL1(tc, info.collectionId);
    const infos2 = await datacoord<{ builds: IndexLoadInfo[] }>(tc, "GetIndexInfos", { collectionId: info.collectionId });
    expect(infos2.builds.map((b) => b.segmentId).sort()).toEqual(after.map((s) => s.segmentId).sort());
    const onlyNew = await datacoord<{ builds: IndexLoadInfo[] }>(tc, "GetIndexInfos", {
      collectionId: info.collectionId,
      segmentIds: after.filter((s) => !before.some((b) => b.segmentId === s.segmentId)).map((s) => s.segmentId),
    });
    expect(onlyNew.builds.length).toBe(after.length - before.length);

    // a restarted cluster answers from KV: the same index, every build Finished, nothing rebuilt
    await tc.restart();
    const again = await waitIndexed(tc, name, 3_200);
    expect(again.indexId).toBe(done.indexId);
    const rebuilt = [...(await kvRecords<SegmentIndex>(tc, "segment_indexes")).values()];
    expect(rebuilt.map((r) => r.buildId).sort()).toEqual(infos2.builds.map((b) => b.buildId).sort());

    // DropIndex: meta and artifacts gone, and the field can be indexed another way
    await tc.client.dropIndex({ collectionName: name });
    await expectCode(tc.client.describeIndex({ collectionName: name }), ErrorCode.IndexNotFound);
    expect(await listAll(tc.sa.env.objectStore, `index_files/${info.collectionId}/`)).toEqual([]);
    expect((await kvRecords(tc, "indexes")).size).toBe(0);
    expect((await kvRecords(tc, "segment_indexes")).size).toBe(0);
    expect(await datacoord(tc, "GetIndexInfos", { collectionId: info.collectionId })).toEqual({ indexes: [], builds: [] });

    await tc.client.createIndex({ collectionName: name, fieldName: "vec", indexType: "IVF_FLAT", metricType: "L2", params: { nlist: 8 }, indexName: "ivf" });
    const ivf = await waitIndexed(tc, name, 3_200);
    expect(ivf).toMatchObject({ indexName: "ivf", indexType: "IVF_FLAT", metricType: "L2", params: { nlist: 8 } });
    await checkArtifacts(tc, info, after, ivf);

    // dropping the collection removes its indexes and their files
    await tc.client.dropCollection({ collectionName: name });
    await waitFor(async () => (await listAll(tc.sa.env.objectStore, `index_files/${info.collectionId}/`)).length === 0 && (await kvRecords(tc, "segment_indexes")).size === 0, {
      timeoutMs: 20_000,
      what: "the dropped collection's index files and records removed",
    });
    expect((await kvRecords(tc, "indexes")).size).toBe(0);
  });

  it("refuses bad definitions (1100 naming the parameter), unknown indexes (700) and searches that do not fit the index", async () => {
    await using tc = await startTestCluster({ roles: { rootcoord: true, datacoord: true, datanodes: ["dn1"], proxy: true }, cluster: FAST });
    const name = "refusals";
    await tc.client.createCollection({ schema: schemaOf(name) });
    const create = (over: Record<string, unknown>) =>
      tc.client.createIndex({ collectionName: name, fieldName: "vec", indexType: "HNSW", metricType: "L2", params: { M: 8 }, ...over });

    await expectCode(create({ params: { M: 0 } }), ErrorCode.ParameterInvalid, /^M: must be an integer in 2\.\.2048, got 0/);
    await expectCode(create({ indexType: "FOO" }), ErrorCode.ParameterInvalid, /index_type: unknown index type "FOO"/);
    await expectCode(create({ metricType: "XX" }), ErrorCode.ParameterInvalid, /metric_type: unknown metric "XX"/);
    await expectCode(create({ params: { M: 8, nlist: 4 } }), ErrorCode.ParameterInvalid, /^nlist: not a parameter of HNSW/);
    await expectCode(create({ fieldName: "title", metricType: undefined }), ErrorCode.ParameterInvalid, /FloatVector/);
    await expectCode(create({ fieldName: "nope" }), ErrorCode.ParameterInvalid, /"nope"/);
    await expectCode(create({ indexName: "9lives" }), ErrorCode.ParameterInvalid, /indexName "9lives"/);
    await expectCode(tc.client.describeIndex({ collectionName: name }), ErrorCode.IndexNotFound);
    await expectCode(tc.client.dropIndex({ collectionName: name }), ErrorCode.IndexNotFound);
    await expectCode(tc.client.createIndex({ collectionName: "missing", fieldName: "vec", indexType: "HNSW", metricType: "L2" }), ErrorCode.CollectionNotFound);

    await create({});
    const first = await describeOne(tc, name);
    expect(first).toMatchObject({ indexName: "vec", indexType: "HNSW", metricType: "L2", params: { M: 8, efConstruction: 128 }, totalRows: 0, state: "Finished" });
    // the same definition again is a no-op (the defaults filled in compare equal)
    await create({ params: { M: "8", efConstruction: 128 } });
    expect((await describeOne(tc, name)).indexId).toBe(first.indexId);
    // anything else on the same field must wait for a drop
    await expectCode(create({ params: { M: 16 } }), ErrorCode.ParameterInvalid, /already has index "vec".*drop it first/);
    await expectCode(create({ metricType: "COSINE" }), ErrorCode.ParameterInvalid, /drop it first/);
    await expectCode(create({ indexName: "other" }), ErrorCode.ParameterInvalid, /drop it first/);
    await expectCode(tc.client.describeIndex({ collectionName: name, indexName: "other" }), ErrorCode.IndexNotFound, /"other" not found/);
    await expectCode(tc.client.dropIndex({ collectionName: name, indexName: "other" }), ErrorCode.IndexNotFound);

    // searches are checked against the index before they go anywhere
    const search = (over: Record<string, unknown>) =>
      tc.client.search({ collectionName: name, data: [Array.from({ length: DIM }, () => 0.5)], limit: 10, ...over });
    await expectCode(search({ metricType: "COSINE" }), ErrorCode.ParameterInvalid, /metric type COSINE does not match the index's L2/);
    await expectCode(search({ searchParams: { ef: 5 } }), ErrorCode.ParameterInvalid, /^ef: must be at least k \(10\), got 5/);
    await expectCode(search({ limit: 10, offset: 20, searchParams: { ef: 25 } }), ErrorCode.ParameterInvalid, /ef: must be at least k \(30\)/);
    await expectCode(search({ searchParams: { ef: 40_000 } }), ErrorCode.ParameterInvalid, /^ef: must be an integer in 1\.\.32768/);

    await tc.client.dropIndex({ collectionName: name, indexName: "vec" });
    await tc.client.createIndex({ collectionName: name, fieldName: "vec", indexType: "IVF_FLAT", metricType: "IP", params: { nlist: 16 } });
    await expectCode(search({ searchParams: { nprobe: 17 } }), ErrorCode.ParameterInvalid, /^nprobe: must be an integer in 1\.\.16/);
    await expectCode(search({ metricType: "L2" }), ErrorCode.ParameterInvalid, /metric type L2 does not match the index's IP/);
  });

  it("gives a build lost with its datanode to another datanode", async () => {
    await using tc = await startTestCluster({
      roles: { rootcoord: true, datacoord: true, datanodes: ["dn1"], proxy: true },
      cluster: { ...FAST, heartbeatAvailableMs: 1_500 },
    });
    const name = "lost";
    const dim = 32;
    const info = await tc.client.createCollection({ schema: schemaOf(name, dim) });
    await insertFlushed(tc, name, 0, 20_000, dim);
    const [seg] = await flushedL1(tc, info.collectionId);
    expect(seg!.numRows).toBe(20_000);

    // a build that takes a few seconds on dn1
    await tc.client.createIndex({ collectionName: name, fieldName: "vec", indexType: "HNSW", metricType: "L2", params: { M: 16, efConstruction: 200 } });
    const dn1 = tc.sa.env.subjects.datanode(asNodeId("dn1"));
    await waitFor(
      async () => {
        const st = await tc.sa.host.ask<DatanodeApi["GetStatus"][1]>(dn1, "datanode.GetStatus", {}, { timeoutMs: 5_000 });
        return st.indexBuilds?.some((b) => b.segmentId === seg!.segmentId && b.phase === "building");
      },
      { timeoutMs: 20_000, what: "dn1 building the index" },
    );
    await tc.sa.host.stopActor(dn1);
    await spawnDatanode(tc.sa.host, tc.sa.env, { nodeId: "dn2" });

    const done = await waitIndexed(tc, name, 20_000);
    const recs = [...(await kvRecords<SegmentIndex & { lost: number }>(tc, "segment_indexes")).values()];
    expect(recs).toHaveLength(1);
    expect(recs[0]).toMatchObject({ state: "Finished", nodeId: "dn2", segmentId: seg!.segmentId, indexId: done.indexId });
    // lost once (dn1); dn2's heartbeats kept coming while it built in its worker thread
    expect(recs[0]!.lost).toBe(1);
    const index = loadIndex(await tc.sa.env.objectStore.get(recs[0]!.fileKey!));
    expect(index.rows).toBe(20_000);
    index.close();
  });
});
