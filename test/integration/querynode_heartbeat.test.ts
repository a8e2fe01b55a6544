/**
 * A querynode's heartbeats under search load: two clients search large sealed segments without pause
 * (exact search on unindexed segments, index search on indexed ones) while the test follows the node's
 * distribution on the feed. No heartbeat may be more than `MAX_LATE_MS` late: the bound
 * docs/architecture.md gives (scans on the actor's own thread made them up to ~290 ms late; on search
 * threads they stay within tens of ms), far inside `heartbeatAvailableMs` (a heartbeat that late would
 * make querycoord call the node down). The measured lateness is printed as JSON.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClusterEnv, type ClusterEnv } from "../../actors/env.ts";
import { compileFilter } from "../../actors/expr/index.ts";
import { buildIndex } from "../../actors/index/index.ts";
import { spawnQuerynode } from "../../actors/querynode/index.ts";
import { decode } from "../../protocol/codec.ts";
import { asNodeId } from "../../protocol/ids.ts";
import { indexFileKey, type IndexLoadInfo } from "../../protocol/messages/indexes.ts";
import type { QueryNodeDist, QuerynodeApi, SearchResult, SearchSpec } from "../../protocol/messages/querynode.ts";
import type { CollectionSchema } from "../../protocol/schema.ts";
import { ask } from "../../runtime/ask.ts";
import { ActorHost } from "../../runtime/host.ts";
import { FsObjectStore } from "../../runtime/object_store_fs.ts";
import { connectTest, uniquePrefix, waitFor } from "../harness/index.ts";
import { embeddingVectors, writeSealedSegment, type WrittenSegment } from "../harness/sealed.ts";

const DIM = 128;
const ROWS = 100_000;
const INTERVAL_MS = 100;
/** How late a heartbeat may be under search load (docs/architecture.md, "Search threads"). */
const MAX_LATE_MS = 250;
const LOAD_MS = 6_000;

const schema: CollectionSchema = {
  name: "hb",
  fields: [
    { fieldId: 100, name: "id", type: "Int64", isPrimaryKey: true },
    { fieldId: 101, name: "vec", type: "FloatVector", dim: DIM },
    { fieldId: 102, name: "tag", type: "Int32" },
  ],
};

interface Fixture {
  env: ClusterEnv;
  host: ActorHost;
  dir: string;
  segs: WrittenSegment[];
  stop(): Promise<void>;
}

let fx: Fixture;

beforeAll(async () => {
  const nc = await connectTest();
  const dir = await mkdtemp(join(tmpdir(), "vb-hb-"));
  const store = new FsObjectStore(dir);
  const env = createClusterEnv(nc, store, { prefix: uniquePrefix("hb"), config: { heartbeatIntervalMs: INTERVAL_MS } });
  const host = new ActorHost(nc, { nodeId: "test" });
  await spawnQuerynode(host, env, { nodeId: "qn1", memoryLimitBytes: 4 * 1024 ** 3 });
  const segs: WrittenSegment[] = [];
  for (let s = 0; s < 2; s++) {
    const vec = embeddingVectors(ROWS, DIM, 7 + s);
    segs.push(
      await writeSealedSegment(store, schema, { collectionId: 1n, partitionId: 10n, segmentId: BigInt(100 + s), vchannel: "1v0" }, ROWS, [
        { fieldId: 100, data: BigInt64Array.from({ length: ROWS }, (_, i) => BigInt(s * ROWS + i)) },
        { fieldId: 101, data: vec },
        { fieldId: 102, data: Int32Array.from({ length: ROWS }, (_, i) => i % 100) },
      ]),
    );
  }
  fx = {
    env,
    host,
    dir,
    segs,
    async stop() {
      await host.stop();
      await nc.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  await qn("LoadSegments", { collectionId: 1n, replicaId: 1n, schema, segments: segs.map((s) => s.info), l0Segments: [] });
}, 300_000);

afterAll(async () => {
  await fx?.stop();
});

function qn<V extends keyof QuerynodeApi & string>(verb: V, body: QuerynodeApi[V][0], timeoutMs = 120_000): Promise<QuerynodeApi[V][1]> {
  return ask(fx.env.nc, fx.env.subjects.querynode(asNodeId("qn1")), `querynode.${verb}`, body, { timeoutMs });
}

function spec(queries: Float32Array, extra: Partial<SearchSpec> = {}): SearchSpec {
  return {
    collectionId: 1n,
    annsFieldId: 101,
    metric: "L2",
    queries,
    nq: queries.length / DIM,
    topk: 10,
    partitionIds: [],
    outputFieldIds: [],
    ...extra,
  };
}

/** The gaps between the node's heartbeats (by the `at` the node stamped them with) while `work` runs. */
async function heartbeatsDuring<T>(work: () => Promise<T>): Promise<{ gaps: number[]; value: T }> {
  const subject = fx.env.subjects.distSubject("querynode", asNodeId("qn1"));
  const sub = fx.env.nc.subscribe(subject);
  const stamps: number[] = [];
  const following = (async () => {
    for await (const m of sub) stamps.push(decode<QueryNodeDist>(m.data).at);
  })();
  const value = await work();
  sub.unsubscribe();
  await following;
  return { gaps: stamps.slice(1).map((t, i) => t - stamps[i]!), value };
}

/** `clients` search without pause for `ms`; the heartbeat gaps meanwhile and the searches done. */
async function underLoad(clients: number, ms: number, search: () => Promise<SearchResult>): Promise<{ gaps: number[]; searches: number }> {
  const { gaps, value } = await heartbeatsDuring(async () => {
    let searches = 0;
    const until = Date.now() + ms;
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (Date.now() < until) {
          await search();
          searches++;
        }
      }),
    );
    return searches;
  });
  return { gaps, searches: value };
}

function report(what: string, r: { gaps: number[]; searches: number }): void {
  const late = r.gaps.map((g) => Math.max(0, g - INTERVAL_MS)).sort((a, b) => a - b);
  const p = (q: number) => late[Math.min(late.length - 1, Math.floor(q * late.length))] ?? 0;
  process.stdout.write(
    `${JSON.stringify({ heartbeat: what, intervalMs: INTERVAL_MS, heartbeats: r.gaps.length + 1, searches: r.searches, lateMs: { p50: p(0.5), p99: p(0.99), max: late.at(-1) ?? 0 } })}\n`,
  );
}

describe("querynode heartbeats under search load", () => {
  it("keep arriving while two clients search 2 × 100k × 128 exactly without pause", async () => {
    const queries = embeddingVectors(10, DIM, 99);
    const ids = fx.segs.map((s) => s.info.segmentId);
    const r = await underLoad(2, LOAD_MS, () => qn("SearchSegments", { segmentIds: ids, spec: spec(queries), readPosition: 1n << 40n }));
    report("exact nq=10", r);
    expect(r.searches).toBeGreaterThan(0);
    expect(r.gaps.length).toBeGreaterThan(LOAD_MS / INTERVAL_MS / 4);
    for (const g of r.gaps) expect(g - INTERVAL_MS).toBeLessThanOrEqual(MAX_LATE_MS);
  }, 120_000);

  it("keep arriving while two clients search the same segments through HNSW, one query or ten with a filter", async () => {
    const infos: IndexLoadInfo[] = [];
    for (const s of fx.segs) {
      const vectors = s.columns[1]!.data as Float32Array;
      const bytes = await buildIndex({ vectors, dim: DIM, metric: "L2", indexType: "HNSW", params: { M: 8, efConstruction: 32 } });
      const fileKey = indexFileKey(1n, 10n, s.info.segmentId, 1n, s.info.segmentId);
      await fx.env.objectStore.put(fileKey, bytes);
      infos.push({
        segmentId: s.info.segmentId,
        fieldId: 101,
        indexId: 1n,
        buildId: s.info.segmentId,
        fileKey,
        indexType: "HNSW",
        metricType: "L2",
        memorySize: bytes.byteLength,
      });
    }
    // the load itself (≈ 0.2 s of usearch per index) runs on a search thread too
    const loading = await heartbeatsDuring(() => qn("LoadIndex", { collectionId: 1n, infos }));
    report("index load", { gaps: loading.gaps, searches: 0 });
    await waitFor(async () => (await qn("GetDist", {})).segments.every((s) => s.indexIds.length === 1), { what: "indexes in the dist" });
    const ids = fx.segs.map((s) => s.info.segmentId);
    const one = embeddingVectors(1, DIM, 98);
    const r1 = await underLoad(2, LOAD_MS, () => qn("SearchSegments", { segmentIds: ids, spec: spec(one), readPosition: 1n << 40n }));
    report("hnsw nq=1", r1);
    const ten = embeddingVectors(10, DIM, 99);
    const filter = compileFilter("tag < 10", schema);
    const r10 = await underLoad(2, LOAD_MS, () => qn("SearchSegments", { segmentIds: ids, spec: spec(ten, { filter }), readPosition: 1n << 40n }));
    report("hnsw nq=10 filter 10%", r10);
    for (const r of [r1, r10]) {
      expect(r.searches).toBeGreaterThan(0);
      expect(r.gaps.length).toBeGreaterThan(LOAD_MS / INTERVAL_MS / 4);
      for (const g of r.gaps) expect(g - INTERVAL_MS).toBeLessThanOrEqual(MAX_LATE_MS);
    }
  }, 180_000);
});
