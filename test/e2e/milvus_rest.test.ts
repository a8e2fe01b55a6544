/**
 * The Milvus Node SDK's HttpClient (REST v2), unchanged, against a standalone through the Milvus front
 * door: the same port as gRPC, `{code, message, data}` replies, results checked against what was
 * inserted (brute force for search), and Milvus's error codes with HTTP 200.
 */
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HttpClient } from "@zilliz/milvus2-sdk-node";
import { startMilvusFrontDoor, type MilvusFrontDoor } from "../../actors/front/server.ts";
import { waitFor } from "../harness/index.ts";
import { startTestCluster, type TestCluster } from "../harness/standalone.ts";

const DIM = 8;

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

function bruteForce(q: number[], ids: number[], k: number): { id: number; d: number }[] {
  return ids
    .map((id) => ({ id, d: vectorOf(id).reduce((s, x, j) => s + (x - q[j]!) ** 2, 0) }))
    .sort((a, b) => a.d - b.d || a.id - b.id)
    .slice(0, k);
}

type Reply = { code: number; message?: string; data?: unknown; topks?: number[] };

describe("Milvus Node SDK (REST v2) against the Milvus front door", () => {
  let tc: TestCluster;
  let door: MilvusFrontDoor;
  let http: HttpClient;

  beforeAll(async () => {
    tc = await startTestCluster();
    door = await startMilvusFrontDoor({ port: 0, host: "127.0.0.1", nc: tc.sa.nc, prefix: tc.config.prefix, actorHost: tc.sa.host, serverVersion: "test" }); // in process, as the standalone serves it
    http = new HttpClient({ endpoint: `http://127.0.0.1:${door.port}` });
  });

  afterAll(async () => {
    await door?.close();
    await tc?.stop();
  });

  it("runs the common flow: create, insert, index, load, search, hybrid search, query, get, upsert, delete, describe, list, drop", { timeout: 180_000 }, async () => {
    const name = "rest_books";
    const ok = (r: unknown) => {
      expect((r as Reply).message ?? "").toBe("");
      expect((r as Reply).code).toBe(0);
      return (r as Reply).data;
    };
    ok(
      await http.createCollection({
        collectionName: name,
        schema: {
          enableDynamicField: true,
          fields: [
            { fieldName: "id", dataType: "Int64", isPrimary: true },
            { fieldName: "vec", dataType: "FloatVector", elementTypeParams: { dim: DIM } },
            { fieldName: "title", dataType: "VarChar", elementTypeParams: { max_length: 64 } },
          ],
        },
      } as never),
    );
    const rows = Array.from({ length: 1_000 }, (_, i) => ({ id: i, vec: vectorOf(i), title: `book ${i}`, color: i % 3 === 0 ? "red" : "blue" }));
    const inserted = ok(await http.insert({ collectionName: name, data: rows })) as { insertCount: number; insertIds: string[] };
    expect(inserted.insertCount).toBe(1_000);
    expect(inserted.insertIds.map(Number)).toEqual(rows.map((r) => r.id));
    ok(await http.createIndex({ collectionName: name, indexParams: [{ fieldName: "vec", indexName: "vec_idx", metricType: "L2", indexType: "FLAT", params: {} }] } as never));
    const described = ok(await http.describeIndex({ collectionName: name, indexName: "vec_idx" })) as { indexType: string; metricType: string }[];
    expect(described[0]).toMatchObject({ indexType: "FLAT", metricType: "L2" });
    expect(ok(await http.listIndexes({ collectionName: name }))).toEqual(["vec_idx"]);
    ok(await http.loadCollection({ collectionName: name }));
    await waitFor(async () => ((ok(await http.getCollectionLoadState({ collectionName: name })) as { loadState: string }).loadState === "LoadStateLoaded" ? true : undefined), {
      timeoutMs: 60_000,
      intervalMs: 200,
      what: "the collection loaded",
    });

    const queries = [vectorOf(5000), vectorOf(5001)];
    const found = (await http.search({
      collectionName: name,
      data: queries,
      annsField: "vec",
      limit: 5,
      filter: "id < 500",
      outputFields: ["title", "color"],
      consistencyLevel: "Strong",
    } as never)) as Reply;
    // the server replies hits of every query in one list with `topks`; the SDK splits them per query
    const hits = ok(found) as { id: string; distance: number; title: string; color: string }[][];
    expect(found.topks).toEqual([5, 5]);
    const allowed = rows.filter((r) => r.id < 500).map((r) => r.id);
    queries.forEach((q, qi) => {
      const want = bruteForce(q, allowed, 5);
      const got = hits[qi]!;
      expect(got.map((h) => Number(h.id))).toEqual(want.map((w) => w.id));
      got.forEach((h, k) => {
        expect(h.distance).toBeCloseTo(want[k]!.d, 4);
        expect(h.title).toBe(`book ${h.id}`);
        expect(h.color).toBe(Number(h.id) % 3 === 0 ? "red" : "blue");
      });
    });

    const hybrid = ok(
      await http.hybridSearch({
        collectionName: name,
        search: [
          { data: [queries[0]], annsField: "vec", limit: 10 },
          { data: [queries[1]], annsField: "vec", limit: 10 },
        ],
        rerank: { strategy: "rrf", params: { k: 60 } },
        limit: 3,
        outputFields: ["title"],
      } as never),
    ) as { id: string }[];
    const all = rows.map((r) => r.id);
    const fused = new Map<number, number>();
    [bruteForce(queries[0]!, all, 10), bruteForce(queries[1]!, all, 10)].forEach((l) => l.forEach((h, r) => fused.set(h.id, (fused.get(h.id) ?? 0) + 1 / (61 + r))));
    const wantFused = [...fused.entries()].sort((a, b) => b[1] - a[1] || (String(a[0]) < String(b[0]) ? -1 : 1)).slice(0, 3);
    expect(hybrid.map((h) => Number(h.id))).toEqual(wantFused.map(([id]) => id));

    const count = ok(await http.query({ collectionName: name, filter: "", outputFields: ["count(*)"] } as never)) as Record<string, number>[];
    expect(count[0]!["count(*)"]).toBe(1_000);
    const some = ok(await http.query({ collectionName: name, filter: "id in [3, 4]", outputFields: ["title", "color"] } as never)) as Record<string, unknown>[];
    expect(some.map((r) => [Number(r.id), r.title, r.color]).sort()).toEqual([
      [3, "book 3", "red"],
      [4, "book 4", "blue"],
    ]);
    const got = ok(await http.get({ collectionName: name, id: [10], outputFields: ["vec"] } as never)) as { vec: number[] }[];
    expect(got[0]!.vec.map((x) => Math.fround(x))).toEqual(vectorOf(10));

    const up = ok(await http.upsert({ collectionName: name, data: [{ ...rows[7]!, title: "changed" }] })) as { upsertCount: number };
    expect(up.upsertCount).toBe(1);
    // Strong: the collection's default (Bounded) may read from before the upsert, as in Milvus
    const after = ok(await http.query({ collectionName: name, filter: "id == 7", outputFields: ["title"], consistencyLevel: "Strong" } as never)) as { title: string }[];
    expect(after.map((r) => r.title)).toEqual(["changed"]);
    ok(await http.delete({ collectionName: name, filter: "id < 100" }));
    const left = ok(await http.query({ collectionName: name, filter: "", outputFields: ["count(*)"], consistencyLevel: "Strong" } as never)) as Record<string, number>[];
    expect(left[0]!["count(*)"]).toBe(900);

    const info = ok(await http.describeCollection({ collectionName: name })) as {
      collectionName: string;
      enableDynamicField: boolean;
      fields: { name: string; type: string; primaryKey: boolean; params: { key: string; value: string }[] }[];
      load: string;
    };
    expect(info.collectionName).toBe(name);
    expect(info.enableDynamicField).toBe(true);
    expect(info.fields.map((f) => [f.name, f.type, f.primaryKey])).toEqual([
      ["id", "Int64", true],
      ["vec", "FloatVector", false],
      ["title", "VarChar", false],
    ]);
    expect(info.fields[1]!.params).toEqual([{ key: "dim", value: String(DIM) }]);
    expect(info.load).toBe("LoadStateLoaded");
    // collection properties and partition statistics
    ok(await http.alterCollectionProperties({ collectionName: name, properties: { "collection.ttl.seconds": "60", "app.owner": "library" } } as never));
    const props = async () => (ok(await http.describeCollection({ collectionName: name })) as { properties: { key: string; value: string }[] }).properties;
    expect(await props()).toEqual(expect.arrayContaining([{ key: "collection.ttl.seconds", value: "60" }, { key: "app.owner", value: "library" }]));
    ok(await http.dropCollectionProperties({ collectionName: name, propertyKeys: ["app.owner"] } as never));
    expect((await props()).map((kv) => kv.key)).not.toContain("app.owner");
    const collectionRows = (ok(await http.getCollectionStatistics({ collectionName: name } as never)) as { rowCount: number }).rowCount;
    expect(ok(await http.getPartitionStatistics({ collectionName: name, partitionName: "_default" } as never))).toEqual({ rowCount: collectionRows });
    const noPartition = (await http.getPartitionStatistics({ collectionName: name, partitionName: "p9" } as never)) as Reply;
    expect(noPartition.code).toBe(200);
    expect(ok(await http.listCollections())).toContain(name);
    expect(ok(await http.hasCollection({ collectionName: name } as never))).toEqual({ has: true });
    ok(await http.releaseCollection({ collectionName: name }));
    ok(await http.dropCollection({ collectionName: name }));
    expect(ok(await http.hasCollection({ collectionName: name } as never))).toEqual({ has: false });
  });

  it("answers errors with Milvus's codes in the envelope (HTTP 200)", { timeout: 120_000 }, async () => {
    const missing = (await http.describeCollection({ collectionName: "nope" })) as Reply;
    expect(missing.code).toBe(100);
    expect(missing.message).toContain("nope");

    const name = "rest_dims";
    await http.createCollection({ collectionName: name, dimension: DIM } as never); // quick setup: id, vector, AUTOINDEX, loaded
    const wrongDim = (await http.insert({ collectionName: name, data: [{ id: 1, vector: [1, 2, 3] }] })) as Reply;
    expect(wrongDim.code).toBe(1100);
    expect(wrongDim.message).toContain("vector");
    await http.releaseCollection({ collectionName: name });
    const unloaded = (await http.search({ collectionName: name, data: [vectorOf(1)], limit: 1 } as never)) as Reply;
    expect(unloaded.code).toBe(101);
    // a request target that is not a path gets 400 and the door keeps serving
    const badTarget = await new Promise<string>((resolve, reject) => {
      const sock = connect(door.port, "127.0.0.1", () => sock.end("GET http://[x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"));
      let text = "";
      sock.on("data", (d: Buffer) => (text += d.toString()));
      sock.on("close", () => resolve(text));
      sock.on("error", reject);
    });
    expect(badTarget).toMatch(/^HTTP\/1\.1 400/);
    expect(badTarget).toContain("is not a path");
    expect(((await http.listCollections()) as Reply).code).toBe(0);
    const unimplemented = (await http.createUser({ userName: "ann", password: "secret-password" } as never)) as Reply;
    expect(unimplemented.code).toBe(10);
    expect(unimplemented.message).toContain("/v2/vectordb/users/create");
    const res = await fetch(`http://127.0.0.1:${door.port}/v2/vectordb/entities/query`, { method: "POST", body: "{not json" });
    expect(res.status).toBe(200);
    expect(((await res.json()) as Reply).code).toBe(1100);
    await http.dropCollection({ collectionName: name });
  });
});
