/**
 * The search benchmark. Seeded clustered data (the same every run), ground truth by exact search, and
 * in one run:
 *  - the raw library alone (usearch HNSW, same M / efConstruction / ef, one query at a time, one
 *    thread, in this process): `raw_qps` (the median of 7 rounds over the queries), `raw_recall_at_10`;
 *  - Vectorbus end to end through the native API on a standalone with 2 querynodes and its default
 *    settings (a collection of one shard; the 200k vectors fit one segment): insert, index build, load,
 *    then 1 client and 16 clients (in a process of their own with its own connection; 4,000 searches,
 *    `--queries16`): `e2e_qps_1client`, `e2e_qps_16clients`, `e2e_p50_ms`, `e2e_p99_ms`,
 *    `recall_at_10`, `segments`;
 *  - the same data in a collection of two shards (two graphs a query, one on each querynode):
 *    `e2e_qps_16clients_2shards`. Two graphs searched in turn miss the CPU caches more than one
 *    searched back to back, so this costs more CPU a query than the one-shard collection;
 *  - filtered search at 50%, 10%, 1% and 0.1% of rows passing: `filtered: [{pass_ratio, recall_at_10, qps}]`;
 *  - `insert_rows_per_s`, `index_build_s`, `load_s`, `process_rss_mb` (the standalone process, which
 *    hosts both querynodes and every other role).
 *
 * With `--via grpc`, the standalone also serves the Milvus gRPC door on a free port, and the same
 * queries on the one-shard collection go through the Milvus Node SDK's MilvusClient (same limit,
 * metric, search params and consistency level; 1 client in this thread, 16 clients in a process of
 * their own with its own MilvusClient): `grpc_qps_1client`, `grpc_qps_16clients`, `grpc_over_native_16clients`
 * (against `e2e_qps_16clients` of the same run), `grpc_p50_ms`, `grpc_p99_ms`, `grpc_recall_at_10`
 * (the same ground truth).
 *
 * CPU per search, which moves far less than queries per second when other work shares the machine:
 * `raw_cpu_us_per_search` (usearch alone); `e2e_server_cpu_us_per_search_16clients` and
 * `grpc_server_cpu_us_per_search_16clients`, what the standalone (this process, every thread) spends per
 * search through the native API and through the Milvus door, less what it spends idle (measured for 2 s
 * before); `e2e_client_cpu_us_per_search_16clients` and `grpc_client_cpu_us_per_search_16clients`, what
 * the clients' process spends (the Milvus SDK's client costs several times the native client's);
 * `e2e_cpu_us_per_search_16clients` (server and client) and `cpu_ratio_16clients` (raw over it);
 * `grpc_over_native_server_cpu`, the door's cost beside the native API's, on the server.
 *
 * `--profile <dir>` writes a CPU profile of the main thread (proxy, delegators, segment actors, the
 * Milvus door) over the 16-client phases: `native16.cpuprofile` (and `grpc16.cpuprofile`).
 * `--no-2shards` leaves out the two-shard collection.
 *
 * `npm run bench -- search --rows 200000 --dim 128 --json [--via grpc] [--profile dir] [--no-2shards]`
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { Session } from "node:inspector/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import usearch from "usearch";
import { clientOf } from "../actors/control/client.ts";
import { searchFlat } from "../actors/search/index.ts";
import { defaultEf } from "../actors/index/index.ts";
import { defaultConfig } from "../ops/config.ts";
import { startStandalone } from "../ops/standalone.ts";
import { rng } from "../ops/random_rows.ts";
import { flag, option, optionText, report, round, runClientProcess } from "./util.ts";

const K = 10;
const M = 16;
const EF_CONSTRUCTION = 128;
const RAW_ROUNDS = 7;

/** n points around `clusters` seeded centers; `bucket` = i % 1000 drives the filters. */
export function clusteredData(n: number, dim: number, clusters = 100, seed = 7): Float32Array {
  const r = rng(seed);
  const centers = new Float32Array(clusters * dim);
  for (let i = 0; i < centers.length; i++) centers[i] = r() * 2 - 1;
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(r() * clusters);
    for (let j = 0; j < dim; j++) out[i * dim + j] = centers[c * dim + j]! + (r() - 0.5) * 0.4;
  }
  return out;
}

function recall(got: ArrayLike<bigint | number>, want: ArrayLike<number>): number {
  const w = new Set(Array.from(want, Number));
  let hit = 0;
  for (const g of Array.from(got, Number)) if (w.has(g)) hit++;
  return hit / Math.max(1, Math.min(K, want.length));
}

/** Runs `op` and returns its result with this process's CPU time (all threads) in microseconds and its wall time in ms. */
async function withCpu<T>(op: () => Promise<T>): Promise<{ value: T; cpuUs: number; ms: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await op();
  const c = process.cpuUsage(c0);
  return { value, cpuUs: c.user + c.system, ms: performance.now() - t0 };
}

/** The CPU the standalone spends with nothing asked of it (heartbeats, checkers, feeds), in microseconds per ms. */
async function idleCpuRate(ms = 2_000): Promise<number> {
  const { cpuUs } = await withCpu(() => new Promise((r) => setTimeout(r, ms)));
  return cpuUs / ms;
}

/** Runs `op` under the inspector's CPU profiler when `dir` is set, writing `<dir>/<name>.cpuprofile`. */
async function profiled<T>(dir: string, name: string, op: () => Promise<T>): Promise<T> {
  if (dir === "") return op();
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.start");
  try {
    return await op();
  } finally {
    const { profile } = await session.post("Profiler.stop");
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, `${name}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  }
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

export async function main(args: string[]): Promise<void> {
  const rows = option(args, "rows", 200_000);
  const dim = option(args, "dim", 128);
  const nq = option(args, "queries", 200);
  const via = optionText(args, "via", "native");
  if (via !== "native" && via !== "grpc") throw new Error(`--via takes native or grpc, got "${via}"`);
  const viaGrpc = via === "grpc";
  const profileDir = optionText(args, "profile", "");
  const twoShards = !flag(args, "no-2shards");
  const total16 = option(args, "queries16", 4_000);
  const vectors = clusteredData(rows, dim);
  const queries = clusteredData(nq, dim, 100, 7).map((x, i) => x + (((i * 2654435761) % 1000) / 1000 - 0.5) * 0.05);
  const query = (i: number) => queries.subarray(i * dim, (i + 1) * dim);
  const buckets = Int32Array.from({ length: rows }, (_, i) => i % 1000);

  // ground truth: exact search, unfiltered and per filter
  const ratios = [0.5, 0.1, 0.01, 0.001];
  const truth = searchFlat({ vectors, dim, queries, k: K, metric: "L2" }).map((h) => h.rows);
  const filteredTruth = ratios.map((ratio) => {
    const cut = Math.round(ratio * 1000);
    const filter = Uint8Array.from(buckets, (b) => (b < cut ? 1 : 0));
    return searchFlat({ vectors, dim, queries, k: K, metric: "L2", filter }).map((h) => h.rows);
  });
  const ef = defaultEf("HNSW", K);

  // the raw library alone
  const t0 = performance.now();
  const raw = new usearch.Index({ dimensions: dim, metric: usearch.MetricKind.L2sq, connectivity: M, expansion_add: EF_CONSTRUCTION, expansion_search: ef } as never);
  raw.add(BigUint64Array.from({ length: rows }, (_, i) => BigInt(i)), vectors, 0);
  const rawBuildS = (performance.now() - t0) / 1000;
  let rawRecall = 0;
  for (let i = 0; i < nq; i++) rawRecall += recall(raw.search(query(i), K, 1).keys, truth[i]!);
  rawRecall /= nq;
  // the rate: the median of rounds over the queries (one round is a few tens of milliseconds)
  const rawRounds: number[] = [];
  const rawCpu0 = process.cpuUsage();
  for (let round = 0; round < RAW_ROUNDS; round++) {
    const t1 = performance.now();
    for (let i = 0; i < nq; i++) raw.search(query(i), K, 1);
    rawRounds.push(nq / ((performance.now() - t1) / 1000));
  }
  const rawCpu = process.cpuUsage(rawCpu0);
  const rawCpuUsPerSearch = (rawCpu.user + rawCpu.system) / (RAW_ROUNDS * nq);
  const rawQps = rawRounds.sort((a, b) => a - b)[RAW_ROUNDS >> 1]!;

  // Vectorbus end to end
  const dir = await mkdtemp(join(tmpdir(), "vbus-bench-"));
  try {
    await using sa = await startStandalone({ ...defaultConfig({}), dataDir: dir, prefix: "bsearch", querynodes: 2 }, viaGrpc ? { milvus: { port: 0, host: "127.0.0.1" } } : {});
    const vb = clientOf(sa.nc, { prefix: "bsearch" });
    /** a collection of the data: insert, flush, HNSW build, load; returns the timings */
    const prepare = async (name: string, shardsNum?: number) => {
      await vb.createCollection({
        schema: {
          name,
          fields: [
            { name: "id", type: "Int64", isPrimaryKey: true },
            { name: "bucket", type: "Int32" },
            { name: "vec", type: "FloatVector", dim },
          ],
        },
        ...(shardsNum === undefined ? {} : { shardsNum }),
      });
      const t2 = performance.now();
      const batch = 4_000;
      for (let off = 0; off < rows; off += batch) {
        const n = Math.min(batch, rows - off);
        await vb.insert({
          collectionName: name,
          columns: {
            id: BigInt64Array.from({ length: n }, (_, i) => BigInt(off + i)),
            bucket: buckets.subarray(off, off + n),
            vec: vectors.subarray(off * dim, (off + n) * dim),
          },
        });
      }
      const insertS = (performance.now() - t2) / 1000;
      await vb.flush({ collectionNames: [name] });
      const t3 = performance.now();
      await vb.createIndex({ collectionName: name, fieldName: "vec", indexType: "HNSW", metricType: "L2", params: { M, efConstruction: EF_CONSTRUCTION } });
      for (;;) {
        const p = await vb.getIndexBuildProgress({ collectionName: name });
        if (p.totalRows > 0 && p.indexedRows === p.totalRows) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const buildS = (performance.now() - t3) / 1000;
      const t4 = performance.now();
      await vb.loadCollection({ collectionName: name, wait: true });
      const loadS = (performance.now() - t4) / 1000;
      const segments = (await vb.getCollectionStatistics({ collectionName: name })).segments;
      return { insertS, buildS, loadS, segments };
    };
    /** 16 clients in a process of their own with its own connection: queries per second and the process's CPU */
    const clients16 = (name: string) =>
      runClientProcess<{ qps: number; cpuUs: number }>(new URL("./search_client.ts", import.meta.url), {
        natsUrl: sa.natsUrl,
        prefix: "bsearch",
        collectionName: name,
        queries,
        dim,
        k: K,
        clients: 16,
        total: total16,
      });
    const qps16 = (name: string) => clients16(name).then((m) => m.qps);

    /** the same queries through the Milvus gRPC door and the Milvus Node SDK: 1 client here, then 16 in a worker */
    const viaMilvusGrpc = async (door: typeof sa.milvus, collectionName: string) => {
      if (!door) throw new Error("the standalone serves no Milvus door");
      const { MilvusClient, ConsistencyLevelEnum, logger: sdkLogger } = await import("@zilliz/milvus2-sdk-node");
      sdkLogger.level = "warn";
      const address = `127.0.0.1:${door.port}`;
      // the SDK takes plain arrays; converted once, outside the timed loops
      const plain = Array.from({ length: nq }, (_, i) => Array.from(query(i)));
      const milvus = new MilvusClient({ address, timeout: 60_000 });
      await milvus.connectPromise;
      try {
        const grpcSearch = async (i: number) => {
          const res = await milvus.search({
            collection_name: collectionName,
            data: plain[i % nq]!,
            limit: K,
            metric_type: "L2",
            consistency_level: ConsistencyLevelEnum.Eventually,
          });
          if (res.status.error_code !== "Success") throw new Error(`search through the Milvus door failed: ${res.status.reason}`);
          return res.results as unknown as { id: string | number }[];
        };
        for (let i = 0; i < 20; i++) await grpcSearch(i); // warm up
        let rec = 0;
        const glat: number[] = [];
        const tg = performance.now();
        for (let i = 0; i < nq; i++) {
          const s = performance.now();
          const hits = await grpcSearch(i);
          glat.push(performance.now() - s);
          rec += recall(hits.map((h) => Number(h.id)), truth[i]!);
        }
        const qps1 = nq / ((performance.now() - tg) / 1000);
        const g16 = await withCpu(() =>
          profiled(profileDir, "grpc16", () =>
            runClientProcess<{ qps: number; cpuUs: number }>(new URL("./search_grpc_client.ts", import.meta.url), {
              address,
              collectionName,
              queries: plain,
              k: K,
              clients: 16,
              total: total16,
            }),
          ),
        );
        return {
          qps1,
          qps16: g16.value.qps,
          serverCpuUsPerSearch: (g16.cpuUs - idleRate * g16.ms) / total16,
          clientCpuUsPerSearch: g16.value.cpuUs / total16, p50: percentile(glat, 50), p99: percentile(glat, 99), recall: rec / nq };
      } finally {
        await milvus.closeConnection();
      }
    };

    // the collection as created by default: one shard
    const name = "bench_search";
    const { insertS, buildS, loadS, segments } = await prepare(name);
    const search = (i: number, filter?: string) =>
      vb.search({ collectionName: name, data: [query(i)], limit: K, metricType: "L2", consistencyLevel: "Eventually", ...(filter ? { filter } : {}) });
    for (let i = 0; i < 20; i++) await search(i); // warm up
    let e2eRecall = 0;
    const lat: number[] = [];
    const t5 = performance.now();
    for (let i = 0; i < nq; i++) {
      const s = performance.now();
      const res = await search(i);
      lat.push(performance.now() - s);
      e2eRecall += recall(res.results[0]!.ids as BigInt64Array, truth[i]!);
    }
    const qps1 = nq / ((performance.now() - t5) / 1000);
    e2eRecall /= nq;

    const filtered: { pass_ratio: number; recall_at_10: number; qps: number }[] = [];
    for (let f = 0; f < ratios.length; f++) {
      const expr = `bucket < ${Math.round(ratios[f]! * 1000)}`;
      let rec = 0;
      const tf = performance.now();
      for (let i = 0; i < nq; i++) rec += recall((await search(i, expr)).results[0]!.ids as BigInt64Array, filteredTruth[f]![i]!);
      filtered.push({ pass_ratio: ratios[f]!, recall_at_10: round(rec / nq, 3), qps: round(nq / ((performance.now() - tf) / 1000)) });
    }

    const idleRate = await idleCpuRate();
    const native16 = await withCpu(() => profiled(profileDir, "native16", () => clients16(name)));
    const e2eQps16 = native16.value.qps;
    // what the standalone spent per search (the clients are another process), without what it spends when idle
    const e2eServerCpuUsPerSearch = (native16.cpuUs - idleRate * native16.ms) / total16;
    const e2eClientCpuUsPerSearch = native16.value.cpuUs / total16;
    const e2eCpuUsPerSearch = e2eServerCpuUsPerSearch + e2eClientCpuUsPerSearch;
    const grpc = viaGrpc ? await viaMilvusGrpc(sa.milvus, name) : undefined;
    const rss = process.memoryUsage().rss;
    await vb.releaseCollection({ collectionName: name });

    // the same data in a collection of two shards: two graphs a query, searched in parallel
    const name2 = "bench_search_2shards";
    let two: { qps16: number; segments: number } | undefined;
    if (twoShards) {
      const { segments: segments2 } = await prepare(name2, 2);
      for (let i = 0; i < 20; i++) await vb.search({ collectionName: name2, data: [query(i)], limit: K, metricType: "L2", consistencyLevel: "Eventually" });
      two = { qps16: await qps16(name2), segments: segments2 };
      await vb.releaseCollection({ collectionName: name2 });
    }

    report(args, {
      rows,
      dim,
      raw_qps: round(rawQps),
      raw_recall_at_10: round(rawRecall, 3),
      raw_build_s: round(rawBuildS, 2),
      e2e_qps_1client: round(qps1),
      e2e_qps_16clients: round(e2eQps16),
      ratio_16clients: round(e2eQps16 / rawQps, 3),
      e2e_p50_ms: round(percentile(lat, 50), 2),
      e2e_p99_ms: round(percentile(lat, 99), 2),
      recall_at_10: round(e2eRecall, 3),
      filtered,
      insert_rows_per_s: round(rows / insertS),
      index_build_s: round(buildS, 2),
      load_s: round(loadS, 2),
      process_rss_mb: round(rss / 1048576),
      segments,
      raw_cpu_us_per_search: round(rawCpuUsPerSearch),
      e2e_cpu_us_per_search_16clients: round(e2eCpuUsPerSearch),
      cpu_ratio_16clients: round(rawCpuUsPerSearch / e2eCpuUsPerSearch, 3),
      idle_cpu_percent_of_a_core: round(idleRate / 10, 1),
      e2e_server_cpu_us_per_search_16clients: round(e2eServerCpuUsPerSearch),
      e2e_client_cpu_us_per_search_16clients: round(e2eClientCpuUsPerSearch),
      ...(two ? { e2e_qps_16clients_2shards: round(two.qps16), segments_2shards: two.segments } : {}),
      ef,
      M,
      efConstruction: EF_CONSTRUCTION,
      ...(grpc
        ? {
            grpc_qps_1client: round(grpc.qps1),
            grpc_qps_16clients: round(grpc.qps16),
            grpc_over_native_16clients: round(grpc.qps16 / e2eQps16, 3),
            grpc_p50_ms: round(grpc.p50, 2),
            grpc_p99_ms: round(grpc.p99, 2),
            grpc_recall_at_10: round(grpc.recall, 3),
            grpc_server_cpu_us_per_search_16clients: round(grpc.serverCpuUsPerSearch),
            grpc_client_cpu_us_per_search_16clients: round(grpc.clientCpuUsPerSearch),
            grpc_over_native_server_cpu: round(grpc.serverCpuUsPerSearch / e2eServerCpuUsPerSearch, 3),
          }
        : {}),
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
