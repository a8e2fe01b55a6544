/**
 * What a loaded index offers a segment: top-k search over the segment's rows, with an optional row
 * filter, answering in Milvus's score convention (L2: squared distance, ascending; IP and COSINE:
 * similarity, descending), with the same numbers and tie order `searchFlat` gives: every hit is
 * scored on the raw vectors the caller passes.
 */
import { VbError } from "../../protocol/errors.ts";
import type { FlatHits } from "../search/flat.ts";
import type { Metric } from "../search/metric.ts";
import type { FilterPolicy } from "./filter_policy.ts";
import type { IndexSpec, IndexType, SearchKnobs } from "./index_params.ts";

export interface IndexSearchParams {
  /** nq × dim */
  queries: Float32Array;
  nq: number;
  /** hits a query, at most */
  k: number;
  /** `ef` for the HNSW types, `nprobe` for IVF_FLAT; defaults in index_params.ts */
  params?: SearchKnobs;
  /** one byte a row, 1 = the row passes (deletes and the filter expression, ANDed by the caller) */
  filter?: Uint8Array;
  /** the segment's raw vectors (rows × dim): exact scores, refinement and the exact path use them */
  vectors: Float32Array;
  /** COSINE: the rows' norms (`rowNorms(vectors, dim)`), if the caller keeps them */
  norms?: Float64Array;
}

/** Which way the queries of a loaded index went, counted since it was loaded. */
export interface SearchStats {
  queries: number;
  /** answered by exact search over the passing rows (few passed, or the index came up short) */
  exactQueries: number;
  /** answered by the index (graph or list scan) */
  indexQueries: number;
  /** filtered graph searches asked again with a larger fetch */
  refetches: number;
}

export function newSearchStats(): SearchStats {
  return { queries: 0, exactQueries: 0, indexQueries: 0, refetches: 0 };
}

export interface LoadedIndex {
  readonly indexType: IndexType;
  readonly metric: Metric;
  readonly dim: number;
  /** rows the index was built over (row offsets 0..rows-1) */
  readonly rows: number;
  readonly spec: IndexSpec;
  /** bytes the loaded index holds in memory, besides the segment's raw vectors */
  readonly memoryBytes: number;
  readonly stats: SearchStats;
  /** the best k rows for each query, best first; 1100 naming the field on bad input */
  search(p: IndexSearchParams): FlatHits[];
  /** frees the index (usearch's memory goes with the last reference); searching after it throws 700 */
  close(): void;
}

export interface LoadOptions {
  /** overrides of the filtered-search thresholds (tests and benchmarks use them to pin a path) */
  filterPolicy?: Partial<FilterPolicy>;
}

/** Checks a search request against an index of `dim` over `rows` rows; returns nq. */
export function checkSearch(p: IndexSearchParams, dim: number, rows: number): number {
  const { queries, nq, vectors, filter } = p;
  if (!(queries instanceof Float32Array)) throw VbError.invalid("queries: must be a Float32Array");
  if (!Number.isInteger(nq) || nq < 0 || queries.length !== nq * dim) {
    throw VbError.invalid(`queries: ${queries.length} floats is not nq (${nq}) × dim (${dim})`);
  }
  if (!(vectors instanceof Float32Array) || vectors.length !== rows * dim) {
    throw VbError.invalid(`vectors: the index covers ${rows} rows of dim ${dim}, got ${vectors?.length} floats`);
  }
  if (filter !== undefined && (!(filter instanceof Uint8Array) || filter.length !== rows)) {
    throw VbError.invalid(`filter: must be a Uint8Array of ${rows} rows, got ${filter?.length}`);
  }
  if (!Number.isInteger(p.k) || p.k < 1) throw VbError.invalid(`k: must be a positive integer, got ${p.k}`);
  return nq;
}
