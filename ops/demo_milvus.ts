/**
 * `vbus demo milvus-sdk`: a standalone of its own with the Milvus front door on a free port, driven by
 * the Milvus Node SDK unchanged — MilvusClient over gRPC, then HttpClient over REST v2 — through one
 * flow each (create, insert, flush, index, load, search against brute force, query, get, upsert,
 * delete, hybrid search, drop). Prints `{grpc_ok, rest_ok, steps, failures}`.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DataType, HttpClient, MilvusClient, RRFRanker } from "@zilliz/milvus2-sdk-node";
import { defaultConfig } from "./config.ts";
import { startStandalone } from "./standalone.ts";

export interface DemoMilvusStep {
  api: "grpc" | "rest";
  step: string;
  ok: boolean;
  ms: number;
}

export interface DemoMilvusResult {
  grpc_ok: boolean;
  rest_ok: boolean;
  milvus_port: number;
  rows: number;
  steps: DemoMilvusStep[];
  failures: { api: string; step: string; error: string }[];
}

const DIM = 16;

function vectorOf(i: number, dim = DIM): number[] {
  let x = Math.imul(i + 1, 0x9e3779b1) >>> 0;
  const v: number[] = [];
  for (let j = 0; j < dim; j++) {
    x = (x + 0x6d2b79f5) >>> 0;
    let t = Math.imul(x ^ (x >>> 15), x | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    v.push(Math.fround(((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5));
  }
  return v;
}

function nearest(q: number[], ids: number[], k: number, vec: (i: number) => number[] = (i) => vectorOf(i)): number[] {
  return ids
    .map((id) => ({ id, d: vec(id).reduce((s, x, j) => s + (x - q[j]!) ** 2, 0) }))
    .sort((a, b) => a.d - b.d || a.id - b.id)
    .slice(0, k)
    .map((h) => h.id);
}

function check(cond: boolean, what: string): void {
  if (!cond) throw new Error(what);
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function status(res: unknown): void {
  const r = res as { code?: number; error_code?: string; reason?: string; status?: { code: number; reason: string } };
  const s = r.status ?? r;
  if ((s as { code?: number }).code !== 0) throw new Error(`status ${(s as { code?: number }).code}: ${(s as { reason?: string }).reason ?? ""}`);
}

function envelope<T>(res: unknown): T {
  const r = res as { code: number; message?: string; data: T };
  if (r.code !== 0) throw new Error(`code ${r.code}: ${r.message ?? ""}`);
  return r.data;
}

export async function demoMilvus(opts: { rows: number }): Promise<DemoMilvusResult> {
  const dir = await mkdtemp(join(tmpdir(), "vbus-demo-"));
  const steps: DemoMilvusStep[] = [];
  const failures: DemoMilvusResult["failures"] = [];
  const n = opts.rows;
  const rows = Array.from({ length: n }, (_, i) => ({
    id: i,
    vec: vectorOf(i),
    side: vectorOf(i + 1_000_000, 4),
    title: `item ${i}`,
    rating: i % 4 === 0 ? null : i % 10,
    color: i % 3 === 0 ? "red" : "blue",
  }));
  const ids = rows.map((r) => r.id);
  let milvusPort = 0;
  try {
    await using sa = await startStandalone({ ...defaultConfig({}), dataDir: dir, prefix: "demo" }, { milvus: { port: 0, host: "127.0.0.1" } });
    milvusPort = sa.milvus!.port;
    const run = async (api: "grpc" | "rest", step: string, f: () => Promise<void>): Promise<boolean> => {
      const t0 = performance.now();
      try {
        await f();
        steps.push({ api, step, ok: true, ms: Math.round(performance.now() - t0) });
        return true;
      } catch (err) {
        steps.push({ api, step, ok: false, ms: Math.round(performance.now() - t0) });
        failures.push({ api, step, error: err instanceof Error ? err.message : JSON.stringify(err) });
        return false;
      }
    };
    const q = [vectorOf(900_001), vectorOf(900_002), vectorOf(900_003)];

    // gRPC: MilvusClient
    const milvus = new MilvusClient({ address: `127.0.0.1:${milvusPort}`, timeout: 120_000 });
    const g = "demo_grpc";
    const flow: [string, () => Promise<void>][] = [
      ["connect", async () => check((await milvus.getVersion()).version !== "", "no version")],
      [
        "create collection",
        async () =>
          status(
            await milvus.createCollection({
              collection_name: g,
              fields: [
                { name: "id", data_type: DataType.Int64, is_primary_key: true },
                { name: "vec", data_type: DataType.FloatVector, dim: DIM },
                { name: "side", data_type: DataType.FloatVector, dim: 4 },
                { name: "title", data_type: DataType.VarChar, max_length: 32 },
                { name: "rating", data_type: DataType.Int32, nullable: true },
              ],
              enable_dynamic_field: true,
            }),
          ),
      ],
      ["insert", async () => check(Number((await milvus.insert({ collection_name: g, data: rows })).insert_cnt) === n, "insert count")],
      ["flush", async () => check((await milvus.flushSync({ collection_names: [g] })).flushed, "not flushed")],
      [
        "create indexes",
        async () => {
          status(await milvus.createIndex({ collection_name: g, field_name: "vec", index_type: "HNSW", metric_type: "L2", params: { M: 16, efConstruction: 200 } }));
          status(await milvus.createIndex({ collection_name: g, field_name: "side", index_type: "FLAT", metric_type: "L2" }));
        },
      ],
      ["load", async () => status(await milvus.loadCollection({ collection_name: g }))],
      [
        "search nq=3 with a filter, template values and output fields",
        async () => {
          const res = await milvus.search({
            collection_name: g,
            anns_field: "vec",
            data: q,
            limit: 5,
            filter: "id < {top} and color == 'red'",
            exprValues: { top: Math.floor(n / 2) },
            output_fields: ["title", "color"],
            params: { ef: 256 },
            consistency_level: "Strong" as never,
          });
          status(res);
          const allowed = ids.filter((i) => i < Math.floor(n / 2) && i % 3 === 0);
          const got = res.results as unknown as { id: string; title: string }[][];
          q.forEach((v, k) => check(same(got[k]!.map((h) => Number(h.id)), nearest(v, allowed, 5)), `query ${k}: not the brute-force top 5`));
          check(got.every((hits) => hits.every((h) => h.title === `item ${h.id}`)), "output fields");
        },
      ],
      ["count(*)", async () => check((await milvus.count({ collection_name: g })).data === n, "count")],
      [
        "get by ids (nullable field)",
        async () => {
          const res = await milvus.get({ collection_name: g, ids: [0, 1], output_fields: ["rating"] });
          status(res);
          check(same(res.data.map((r) => [Number(r.id), r.rating]).sort(), [[0, null], [1, 1]]), "rows");
        },
      ],
      [
        "upsert",
        async () => {
          status(await milvus.upsert({ collection_name: g, data: [{ ...rows[5]!, title: "changed" }] }));
          const res = await milvus.query({ collection_name: g, filter: "id == 5", output_fields: ["title"] });
          check(same(res.data.map((r) => r.title), ["changed"]), "upserted row");
        },
      ],
      [
        "hybrid search (RRF)",
        async () => {
          const res = await milvus.search({
            collection_name: g,
            data: [
              { data: q[0]!, anns_field: "vec", limit: 10, params: { ef: 256 } },
              { data: q[1]!.slice(0, 4), anns_field: "side", limit: 10 },
            ],
            rerank: RRFRanker(60),
            limit: 3,
            consistency_level: "Strong" as never,
          });
          status(res);
          const fused = new Map<number, number>();
          [nearest(q[0]!, ids, 10), nearest(q[1]!.slice(0, 4), ids, 10, (i) => rows[i]!.side)].forEach((l) => l.forEach((id, r) => fused.set(id, (fused.get(id) ?? 0) + 1 / (61 + r))));
          const want = [...fused.entries()].sort((a, b) => b[1] - a[1] || (String(a[0]) < String(b[0]) ? -1 : 1)).slice(0, 3).map(([id]) => id);
          check(same((res.results as unknown as { id: string }[]).map((h) => Number(h.id)), want), "fused order");
        },
      ],
      [
        "delete by filter",
        async () => {
          status(await milvus.delete({ collection_name: g, filter: "id < 100" }));
          check((await milvus.count({ collection_name: g })).data === n - 100, "count after delete");
        },
      ],
      ["drop", async () => status(await milvus.dropCollection({ collection_name: g }))],
    ];
    let grpcOk = true;
    for (const [step, f] of flow) if (!(await run("grpc", step, f))) grpcOk = false;
    await milvus.closeConnection();

    // REST v2: HttpClient
    const http = new HttpClient({ endpoint: `http://127.0.0.1:${milvusPort}`, timeout: 120_000 });
    const r = "demo_rest";
    const restFlow: [string, () => Promise<void>][] = [
      [
        "create collection with an index (loads it)",
        async () =>
          void envelope(
            await http.createCollection({
              collectionName: r,
              schema: {
                enableDynamicField: true,
                fields: [
                  { fieldName: "id", dataType: "Int64", isPrimary: true },
                  { fieldName: "vec", dataType: "FloatVector", elementTypeParams: { dim: DIM } },
                  { fieldName: "title", dataType: "VarChar", elementTypeParams: { max_length: 32 } },
                ],
              },
              indexParams: [{ fieldName: "vec", indexName: "vec", metricType: "L2", indexType: "FLAT", params: {} }],
            } as never),
          ),
      ],
      [
        "insert",
        async () => {
          const data = envelope<{ insertCount: number }>(await http.insert({ collectionName: r, data: rows.map(({ id, vec, title, color }) => ({ id, vec, title, color })) }));
          check(data.insertCount === n, "insert count");
        },
      ],
      [
        "search nq=3 with a filter",
        async () => {
          const res = (await http.search({ collectionName: r, data: q, limit: 5, filter: "color == 'red'", outputFields: ["title"], consistencyLevel: "Strong" } as never)) as unknown;
          const got = envelope<{ id: string }[][]>(res);
          const allowed = ids.filter((i) => i % 3 === 0);
          q.forEach((v, k) => check(same(got[k]!.map((h) => Number(h.id)), nearest(v, allowed, 5)), `query ${k}: not the brute-force top 5`));
        },
      ],
      [
        "query count(*) and by filter",
        async () => {
          const c = envelope<Record<string, number>[]>(await http.query({ collectionName: r, filter: "", outputFields: ["count(*)"], consistencyLevel: "Strong" } as never));
          check(c[0]!["count(*)"] === n, "count");
          const some = envelope<{ id: string; title: string }[]>(await http.query({ collectionName: r, filter: "id in [2, 3]", outputFields: ["title"] } as never));
          check(same(some.map((x) => x.title).sort(), ["item 2", "item 3"]), "rows");
        },
      ],
      [
        "get, upsert, delete",
        async () => {
          envelope(await http.upsert({ collectionName: r, data: [{ id: 9, vec: vectorOf(9), title: "changed" }] }));
          const got = envelope<{ title: string }[]>(await http.get({ collectionName: r, id: [9], outputFields: ["title"] } as never));
          check(same(got.map((x) => x.title), ["changed"]), "upserted row");
          envelope(await http.delete({ collectionName: r, filter: "id < 10" }));
          const c = envelope<Record<string, number>[]>(await http.query({ collectionName: r, filter: "", outputFields: ["count(*)"], consistencyLevel: "Strong" } as never));
          check(c[0]!["count(*)"] === n - 10, "count after delete");
        },
      ],
      ["drop", async () => void envelope(await http.dropCollection({ collectionName: r }))],
    ];
    let restOk = true;
    for (const [step, f] of restFlow) if (!(await run("rest", step, f))) restOk = false;
    return { grpc_ok: grpcOk, rest_ok: restOk, milvus_port: milvusPort, rows: n, steps, failures };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
