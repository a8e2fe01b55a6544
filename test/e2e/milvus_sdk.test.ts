/**
 * The Milvus Node SDK's MilvusClient, unchanged, against a standalone through the Milvus front door
 * (gRPC MilvusService on a free port): the common flow end to end, results checked against what was
 * inserted (brute force for search), and the error codes Milvus gives.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConsistencyLevelEnum, DataType, MilvusClient, RRFRanker, WeightedRanker, logger as sdkLogger } from "@zilliz/milvus2-sdk-node";
import * as grpc from "@grpc/grpc-js";
import { startMilvusFrontDoor, type MilvusFrontDoor } from "../../actors/front/server.ts";
import { MILVUS_SERVICE } from "../../actors/front/milvus/proto.ts";
import { startTestCluster, type TestCluster } from "../harness/standalone.ts";

const DIM = 8;
const ROWS = 1_000;

/** deterministic vectors: row i's vector is a function of i (mulberry32 seeded with i) */
function vectorOf(i: number): number[] {
  let x = Math.imul(i + 1, 0x9e3779b1) >>> 0;
  const v: number[] = [];
  for (let j = 0; j < DIM; j++) {
    x = (x + 0x6d2b79f5) >>> 0;
    let t = Math.imul(x ^ (x >>> 15), x | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    v.push(Math.fround(((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5));
  }
  return v;
}

function l2(a: number[], b: number[]): number {
  let s = 0;
  for (let j = 0; j < a.length; j++) s += (a[j]! - b[j]!) ** 2;
  return s;
}

function bruteForce(q: number[], ids: number[], k: number): { id: number; score: number }[] {
  return ids
    .map((id) => ({ id, score: l2(q, vectorOf(id)) }))
    .sort((a, b) => a.score - b.score || a.id - b.id)
    .slice(0, k);
}

describe("Milvus Node SDK (gRPC) against the Milvus front door", () => {
  let tc: TestCluster;
  let door: MilvusFrontDoor;
  let milvus: MilvusClient;

  beforeAll(async () => {
    sdkLogger.level = "warn"; // the SDK logs every call at debug level under NODE_ENV=test
    tc = await startTestCluster();
    door = await startMilvusFrontDoor({ port: 0, host: "127.0.0.1", nc: tc.sa.nc, prefix: tc.config.prefix, actorHost: tc.sa.host, serverVersion: "test" }); // in process, as the standalone serves it
    milvus = new MilvusClient({ address: `127.0.0.1:${door.port}`, timeout: 60_000 });
    await milvus.connectPromise;
  });

  /**
   * count(*) read after the writes before it (Strong). The SDK's count() reads at the collection's
   * consistency level, Bounded by default, which may miss writes of the last moments, as in Milvus.
   */
  const strongCount = async (collection_name: string) =>
    Number((await milvus.query({ collection_name, filter: "", output_fields: ["count(*)"], consistency_level: ConsistencyLevelEnum.Strong })).data[0]!["count(*)"]);

  afterAll(async () => {
    await milvus?.closeConnection();
    await door?.close();
    await tc?.stop();
  });

  it("connects, reports a version and health", async () => {
    const version = await milvus.getVersion();
    expect((version as unknown as { status: { error_code: string } }).status.error_code).toBe("Success");
    expect(version.version).toMatch(/^v2\./);
    const health = await milvus.checkHealth();
    expect(health.isHealthy).toBe(true);
  });

  it("runs the common flow: create, insert, flush, index, load, search, query, delete, describe, show, drop", { timeout: 240_000 }, async () => {
    const name = "books";
    const created = await milvus.createCollection({
      collection_name: name,
      fields: [
        { name: "id", data_type: DataType.Int64, is_primary_key: true, autoID: false },
        { name: "vec", data_type: DataType.FloatVector, dim: DIM },
        { name: "title", data_type: DataType.VarChar, max_length: 64 },
      ],
      enable_dynamic_field: true,
    });
    expect(created.error_code).toBe("Success");
    expect(created.code).toBe(0);

    const rows = Array.from({ length: ROWS }, (_, i) => ({ id: i, vec: vectorOf(i), title: `book ${i}`, color: i % 3 === 0 ? "red" : "blue" }));
    const inserted = await milvus.insert({ collection_name: name, data: rows });
    expect(inserted.status.error_code).toBe("Success");
    expect(Number(inserted.insert_cnt)).toBe(ROWS);
    expect((inserted.IDs as unknown as { int_id: { data: string[] } }).int_id.data.map(Number)).toEqual(rows.map((r) => r.id));

    const flushed = await milvus.flushSync({ collection_names: [name] });
    expect(flushed.flushed).toBe(true);
    const stats = await milvus.getCollectionStatistics({ collection_name: name });
    expect(stats.status.error_code).toBe("Success");
    expect(Number(stats.data.row_count)).toBe(ROWS);

    const index = await milvus.createIndex({ collection_name: name, field_name: "vec", index_type: "FLAT", metric_type: "L2", params: {} });
    expect(index.error_code).toBe("Success");
    const described = await milvus.describeIndex({ collection_name: name, field_name: "vec" });
    expect(described.status.error_code).toBe("Success");
    expect(described.index_descriptions[0]!.field_name).toBe("vec");
    expect(described.index_descriptions[0]!.params).toEqual(expect.arrayContaining([{ key: "index_type", value: "FLAT" }, { key: "metric_type", value: "L2" }]));

    const loaded = await milvus.loadCollection({ collection_name: name });
    expect(loaded.error_code).toBe("Success");
    const state = await milvus.getLoadState({ collection_name: name });
    expect(state.state).toBe("LoadStateLoaded");
    const collectionID = (await milvus.describeCollection({ collection_name: name })).collectionID;
    const replicas = await milvus.getReplicas({ collectionID });
    expect(replicas.status.error_code).toBe("Success");
    expect(replicas.replicas.length).toBe(1);

    // search: nq = 2, a filter, output fields (a dynamic one among them), checked against brute force
    const queries = [vectorOf(5000), vectorOf(5001)];
    const found = await milvus.search({
      collection_name: name,
      data: queries,
      limit: 5,
      filter: "id < 500",
      output_fields: ["title", "color"],
      metric_type: "L2",
      consistency_level: "Strong" as never,
    });
    expect(found.status.error_code).toBe("Success");
    const results = found.results as unknown as { id: string; score: number; title: string; color: string }[][];
    expect(results.length).toBe(2);
    const candidates = rows.filter((r) => r.id < 500).map((r) => r.id);
    queries.forEach((q, qi) => {
      const want = bruteForce(q, candidates, 5);
      expect(results[qi]!.map((h) => Number(h.id))).toEqual(want.map((w) => w.id));
      results[qi]!.forEach((h, k) => {
        expect(h.score).toBeCloseTo(want[k]!.score, 4);
        expect(h.title).toBe(`book ${h.id}`);
        expect(h.color).toBe(Number(h.id) % 3 === 0 ? "red" : "blue");
      });
    });

    // range search: L2 distances in [range_filter, radius), a radius between the 3rd and 4th nearest
    const nearest = bruteForce(queries[0]!, rows.map((r) => r.id), 4);
    const radius = (nearest[2]!.score + nearest[3]!.score) / 2;
    const ranged = await milvus.search({ collection_name: name, data: queries[0]!, limit: 10, params: { radius, range_filter: 0 }, metric_type: "L2" });
    expect(ranged.status.error_code).toBe("Success");
    expect((ranged.results as unknown as { id: string }[]).map((h) => Number(h.id))).toEqual(nearest.slice(0, 3).map((w) => w.id));
    // search by primary keys: the stored vectors are the queries
    const byPk = await milvus.search({ collection_name: name, ids: [7, 8], limit: 3, metric_type: "L2" });
    expect(byPk.status.error_code).toBe("Success");
    const pkHits = byPk.results as unknown as { id: string }[][];
    [7, 8].forEach((id, qi) => expect(pkHits[qi]!.map((h) => Number(h.id))).toEqual(bruteForce(vectorOf(id), rows.map((r) => r.id), 3).map((w) => w.id)));

    const count = await milvus.count({ collection_name: name });
    expect(count.data).toBe(ROWS);

    const some = await milvus.query({ collection_name: name, filter: "id in [3, 4, 10]", output_fields: ["title", "vec"] });
    expect(some.status.error_code).toBe("Success");
    const byId = new Map(some.data.map((r) => [Number(r.id), r]));
    expect([...byId.keys()].sort((a, b) => a - b)).toEqual([3, 4, 10]);
    for (const [id, r] of byId) {
      expect(r.title).toBe(`book ${id}`);
      expect((r.vec as number[]).map((x) => Math.fround(x))).toEqual(vectorOf(id));
    }
    const filtered = await milvus.count({ collection_name: name, filter: 'title like "book 1%"' });
    expect(filtered.data).toBe(rows.filter((r) => r.title.startsWith("book 1")).length);
    const paged = await milvus.query({ collection_name: name, filter: "id >= 0", output_fields: ["id"], limit: 10, offset: 20 });
    expect(paged.data.map((r) => Number(r.id))).toEqual(Array.from({ length: 10 }, (_, i) => 20 + i));

    const deleted = await milvus.delete({ collection_name: name, filter: "id < 100" });
    expect(deleted.status.error_code).toBe("Success");
    expect(Number(deleted.delete_cnt)).toBe(100);
    expect(await strongCount(name)).toBe(ROWS - 100);
    const byIds = await milvus.delete({ collection_name: name, ids: [100, 101] });
    expect(Number(byIds.delete_cnt)).toBe(2);
    expect(await strongCount(name)).toBe(ROWS - 102);

    const info = await milvus.describeCollection({ collection_name: name });
    expect(info.status.error_code).toBe("Success");
    expect(info.schema.name).toBe(name);
    expect(info.schema.enable_dynamic_field).toBe(true);
    expect(info.schema.fields.map((f) => f.name)).toEqual(["id", "vec", "title"]);
    const vec = info.schema.fields.find((f) => f.name === "vec")!;
    expect(vec.data_type).toBe("FloatVector");
    expect(vec.type_params).toEqual([{ key: "dim", value: String(DIM) }]);
    expect(info.schema.fields.find((f) => f.name === "id")!.is_primary_key).toBe(true);
    expect(Number(info.shards_num)).toBeGreaterThan(0);
    expect(info.collectionID).not.toBe("0");

    const shown = await milvus.showCollections();
    expect(shown.data.map((c) => c.name)).toContain(name);

    const released = await milvus.releaseCollection({ collection_name: name });
    expect(released.error_code).toBe("Success");
    const dropped = await milvus.dropCollection({ collection_name: name });
    expect(dropped.error_code).toBe("Success");
    expect((await milvus.hasCollection({ collection_name: name })).value).toBe(false);
  });

  it("takes a rich schema (autoID, JSON, Array, nullable, default, dynamic) and serves iterators, templates, get, upsert, partitions, aliases and databases", { timeout: 300_000 }, async () => {
    const name = "rich";
    const N = 20_000;
    const created = await milvus.createCollection({
      collection_name: name,
      fields: [
        { name: "pk", data_type: DataType.Int64, is_primary_key: true, autoID: true },
        { name: "title", data_type: DataType.VarChar, max_length: 32 },
        { name: "meta", data_type: DataType.JSON },
        { name: "tags", data_type: DataType.Array, element_type: DataType.Int64, max_capacity: 4 },
        { name: "rating", data_type: DataType.Int32, nullable: true },
        { name: "lang", data_type: DataType.VarChar, max_length: 8, default_value: "en" },
        { name: "vec", data_type: DataType.FloatVector, dim: DIM },
      ],
      enable_dynamic_field: true,
      shards_num: 2,
    });
    expect(created.code).toBe(0);
    const info = await milvus.describeCollection({ collection_name: name });
    const rating = info.schema.fields.find((f) => f.name === "rating")!;
    expect(rating.nullable).toBe(true);
    expect(info.schema.fields.find((f) => f.name === "lang")!.default_value).toBe("en");
    expect(info.schema.fields.find((f) => f.name === "pk")!.autoID).toBe(true);
    expect(info.schema.fields.find((f) => f.name === "tags")!.element_type).toBe("Int64");
    expect(Number(info.shards_num)).toBe(2);

    const rowOf = (i: number) => ({
      title: `t${i}`,
      meta: { n: i, even: i % 2 === 0 },
      tags: [i % 5, i % 7],
      rating: i % 4 === 0 ? null : i % 10,
      ...(i % 3 === 0 ? {} : { lang: "de" }),
      vec: vectorOf(i),
      shelf: i % 11,
    });
    const ids: string[] = [];
    for (let off = 0; off < N; off += 5_000) {
      const res = await milvus.insert({ collection_name: name, data: Array.from({ length: 5_000 }, (_, k) => rowOf(off + k)) });
      expect(res.status.error_code).toBe("Success");
      ids.push(...(res.IDs as unknown as { int_id: { data: string[] } }).int_id.data);
    }
    expect(new Set(ids).size).toBe(N);
    const rowOfId = new Map(ids.map((id, i) => [id, i]));

    await milvus.flushSync({ collection_names: [name] });
    expect(
      (await milvus.createIndex({ collection_name: name, field_name: "vec", index_type: "HNSW", metric_type: "L2", params: { M: 16, efConstruction: 200 } })).error_code,
    ).toBe("Success");
    await milvus.loadCollection({ collection_name: name });

    // nq = 3, a filter with template values, output fields of every kind
    const queries = [vectorOf(90_001), vectorOf(90_002), vectorOf(90_003)];
    const found = await milvus.search({
      collection_name: name,
      data: queries,
      limit: 4,
      filter: "meta['n'] < {top} and shelf in {shelves}",
      exprValues: { top: 10_000, shelves: [1, 2, 3] },
      output_fields: ["title", "meta", "tags", "rating", "lang", "shelf"],
      params: { ef: 512 },
      consistency_level: "Strong" as never,
    });
    expect(found.status.error_code).toBe("Success");
    const hits = found.results as unknown as Record<string, unknown>[][];
    const allowed = Array.from({ length: N }, (_, i) => i).filter((i) => i < 10_000 && [1, 2, 3].includes(i % 11));
    queries.forEach((q, qi) => {
      const want = bruteForce(q, allowed, 4);
      expect(hits[qi]!.map((h) => rowOfId.get(h.pk as string))).toEqual(want.map((w) => w.id));
      for (const h of hits[qi]!) {
        const i = rowOfId.get(h.pk as string)!;
        const r = rowOf(i);
        expect(h.title).toBe(r.title);
        expect(h.meta).toEqual(r.meta);
        expect((h.tags as unknown[]).map(Number)).toEqual(r.tags);
        expect(h.rating).toBe(r.rating);
        expect(h.lang).toBe(r.lang ?? "en");
        expect(h.shelf).toBe(r.shelf);
      }
    });

    // group by a field: the best hit of each of its values, best first
    const grouped = await milvus.search({ collection_name: name, data: queries[0]!, limit: 5, group_by_field: "lang", output_fields: ["lang"], params: { ef: 512 } });
    expect(grouped.status.error_code).toBe("Success");
    const all = Array.from({ length: N }, (_, i) => i);
    const bestEn = bruteForce(queries[0]!, all.filter((i) => i % 3 === 0), 1)[0]!;
    const bestDe = bruteForce(queries[0]!, all.filter((i) => i % 3 !== 0), 1)[0]!;
    const wantGroups = [bestEn, bestDe].sort((x, y) => x.score - y.score).map((w) => w.id);
    expect((grouped.results as unknown as { pk: string }[]).map((h) => rowOfId.get(h.pk))).toEqual(wantGroups);

    // get by ids, and a nullable column with nulls
    const got = await milvus.get({ collection_name: name, ids: [ids[0]!, ids[1]!, ids[4]!], output_fields: ["title", "rating", "lang"] });
    expect(got.status.error_code).toBe("Success");
    const gotById = new Map(got.data.map((r) => [String(r.pk), r]));
    for (const i of [0, 1, 4]) {
      const r = gotById.get(ids[i]!)!;
      expect(r.title).toBe(`t${i}`);
      expect(r.rating).toBe(rowOf(i).rating);
      expect(r.lang).toBe(i % 3 === 0 ? "en" : "de");
    }
    expect((await milvus.count({ collection_name: name, filter: "rating is null" })).data).toBe(N / 4);

    // the query iterator past the 16,384 window
    const iterator = await milvus.queryIterator({ collection_name: name, batchSize: 5_000, output_fields: ["pk"], expr: "" });
    const seen: string[] = [];
    for await (const batch of iterator) seen.push(...(batch as { pk: string }[]).map((r) => String(r.pk)));
    expect(seen.length).toBe(N);
    expect(new Set(seen).size).toBe(N);

    // upsert replaces a row
    const up = await milvus.upsert({ collection_name: name, data: [{ ...rowOf(7), pk: ids[7], title: "changed" }] });
    expect(up.status.error_code).toBe("Success");
    expect(Number(up.upsert_cnt)).toBe(1);
    // Strong: the collection's default (Bounded) may read from before the upsert, as in Milvus
    const after = await milvus.query({ collection_name: name, filter: `pk == ${ids[7]}`, output_fields: ["title"], consistency_level: ConsistencyLevelEnum.Strong });
    expect(after.data.map((r) => r.title)).toEqual(["changed"]);
    expect(await strongCount(name)).toBe(N);

    // partitions, aliases, databases
    expect((await milvus.createPartition({ collection_name: name, partition_name: "p1" })).error_code).toBe("Success");
    expect((await milvus.hasPartition({ collection_name: name, partition_name: "p1" })).value).toBe(true);
    expect((await milvus.showPartitions({ collection_name: name })).partition_names).toEqual(["_default", "p1"]);
    await milvus.insert({ collection_name: name, partition_name: "p1", data: [rowOf(N + 1)] });
    expect(await strongCount(name)).toBe(N + 1);
    expect((await milvus.flushSync({ collection_names: [name] })).flushed).toBe(true);
    const p1Stats = await milvus.getPartitionStatistics({ collection_name: name, partition_name: "p1" });
    expect(p1Stats.status.error_code).toBe("Success");
    expect(Number(p1Stats.data.row_count)).toBe(1);
    // rows as the segments count them (an upserted row's old copy stays counted until compaction, as in Milvus)
    const collectionRows = Number((await milvus.getCollectionStatistics({ collection_name: name })).data.row_count);
    expect(Number((await milvus.getPartitionStatistics({ collection_name: name, partition_name: "_default" })).data.row_count)).toBe(collectionRows - 1);
    const noPartition = await milvus.getPartitionStatistics({ collection_name: name, partition_name: "p9" });
    expect(noPartition.status.code).toBe(200);
    expect(noPartition.status.reason).toContain(`partition "p9" not found in collection "${name}"`);

    // collection properties: set, shown by describe, dropped; a known key with a wrong value is refused
    const altered = await milvus.alterCollectionProperties({ collection_name: name, properties: { "collection.ttl.seconds": 3600, "app.owner": "library" } });
    expect(altered.error_code).toBe("Success");
    const props = () => milvus.describeCollection({ collection_name: name }).then((d) => Object.fromEntries(d.properties.map((kv) => [kv.key, kv.value])));
    expect(await props()).toMatchObject({ "collection.ttl.seconds": "3600", "app.owner": "library" });
    expect((await milvus.dropCollectionProperties({ collection_name: name, properties: ["app.owner"] })).error_code).toBe("Success");
    expect(await props()).not.toHaveProperty("app.owner");
    expect(await props()).toMatchObject({ "collection.ttl.seconds": "3600" });
    const badTtl = await milvus.alterCollectionProperties({ collection_name: name, properties: { "collection.ttl.seconds": "soon" } });
    expect(badTtl.code).toBe(1100);
    expect(badTtl.reason).toContain(`property "collection.ttl.seconds" takes a whole number of seconds`);
    expect((await milvus.createAlias({ collection_name: name, alias: "shelf" })).error_code).toBe("Success");
    expect((await milvus.describeAlias({ collection_name: name, alias: "shelf" })).collection).toBe(name);
    expect((await milvus.listAliases({ collection_name: name })).aliases).toEqual(["shelf"]);
    expect((await milvus.count({ collection_name: "shelf" })).data).toBe(N + 1);
    expect((await milvus.dropAlias({ collection_name: name, alias: "shelf" } as never)).error_code).toBe("Success");
    expect((await milvus.createDatabase({ db_name: "other" })).error_code).toBe("Success");
    expect((await milvus.listDatabases()).db_names).toEqual(expect.arrayContaining(["default", "other"]));
    expect((await milvus.describeDatabase({ db_name: "other" })).db_name).toBe("other");
    expect((await milvus.dropDatabase({ db_name: "other" })).error_code).toBe("Success");

    expect((await milvus.dropCollection({ collection_name: name })).error_code).toBe("Success");
  });

  it("fuses a hybrid search over two vector fields with the RRF and the weighted ranker", { timeout: 180_000 }, async () => {
    const name = "hybrid";
    const n = 600;
    await milvus.createCollection({
      collection_name: name,
      fields: [
        { name: "id", data_type: DataType.Int64, is_primary_key: true },
        { name: "a", data_type: DataType.FloatVector, dim: DIM },
        { name: "b", data_type: DataType.FloatVector, dim: 4 },
        { name: "title", data_type: DataType.VarChar, max_length: 16 },
      ],
    });
    const bOf = (i: number) => vectorOf(i + 7_000).slice(0, 4);
    await milvus.insert({ collection_name: name, data: Array.from({ length: n }, (_, i) => ({ id: i, a: vectorOf(i), b: bOf(i), title: `h${i}` })) });
    await milvus.flushSync({ collection_names: [name] });
    for (const field of ["a", "b"]) {
      expect((await milvus.createIndex({ collection_name: name, field_name: field, index_type: "FLAT", metric_type: "L2" })).error_code).toBe("Success");
    }
    await milvus.loadCollection({ collection_name: name });
    const qa = vectorOf(80_000);
    const qb = bOf(80_000);
    const ids = Array.from({ length: n }, (_, i) => i);
    const topA = ids.map((id) => ({ id, d: l2(qa, vectorOf(id)) })).sort((x, y) => x.d - y.d || x.id - y.id).slice(0, 10);
    const topB = ids.map((id) => ({ id, d: l2(qb, bOf(id)) })).sort((x, y) => x.d - y.d || x.id - y.id).slice(0, 10);
    const fuse = (score: (list: number, rank: number, d: number) => number) => {
      const m = new Map<number, number>();
      [topA, topB].forEach((list, li) => list.forEach((h, r) => m.set(h.id, (m.get(h.id) ?? 0) + score(li, r, h.d))));
      return [...m.entries()].sort((x, y) => y[1] - x[1] || (String(x[0]) < String(y[0]) ? -1 : 1)).slice(0, 5);
    };
    const requests = [
      { data: qa, anns_field: "a", limit: 10 },
      { data: qb, anns_field: "b", limit: 10 },
    ];

    const rrf = await milvus.search({ collection_name: name, data: requests, rerank: RRFRanker(60), limit: 5, output_fields: ["title"], consistency_level: "Strong" as never });
    expect(rrf.status.error_code).toBe("Success");
    const wantRrf = fuse((_l, r) => 1 / (60 + r + 1));
    const gotRrf = rrf.results as unknown as { id: string; score: number; title: string }[];
    expect(gotRrf.map((h) => Number(h.id))).toEqual(wantRrf.map(([id]) => id));
    gotRrf.forEach((h, k) => {
      expect(h.score).toBeCloseTo(wantRrf[k]![1], 5);
      expect(h.title).toBe(`h${h.id}`);
    });

    const weighted = await milvus.search({ collection_name: name, data: requests, rerank: WeightedRanker([0.8, 0.2]), limit: 5, output_fields: ["title"] });
    expect(weighted.status.error_code).toBe("Success");
    const wantW = fuse((l, _r, d) => [0.8, 0.2][l]! * (1 - (2 * Math.atan(d)) / Math.PI));
    const gotW = weighted.results as unknown as { id: string; score: number }[];
    expect(gotW.map((h) => Number(h.id))).toEqual(wantW.map(([id]) => id));
    gotW.forEach((h, k) => expect(h.score).toBeCloseTo(wantW[k]![1], 4));
    await milvus.dropCollection({ collection_name: name });
  });

  it("answers errors with Milvus's codes and names the collection", { timeout: 120_000 }, async () => {
    const missing = await milvus.describeCollection({ collection_name: "nope" });
    expect(missing.status.code).toBe(100);
    expect(missing.status.error_code).toBe("CollectionNotExists");
    expect(missing.status.reason).toContain("nope");
    const insertMissing = await milvus.insert({ collection_name: "nope", data: [{ id: 1, vec: vectorOf(1) }] }).catch((e: unknown) => e);
    expect((insertMissing as { status: { code: number } }).status.code).toBe(100);

    const name = "dims";
    await milvus.createCollection({
      collection_name: name,
      fields: [
        { name: "id", data_type: DataType.Int64, is_primary_key: true },
        { name: "vec", data_type: DataType.FloatVector, dim: DIM },
      ],
    });
    const wrongDim = await milvus.insert({ collection_name: name, data: [{ id: 1, vec: [1, 2, 3, 4] }] });
    expect(wrongDim.status.code).toBe(1100);
    expect(wrongDim.status.error_code).toBe("IllegalArgument");
    expect(wrongDim.status.reason).toContain("vec");

    await milvus.insert({ collection_name: name, data: [{ id: 1, vec: vectorOf(1) }] });
    const unloaded = await milvus.search({ collection_name: name, data: [vectorOf(2)], limit: 1 });
    expect(unloaded.status.code).toBe(101);
    expect(unloaded.status.reason).toContain(name);
    await milvus.createIndex({ collection_name: name, field_name: "vec", index_type: "FLAT", metric_type: "L2" });
    await milvus.loadCollection({ collection_name: name });
    const badQuery = await milvus.search({ collection_name: name, data: [[1, 2, 3]], limit: 1 });
    expect(badQuery.status.code).toBe(1100);
    expect(badQuery.status.reason).toContain("dim");

    // malformed bytes inside a request: a 1100 naming the collection, no crash
    const Raw = grpc.makeGenericClientConstructor(MILVUS_SERVICE, "MilvusService");
    const raw = new Raw(`127.0.0.1:${door.port}`, grpc.credentials.createInsecure()) as unknown as Record<string, (req: unknown, cb: (err: Error | null, res: Record<string, unknown>) => void) => void>;
    const rawCall = (method: string, req: unknown) => new Promise<Record<string, unknown>>((resolve, reject) => raw[method]!.call(raw, req, (err, res) => (err ? reject(err) : resolve(res))));
    const badSchema = (await rawCall("CreateCollection", { collection_name: "garbled", schema: Buffer.from([0x0a, 0xff, 0xff, 0xff]) })) as { code: number; reason: string };
    expect(badSchema.code).toBe(1100);
    expect(badSchema.reason).toContain("garbled");
    const badVectors = (await rawCall("Search", { collection_name: name, placeholder_group: Buffer.from([0x0a, 0x05, 0x1a, 0x03, 1, 2, 3]), nq: 1 })) as {
      status: { code: number; reason: string };
    };
    expect(badVectors.status.code).toBe(1100);
    expect(badVectors.status.reason).toContain(name);
    (raw as unknown as grpc.Client).close();

    const unimplemented = await milvus.createUser({ username: "ann", password: "secret-password" });
    expect(unimplemented.code).toBe(10);
    expect(unimplemented.reason).toContain("CreateCredential");
    await milvus.dropCollection({ collection_name: name });
  });
});
