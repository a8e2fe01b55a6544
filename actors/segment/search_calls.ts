/**
 * The search work of a querynode as plain functions of plain data, so that the same code runs on a
 * search thread (search_worker.ts, through search_threads.ts) and, for small work, on the actor's own
 * thread: exact search over a segment's rows, loading and searching a segment's vector index, row
 * norms. Segment vectors arrive as views over SharedArrayBuffers, so a thread reads them in place; a
 * loaded index lives in the thread that loaded it, under a handle number its owner chose.
 */
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import { loadIndex, type LoadedIndex, type SearchKnobs } from "../index/index.ts";
import { passingRows } from "../search/bitset.ts";
import { type FlatHits, searchFlat } from "../search/flat.ts";
import { type Metric, rowNorms } from "../search/metric.ts";
import type { Handlers } from "../../runtime/worker_pool.ts";

/** Exact search of one segment's rows (the kernel `searchFlat`, as the read kernel calls it). */
export interface ExactCall {
  /** rows × dim */
  vectors: Float32Array;
  dim: number;
  /** nq × dim */
  queries: Float32Array;
  k: number;
  metric: Metric;
  /** 1 = the row is visible and passes the filter; absent: every row */
  filter?: Uint8Array;
  /** how many rows `filter` passes */
  passing?: number;
  radius?: number;
  rangeFilter?: number;
  /** COSINE: the rows' norms */
  norms?: Float64Array;
}

/** A search of one segment through its loaded index. */
export interface IndexCall {
  handle: number;
  queries: Float32Array;
  nq: number;
  k: number;
  /** ef (HNSW types), nprobe (IVF_FLAT) */
  params?: SearchKnobs;
  /** visibility and filter, ANDed: 1 = the row may be a hit; absent: every row */
  filter?: Uint8Array;
  vectors: Float32Array;
  norms?: Float64Array;
}

/** What a loaded index is, as its loader reports it. */
export interface LoadedIndexInfo {
  indexType: string;
  metric: Metric;
  dim: number;
  rows: number;
  memoryBytes: number;
}

export function exactCall(c: ExactCall): FlatHits[] {
  const n = c.vectors.length / c.dim;
  const passing = c.filter === undefined ? n : (c.passing ?? n);
  // a list of the passing rows beats a byte scan when few pass
  const selective = c.filter !== undefined && passing * 16 < n;
  return searchFlat({
    vectors: c.vectors,
    dim: c.dim,
    queries: c.queries,
    k: c.k,
    metric: c.metric,
    ...(c.filter === undefined ? {} : selective ? { rowIds: passingRows(c.filter) } : { filter: c.filter }),
    ...(c.radius === undefined ? {} : { radius: c.radius }),
    ...(c.rangeFilter === undefined ? {} : { rangeFilter: c.rangeFilter }),
    ...(c.norms === undefined ? {} : { norms: c.norms }),
  });
}

/** The rows' norms in shared memory (every thread reads the same array). */
export function sharedNorms(vectors: Float32Array, dim: number): Float64Array {
  const norms = rowNorms(vectors, dim);
  const out = new Float64Array(new SharedArrayBuffer(norms.byteLength));
  out.set(norms);
  return out;
}

/** The indexes loaded in one thread, by handle. */
export class SearchCalls {
  private readonly indexes = new Map<number, LoadedIndex>();

  loadIndex(a: { handle: number; bytes: Uint8Array }): LoadedIndexInfo {
    const idx = loadIndex(a.bytes);
    this.indexes.get(a.handle)?.close();
    this.indexes.set(a.handle, idx);
    return { indexType: idx.indexType, metric: idx.metric, dim: idx.dim, rows: idx.rows, memoryBytes: idx.memoryBytes };
  }

  releaseIndex(a: { handle: number }): null {
    this.indexes.get(a.handle)?.close();
    this.indexes.delete(a.handle);
    return null;
  }

  searchIndex(c: IndexCall): FlatHits[] {
    const idx = this.indexes.get(c.handle);
    if (!idx) throw new VbError(ErrorCode.IndexNotFound, `index handle ${c.handle} is not loaded in this search thread`);
    return idx.search({
      queries: c.queries,
      nq: c.nq,
      k: c.k,
      vectors: c.vectors,
      ...(c.params === undefined ? {} : { params: c.params }),
      ...(c.filter === undefined ? {} : { filter: c.filter }),
      ...(c.norms === undefined ? {} : { norms: c.norms }),
    });
  }

  exact(c: ExactCall): FlatHits[] {
    return exactCall(c);
  }

  norms(a: { vectors: Float32Array; dim: number }): Float64Array {
    return sharedNorms(a.vectors, a.dim);
  }

  /** The calls a search thread answers. */
  handlers(): Handlers {
    return {
      loadIndex: (a: { handle: number; bytes: Uint8Array }) => this.loadIndex(a),
      releaseIndex: (a: { handle: number }) => this.releaseIndex(a),
      searchIndex: (c: IndexCall) => this.searchIndex(c),
      exact: (c: ExactCall) => this.exact(c),
      norms: (a: { vectors: Float32Array; dim: number }) => this.norms(a),
    };
  }

  /** Closes every index (the thread is going away). */
  closeAll(): void {
    for (const idx of this.indexes.values()) idx.close();
    this.indexes.clear();
  }
}
