/**
 * IVF_FLAT: `nlist` k-means centroids (at most one a row) and, for each, the list of rows nearest to
 * it; a search scores the `nprobe` lists whose centroids are nearest the query, exactly, on the raw
 * vectors. The artifact holds the centroids, the list offsets and the row ids grouped by list
 * (increasing within a list), serialized here.
 *
 * Centroids are trained with L2 k-means (spherical for COSINE). Rows are assigned, and lists probed,
 * by the search metric: L2 nearest, IP largest inner product (faiss's IVF does the same), COSINE most
 * similar to the unit centroids.
 *
 * Filters: when very few rows pass, exact search over them (`filter_policy.ts`); otherwise the filter is
 * applied while the lists are scanned, and more lists are probed, in centroid order, until at least
 * `k × listScanPassingPerHit` passing rows were seen (or every list was).
 */
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import { type FlatHits, searchFlat } from "../search/flat.ts";
import { type Metric, rowNorms } from "../search/metric.ts";
import { type Artifact, bytesOf, encodeArtifact, viewAs } from "./artifact.ts";
import { exactSearch, normsOf } from "./exact.ts";
import { type FilterPolicy, planListScan } from "./filter_policy.ts";
import type { IndexSpec, IvfParams } from "./index_params.ts";
import { resolveSearchKnobs } from "./index_params.ts";
import { DEFAULT_KMEANS, nearestCentroids, normalizeRows, trainKMeans } from "./kmeans.ts";
import { countPassing } from "../search/bitset.ts";
import { checkSearch, type IndexSearchParams, type LoadedIndex, newSearchStats } from "./loaded_index.ts";

/** Rows assigned to lists per native call (a turn of the event loop between calls). */
const ASSIGN_CHUNK_FLOATS = 1 << 20;

export async function buildIvfFlat(spec: IndexSpec & { params: IvfParams }, vectors: Float32Array, dim: number): Promise<Uint8Array> {
  const rows = vectors.length / dim;
  const lists = Math.min(spec.params.nlist, rows);
  const kmeans = { ...DEFAULT_KMEANS, spherical: spec.metric === "COSINE" };
  const centroids = lists > 0 ? await trainKMeans(vectors, dim, lists, kmeans) : new Float32Array(0);

  // the list of every row, then the rows grouped by list (a counting sort keeps them increasing)
  const listOf = new Int32Array(rows);
  const chunk = Math.max(1, Math.floor(ASSIGN_CHUNK_FLOATS / dim));
  for (let start = 0; start < rows; start += chunk) {
    const end = Math.min(rows, start + chunk);
    let part = vectors.subarray(start * dim, end * dim);
    if (spec.metric === "COSINE") {
      part = Float32Array.from(part);
      normalizeRows(part, dim);
    }
    listOf.set(nearestCentroids(centroids, lists, part, dim, spec.metric === "IP" ? "ip" : "l2sq"), start);
    if (end < rows) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  const offsets = new Uint32Array(lists + 1);
  for (let r = 0; r < rows; r++) offsets[listOf[r]! + 1] = offsets[listOf[r]! + 1]! + 1;
  for (let l = 0; l < lists; l++) offsets[l + 1] += offsets[l]!;
  const ids = new Int32Array(rows);
  const fill = offsets.slice(0, lists);
  for (let r = 0; r < rows; r++) {
    const l = listOf[r]!;
    ids[fill[l]!] = r;
    fill[l] = fill[l]! + 1;
  }

  return encodeArtifact(
    {
      indexType: "IVF_FLAT",
      metric: spec.metric,
      dim,
      rows,
      params: spec.params,
      extra: { lists, kmeansSeed: kmeans.seed, kmeansIterations: kmeans.iterations, samplePerCentroid: kmeans.samplePerCentroid },
    },
    [
      { name: "centroids", bytes: bytesOf(centroids) },
      { name: "offsets", bytes: bytesOf(offsets) },
      { name: "ids", bytes: bytesOf(ids) },
    ],
  );
}

export class LoadedIvfFlatIndex implements LoadedIndex {
  readonly indexType = "IVF_FLAT" as const;
  readonly metric: Metric;
  readonly dim: number;
  readonly rows: number;
  readonly spec: IndexSpec;
  readonly memoryBytes: number;
  readonly stats = newSearchStats();
  /** lists built (nlist, or the rows when fewer) */
  readonly lists: number;
  private readonly centroids: Float32Array;
  private readonly centroidNorms: Float64Array;
  private readonly offsets: Uint32Array;
  private readonly ids: Int32Array;
  private closed = false;

  constructor(
    artifact: Artifact,
    private readonly policy: FilterPolicy,
  ) {
    const h = artifact.header;
    this.metric = h.metric;
    this.dim = h.dim;
    this.rows = h.rows;
    this.spec = { indexType: "IVF_FLAT", metric: h.metric, params: h.params as IvfParams };
    this.lists = Number(h.extra["lists"]);
    // copies: the index must not pin the (possibly large) buffer the artifact arrived in
    this.centroids = Float32Array.from(viewAs(artifact.section("centroids"), Float32Array));
    this.offsets = Uint32Array.from(viewAs(artifact.section("offsets"), Uint32Array));
    this.ids = Int32Array.from(viewAs(artifact.section("ids"), Int32Array));
    if (
      !Number.isInteger(this.lists) ||
      this.centroids.length !== this.lists * h.dim ||
      this.offsets.length !== this.lists + 1 ||
      this.ids.length !== h.rows ||
      this.offsets[this.lists] !== h.rows
    ) {
      throw VbError.invalid("bytes: IVF_FLAT sections do not match the header");
    }
    this.centroidNorms = rowNorms(this.centroids, h.dim);
    this.memoryBytes = this.centroids.byteLength + this.offsets.byteLength + this.ids.byteLength + this.centroidNorms.byteLength;
  }

  search(p: IndexSearchParams): FlatHits[] {
    if (this.closed) throw new VbError(ErrorCode.IndexNotFound, "index: closed; load it again");
    const { dim, rows, metric, lists, offsets, ids } = this;
    const nq = checkSearch(p, dim, rows);
    const { k, vectors, filter } = p;
    const nprobe = Math.min(resolveSearchKnobs(this.spec, k, p.params).nprobe, lists);
    const empty = () => Array.from({ length: nq }, () => ({ rows: new Int32Array(0), scores: new Float32Array(0) }));
    if (rows === 0 || nq === 0) return empty();
    const passing = filter === undefined ? rows : countPassing(filter);
    const plan = planListScan(this.policy, rows, passing, k);
    this.stats.queries += nq;
    if (plan.kind === "none") return empty();
    const norms = metric === "COSINE" ? normsOf(vectors, dim, p.norms) : undefined;
    if (plan.kind === "exact") {
      this.stats.exactQueries += nq;
      return exactSearch({ vectors, dim, queries: p.queries, k, metric, filter: filter!, passing, ...(norms ? { norms } : {}) });
    }
    this.stats.indexQueries += nq;
    const filtered = plan.kind === "index";
    const pass = filtered ? filter : undefined;
    const target = filtered ? Math.min(passing, k * this.policy.listScanPassingPerHit) : 0;
    // the lists in the order to probe them: just nprobe without a filter, all of them with one
    const coarse = searchFlat({
      vectors: this.centroids,
      dim,
      queries: p.queries,
      k: filtered ? lists : nprobe,
      metric,
      ...(metric === "COSINE" ? { norms: this.centroidNorms } : {}),
    });
    const out: FlatHits[] = [];
    for (let q = 0; q < nq; q++) {
      const order = coarse[q]!.rows;
      let size = 0;
      for (let i = 0; i < nprobe; i++) size += offsets[order[i]! + 1]! - offsets[order[i]!]!;
      let cands: Int32Array = new Int32Array(size);
      let m = 0;
      for (let i = 0; i < order.length; i++) {
        if (i >= nprobe && (!filtered || m >= target)) break;
        const l = order[i]!;
        const from = offsets[l]!;
        const to = offsets[l + 1]!;
        if (m + (to - from) > cands.length) cands = grow(cands, m + (to - from));
        if (pass === undefined) {
          cands.set(ids.subarray(from, to), m);
          m += to - from;
        } else {
          for (let j = from; j < to; j++) {
            const r = ids[j]!;
            if (pass[r] !== 0) cands[m++] = r;
          }
        }
      }
      const rowIds = cands.subarray(0, m).sort();
      const [hits] = searchFlat({
        vectors,
        dim,
        queries: p.queries.subarray(q * dim, (q + 1) * dim),
        k,
        metric,
        rowIds,
        ...(norms ? { norms } : {}),
      });
      out.push(hits!);
    }
    return out;
  }

  close(): void {
    this.closed = true;
  }
}

function grow(a: Int32Array, atLeast: number): Int32Array {
  const b = new Int32Array(Math.max(atLeast, a.length * 2));
  b.set(a);
  return b;
}
