/**
 * Search and Query in the proxy, as seed 001 lays them out:
 *  - PreExecute: resolve the collection and partitions, check the request (vectors, dims, limit +
 *    offset ≤ 16,384, output fields; against the anns field's index, if it has one: the metric, `ef`,
 *    `nprobe`), compile the filter once, pick the guarantee per vchannel.
 *  - Execute: for each vchannel take a shard leader from querycoord's answer (cached, refreshed on
 *    error), send the request; on a retriable failure try the shard's next replica.
 *  - PostExecute: merge the shards' top-k lists (best first, skip offset, keep limit) or their rows, with
 *    the reduce the delegators use on their segments (actors/search/reduce.ts), so ties and VarChar keys
 *    order the same at every level.
 */
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import type { CollectionInfo } from "../../protocol/meta.ts";
import type { ConsistencyLevel, FieldSchema } from "../../protocol/schema.ts";
import { CONSISTENCY_LEVELS, DYNAMIC_FIELD_NAME } from "../../protocol/schema.ts";
import type { ShardLeader } from "../../protocol/messages/querycoord.ts";
import type { Guarantee, MetricType, QueryResult, QuerySpec, SearchResult, SearchSpec } from "../../protocol/messages/querynode.ts";
import type { QueryReq, SearchHits, SearchReq } from "../../protocol/messages/proxy.ts";
import type { IndexInfo } from "../../protocol/messages/indexes.ts";
import { compileFilter } from "../expr/index.ts";
import { reduceQueryResults, reduceSearchResults } from "../search/reduce.ts";
import { type IndexSpec, resolveSearchKnobs } from "../index/index_params.ts";

export const MAX_TOPK = 16_384;
export const COUNT_STAR = "count(*)";
const METRICS: readonly MetricType[] = ["L2", "IP", "COSINE"];

export interface ShardTarget {
  vchannel: string;
  leaders: ShardLeader[];
}

function invalid(msg: string): VbError {
  return new VbError(ErrorCode.ParameterInvalid, msg);
}

export function checkLimit(limit: unknown, offset: unknown, what: string, required: boolean): { limit: number | undefined; offset: number } {
  if (limit === undefined && required) throw invalid(`${what}: "limit" is required (1 to ${MAX_TOPK})`);
  if (limit !== undefined && (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1)) {
    throw invalid(`${what}: "limit" must be an integer ≥ 1, got ${String(limit)}`);
  }
  const off = offset ?? 0;
  if (typeof off !== "number" || !Number.isInteger(off) || off < 0) throw invalid(`${what}: "offset" must be an integer ≥ 0, got ${String(offset)}`);
  if (limit !== undefined && limit + off > MAX_TOPK) {
    throw invalid(`${what}: limit + offset = ${limit + off} is over ${MAX_TOPK}: page with a smaller offset or use an iterator`);
  }
  return { limit, offset: off };
}

export function consistencyOf(req: { consistencyLevel?: unknown }, info: CollectionInfo): ConsistencyLevel {
  const c = req.consistencyLevel ?? info.consistencyLevel;
  if (!CONSISTENCY_LEVELS.includes(c as ConsistencyLevel)) {
    throw invalid(`unknown consistencyLevel ${JSON.stringify(c)}: use ${CONSISTENCY_LEVELS.join(", ")}`);
  }
  return c as ConsistencyLevel;
}

export function partitionIdsOf(info: CollectionInfo, names: unknown): bigint[] {
  if (names === undefined) return [];
  if (!Array.isArray(names) || names.some((n) => typeof n !== "string")) throw invalid(`"partitionNames" must be a list of names`);
  return (names as string[]).map((n) => {
    const p = info.partitions.find((x) => x.name === n);
    if (!p) throw new VbError(ErrorCode.PartitionNotFound, `partition "${n}" not found in collection "${info.name}" (200)`);
    return p.partitionId;
  });
}

/** Output field names → fields. `*` means every field. Vectors are allowed; `count(*)` is handled by the caller. */
export function outputFieldsOf(info: CollectionInfo, names: unknown): FieldSchema[] {
  if (names === undefined) return [];
  if (!Array.isArray(names) || names.some((n) => typeof n !== "string")) throw invalid(`"outputFields" must be a list of field names`);
  const out: FieldSchema[] = [];
  for (const n of names as string[]) {
    if (n === "*") {
      for (const f of info.schema.fields) if (!out.includes(f)) out.push(f);
      continue;
    }
    const f = info.schema.fields.find((x) => x.name === n && !x.isDynamic);
    if (f) {
      if (!out.includes(f)) out.push(f);
      continue;
    }
    const dyn = info.schema.fields.find((x) => x.isDynamic);
    if (dyn) {
      if (!out.includes(dyn)) out.push(dyn);
      continue;
    }
    throw new VbError(ErrorCode.ParameterInvalid, `output field "${n}" is not a field of collection "${info.name}"`);
  }
  return out;
}

function toQueries(data: unknown, dim: number, field: string): { queries: Float32Array; nq: number } {
  const bad = (why: string) => invalid(`search data for vector field "${field}" (dim ${dim}): ${why}`);
  let rows: ArrayLike<number>[];
  if (data instanceof Float32Array) {
    if (data.length === 0 || data.length % dim !== 0) throw bad(`a flat Float32Array must hold nq × ${dim} floats, got ${data.length}`);
    const q = new Float32Array(data);
    for (let i = 0; i < q.length; i++) if (!Number.isFinite(q[i]!)) throw bad(`element ${i} is ${q[i]}`);
    return { queries: q, nq: data.length / dim };
  }
  if (!Array.isArray(data) || data.length === 0) throw bad("give one vector per query (Float32Array or number[])");
  rows = data as ArrayLike<number>[];
  const nq = rows.length;
  const queries = new Float32Array(nq * dim);
  rows.forEach((v, i) => {
    if (!(v instanceof Float32Array) && !Array.isArray(v)) throw bad(`query ${i} is not a vector`);
    if (v.length !== dim) throw bad(`query ${i} has ${v.length} floats, the field has dim ${dim}`);
    for (let j = 0; j < dim; j++) {
      const x = v[j];
      if (typeof x !== "number" || !Number.isFinite(x)) throw bad(`query ${i}, element ${j} is ${String(x)}`);
      queries[i * dim + j] = x;
    }
  });
  return { queries, nq };
}

function pkLiteral(v: unknown, int64: boolean): string {
  if (int64) {
    if (typeof v === "bigint" || (typeof v === "number" && Number.isSafeInteger(v))) return String(v);
  } else if (typeof v === "string") {
    return JSON.stringify(v);
  }
  throw invalid(`"ids" must hold ${int64 ? "Int64 (bigint or safe integer)" : "VarChar"} primary keys, got ${typeof v}`);
}

/** The filter of a request, with `ids` turned into `pk in [...]`. */
export function compileReadFilter(info: CollectionInfo, req: { filter?: unknown; filterParams?: unknown; ids?: unknown }): unknown {
  let expr = req.filter;
  if (expr !== undefined && typeof expr !== "string") throw invalid(`"filter" must be a string expression`);
  if (req.ids !== undefined) {
    const ids = req.ids;
    if (!(ids instanceof BigInt64Array) && !Array.isArray(ids)) throw invalid(`"ids" must be a list of primary keys`);
    const pk = info.schema.fields.find((f) => f.isPrimaryKey)!;
    const list = Array.from(ids as ArrayLike<unknown>, (v) => pkLiteral(v, pk.type === "Int64"));
    const idExpr = `${pk.name} in [${list.join(", ")}]`;
    expr = expr && (expr as string).trim() ? `(${idExpr}) and (${expr as string})` : idExpr;
  }
  if (expr === undefined || (expr as string).trim() === "") return undefined;
  if (req.filterParams !== undefined && (typeof req.filterParams !== "object" || req.filterParams === null)) {
    throw invalid(`"filterParams" must be an object of template values`);
  }
  return compileFilter(expr as string, info.schema, (req.filterParams ?? {}) as Record<string, unknown>);
}

export interface PreparedSearch {
  spec: SearchSpec;
  limit: number;
  offset: number;
  metric: MetricType;
  consistency: ConsistencyLevel;
  outputFields: FieldSchema[];
  /** group_by_field: one hit per distinct value of this field */
  groupBy?: FieldSchema;
}

/** With group_by_field, shards return this many times limit + offset hits to draw the groups from. */
export const GROUP_OVERFETCH = 10;
const GROUPABLE = new Set(["Bool", "Int8", "Int16", "Int32", "Int64", "VarChar"]);

/**
 * Checks a search against the anns field's index: the metric must be the index's (which is the default),
 * `ef` (HNSW types) must be in limit + offset..32768 and `nprobe` (IVF_FLAT) in 1..nlist. Returns the
 * metric and the search params to send, with the knobs the request gave as numbers.
 */
export function checkAgainstIndex(
  index: IndexInfo,
  field: FieldSchema,
  metricType: unknown,
  topk: number,
  sp: Record<string, unknown>,
): { metric: MetricType; searchParams: Record<string, unknown> } {
  const metric = (metricType ?? index.metricType) as MetricType;
  if (!METRICS.includes(metric)) throw invalid(`unknown metricType ${JSON.stringify(metricType)}: use L2, IP or COSINE`);
  if (metric !== index.metricType) {
    throw invalid(
      `metricType: metric type ${metric} does not match the index's ${index.metricType} (index "${index.indexName}" on field "${field.name}"): ` +
        `search with ${index.metricType}, or leave metricType out`,
    );
  }
  const spec = { indexType: index.indexType, metric: index.metricType, params: index.params } as IndexSpec;
  resolveSearchKnobs(spec, topk, { ef: sp.ef as number | undefined, nprobe: sp.nprobe as number | undefined });
  const searchParams = { ...sp };
  for (const k of ["ef", "nprobe"] as const) if (typeof sp[k] === "string") searchParams[k] = Number(sp[k]);
  return { metric, searchParams };
}

/** `indexes`: the collection's indexes (the proxy's index cache); a search on an indexed field is checked against its index. */
export function prepareSearch(info: CollectionInfo, req: SearchReq, indexes: readonly IndexInfo[] = []): PreparedSearch {
  const vectors = info.schema.fields.filter((f) => f.type === "FloatVector");
  let anns: FieldSchema | undefined;
  if (req.annsField !== undefined) {
    anns = vectors.find((f) => f.name === req.annsField);
    if (!anns) throw invalid(`"annsField": "${String(req.annsField)}" is not a vector field of collection "${info.name}"`);
  } else if (vectors.length === 1) {
    anns = vectors[0];
  } else {
    throw invalid(`collection "${info.name}" has ${vectors.length} vector fields: name one in "annsField"`);
  }
  const { limit, offset } = checkLimit(req.limit, req.offset, "Search", true);
  const given = req.searchParams ?? {};
  if (typeof given !== "object" || given === null || Array.isArray(given)) throw invalid(`"searchParams" must be an object`);
  let sp = { ...(given as Record<string, unknown>) };
  const groupName = req.groupByField ?? sp.group_by_field;
  delete sp.group_by_field;
  let groupBy: FieldSchema | undefined;
  if (groupName !== undefined) {
    groupBy = info.schema.fields.find((f) => f.name === groupName && !f.isDynamic);
    if (!groupBy) throw invalid(`group_by_field "${String(groupName)}" is not a field of collection "${info.name}"`);
    if (!GROUPABLE.has(groupBy.type)) {
      throw invalid(`group_by_field "${groupBy.name}" is a ${groupBy.type} field: group by a Bool, integer or VarChar field`);
    }
  }
  const topk = groupBy ? Math.min(MAX_TOPK, (limit! + offset) * GROUP_OVERFETCH) : limit! + offset;
  const index = indexes.find((i) => i.fieldId === anns!.fieldId);
  let metric: MetricType;
  if (index) {
    ({ metric, searchParams: sp } = checkAgainstIndex(index, anns!, req.metricType, limit! + offset, sp));
    // the shards fetch `topk` candidates when grouping: an explicit ef must cover them
    if (groupBy && typeof sp.ef === "number" && sp.ef < topk) sp = { ...sp, ef: topk };
  } else {
    metric = (req.metricType ?? "COSINE") as MetricType;
    if (!METRICS.includes(metric)) throw invalid(`unknown metricType ${JSON.stringify(req.metricType)}: use L2, IP or COSINE`);
  }
  const { queries, nq } = toQueries(req.data, anns!.dim!, anns!.name);
  const radius = sp.radius;
  const rangeFilter = sp.range_filter ?? sp.rangeFilter;
  if (radius !== undefined && typeof radius !== "number") throw invalid(`searchParams.radius must be a number`);
  if (rangeFilter !== undefined && typeof rangeFilter !== "number") throw invalid(`searchParams.range_filter must be a number`);
  const outputFields = outputFieldsOf(info, req.outputFields);
  // the group field's value comes back with every hit (the merge needs it, and so does the caller)
  if (groupBy && !outputFields.includes(groupBy)) outputFields.push(groupBy);
  const spec: SearchSpec = {
    collectionId: info.collectionId,
    annsFieldId: anns!.fieldId!,
    metric,
    queries,
    nq,
    topk,
    filter: compileReadFilter(info, req),
    partitionIds: partitionIdsOf(info, req.partitionNames),
    outputFieldIds: outputFields.map((f) => f.fieldId!),
    ...(radius !== undefined ? { radius } : {}),
    ...(rangeFilter !== undefined ? { rangeFilter } : {}),
    searchParams: sp,
  };
  return { spec, limit: limit!, offset, metric, consistency: consistencyOf(req, info), outputFields, ...(groupBy ? { groupBy } : {}) };
}

export interface PreparedQuery {
  spec: QuerySpec;
  limit: number | undefined;
  offset: number;
  consistency: ConsistencyLevel;
  outputFields: FieldSchema[];
}

export function prepareQuery(info: CollectionInfo, req: QueryReq): PreparedQuery {
  const names = req.outputFields;
  const countOnly = Array.isArray(names) && names.length === 1 && names[0] === COUNT_STAR;
  if (Array.isArray(names) && !countOnly && names.includes(COUNT_STAR)) {
    throw invalid(`"${COUNT_STAR}" cannot be mixed with other output fields`);
  }
  const { limit, offset } = checkLimit(req.limit, req.offset, "Query", false);
  const filter = compileReadFilter(info, req);
  if (!countOnly && filter === undefined && limit === undefined) {
    throw invalid(`Query needs a "filter", "ids" or a "limit" (or outputFields ["count(*)"])`);
  }
  const outputFields = countOnly ? [] : outputFieldsOf(info, names);
  const spec: QuerySpec = {
    collectionId: info.collectionId,
    ...(filter !== undefined ? { filter } : {}),
    partitionIds: partitionIdsOf(info, req.partitionNames),
    outputFieldIds: outputFields.map((f) => f.fieldId!),
    ...(limit !== undefined ? { limit: limit + offset } : {}),
    countOnly,
  };
  return { spec, limit, offset, consistency: consistencyOf(req, info), outputFields };
}

/** A field value as the client gets it: JSON parsed, bools as booleans. */
function present(f: FieldSchema, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (f.type === "JSON" && typeof v === "string") {
    try {
      return JSON.parse(v);
    } catch {
      return v;
    }
  }
  if (f.type === "Bool" && typeof v === "number") return v === 1;
  return v;
}

function entity(fields: FieldSchema[], cols: Record<number, unknown[]>, i: number): Record<string, unknown> {
  const e: Record<string, unknown> = {};
  for (const f of fields) {
    const v = present(f, cols[f.fieldId!]?.[i]);
    if (f.isDynamic && f.name === DYNAMIC_FIELD_NAME && v && typeof v === "object") Object.assign(e, v);
    else e[f.name] = v;
  }
  return e;
}

/** Merges the shards' results of one search (reduce.ts, as the delegators merge their segments'): best first, ties by pk, skip `offset`, keep `limit`. */
export function mergeSearch(results: SearchResult[], p: PreparedSearch, pkIsInt: boolean): SearchHits[] {
  const merged = reduceSearchResults(results, {
    nq: p.spec.nq,
    k: p.limit,
    offset: p.offset,
    metric: p.metric,
    outputFieldIds: p.spec.outputFieldIds,
    int64Pk: pkIsInt,
    ...(p.groupBy ? { groupFieldId: p.groupBy.fieldId! } : {}),
  });
  return merged.hits.map((h) => ({
    ids: h.ids,
    scores: h.scores,
    entities: Array.from({ length: h.ids.length }, (_, i) => entity(p.outputFields, h.fields, i)),
  }));
}

/** Merges the shards' rows by pk (reduce.ts: the order the shards sort in), then offset and limit; count(*) sums. */
export function mergeQuery(results: QueryResult[], p: PreparedQuery, info: CollectionInfo): Record<string, unknown>[] {
  const pk = info.schema.fields.find((f) => f.isPrimaryKey)!;
  const merged = reduceQueryResults(results, {
    offset: p.offset,
    limit: p.limit,
    countOnly: p.spec.countOnly,
    outputFieldIds: p.spec.outputFieldIds,
    int64Pk: pk.type === "Int64",
  });
  if (p.spec.countOnly) return [{ [COUNT_STAR]: merged.count }];
  const fields = p.outputFields.filter((f) => !f.isPrimaryKey);
  const pks = merged.pks as ArrayLike<bigint | string>;
  return Array.from({ length: pks.length }, (_, i) => ({ [pk.name]: pks[i], ...entity(fields, merged.fields, i) }));
}

export type { Guarantee };
