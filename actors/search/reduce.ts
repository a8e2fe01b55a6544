/**
 * Reduce: the results of several segments (at a delegator) or several shards (at the proxy) become one.
 *
 * - Search: `mergeTopK` is a k-way merge of sorted top-k lists for one query, best score first, a
 *   primary key kept once (at its best score), equal scores in primary-key order; it skips `offset`
 *   hits and keeps `k`. Each hit says which list and which position it came from, so the caller can
 *   gather that hit's output fields.
 * - Query: `mergeQueryRows` merges rows by primary key in ascending order (Milvus's proxy does the same:
 *   a k-way merge of pk-sorted shard results taking the smallest pk each step), keeps a pk once (its
 *   first occurrence: the part listed first), then applies offset and limit in that order. Int64 pks
 *   order as numbers; VarChar pks by Unicode code point, which is the byte order of their UTF-8 that
 *   Milvus compares (not JavaScript's UTF-16 `<`).
 * - count(*): `sumCounts` adds the shards' counts.
 * - Whole results: `reduceSearchResults` and `reduceQueryResults` merge the SearchResults / QueryResults
 *   of several parts with the merges above and gather each kept hit's or row's output fields. The
 *   delegator reduces its segments' results with them (offset 0, limit + offset kept) and the proxy its
 *   shards' results (offset skipped, limit kept), so both order, break ties and page the same way.
 */
import type { PkColumn } from "../../protocol/dml.ts";
import { VbError } from "../../protocol/errors.ts";
import type { QueryResult, SearchResult } from "../../protocol/messages/querynode.ts";
import type { Column, ColumnData } from "../../protocol/schema.ts";
import type { Metric } from "./metric.ts";

/** One sorted top-k list (best first) of one query, from one segment or shard. */
export interface TopKList<I extends PkColumn = PkColumn> {
  ids: I;
  scores: Float32Array;
}

export interface MergedTopK<I extends PkColumn = PkColumn> {
  ids: I;
  scores: Float32Array;
  /** the index in `lists` each hit came from */
  sources: Int32Array;
  /** each hit's position in that list */
  positions: Int32Array;
}

/** Orders primary keys: Int64 numerically, VarChar by code point (UTF-8 byte order). */
export function comparePks(a: bigint | string, b: bigint | string): number {
  if (typeof a === "bigint") return a < (b as bigint) ? -1 : a > (b as bigint) ? 1 : 0;
  return compareCodePoints(a, b as string);
}

function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // UTF-16 order differs from code point order only where a surrogate (U+D800..DFFF, half of a
    // character above U+FFFF) meets U+E000..FFFF: lift surrogates above the BMP.
    if (x >= 0xd800 && x <= 0xdfff) x += 0x10000;
    if (y >= 0xd800 && y <= 0xdfff) y += 0x10000;
    return x - y;
  }
  return a.length - b.length;
}

function checkCount(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0) throw VbError.invalid(`${name}: must be a non-negative integer, got ${v}`);
}

/**
 * Merges the sorted top-k lists of one query into the global one: best first (L2: smallest; IP,
 * COSINE: largest), equal scores by ascending pk, a pk that occurs twice kept at its better score,
 * the first `offset` hits skipped, at most `k` kept. Lists are expected best first; a list that is not
 * (equal scores out of pk order, say) is sorted here, so the result never depends on it. A NaN score
 * ranks last. With no lists at all, the ids are an empty BigInt64Array. `keep`, when given, is asked
 * about each distinct pk in merged order (its list and position): a hit it refuses is passed over, and
 * counts for neither the offset nor `k` (group-by keeps the best hit of each group this way).
 */
export function mergeTopK<I extends PkColumn>(
  lists: readonly TopKList<I>[],
  k: number,
  offset: number,
  metric: Metric,
  keep?: (list: number, position: number) => boolean,
): MergedTopK<I> {
  checkCount("k", k);
  checkCount("offset", offset);
  const strings = lists.length > 0 && Array.isArray(lists[0]!.ids);
  let total = 0;
  for (let i = 0; i < lists.length; i++) {
    const l = lists[i]!;
    if (Array.isArray(l.ids) !== strings) throw VbError.invalid(`lists: list ${i} mixes VarChar and Int64 primary keys`);
    if (l.ids.length !== l.scores.length) {
      throw VbError.invalid(`lists: list ${i} has ${l.ids.length} ids and ${l.scores.length} scores`);
    }
    total += l.ids.length;
  }
  const l2 = metric === "L2";
  // keys: smaller is better, NaN last
  const keyOf = (s: number) => (s !== s ? Infinity : l2 ? s : -s);
  const keys: Float64Array[] = lists.map((l) => {
    const out = new Float64Array(l.scores.length);
    for (let i = 0; i < out.length; i++) out[i] = keyOf(l.scores[i]!);
    return out;
  });
  const ids = lists.map((l) => l.ids as ArrayLike<bigint | string>);
  const itemBefore = (ka: number, ia: bigint | string, kb: number, ib: bigint | string) =>
    ka < kb || (ka === kb && comparePks(ia, ib) < 0);
  // each list's visiting order: as given when it is sorted, else sorted here
  const orders: (Int32Array | undefined)[] = lists.map((_, li) => {
    const kk = keys[li]!;
    const ii = ids[li]!;
    let sorted = true;
    for (let i = 1; i < kk.length && sorted; i++) if (itemBefore(kk[i]!, ii[i]!, kk[i - 1]!, ii[i - 1]!)) sorted = false;
    if (sorted) return undefined;
    const perm = Int32Array.from({ length: kk.length }, (_, i) => i);
    perm.sort((a, b) => kk[a]! - kk[b]! || comparePks(ii[a]!, ii[b]!) || a - b);
    return perm;
  });
  const pos = new Int32Array(lists.length);
  const at = (li: number) => {
    const o = orders[li];
    return o === undefined ? pos[li]! : o[pos[li]!]!;
  };
  // the heads of the lists, in a binary min-heap by (key, pk, list index)
  const headBefore = (a: number, b: number) => {
    const ia = at(a);
    const ib = at(b);
    const ka = keys[a]![ia]!;
    const kb = keys[b]![ib]!;
    if (ka !== kb) return ka < kb;
    const c = comparePks(ids[a]![ia]!, ids[b]![ib]!);
    return c !== 0 ? c < 0 : a < b;
  };
  const heap = new ListHeap(headBefore);
  for (let li = 0; li < lists.length; li++) if (lists[li]!.ids.length > 0) heap.push(li);

  const want = Math.min(k, Math.max(0, total - offset));
  const outIds: (bigint | string)[] = [];
  const outScores = new Float32Array(want);
  const sources = new Int32Array(want);
  const positions = new Int32Array(want);
  const seen = new Set<bigint | string>();
  let skipped = 0;
  let m = 0;
  while (m < want && heap.size > 0) {
    const li = heap.peek();
    const i = at(li);
    const id = ids[li]![i]!;
    if (!seen.has(id)) {
      seen.add(id);
      if (keep !== undefined && !keep(li, i)) {
        // passed over
      } else if (skipped < offset) {
        skipped++;
      } else {
        outIds.push(id);
        outScores[m] = lists[li]!.scores[i]!;
        sources[m] = li;
        positions[m] = i;
        m++;
      }
    }
    if (++pos[li]! < lists[li]!.ids.length) heap.replaceTop(li);
    else heap.pop();
  }
  const idsOut = (strings ? (outIds as string[]) : BigInt64Array.from(outIds as bigint[])) as I;
  return { ids: idsOut, scores: outScores.subarray(0, m), sources: sources.subarray(0, m), positions: positions.subarray(0, m) };
}

/** One part's query rows: their pks and, optionally, their columns (same row order). */
export interface QueryRows<P extends PkColumn = PkColumn> {
  pks: P;
  columns?: Column[];
}

export interface MergedQueryRows<P extends PkColumn = PkColumn> {
  pks: P;
  /** the parts' columns gathered in the merged row order (empty when the parts carry none) */
  columns: Column[];
  /** the index in `parts` each row came from */
  sources: Int32Array;
  /** each row's position in that part */
  positions: Int32Array;
}

/**
 * Merges query rows of several parts by ascending pk (see the top of this file), keeps each pk once
 * (the first part that has it wins), skips `offset` rows and keeps at most `limit` (all when
 * undefined). Parts need not arrive sorted. With no parts at all, the pks are an empty BigInt64Array.
 */
export function mergeQueryRows<P extends PkColumn>(parts: readonly QueryRows<P>[], offset: number, limit?: number): MergedQueryRows<P> {
  checkCount("offset", offset);
  if (limit !== undefined) checkCount("limit", limit);
  const strings = parts.length > 0 && Array.isArray(parts[0]!.pks);
  let total = 0;
  for (let i = 0; i < parts.length; i++) {
    if (Array.isArray(parts[i]!.pks) !== strings) throw VbError.invalid(`parts: part ${i} mixes VarChar and Int64 primary keys`);
    total += parts[i]!.pks.length;
  }
  const pks = parts.map((p) => p.pks as ArrayLike<bigint | string>);
  const orders: (Int32Array | undefined)[] = pks.map((pp) => {
    for (let i = 1; i < pp.length; i++) {
      if (comparePks(pp[i]!, pp[i - 1]!) < 0) {
        const perm = Int32Array.from({ length: pp.length }, (_, j) => j);
        perm.sort((a, b) => comparePks(pp[a]!, pp[b]!) || a - b);
        return perm;
      }
    }
    return undefined;
  });
  const pos = new Int32Array(parts.length);
  const at = (pi: number) => {
    const o = orders[pi];
    return o === undefined ? pos[pi]! : o[pos[pi]!]!;
  };
  const heap = new ListHeap((a, b) => {
    const c = comparePks(pks[a]![at(a)]!, pks[b]![at(b)]!);
    return c !== 0 ? c < 0 : a < b;
  });
  for (let pi = 0; pi < parts.length; pi++) if (pks[pi]!.length > 0) heap.push(pi);

  const want = Math.min(limit ?? Infinity, Math.max(0, total - offset));
  const outPks: (bigint | string)[] = [];
  const sources = new Int32Array(want);
  const positions = new Int32Array(want);
  let last: bigint | string | undefined;
  let skipped = 0;
  let m = 0;
  while (m < want && heap.size > 0) {
    const pi = heap.peek();
    const i = at(pi);
    const pk = pks[pi]![i]!;
    // rows come out in pk order, so a repeated pk directly follows its first occurrence
    if (last === undefined || comparePks(pk, last) !== 0) {
      last = pk;
      if (skipped < offset) {
        skipped++;
      } else {
        outPks.push(pk);
        sources[m] = pi;
        positions[m] = i;
        m++;
      }
    }
    if (++pos[pi]! < pks[pi]!.length) heap.replaceTop(pi);
    else heap.pop();
  }
  const src = sources.subarray(0, m);
  const posOut = positions.subarray(0, m);
  const pksOut = (strings ? (outPks as string[]) : BigInt64Array.from(outPks as bigint[])) as P;
  return { pks: pksOut, columns: gatherColumns(parts, src, posOut), sources: src, positions: posOut };
}

type Typed = Exclude<ColumnData, string[] | unknown[][]>;

/** The parts' columns (matched by field id) at the selected rows. */
function gatherColumns(parts: readonly QueryRows[], sources: Int32Array, positions: Int32Array): Column[] {
  const model = parts.find((p) => p.columns !== undefined)?.columns;
  if (model === undefined) return [];
  const byField = parts.map((p, pi) => {
    const m = new Map<number, Column>();
    for (const c of p.columns ?? []) m.set(c.fieldId, c);
    if (p.pks.length > 0) {
      for (const c of model) {
        if (!m.has(c.fieldId)) throw VbError.invalid(`parts: part ${pi} has rows but no column for field ${c.fieldId}`);
      }
    }
    return m;
  });
  const count = sources.length;
  return model.map((mc) => {
    const fieldId = mc.fieldId;
    const cols = byField.map((m) => m.get(fieldId));
    const isList = Array.isArray(mc.data);
    // values a row (vectors: dim), taken from a part that has rows
    let width = 1;
    if (!isList) {
      const pi = parts.findIndex((p, i) => p.pks.length > 0 && cols[i] !== undefined);
      if (pi >= 0) width = cols[pi]!.data.length / parts[pi]!.pks.length;
    }
    cols.forEach((c, pi) => {
      const rows = parts[pi]!.pks.length;
      if (c === undefined || rows === 0) return;
      if (Array.isArray(c.data) !== isList || (!isList && c.data.constructor !== mc.data.constructor)) {
        throw VbError.invalid(`parts: field ${fieldId} has another type in part ${pi} than in the first part with columns`);
      }
      if (c.data.length !== rows * width) {
        throw VbError.invalid(`parts: field ${fieldId} of part ${pi} has ${c.data.length} values for ${rows} rows`);
      }
    });
    let data: ColumnData;
    if (isList) {
      const out = new Array<unknown>(count);
      for (let i = 0; i < count; i++) out[i] = (cols[sources[i]!]!.data as unknown[])[positions[i]!];
      data = out as string[] | unknown[][];
    } else {
      const Ctor = mc.data.constructor as new (n: number) => Typed;
      const out = new Ctor(count * width);
      if (width === 1) {
        const o = out as unknown as { [i: number]: number | bigint };
        for (let i = 0; i < count; i++) o[i] = (cols[sources[i]!]!.data as unknown as ArrayLike<number | bigint>)[positions[i]!]!;
      } else {
        const o = out as Float32Array;
        for (let i = 0; i < count; i++) {
          const s = cols[sources[i]!]!.data as Float32Array;
          const p = positions[i]! * width;
          o.set(s.subarray(p, p + width), i * width);
        }
      }
      data = out;
    }
    const col: Column = { fieldId, data };
    if (cols.some((c) => c?.valid !== undefined)) {
      const valid = new Uint8Array(count);
      for (let i = 0; i < count; i++) {
        const v = cols[sources[i]!]!.valid;
        valid[i] = v === undefined ? 1 : v[positions[i]!]!;
      }
      col.valid = valid;
    }
    return col;
  });
}

/** How to reduce the SearchResults of one request. */
export interface SearchReduce {
  nq: number;
  /** hits kept per query, after `offset` */
  k: number;
  offset: number;
  metric: Metric;
  /** the output fields gathered for each kept hit */
  outputFieldIds: readonly number[];
  /** Int64 primary keys (an empty result's ids are a BigInt64Array), else VarChar */
  int64Pk: boolean;
  /** group by this field (it must be an output field): only the best hit of each of its values counts */
  groupFieldId?: number;
}

/** Merges the SearchResults of several parts (segments, or shards) into one: `mergeTopK` per query. */
export function reduceSearchResults(parts: readonly SearchResult[], r: SearchReduce): SearchResult {
  const hits: SearchResult["hits"] = [];
  for (let q = 0; q < r.nq; q++) {
    const lists: TopKList[] = [];
    const from: SearchResult["hits"][number][] = [];
    for (const p of parts) {
      const h = p.hits[q];
      if (!h || h.ids.length === 0) continue;
      lists.push({ ids: h.ids, scores: h.scores });
      from.push(h);
    }
    if (lists.length === 0) {
      hits.push({ ids: emptyPks(r.int64Pk), scores: new Float32Array(0), fields: emptyFields(r.outputFieldIds) });
      continue;
    }
    let keep: ((list: number, position: number) => boolean) | undefined;
    const groupId = r.groupFieldId;
    if (groupId !== undefined) {
      const groups = new Set<string>();
      keep = (li, pos) => {
        const v = from[li]!.fields[groupId]?.[pos];
        const g = `${typeof v}:${String(v)}`;
        if (groups.has(g)) return false;
        groups.add(g);
        return true;
      };
    }
    const m = mergeTopK(lists, r.k, r.offset, r.metric, keep);
    hits.push({ ids: m.ids, scores: m.scores, fields: gatherFields(r.outputFieldIds, from, m.sources, m.positions) });
  }
  return { nq: r.nq, hits };
}

/** How to reduce the QueryResults of one request. */
export interface QueryReduce {
  offset: number;
  /** rows kept after `offset` (undefined: all) */
  limit?: number | undefined;
  /** count(*): the parts' counts are summed, no rows */
  countOnly: boolean;
  /** the output fields gathered for each kept row */
  outputFieldIds: readonly number[];
  /** Int64 primary keys (an empty result's pks are a BigInt64Array), else VarChar */
  int64Pk: boolean;
}

/** Merges QueryResults: count(*) sums (`sumCounts`); rows merge by pk with `mergeQueryRows`. */
export function reduceQueryResults(parts: readonly QueryResult[], r: QueryReduce): QueryResult {
  if (r.countOnly) return { count: Number(sumCounts(parts.map((p) => p.count))), pks: emptyPks(r.int64Pk), fields: {} };
  const nonEmpty = parts.filter((p) => p.pks.length > 0);
  if (nonEmpty.length === 0) return { count: 0, pks: emptyPks(r.int64Pk), fields: emptyFields(r.outputFieldIds) };
  const m = mergeQueryRows(
    nonEmpty.map((p) => ({ pks: p.pks })),
    r.offset,
    r.limit,
  );
  return { count: m.pks.length, pks: m.pks, fields: gatherFields(r.outputFieldIds, nonEmpty, m.sources, m.positions) };
}

/** The output fields of merged hits or rows: item i's value is field `fid` of part `sources[i]` at `positions[i]`. */
function gatherFields(
  outputFieldIds: readonly number[],
  parts: readonly { fields: Record<number, unknown[]> }[],
  sources: Int32Array,
  positions: Int32Array,
): Record<number, unknown[]> {
  const fields: Record<number, unknown[]> = {};
  for (const fid of outputFieldIds) {
    const values = new Array<unknown>(sources.length);
    for (let i = 0; i < sources.length; i++) values[i] = parts[sources[i]!]!.fields[fid]?.[positions[i]!] ?? null;
    fields[fid] = values;
  }
  return fields;
}

function emptyPks(int64Pk: boolean): PkColumn {
  return int64Pk ? new BigInt64Array(0) : [];
}

function emptyFields(ids: readonly number[]): Record<number, unknown[]> {
  const out: Record<number, unknown[]> = {};
  for (const f of ids) out[f] = [];
  return out;
}

/** count(*) of a request: the sum of its shards' counts. */
export function sumCounts(counts: readonly (number | bigint)[]): bigint {
  let total = 0n;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i]!;
    if (typeof c === "number" ? !Number.isSafeInteger(c) || c < 0 : c < 0n) {
      throw VbError.invalid(`counts: count ${i} must be a non-negative integer, got ${String(c)}`);
    }
    total += BigInt(c);
  }
  return total;
}

/** A binary min-heap of list indices under `before` (the merge front of a k-way merge). */
class ListHeap {
  private readonly items: number[] = [];
  constructor(private readonly before: (a: number, b: number) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  peek(): number {
    return this.items[0]!;
  }

  push(x: number): void {
    const a = this.items;
    let i = a.length;
    a.push(x);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(x, a[p]!)) break;
      a[i] = a[p]!;
      i = p;
    }
    a[i] = x;
  }

  pop(): void {
    const a = this.items;
    const last = a.pop()!;
    if (a.length > 0) this.siftDown(last);
  }

  /** The top's key changed (its list advanced): restore the order. */
  replaceTop(x: number): void {
    this.siftDown(x);
  }

  private siftDown(x: number): void {
    const a = this.items;
    const n = a.length;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.before(a[r]!, a[l]!) ? r : l;
      if (!this.before(a[c]!, x)) break;
      a[i] = a[c]!;
      i = c;
    }
    a[i] = x;
  }
}
