/**
 * The insert benchmark's load generator, run in a worker thread with a NATS connection of its own, as
 * a client application would: first the raw publish of pre-encoded InsertMsgs to a bare stream, then the
 * pipeline floor (the same requests to a bare subscriber that publishes pre-encoded messages), then the
 * same rows through Vectorbus (as columns, then as row objects). Posts the timings back.
 */
import { parentPort, workerData } from "node:worker_threads";
import { connect } from "../actors/control/client.ts";
import { DmlLog } from "../runtime/dml_log.ts";
import { encode } from "../protocol/codec.ts";
import { demoSchema, randomRows } from "../ops/random_rows.ts";
import { rateConcurrent } from "./util.ts";

interface Job {
  natsUrl: string;
  prefix: string;
  collectionName: string;
  clients: number;
  rawPayloads: Uint8Array[];
  rows: number;
  dim: number;
  batch: number;
}

const job = workerData as Job & { module: string };
const { rows, dim, batch } = job;
const schema = demoSchema(job.collectionName, dim);
const batches: Record<string, unknown>[][] = [];
for (let off = 0; off < rows; off += batch) batches.push(randomRows(schema, off, Math.min(batch, rows - off)));
// the rows as columns (typed arrays for numbers and vectors, as a bulk loader sends them)
const columnBatches = batches.map((b) => ({
  id: BigInt64Array.from(b, (r) => r.id as bigint),
  title: b.map((r) => r.title as string),
  price: Float32Array.from(b, (r) => r.price as number),
  meta: b.map((r) => r.meta),
  vec: (() => {
    const flat = new Float32Array(b.length * dim);
    b.forEach((r, i) => flat.set(r.vec as Float32Array, i * dim));
    return flat;
  })(),
}));
// and as row objects, under other primary keys
const rowBatches = batches.map((b, k) => b.map((r, i) => ({ ...r, id: BigInt(rows + k * batch + i) })));
const vb = await connect({ servers: job.natsUrl, prefix: job.prefix, name: "bench-insert-client" });
const dml = new DmlLog(vb.nc);
await dml.ensureChannel("BENCH_RAW_INSERT", "benchraw.>");
let t = performance.now();
await dml.publishBatch(job.rawPayloads.map((payload, i) => ({ subject: `benchraw.v${i % 2}`, payload })));
const rawS = (performance.now() - t) / 1000;
t = performance.now();
await rateConcurrent(columnBatches.length, job.clients, (i) =>
  vb.nc.request(`benchfloor.req.${i}`, encode({ collectionName: job.collectionName, columns: columnBatches[i]! }), { timeout: 30_000 }),
);
const floorS = (performance.now() - t) / 1000;
t = performance.now();
await rateConcurrent(columnBatches.length, job.clients, (i) => vb.insert({ collectionName: job.collectionName, columns: columnBatches[i]! }));
const columnsS = (performance.now() - t) / 1000;
t = performance.now();
await rateConcurrent(rowBatches.length, job.clients, (i) => vb.insert({ collectionName: job.collectionName, rows: rowBatches[i]! }));
const rowsS = (performance.now() - t) / 1000;
await vb.close();
parentPort!.postMessage({ rawS, floorS, columnsS, rowsS });
