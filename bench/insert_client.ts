/**
 * The insert benchmark's load generator, run in a worker thread with a NATS connection of its own, as
 * a client application would: first the raw publish of pre-encoded InsertMsgs to a bare stream, then
 * the same rows through Vectorbus (as columns, then as row objects). Posts the timings back.
 */
import { parentPort, workerData } from "node:worker_threads";
import { connect } from "../actors/control/client.ts";
import { DmlLog } from "../runtime/dml_log.ts";
import { rateConcurrent } from "./util.ts";

interface Job {
  natsUrl: string;
  prefix: string;
  collectionName: string;
  clients: number;
  rawPayloads: Uint8Array[];
  columnBatches: Record<string, unknown>[];
  rowBatches: Record<string, unknown>[][];
}

const job = workerData as Job & { module: string };
const vb = await connect({ servers: job.natsUrl, prefix: job.prefix, name: "bench-insert-client" });
const dml = new DmlLog(vb.nc);
await dml.ensureChannel("BENCH_RAW_INSERT", "benchraw.>");
let t = performance.now();
await dml.publishBatch(job.rawPayloads.map((payload, i) => ({ subject: `benchraw.v${i % 2}`, payload })));
const rawS = (performance.now() - t) / 1000;
t = performance.now();
await rateConcurrent(job.columnBatches.length, job.clients, (i) => vb.insert({ collectionName: job.collectionName, columns: job.columnBatches[i]! }));
const columnsS = (performance.now() - t) / 1000;
t = performance.now();
await rateConcurrent(job.rowBatches.length, job.clients, (i) => vb.insert({ collectionName: job.collectionName, rows: job.rowBatches[i]! }));
const rowsS = (performance.now() - t) / 1000;
await vb.close();
parentPort!.postMessage({ rawS, columnsS, rowsS });
