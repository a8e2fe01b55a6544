/**
 * Where a querynode's search compute runs: a pool of search threads (search_worker.ts), so that a long
 * exact scan or index search never holds the actor's event loop, where its mailbox and its heartbeats
 * run (DESIGN §8: usearch and the exact kernels block the thread they run on).
 *
 * - Exact search of a segment goes to the least busy thread, unless it is small (`INLINE_MAX_COST`
 *   multiply-adds: less than the round trip is worth), which runs inline.
 * - An index is loaded in one thread (the one holding the fewest index bytes) and searched there; a
 *   batch of queries runs on usearch's own threads from there.
 * - Segment vectors and norms live in SharedArrayBuffers: threads read them in place, nothing is copied
 *   per search but the queries and the row filter.
 * - A thread that dies takes its indexes with it: `onLost(worker)` tells the querynode, which drops them
 *   (querycoord loads them again); searches on a lost handle fail with 700 and callers fall back to
 *   exact search.
 *
 * `threads: 0` runs everything inline (on the caller's thread).
 */
import { availableParallelism } from "node:os";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import type { Logger } from "../../runtime/logger.ts";
import { WorkerPool } from "../../runtime/worker_pool.ts";
import type { FlatHits } from "../search/flat.ts";
import { type ExactCall, exactCall, type IndexCall, type LoadedIndexInfo, SearchCalls, sharedNorms } from "./search_calls.ts";

/** Exact searches of at most this many multiply-adds (rows × queries × dim) run inline: ≈ 2 ms. */
export const INLINE_MAX_COST = 1 << 20;

/** `VB_QN_SEARCH_THREADS` when set (0: inline), else one a core, at most 8. */
export function defaultSearchThreads(): number {
  const env = process.env.VB_QN_SEARCH_THREADS;
  if (env !== undefined && env !== "") {
    const n = Number(env);
    if (Number.isInteger(n) && n >= 0) return Math.min(64, n);
  }
  return Math.min(8, Math.max(1, availableParallelism()));
}

/** A loaded index: which thread holds it, under which handle. */
export interface IndexHandle {
  readonly id: number;
  /** -1: inline */
  readonly worker: number;
  readonly generation: number;
  readonly info: LoadedIndexInfo;
}

const WORKER_MODULE = new URL("./search_worker.ts", import.meta.url);

function isShared(a: ArrayBufferView): boolean {
  return a.buffer instanceof SharedArrayBuffer;
}

export class SearchThreads {
  private readonly pool: WorkerPool | undefined;
  private readonly inline = new SearchCalls();
  private nextHandle = 1;
  /** handles this pool made: a handle that arrives in a message is taken only when it is one of these */
  private readonly issued = new WeakSet<IndexHandle>();
  /** index bytes each thread holds, for placing the next one */
  private readonly indexBytes: number[];

  constructor(opts: { threads: number; log?: Logger; onLost?: (worker: number) => void }) {
    this.pool =
      opts.threads > 0
        ? new WorkerPool({
            module: WORKER_MODULE,
            size: opts.threads,
            name: "search-threads",
            ...(opts.log ? { log: opts.log } : {}),
            onLost: (w) => {
              this.indexBytes[w] = 0;
              opts.onLost?.(w);
            },
          })
        : undefined;
    this.indexBytes = new Array<number>(opts.threads).fill(0);
  }

  get threads(): number {
    return this.pool?.size ?? 0;
  }

  /** Loads an index artifact in a search thread. `bytes` may be moved there (do not use it after). */
  async loadIndex(bytes: Uint8Array): Promise<IndexHandle> {
    const id = this.nextHandle++;
    const pool = this.pool;
    if (!pool) return this.issue({ id, worker: -1, generation: 0, info: this.inline.loadIndex({ handle: id, bytes }) });
    let w = 0;
    for (let i = 1; i < pool.size; i++) if (this.indexBytes[i]! < this.indexBytes[w]!) w = i;
    const generation = pool.generation(w);
    // counted at the artifact's size while it loads, so that loads started together spread out
    const guess = bytes.byteLength;
    this.indexBytes[w] = this.indexBytes[w]! + guess;
    const own = bytes.buffer instanceof ArrayBuffer && bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
    let info: LoadedIndexInfo;
    try {
      info = await pool.call<LoadedIndexInfo>(w, "loadIndex", { handle: id, bytes }, own ? [bytes.buffer as ArrayBuffer] : []);
    } finally {
      if (pool.generation(w) === generation) this.indexBytes[w] = Math.max(0, this.indexBytes[w]! - guess);
    }
    if (pool.generation(w) !== generation) {
      throw new VbError(ErrorCode.ServiceUnavailable, "the search thread that loaded the index died", { retriable: true });
    }
    this.indexBytes[w] = this.indexBytes[w]! + info.memoryBytes;
    return this.issue({ id, worker: w, generation, info });
  }

  private issue(h: IndexHandle): IndexHandle {
    this.issued.add(h);
    return h;
  }

  /** Whether `h` is a handle this pool made (not one decoded from a message). */
  owns(h: unknown): h is IndexHandle {
    return typeof h === "object" && h !== null && this.issued.has(h as IndexHandle);
  }

  /** Frees a loaded index (in the background: nothing waits on it). */
  release(h: IndexHandle): void {
    if (h.worker < 0) {
      this.inline.releaseIndex({ handle: h.id });
      return;
    }
    if (this.isLost(h)) return;
    this.indexBytes[h.worker] = Math.max(0, this.indexBytes[h.worker]! - h.info.memoryBytes);
    this.pool!.call(h.worker, "releaseIndex", { handle: h.id }).catch(() => undefined);
  }

  /** Whether the thread that held the index died since it was loaded. */
  isLost(h: IndexHandle): boolean {
    return h.worker >= 0 && this.pool !== undefined && this.pool.generation(h.worker) !== h.generation;
  }

  /** Searches a segment through its index; 700 when the index is gone (its thread died, or released). */
  searchIndex(h: IndexHandle, c: Omit<IndexCall, "handle">): Promise<FlatHits[]> {
    if (h.worker < 0) return run(() => this.inline.searchIndex({ ...c, handle: h.id }));
    if (this.isLost(h)) return Promise.reject(new VbError(ErrorCode.IndexNotFound, "the search thread that held the index died"));
    return this.pool!.call<FlatHits[]>(h.worker, "searchIndex", { ...c, handle: h.id });
  }

  /** Exact search of a segment; `cost` = rows × queries × dim decides whether it runs inline. */
  exact(c: ExactCall, cost: number): Promise<FlatHits[]> {
    const pool = this.pool;
    if (!pool || cost <= INLINE_MAX_COST || !isShared(c.vectors)) return run(() => exactCall(c));
    return pool.call<FlatHits[]>(pool.leastBusy(), "exact", c);
  }

  /** The rows' norms, in shared memory, computed on a search thread. */
  norms(vectors: Float32Array, dim: number): Promise<Float64Array> {
    const pool = this.pool;
    if (!pool || !isShared(vectors)) return run(() => sharedNorms(vectors, dim));
    return pool.call<Float64Array>(pool.leastBusy(), "norms", { vectors, dim });
  }

  async close(): Promise<void> {
    this.inline.closeAll();
    await this.pool?.close();
  }
}

function run<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(err);
  }
}
