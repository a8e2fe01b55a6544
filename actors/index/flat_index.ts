/**
 * FLAT: no structure at all, exact search over the raw vectors (Milvus's FLAT). Its artifact is the
 * header alone; a search is `searchFlat`, over only the passing rows when the filter is selective.
 */
import type { FlatHits } from "../search/flat.ts";
import type { Metric } from "../search/metric.ts";
import { type ArtifactHeader, encodeArtifact } from "./artifact.ts";
import { exactSearch } from "./exact.ts";
import type { IndexSpec } from "./index_params.ts";
import { countPassing } from "../search/bitset.ts";
import { checkSearch, type IndexSearchParams, type LoadedIndex, newSearchStats } from "./loaded_index.ts";
import { ErrorCode, VbError } from "../../protocol/errors.ts";

export function buildFlat(spec: IndexSpec, dim: number, rows: number): Uint8Array {
  return encodeArtifact({ indexType: spec.indexType, metric: spec.metric, dim, rows, params: spec.params, extra: {} }, []);
}

export class LoadedFlatIndex implements LoadedIndex {
  readonly indexType = "FLAT" as const;
  readonly metric: Metric;
  readonly dim: number;
  readonly rows: number;
  readonly spec: IndexSpec;
  readonly memoryBytes = 0;
  readonly stats = newSearchStats();
  private closed = false;

  constructor(header: ArtifactHeader) {
    this.metric = header.metric;
    this.dim = header.dim;
    this.rows = header.rows;
    this.spec = { indexType: "FLAT", metric: header.metric, params: {} };
  }

  search(p: IndexSearchParams): FlatHits[] {
    if (this.closed) throw new VbError(ErrorCode.IndexNotFound, "index: closed; load it again");
    const nq = checkSearch(p, this.dim, this.rows);
    this.stats.queries += nq;
    this.stats.exactQueries += nq;
    const passing = p.filter === undefined ? this.rows : countPassing(p.filter);
    return exactSearch({
      vectors: p.vectors,
      dim: this.dim,
      queries: p.queries,
      k: p.k,
      metric: this.metric,
      ...(p.filter === undefined || passing === this.rows ? {} : { filter: p.filter, passing }),
      ...(p.norms === undefined ? {} : { norms: p.norms }),
    });
  }

  close(): void {
    this.closed = true;
  }
}
