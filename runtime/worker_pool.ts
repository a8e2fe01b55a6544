/**
 * Worker threads for CPU work that must not hold an actor's event loop (its mailbox, its timers, its
 * heartbeats). Each worker runs one TypeScript module, booted by `ts_worker.mjs`; the module answers
 * calls with `serveCalls(handlers)`. A call is a request/reply by id to a chosen worker (work that
 * needs state the worker holds) or to the least busy one.
 *
 * - A handler's thrown VbError comes back with its code, message and retriable flag; anything else as
 *   65535.
 * - Values cross by structured clone: typed arrays over a SharedArrayBuffer are shared, not copied;
 *   `new Transfer(value, buffers)` moves buffers instead of copying them.
 * - A worker that dies is replaced (after a backoff when it keeps dying); its calls in flight fail with
 *   a retriable 5 and `onLost(worker)` is told, so an owner can forget the state it had there. Each
 *   replacement bumps the worker's `generation`.
 */
import { parentPort, Worker } from "node:worker_threads";
import { ErrorCode, VbError, type WireError } from "../protocol/errors.ts";
import type { Logger } from "./logger.ts";

/** A handler's value with buffers to move to the other side instead of copying them. */
export class Transfer<T> {
  constructor(
    readonly value: T,
    readonly buffers: ArrayBuffer[],
  ) {}
}

type CallMsg = { id: number; op: string; args: unknown };
type ReplyMsg = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: WireError };

export type Handlers = Record<string, (args: never) => unknown>;

/** In a worker: answers the pool's calls with `handlers[op](args)`, one call at a time. */
export function serveCalls(handlers: Handlers): void {
  const port = parentPort;
  if (!port) throw new Error("serveCalls runs in a worker thread");
  port.on("message", (m: CallMsg) => {
    let reply: ReplyMsg;
    let buffers: ArrayBuffer[] = [];
    try {
      const h = handlers[m.op];
      if (!h) throw new VbError(ErrorCode.Unimplemented, `worker: no handler for "${m.op}"`);
      let value = h(m.args as never);
      if (value instanceof Transfer) {
        buffers = value.buffers;
        value = value.value;
      }
      reply = { id: m.id, ok: true, value };
    } catch (err) {
      reply = { id: m.id, ok: false, error: VbError.from(err).toWire() };
    }
    port.postMessage(reply, buffers);
  });
}

export interface WorkerPoolOptions {
  /** file URL of the module each worker runs (it calls `serveCalls`) */
  module: string | URL;
  size: number;
  /** for logs and errors */
  name: string;
  log?: Logger;
  /** a worker died and was replaced: the state it held is gone */
  onLost?: (worker: number) => void;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

interface Slot {
  /** undefined: not started yet, or restarting */
  worker: Worker | undefined;
  started: boolean;
  generation: number;
  pending: Map<number, Pending>;
  /** consecutive deaths, for the respawn backoff */
  deaths: number;
  respawn?: NodeJS.Timeout;
}

const BOOT = new URL("./ts_worker.mjs", import.meta.url);

export class WorkerPool {
  private readonly slots: Slot[] = [];
  private nextId = 1;
  private closed = false;

  constructor(private readonly opts: WorkerPoolOptions) {
    if (!Number.isInteger(opts.size) || opts.size < 1) throw VbError.invalid(`${opts.name}: size must be a positive integer, got ${opts.size}`);
    for (let i = 0; i < opts.size; i++) {
      this.slots.push({ worker: undefined, started: false, generation: 0, pending: new Map(), deaths: 0 });
    }
  }

  get size(): number {
    return this.slots.length;
  }

  /** Bumped each time worker `i` is replaced: state loaded on an older generation is gone. */
  generation(i: number): number {
    return this.slots[i]!.generation;
  }

  /** Calls in flight on worker `i`. */
  busy(i: number): number {
    return this.slots[i]!.pending.size;
  }

  /** The worker (running or not started yet) with the fewest calls in flight, the lowest on a tie. */
  leastBusy(): number {
    let best = -1;
    for (let i = 0; i < this.slots.length; i++) {
      const s = this.slots[i]!;
      if (!s.worker && s.started) continue; // restarting
      if (best < 0 || s.pending.size < this.slots[best]!.pending.size) best = i;
    }
    return best < 0 ? 0 : best;
  }

  /** Runs `op(args)` on worker `i`; `transfer` moves these buffers to it instead of copying them. */
  call<R>(i: number, op: string, args: unknown, transfer: ArrayBuffer[] = []): Promise<R> {
    const slot = this.slots[i];
    if (!slot) return Promise.reject(VbError.invalid(`${this.opts.name}: no worker ${i}`));
    if (this.closed) return Promise.reject(new VbError(ErrorCode.ServiceUnavailable, `${this.opts.name}: closed`, { retriable: true }));
    if (!slot.started) this.spawn(i);
    const w = slot.worker;
    if (!w) {
      return Promise.reject(new VbError(ErrorCode.ServiceUnavailable, `${this.opts.name}: worker ${i} is restarting`, { retriable: true }));
    }
    const id = this.nextId++;
    return new Promise<R>((resolve, reject) => {
      slot.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      if (slot.pending.size === 1) w.ref(); // a call in flight keeps the process alive, an idle pool does not
      try {
        w.postMessage({ id, op, args } satisfies CallMsg, transfer);
      } catch (err) {
        slot.pending.delete(id);
        if (slot.pending.size === 0) w.unref();
        reject(VbError.invalid(`${this.opts.name}: ${op} arguments cannot be sent to a worker: ${(err as Error).message}`, err));
      }
    });
  }

  /** Stops every worker; calls in flight fail with a retriable 5. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(
      this.slots.map(async (s) => {
        clearTimeout(s.respawn);
        const w = s.worker;
        s.worker = undefined;
        this.failPending(s, `${this.opts.name}: closed`);
        if (w) await w.terminate();
      }),
    );
  }

  private spawn(i: number): void {
    const slot = this.slots[i]!;
    slot.started = true;
    const w = new Worker(BOOT, { workerData: { module: String(this.opts.module) }, name: `${this.opts.name}-${i}` });
    slot.worker = w;
    w.unref();
    w.on("message", (m: ReplyMsg) => {
      const p = slot.pending.get(m.id);
      if (!p) return;
      slot.pending.delete(m.id);
      if (slot.pending.size === 0) w.unref();
      slot.deaths = 0;
      if (m.ok) p.resolve(m.value);
      else p.reject(VbError.fromWire(m.error));
    });
    let gone = false;
    const died = (why: string) => {
      if (gone) return;
      gone = true;
      if (slot.worker === w) slot.worker = undefined;
      this.failPending(slot, `${this.opts.name}: worker ${i} died (${why})`);
      if (this.closed) return;
      slot.deaths++;
      slot.generation++;
      this.opts.log?.error({ worker: i, why }, `${this.opts.name}: a worker thread died; starting another`);
      const delay = Math.min(5_000, slot.deaths <= 1 ? 0 : 100 * 2 ** (slot.deaths - 2));
      slot.respawn = setTimeout(() => {
        if (!this.closed) this.spawn(i);
      }, delay);
      slot.respawn.unref();
      this.opts.onLost?.(i);
    };
    w.on("error", (err) => died(err.message));
    w.on("exit", (code) => died(`exit code ${code}`));
  }

  private failPending(slot: Slot, why: string): void {
    const pending = [...slot.pending.values()];
    slot.pending.clear();
    for (const p of pending) p.reject(new VbError(ErrorCode.ServiceUnavailable, why, { retriable: true }));
  }
}
