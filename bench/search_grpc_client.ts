/**
 * The search benchmark's concurrent clients through the Milvus gRPC door (`--via grpc`): the Milvus
 * Node SDK's MilvusClient, unchanged, in a process of its own (as the native clients are, in
 * search_client.ts), so the SDK's request building and result formatting are not counted as the
 * standalone's. Sends back the queries per second and the process's CPU time over them.
 *
 * The SDK sends a call on a client borrowed from its channel pool (generic-pool, 10 clients at most by
 * default); the pool is sized to the number of concurrent clients so that all of them are in flight at
 * once, as on the native client's one connection. One search before the timed ones fills the SDK's
 * describeCollection cache (a per-client setup, done once), as an application's first call would.
 */
import { ConsistencyLevelEnum, MilvusClient, logger as sdkLogger } from "@zilliz/milvus2-sdk-node";
import { clientDone, clientJob, rateConcurrent } from "./util.ts";

const job = await clientJob<{ address: string; collectionName: string; queries: number[][]; k: number; clients: number; total: number }>();
sdkLogger.level = "warn";
const milvus = new MilvusClient({ address: job.address, timeout: 60_000, pool: { min: 2, max: Math.max(2, job.clients) } });
await milvus.connectPromise;
const nq = job.queries.length;
const search = (i: number) =>
  milvus.search({
    collection_name: job.collectionName,
    data: job.queries[i % nq]!,
    limit: job.k,
    metric_type: "L2",
    consistency_level: ConsistencyLevelEnum.Eventually,
  });
const first = await search(0);
if (first.status.error_code !== "Success") throw new Error(`search through the Milvus door failed: ${first.status.reason}`);
const cpu0 = process.cpuUsage();
const qps = await rateConcurrent(job.total, job.clients, async (i) => {
  const res = await search(i);
  if (res.status.error_code !== "Success") throw new Error(`search through the Milvus door failed: ${res.status.reason}`);
});
const cpu = process.cpuUsage(cpu0);
await milvus.closeConnection();
clientDone({ qps, cpuUs: cpu.user + cpu.system });
