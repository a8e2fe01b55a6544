/**
 * The search benchmark's concurrent clients, in a process of their own (runClientProcess) with a NATS
 * connection of their own. Sends back the queries per second and the process's CPU time over them.
 */
import { connect } from "../actors/control/client.ts";
import { clientDone, clientJob, rateConcurrent } from "./util.ts";

const job = await clientJob<{ natsUrl: string; prefix: string; collectionName: string; queries: Float32Array; dim: number; k: number; clients: number; total: number }>();
const vb = await connect({ servers: job.natsUrl, prefix: job.prefix, name: "bench-search-clients" });
const nq = job.queries.length / job.dim;
const cpu0 = process.cpuUsage();
const qps = await rateConcurrent(job.total, job.clients, (i) =>
  vb.search({
    collectionName: job.collectionName,
    data: [job.queries.subarray((i % nq) * job.dim, ((i % nq) + 1) * job.dim)],
    limit: job.k,
    metricType: "L2",
    consistencyLevel: "Eventually",
  }),
);
const cpu = process.cpuUsage(cpu0);
await vb.close();
clientDone({ qps, cpuUs: cpu.user + cpu.system });
