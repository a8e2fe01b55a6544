/**
 * SearchSegments over a querynode's sealed segments. For each segment, the rows visible at the read
 * position (a row inserted at p ≤ r whose pk has no delete at d with p < d ≤ r) AND passing the filter
 * expression become one byte-a-row filter (read_kernel's `readableMask`); then the segment is searched:
 *
 * - through its vector index when one is loaded on `spec.annsFieldId` with metric `spec.metric` and
 *   the search is not a range search. The filter goes to the index layer with the search: it runs
 *   exact search over the passing rows when few pass, and asks the graph for more candidates and drops
 *   the rejected ones when many do (actors/index/filter_policy.ts), so deleted, not-yet-visible and
 *   filtered-out rows are never hits, at any selectivity. `searchParams.ef` / `nprobe` pass on. Every
 *   hit is scored on the raw vectors, so scores and tie order are those of the exact kernel.
 * - exactly otherwise: no index for that field and metric, or a range search (`spec.radius`): the index
 *   layer has no range search, and an exact range search is what Milvus's FLAT answers too.
 *
 * Masks are built here, with a turn of the event loop after every million rows; the scans themselves
 * run on the search threads (search_threads.ts), all segments at once, and the hits merge here.
 */
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import type { SearchSpec } from "../../protocol/messages/querynode.ts";
import type { SearchKnobs } from "../index/index.ts";
import { countPassing } from "../search/bitset.ts";
import { passesAll, type FilterPlan } from "../expr/index.ts";
import type { FlatHits } from "../search/flat.ts";
import { mergeTopK, type TopKList } from "../search/reduce.ts";
import {
  emptyPks,
  everyRowVisible,
  type LocalHits,
  pksAt,
  type ReadContext,
  readableMask,
  type RowSource,
  vectorField,
  yieldToLoop,
} from "./read_kernel.ts";
import type { SealedSegment } from "./sealed_segment.ts";
import type { SearchThreads } from "./search_threads.ts";

const NO_MASK = new Uint8Array(0);

/** Rows masked between two turns of the event loop. */
const YIELD_EVERY_ROWS = 1_000_000;

/** The index knobs of a request's search params (ef, nprobe), as given. */
export function knobsOf(searchParams: Record<string, unknown> | undefined): SearchKnobs | undefined {
  if (!searchParams) return undefined;
  const out: SearchKnobs = {};
  if (searchParams.ef !== undefined) out.ef = searchParams.ef as number | string;
  if (searchParams.nprobe !== undefined) out.nprobe = searchParams.nprobe as number | string;
  return out.ef === undefined && out.nprobe === undefined ? undefined : out;
}

/** How one segment was searched (for tests and logs). */
export type SegmentPath = "index" | "exact";

interface SegmentHits {
  seg: SealedSegment;
  hits: FlatHits[];
  path: SegmentPath;
}

/**
 * Top-k of every query of `spec` over `segs` at read position `r`. `paths`, when given, gets how each
 * segment was searched.
 */
export async function searchSealed(
  ctx: ReadContext,
  segs: readonly SealedSegment[],
  spec: SearchSpec,
  r: bigint,
  threads: SearchThreads,
  paths?: Map<bigint, SegmentPath>,
): Promise<LocalHits[]> {
  const { field, index: col } = vectorField(ctx, spec.annsFieldId);
  const dim = field.dim ?? 0;
  const partitions = spec.partitionIds.length > 0 ? new Set(spec.partitionIds) : undefined;
  const knobs = knobsOf(spec.searchParams);
  const jobs: Promise<SegmentHits>[] = [];
  let rows = 0;
  for (const seg of segs) {
    if (seg.numRows === 0 || (partitions && !partitions.has(seg.partitionId))) continue;
    // no delete stamped, read past its end, no filter: every row passes, no mask to build or count
    const all = everyRowVisible(seg, r) && (spec.filter == null || passesAll(spec.filter as FilterPlan));
    const mask = all ? NO_MASK : readableMask(ctx, seg, r, spec.filter);
    const passing = all ? seg.numRows : countPassing(mask);
    if (passing > 0) {
      const job = searchSegment(seg, mask, passing, spec, col, dim, knobs, threads);
      job.catch(() => undefined); // observed by Promise.all below; not unhandled while masks are built
      jobs.push(job);
    }
    rows += seg.numRows;
    if (rows > YIELD_EVERY_ROWS) {
      rows = 0;
      await yieldToLoop();
    }
  }
  const done = await Promise.all(jobs);
  if (paths) for (const d of done) paths.set(d.seg.segmentId, d.path);
  return mergeHits(ctx, done, spec);
}

async function searchSegment(
  seg: SealedSegment,
  mask: Uint8Array,
  passing: number,
  spec: SearchSpec,
  col: number,
  dim: number,
  knobs: SearchKnobs | undefined,
  threads: SearchThreads,
): Promise<SegmentHits> {
  const vectors = seg.columns[col]!.data as Float32Array;
  const filter = passing === seg.numRows ? undefined : mask;
  const norms = spec.metric === "COSINE" ? await normsOf(seg, spec.annsFieldId, vectors, dim, threads) : undefined;
  const idx = spec.radius === undefined ? seg.indexFor(spec.annsFieldId, spec.metric) : undefined;
  if (idx) {
    try {
      const hits = await threads.searchIndex(idx.handle, {
        queries: spec.queries,
        nq: spec.nq,
        k: spec.topk,
        vectors,
        ...(knobs === undefined ? {} : { params: knobs }),
        ...(filter === undefined ? {} : { filter }),
        ...(norms === undefined ? {} : { norms }),
      });
      return { seg, hits, path: "index" };
    } catch (err) {
      // the index went away meanwhile (released, or its search thread died): the exact kernel answers
      // the same hits with the same scores
      const e = VbError.from(err);
      if (e.code !== ErrorCode.IndexNotFound && e.code !== ErrorCode.ServiceUnavailable) throw err;
    }
  }
  const hits = await threads.exact(
    {
      vectors,
      dim,
      queries: spec.queries,
      k: spec.topk,
      metric: spec.metric,
      ...(filter === undefined ? {} : { filter, passing }),
      ...(spec.radius === undefined ? {} : { radius: spec.radius }),
      ...(spec.rangeFilter === undefined ? {} : { rangeFilter: spec.rangeFilter }),
      ...(norms === undefined ? {} : { norms }),
    },
    passing * spec.nq * dim,
  );
  return { seg, hits, path: "exact" };
}

/**
 * A segment's COSINE norms of one field: those its actor stored, else computed for this read alone (on a
 * search thread). Only the segment's actor stores them (in its mailbox).
 */
function normsOf(seg: SealedSegment, fieldId: number, vectors: Float32Array, dim: number, threads: SearchThreads): Promise<Float64Array> {
  const have = seg.norms.get(fieldId);
  return have ? Promise.resolve(have) : threads.norms(vectors, dim);
}

function mergeHits(ctx: ReadContext, done: readonly SegmentHits[], spec: SearchSpec): LocalHits[] {
  return Array.from({ length: spec.nq }, (_, q) => {
    const lists: TopKList[] = [];
    const srcs: RowSource[] = [];
    const rowLists: Int32Array[] = [];
    for (const d of done) {
      const h = d.hits[q];
      if (!h || h.rows.length === 0) continue;
      lists.push({ ids: pksAt(d.seg.pks, h.rows), scores: h.scores });
      srcs.push(d.seg);
      rowLists.push(h.rows);
    }
    if (lists.length === 0) return { ids: emptyPks(ctx), scores: new Float32Array(0), sources: [], rows: new Int32Array(0) };
    const merged = mergeTopK(lists, spec.topk, 0, spec.metric);
    const sources: RowSource[] = [];
    const rows = new Int32Array(merged.ids.length);
    for (let i = 0; i < merged.ids.length; i++) {
      const li = merged.sources[i]!;
      sources.push(srcs[li]!);
      rows[i] = rowLists[li]![merged.positions[i]!]!;
    }
    return { ids: merged.ids, scores: merged.scores, sources, rows };
  });
}
