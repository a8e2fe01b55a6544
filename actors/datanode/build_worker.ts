/**
 * The worker thread that builds indexes for a datanode (index_builder.ts starts it through
 * runtime/ts_worker.mjs). It takes one job at a time: the vectors arrive transferred, the artifact goes
 * back transferred; a failure goes back as a VbError's code and message.
 */
import { parentPort } from "node:worker_threads";
import { VbError } from "../../protocol/errors.ts";
import { buildIndex } from "../index/build.ts";
import type { WorkerJob, WorkerReply } from "./index_builder.ts";

const port = parentPort;
if (!port) throw new Error("build_worker.ts runs in a worker thread");

port.on("message", (job: WorkerJob) => {
  void (async () => {
    let reply: WorkerReply;
    let transfer: ArrayBuffer[] = [];
    try {
      const built = await buildIndex({ vectors: job.vectors, dim: job.dim, metric: job.metric, indexType: job.indexType, params: job.params });
      const bytes = built.byteOffset === 0 && built.byteLength === built.buffer.byteLength ? built : built.slice();
      reply = { id: job.id, ok: true, bytes };
      transfer = [bytes.buffer as ArrayBuffer];
    } catch (err) {
      const e = VbError.from(err);
      reply = { id: job.id, ok: false, code: e.code, message: e.message, retriable: e.retriable };
    }
    port.postMessage(reply, transfer);
  })();
});
