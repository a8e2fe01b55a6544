/**
 * Where a datanode builds indexes: worker threads, so that a long build (an HNSW graph over 100k rows
 * takes seconds of CPU) never holds the event loop the datanode's heartbeats and DML consumption run on.
 *
 * Up to `threads` workers run one build each; more builds queue. A worker starts on the first build
 * (runtime/ts_worker.mjs boots it with tsx, then it imports build_worker.ts) and stops after `idleMs`
 * without work. The vectors are transferred to the worker (copied first when they are a view into a
 * larger buffer, such as the insert log they were read from), the artifact is transferred back. A tiny
 * build (or FLAT, which is only a header) runs in this thread: booting a worker would cost more.
 */
import { Worker } from "node:worker_threads";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import type { IndexMetric, IndexTypeName } from "../../protocol/messages/indexes.ts";
import { buildIndex } from "../index/build.ts";

export interface BuildJob {
  /** n × dim, row major */
  vectors: Float32Array;
  dim: number;
  metric: IndexMetric;
  indexType: IndexTypeName;
  params: Record<string, unknown>;
}

/** A job as it crosses to the worker. */
export interface WorkerJob extends BuildJob {
  id: number;
}

export type WorkerReply =
  | { id: number; ok: true; bytes: Uint8Array }
  | { id: number; ok: false; code: number; message: string; retriable: boolean };

export interface IndexBuilderOptions {
  /** builds run at once (default 2) */
  threads?: number;
  /** a worker without work for this long stops (default 30 s) */
  idleMs?: number;
  /** builds over at most this many floats run in the calling thread (default 32,768) */
  inlineFloats?: number;
}

interface Pending {
  job: WorkerJob;
  resolve: (bytes: Uint8Array) => void;
  reject: (err: unknown) => void;
}

interface Slot {
  worker: Worker;
  job: Pending | undefined;
  idle: NodeJS.Timeout | undefined;
}

const WORKER_BOOT = new URL("../../runtime/ts_worker.mjs", import.meta.url);
const WORKER_MODULE = new URL("./build_worker.ts", import.meta.url).href;

/** Build params as `buildIndex` and `estimateIndexMemory` take them: AUTOINDEX takes none from a caller. */
export function buildParamsOf(index: { indexType: IndexTypeName; params: Record<string, unknown> }): Record<string, unknown> {
  return index.indexType === "AUTOINDEX" ? {} : index.params;
}

export class IndexBuilder {
  private readonly threads: number;
  private readonly idleMs: number;
  private readonly inlineFloats: number;
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 1;
  private closed = false;

  constructor(opts: IndexBuilderOptions = {}) {
    this.threads = Math.max(1, opts.threads ?? 2);
    this.idleMs = opts.idleMs ?? 30_000;
    this.inlineFloats = opts.inlineFloats ?? 32_768;
  }

  /** Builds an index artifact; rejects with a VbError (1100 for bad parameters). */
  build(job: BuildJob): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(stoppedError());
    if (job.indexType === "FLAT" || job.vectors.length <= this.inlineFloats) return buildIndex(job);
    const vectors = ownsBuffer(job.vectors) ? job.vectors : job.vectors.slice();
    return new Promise<Uint8Array>((resolve, reject) => {
      this.queue.push({ job: { ...job, vectors, id: this.nextId++ }, resolve, reject });
      this.pump();
    });
  }

  /** Builds running or waiting. */
  get pending(): number {
    return this.queue.length + this.slots.filter((s) => s.job !== undefined).length;
  }

  /** Stops every worker; builds running or waiting fail with a retriable 2. */
  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.queue.splice(0)) p.reject(stoppedError());
    const slots = this.slots.splice(0);
    for (const s of slots) {
      if (s.idle) clearTimeout(s.idle);
      s.job?.reject(stoppedError());
      s.job = undefined;
    }
    await Promise.all(slots.map((s) => s.worker.terminate().catch(() => undefined)));
  }

  private pump(): void {
    while (this.queue.length > 0 && !this.closed) {
      let slot = this.slots.find((s) => s.job === undefined);
      if (!slot) {
        if (this.slots.length >= this.threads) return;
        slot = this.spawn();
      }
      const p = this.queue.shift()!;
      if (slot.idle) clearTimeout(slot.idle);
      slot.idle = undefined;
      slot.job = p;
      slot.worker.postMessage(p.job, [p.job.vectors.buffer as ArrayBuffer]);
    }
  }

  private spawn(): Slot {
    const worker = new Worker(WORKER_BOOT, { workerData: { module: WORKER_MODULE }, name: "vb-index-build" });
    const slot: Slot = { worker, job: undefined, idle: undefined };
    this.slots.push(slot);
    worker.on("message", (r: WorkerReply) => {
      const p = slot.job;
      if (!p || p.job.id !== r.id) return;
      slot.job = undefined;
      if (r.ok) p.resolve(r.bytes);
      else p.reject(new VbError(r.code, r.message, { retriable: r.retriable }));
      if (!this.closed) {
        slot.idle = setTimeout(() => this.retire(slot), this.idleMs);
        slot.idle.unref();
      }
      this.pump();
    });
    const died = (err: unknown) => {
      const i = this.slots.indexOf(slot);
      if (i < 0) return;
      this.slots.splice(i, 1);
      if (slot.idle) clearTimeout(slot.idle);
      slot.job?.reject(
        new VbError(ErrorCode.Unexpected, `index build worker died: ${err instanceof Error ? err.message : String(err)}`, { cause: err, retriable: true }),
      );
      slot.job = undefined;
      this.pump();
    };
    worker.on("error", died);
    worker.on("exit", (code) => died(new Error(`exited with code ${code}`)));
    return slot;
  }

  private retire(slot: Slot): void {
    const i = this.slots.indexOf(slot);
    if (i < 0 || slot.job !== undefined) return;
    this.slots.splice(i, 1);
    void slot.worker.terminate().catch(() => undefined);
  }
}

function ownsBuffer(v: Float32Array): boolean {
  return v.buffer instanceof ArrayBuffer && v.byteOffset === 0 && v.byteLength === v.buffer.byteLength;
}

function stoppedError(): VbError {
  return new VbError(ErrorCode.ServiceUnavailable, "the datanode is stopping: the build is given out again", { retriable: true });
}
