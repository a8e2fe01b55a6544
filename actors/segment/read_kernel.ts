/**
 * Reading rows as they were at a position: the search and query kernels shared by sealed segments (on
 * a querynode) and growing rows (at a delegator). A source is a set of rows held column by column,
 * each with the position that inserted it and `deletedAt`, the position of the first delete of its pk
 * after it (0n: none). A row is visible to a read at r when position ≤ r and (deletedAt = 0 or deletedAt > r);
 * then the filter plan (actors/expr) and the exact kernels and merges (actors/search) do the rest. A
 * querynode searches its sealed segments with sealed_search.ts (indexes, search threads) on the masks
 * made here.
 *
 * Values of output fields travel per hit/row as plain values: Bool → boolean, Int8..Int32/Float/Double →
 * number, Int64 → bigint, VarChar/JSON → string (JSON text), Array → array, FloatVector → Float32Array,
 * null for a null.
 */
import type { PkColumn } from "../../protocol/dml.ts";
import { VbError } from "../../protocol/errors.ts";
import type { QueryResult, QuerySpec, SearchResult, SearchSpec } from "../../protocol/messages/querynode.ts";
import type { CollectionSchema, Column, FieldSchema } from "../../protocol/schema.ts";
import { evaluateFilter, passesAll, type FilterPlan } from "../expr/index.ts";
import { countPassing, passingRows } from "../search/bitset.ts";
import { searchFlat } from "../search/flat.ts";
import { rowNorms } from "../search/metric.ts";
import { mergeQueryRows, mergeTopK, reduceQueryResults, reduceSearchResults, type TopKList } from "../search/reduce.ts";
import { int64At, int64Words } from "../storage/columns.ts";

export interface RowSource {
  readonly numRows: number;
  readonly partitionId: bigint;
  /** every field of the schema, in schema order */
  readonly columns: Column[];
  readonly pks: PkColumn;
  /** each row's position, or one position for every row (a growing batch) */
  readonly positions: BigInt64Array | bigint;
  readonly deletedAt: BigInt64Array;
  /** rows with a delete stamp, when the source counts them (a sealed segment) */
  readonly deletedRows?: number;
  /** the position of the source's last row, when it has one (a sealed segment) */
  readonly endPosition?: bigint;
  /** COSINE norms of a vector field, cached by the owner of a long-lived source */
  norms?: Map<number, Float64Array>;
}

/** What a read needs of the schema, computed once per request. */
export interface ReadContext {
  schema: CollectionSchema;
  /** field id → index in the schema (and in a source's columns) */
  fieldIndex: Map<number, number>;
  int64Pk: boolean;
}

export function readContext(schema: CollectionSchema): ReadContext {
  const fieldIndex = new Map<number, number>();
  schema.fields.forEach((f, i) => fieldIndex.set(f.fieldId ?? -1, i));
  const pk = schema.fields.find((f) => f.isPrimaryKey);
  return { schema, fieldIndex, int64Pk: pk?.type !== "VarChar" };
}

export function emptyPks(ctx: ReadContext): PkColumn {
  return ctx.int64Pk ? new BigInt64Array(0) : [];
}

/** Lets the event loop run between chunks of a long read (the mailbox and the heartbeats go on). */
export function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Rows visible at `r` (1) and not (0). */
export function visibleMask(src: RowSource, r: bigint): Uint8Array {
  const n = src.numRows;
  const out = new Uint8Array(n);
  // positions are read as numbers from the two 32-bit halves of each value: no bigint made a row
  const R = r > SAFE ? Infinity : Number(r);
  const del = int64Words(src.deletedAt);
  const visibleAfterDelete = (i: number): number => {
    const d = int64At(del, i);
    return (d === d ? d > R : src.deletedAt[i]! > r) ? 1 : 0;
  };
  if (typeof src.positions === "bigint") {
    if (src.positions > r) return out;
    for (let i = 0; i < n; i++) out[i] = (del[2 * i]! | del[2 * i + 1]!) === 0 ? 1 : visibleAfterDelete(i);
    return out;
  }
  const big = src.positions;
  const pos = int64Words(big);
  for (let i = 0; i < n; i++) {
    const p = int64At(pos, i);
    if (p === p ? p > R : big[i]! > r) continue;
    out[i] = (del[2 * i]! | del[2 * i + 1]!) === 0 ? 1 : visibleAfterDelete(i);
  }
  return out;
}

const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Whether every row of `src` is visible at `r`: a sealed segment with no delete stamped, read past its end. */
export function everyRowVisible(src: RowSource, r: bigint): boolean {
  return src.deletedRows === 0 && src.endPosition !== undefined && src.endPosition <= r;
}

/** The rows of `src` visible at `r` that pass the filter: 1 a row. */
export function readableMask(ctx: ReadContext, src: RowSource, r: bigint, filter: unknown): Uint8Array {
  const n = src.numRows;
  const every = everyRowVisible(src, r);
  const noFilter = filter === undefined || filter === null || n === 0 || passesAll(filter as FilterPlan);
  if (noFilter) return every ? new Uint8Array(n).fill(1) : visibleMask(src, r);
  let mask: Uint8Array | undefined;
  if (!every) {
    mask = visibleMask(src, r);
    if (countPassing(mask) === 0) return mask;
  }
  let pass: Uint8Array;
  try {
    pass = evaluateFilter(filter as FilterPlan, src.columns, n);
  } catch (err) {
    if (err instanceof VbError) throw err;
    throw VbError.invalid(`filter: the plan cannot be evaluated: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  if (!mask) return pass; // a fresh array of 0s and 1s
  for (let i = 0; i < n; i++) mask[i] = mask[i]! & pass[i]!;
  return mask;
}

export function vectorField(ctx: ReadContext, fieldId: number): { field: FieldSchema; index: number } {
  const index = ctx.fieldIndex.get(fieldId);
  const field = index === undefined ? undefined : ctx.schema.fields[index];
  if (!field || field.type !== "FloatVector") {
    throw VbError.invalid(`annsFieldId: field ${fieldId} is not a FloatVector field of collection "${ctx.schema.name}"`);
  }
  return { field, index: index! };
}

/** Hits of one query over local sources: pks and scores best first, and where each hit lives. */
export interface LocalHits {
  ids: PkColumn;
  scores: Float32Array;
  sources: RowSource[];
  rows: Int32Array;
}

/** Multiply-adds of exact search between two turns of the event loop (≈ 10 ms of the JS kernel). */
const YIELD_EVERY_COST = 4_000_000;

/**
 * Exact top-k of every query of `spec` over the rows of `sources` visible at `r` (sources `skip` says
 * to leave out are not read), yielding to the event loop after every `YIELD_EVERY_COST` multiply-adds
 * (a source is scanned whole: the delegator's growing batches are at most one insert message each).
 * The querynode's sealed segments are searched by sealed_search.ts, on its search threads.
 */
export async function searchSources(
  ctx: ReadContext,
  sources: readonly RowSource[],
  spec: SearchSpec,
  r: bigint,
  skip?: (src: RowSource) => boolean,
): Promise<LocalHits[]> {
  const { field, index } = vectorField(ctx, spec.annsFieldId);
  const dim = field.dim ?? 0;
  const partitions = spec.partitionIds.length > 0 ? new Set(spec.partitionIds) : undefined;
  const perQuery: { lists: TopKList[]; srcs: RowSource[]; rows: Int32Array[] }[] = Array.from({ length: spec.nq }, () => ({
    lists: [],
    srcs: [],
    rows: [],
  }));
  let work = 0;
  for (const src of sources) {
    if (src.numRows === 0) continue;
    if (partitions && !partitions.has(src.partitionId)) continue;
    if (skip?.(src)) continue;
    const mask = readableMask(ctx, src, r, spec.filter);
    const passing = countPassing(mask);
    if (passing === 0) continue;
    const vectors = src.columns[index]!.data as Float32Array;
    let norms: Float64Array | undefined;
    if (spec.metric === "COSINE") {
      norms = src.norms?.get(spec.annsFieldId);
      if (!norms) {
        norms = rowNorms(vectors, dim);
        src.norms?.set(spec.annsFieldId, norms);
      }
    }
    const selective = passing * 16 < src.numRows;
    const hits = searchFlat({
      vectors,
      dim,
      queries: spec.queries,
      k: spec.topk,
      metric: spec.metric,
      ...(passing === src.numRows ? {} : selective ? { rowIds: passingRows(mask) } : { filter: mask }),
      ...(spec.radius === undefined ? {} : { radius: spec.radius }),
      ...(spec.rangeFilter === undefined ? {} : { rangeFilter: spec.rangeFilter }),
      ...(norms ? { norms } : {}),
    });
    hits.forEach((h, q) => {
      if (h.rows.length === 0) return;
      const slot = perQuery[q]!;
      slot.lists.push({ ids: pksAt(src.pks, h.rows), scores: h.scores });
      slot.srcs.push(src);
      slot.rows.push(h.rows);
    });
    work += passing * spec.nq * dim;
    if (work > YIELD_EVERY_COST) {
      work = 0;
      await yieldToLoop();
    }
  }
  return perQuery.map((slot) => {
    if (slot.lists.length === 0) return { ids: emptyPks(ctx), scores: new Float32Array(0), sources: [], rows: new Int32Array(0) };
    const merged = mergeTopK(slot.lists, spec.topk, 0, spec.metric);
    const srcs: RowSource[] = [];
    const rows = new Int32Array(merged.ids.length);
    for (let i = 0; i < merged.ids.length; i++) {
      const li = merged.sources[i]!;
      srcs.push(slot.srcs[li]!);
      rows[i] = slot.rows[li]![merged.positions[i]!]!;
    }
    return { ids: merged.ids, scores: merged.scores, sources: srcs, rows };
  });
}

export function pksAt(pks: PkColumn, rows: Int32Array): PkColumn {
  if (pks instanceof BigInt64Array) return BigInt64Array.from(rows, (r) => pks[r]!);
  return Array.from(rows, (r) => pks[r]!);
}

/** The value of one field at one row (see the top of this file for the types). */
export function valueAt(field: FieldSchema, col: Column, row: number): unknown {
  if (col.valid !== undefined && col.valid[row] === 0) return null;
  switch (field.type) {
    case "Bool":
      return (col.data as Uint8Array)[row] !== 0;
    case "FloatVector": {
      const dim = field.dim ?? 0;
      return (col.data as Float32Array).slice(row * dim, (row + 1) * dim);
    }
    default:
      return (col.data as ArrayLike<unknown>)[row];
  }
}

function outputFields(ctx: ReadContext, outputFieldIds: readonly number[], srcs: readonly RowSource[], rows: Int32Array): Record<number, unknown[]> {
  const out: Record<number, unknown[]> = {};
  for (const fid of outputFieldIds) {
    const idx = ctx.fieldIndex.get(fid);
    if (idx === undefined) throw VbError.invalid(`outputFieldIds: field ${fid} is not in collection "${ctx.schema.name}"`);
    const field = ctx.schema.fields[idx]!;
    const values = new Array<unknown>(rows.length);
    for (let i = 0; i < rows.length; i++) values[i] = valueAt(field, srcs[i]!.columns[idx]!, rows[i]!);
    out[fid] = values;
  }
  return out;
}

/** A SearchResult of local hits, with their output fields. */
export function searchResultOf(ctx: ReadContext, hits: readonly LocalHits[], outputFieldIds: readonly number[]): SearchResult {
  return {
    nq: hits.length,
    hits: hits.map((h) => ({ ids: h.ids, scores: h.scores, fields: outputFields(ctx, outputFieldIds, h.sources, h.rows) })),
  };
}

/**
 * The query of `spec` over `sources` at `r`: count(*) of the readable rows, or their pks (ascending,
 * each once, at most `spec.limit`) with the output fields.
 */
export async function querySources(
  ctx: ReadContext,
  sources: readonly RowSource[],
  spec: QuerySpec,
  r: bigint,
  skip?: (src: RowSource) => boolean,
): Promise<QueryResult> {
  const partitions = spec.partitionIds.length > 0 ? new Set(spec.partitionIds) : undefined;
  let count = 0;
  const parts: { pks: PkColumn }[] = [];
  const partSrc: RowSource[] = [];
  const partRows: Int32Array[] = [];
  let work = 0;
  for (const src of sources) {
    if (src.numRows === 0) continue;
    if (partitions && !partitions.has(src.partitionId)) continue;
    if (skip?.(src)) continue;
    const mask = readableMask(ctx, src, r, spec.filter);
    work += src.numRows;
    if (spec.countOnly) {
      count += countPassing(mask);
    } else {
      const rows = passingRows(mask);
      if (rows.length > 0) {
        parts.push({ pks: pksAt(src.pks, rows) });
        partSrc.push(src);
        partRows.push(rows);
      }
    }
    if (work > 1_000_000) {
      work = 0;
      await yieldToLoop();
    }
  }
  if (spec.countOnly) return { count, pks: emptyPks(ctx), fields: {} };
  if (parts.length === 0) return { count: 0, pks: emptyPks(ctx), fields: emptyFields(spec.outputFieldIds) };
  const merged = mergeQueryRows(parts, 0, spec.limit);
  const srcs: RowSource[] = [];
  const rows = new Int32Array(merged.pks.length);
  for (let i = 0; i < merged.pks.length; i++) {
    const pi = merged.sources[i]!;
    srcs.push(partSrc[pi]!);
    rows[i] = partRows[pi]![merged.positions[i]!]!;
  }
  return { count: merged.pks.length, pks: merged.pks, fields: outputFields(ctx, spec.outputFieldIds, srcs, rows) };
}

/** Merges the SearchResults of several parts (growing rows, sealed segments by node) into one (reduce.ts). */
export function mergeSearchResults(parts: readonly SearchResult[], spec: SearchSpec, ctx: ReadContext): SearchResult {
  return reduceSearchResults(parts, { nq: spec.nq, k: spec.topk, offset: 0, metric: spec.metric, outputFieldIds: spec.outputFieldIds, int64Pk: ctx.int64Pk });
}

function emptyFields(ids: readonly number[]): Record<number, unknown[]> {
  const out: Record<number, unknown[]> = {};
  for (const f of ids) out[f] = [];
  return out;
}

/** Merges QueryResults (reduce.ts): count(*) sums; rows merge by ascending pk, each pk once, at most `spec.limit`. */
export function mergeQueryResults(parts: readonly QueryResult[], spec: QuerySpec, ctx: ReadContext): QueryResult {
  return reduceQueryResults(parts, { offset: 0, limit: spec.limit, countOnly: spec.countOnly, outputFieldIds: spec.outputFieldIds, int64Pk: ctx.int64Pk });
}
