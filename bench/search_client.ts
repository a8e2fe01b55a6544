/**
 * The search benchmark's concurrent clients, in a worker thread with a NATS connection of its own.
 * Posts back the queries per second.
 */
import { parentPort, workerData } from "node:worker_threads";
import { connect } from "../actors/control/client.ts";
import { rateConcurrent, threadCpuUs } from "./util.ts";

const job = workerData as { natsUrl: string; prefix: string; collectionName: string; queries: Float32Array; dim: number; k: number; clients: number; total: number };
const vb = await connect({ servers: job.natsUrl, prefix: job.prefix, name: "bench-search-clients" });
const nq = job.queries.length / job.dim;
const cpu0 = threadCpuUs();
const qps = await rateConcurrent(job.total, job.clients, (i) =>
  vb.search({
    collectionName: job.collectionName,
    data: [job.queries.subarray((i % nq) * job.dim, ((i % nq) + 1) * job.dim)],
    limit: job.k,
    metricType: "L2",
    consistencyLevel: "Eventually",
  }),
);
await vb.close();
const cpu1 = threadCpuUs();
// this thread's CPU over the timed searches, so that the caller can tell its own from the clients'
parentPort!.postMessage({ qps, cpuUs: cpu0 === undefined || cpu1 === undefined ? undefined : cpu1 - cpu0 });
