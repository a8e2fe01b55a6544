/**
 * Checks of what querynodes and delegators are sent: a body that does not have the shape of its message
 * type gets a 1100 naming the field, never a crash. Deep checks that need the schema (the vector field,
 * the output fields, the filter's fields) are made against it by `checkSearchSpec` / `checkQuerySpec`.
 */
import type { PkColumn } from "../../protocol/dml.ts";
import { VbError } from "../../protocol/errors.ts";
import type { IndexLoadInfo } from "../../protocol/messages/indexes.ts";
import type { Guarantee, QuerySpec, SearchSpec, SealedEntry } from "../../protocol/messages/querynode.ts";
import type { SegmentInfo } from "../../protocol/meta.ts";
import { CONSISTENCY_LEVELS, type CollectionSchema } from "../../protocol/schema.ts";
import { checkRange } from "../search/range.ts";

/** limit + offset of a plain search or query may not pass this (Milvus's max query result window) */
export const MAX_TOPK = 16_384;

export function invalid(verb: string, message: string): VbError {
  return VbError.invalid(`${verb}: ${message}`);
}

export function obj(body: unknown, verb: string): Record<string, unknown> {
  if (typeof body !== "object" || body === null || Array.isArray(body) || ArrayBuffer.isView(body)) {
    throw invalid(verb, "the request body must be an object");
  }
  return body as Record<string, unknown>;
}

export function bigintField(b: Record<string, unknown>, field: string, verb: string, opts: { min?: bigint } = {}): bigint {
  const v = b[field];
  if (typeof v !== "bigint") throw invalid(verb, `"${field}" must be a bigint, got ${describe(v)}`);
  if (opts.min !== undefined && v < opts.min) throw invalid(verb, `"${field}" must be ≥ ${opts.min}, got ${v}`);
  return v;
}

export function stringField(b: Record<string, unknown>, field: string, verb: string): string {
  const v = b[field];
  if (typeof v !== "string" || v.length === 0) throw invalid(verb, `"${field}" must be a non-empty string`);
  return v;
}

export function intField(b: Record<string, unknown>, field: string, verb: string, opts: { min?: number; max?: number } = {}): number {
  const v = b[field];
  if (typeof v !== "number" || !Number.isSafeInteger(v)) throw invalid(verb, `"${field}" must be an integer, got ${describe(v)}`);
  if (opts.min !== undefined && v < opts.min) throw invalid(verb, `"${field}" must be ≥ ${opts.min}, got ${v}`);
  if (opts.max !== undefined && v > opts.max) throw invalid(verb, `"${field}" must be ≤ ${opts.max}, got ${v}`);
  return v;
}

export function bigintList(b: Record<string, unknown>, field: string, verb: string): bigint[] {
  const v = b[field];
  if (v instanceof BigInt64Array) return Array.from(v);
  if (!Array.isArray(v) || v.some((x) => typeof x !== "bigint")) throw invalid(verb, `"${field}" must be a list of bigint`);
  return v as bigint[];
}

export function pkColumn(v: unknown, field: string, verb: string): PkColumn {
  if (v instanceof BigInt64Array) return v;
  if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v as string[];
  throw invalid(verb, `"${field}" must be a BigInt64Array (Int64 pks) or a list of strings (VarChar pks)`);
}

function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (ArrayBuffer.isView(v)) return v.constructor.name;
  return typeof v;
}

export function checkSchema(v: unknown, verb: string): CollectionSchema {
  const s = obj(v, `${verb} schema`);
  if (typeof s.name !== "string" || !Array.isArray(s.fields) || s.fields.length === 0) {
    throw invalid(verb, `"schema" must be a collection schema with a name and fields`);
  }
  for (const [i, f] of (s.fields as unknown[]).entries()) {
    const fo = obj(f, `${verb} schema.fields[${i}]`);
    if (typeof fo.name !== "string" || typeof fo.type !== "string" || typeof fo.fieldId !== "number") {
      throw invalid(verb, `schema.fields[${i}] must have a name, a type and a fieldId`);
    }
    if (fo.type === "FloatVector" && (typeof fo.dim !== "number" || fo.dim < 1)) throw invalid(verb, `schema.fields[${i}]: a FloatVector needs a dim`);
  }
  const pks = (s.fields as { isPrimaryKey?: boolean; type: string }[]).filter((f) => f.isPrimaryKey);
  if (pks.length !== 1 || (pks[0]!.type !== "Int64" && pks[0]!.type !== "VarChar")) {
    throw invalid(verb, "schema must have exactly one Int64 or VarChar primary key");
  }
  return s as unknown as CollectionSchema;
}

export function checkSegmentInfo(v: unknown, verb: string, field: string): SegmentInfo {
  const s = obj(v, `${verb} ${field}`);
  for (const k of ["segmentId", "collectionId", "partitionId", "startPosition"]) {
    if (typeof s[k] !== "bigint") throw invalid(verb, `${field}.${k} must be a bigint`);
  }
  if (typeof s.vchannel !== "string") throw invalid(verb, `${field}.vchannel must be a string`);
  if (s.level !== "L0" && s.level !== "L1") throw invalid(verb, `${field}.level must be L0 or L1`);
  if (typeof s.numRows !== "number" || !Number.isSafeInteger(s.numRows) || s.numRows < 0) throw invalid(verb, `${field}.numRows must be an integer ≥ 0`);
  if (!Array.isArray(s.binlogs) || !Array.isArray(s.deltalogs) || !Array.isArray(s.statslogs)) {
    throw invalid(verb, `${field} must list binlogs, deltalogs and statslogs`);
  }
  if (s.endPosition !== undefined && typeof s.endPosition !== "bigint") throw invalid(verb, `${field}.endPosition must be a bigint`);
  return s as unknown as SegmentInfo;
}

const INDEX_TYPE_NAMES = ["FLAT", "HNSW", "HNSW_SQ8", "HNSW_FP16", "IVF_FLAT", "AUTOINDEX"];

/** Checks one IndexLoadInfo (what LoadIndex and LoadSegments carry); 1100 naming the field at fault. */
export function checkIndexLoadInfo(v: unknown, verb: string, field: string): IndexLoadInfo {
  const i = obj(v, `${verb} ${field}`);
  for (const k of ["segmentId", "indexId", "buildId"]) {
    if (typeof i[k] !== "bigint") throw invalid(verb, `${field}.${k} must be a bigint`);
  }
  if (typeof i.fieldId !== "number" || !Number.isSafeInteger(i.fieldId)) throw invalid(verb, `${field}.fieldId must be a field id`);
  if (typeof i.fileKey !== "string" || i.fileKey.length === 0) throw invalid(verb, `${field}.fileKey must be the artifact's object key`);
  if (typeof i.indexType !== "string" || !INDEX_TYPE_NAMES.includes(i.indexType)) {
    throw invalid(verb, `${field}.indexType must be one of ${INDEX_TYPE_NAMES.join(", ")}`);
  }
  if (i.metricType !== "L2" && i.metricType !== "IP" && i.metricType !== "COSINE") throw invalid(verb, `${field}.metricType must be L2, IP or COSINE`);
  if (typeof i.memorySize !== "number" || !Number.isFinite(i.memorySize) || i.memorySize < 0) {
    throw invalid(verb, `${field}.memorySize must be a number of bytes ≥ 0`);
  }
  return i as unknown as IndexLoadInfo;
}

/** A list of IndexLoadInfo (`field` of the body), checked; [] when absent and `optional`. */
export function indexLoadInfos(b: Record<string, unknown>, field: string, verb: string, optional = false): IndexLoadInfo[] {
  const v = b[field];
  if (v === undefined && optional) return [];
  if (!Array.isArray(v)) throw invalid(verb, `"${field}" must be a list of index load infos`);
  return v.map((x, i) => checkIndexLoadInfo(x, verb, `${field}[${i}]`));
}

export function checkSealedEntry(v: unknown, verb: string, i: number): SealedEntry {
  const e = obj(v, `${verb} sealed[${i}]`);
  for (const k of ["segmentId", "partitionId", "startPosition", "endPosition"]) {
    if (typeof e[k] !== "bigint") throw invalid(verb, `sealed[${i}].${k} must be a bigint`);
  }
  if (typeof e.nodeId !== "string" || !/^[A-Za-z0-9_-]+$/.test(e.nodeId)) throw invalid(verb, `sealed[${i}].nodeId must be a node id`);
  if (typeof e.numRows !== "number") throw invalid(verb, `sealed[${i}].numRows must be a number`);
  if ((e.startPosition as bigint) > (e.endPosition as bigint)) throw invalid(verb, `sealed[${i}]: startPosition is after endPosition`);
  return e as unknown as SealedEntry;
}

function checkFilter(v: unknown, verb: string): void {
  if (v === undefined || v === null) return;
  const f = obj(v, `${verb} filter`);
  if (f.version !== 1 || typeof f.root !== "object" || f.root === null) {
    throw invalid(verb, `"filter" must be a compiled filter plan (version 1) from actors/expr`);
  }
}

function checkOutputFields(ids: unknown, schema: CollectionSchema | undefined, verb: string): number[] {
  if (!Array.isArray(ids) || ids.some((x) => typeof x !== "number" || !Number.isInteger(x))) {
    throw invalid(verb, `"outputFieldIds" must be a list of field ids`);
  }
  if (schema) {
    for (const id of ids as number[]) {
      if (!schema.fields.some((f) => f.fieldId === id)) throw invalid(verb, `outputFieldIds: field ${id} is not in collection "${schema.name}"`);
    }
  }
  return ids as number[];
}

/** Checks a SearchSpec; with the schema, also the vector field, its dim and the output fields. */
export function checkSearchSpec(v: unknown, verb: string, schema?: CollectionSchema): SearchSpec {
  const s = obj(v, `${verb} spec`);
  bigintField(s, "collectionId", verb);
  intField(s, "annsFieldId", verb);
  if (s.metric !== "L2" && s.metric !== "IP" && s.metric !== "COSINE") throw invalid(verb, `"metric" must be L2, IP or COSINE`);
  if (!(s.queries instanceof Float32Array)) throw invalid(verb, `"queries" must be a Float32Array of nq × dim`);
  const nq = intField(s, "nq", verb, { min: 1 });
  intField(s, "topk", verb, { min: 1, max: MAX_TOPK });
  if (s.queries.length === 0 || s.queries.length % nq !== 0) throw invalid(verb, `"queries" holds ${s.queries.length} floats, not nq (${nq}) rows`);
  bigintList(s, "partitionIds", verb);
  checkOutputFields(s.outputFieldIds, schema, verb);
  checkFilter(s.filter, verb);
  for (const k of ["radius", "rangeFilter"]) {
    if (s[k] !== undefined && (typeof s[k] !== "number" || Number.isNaN(s[k]))) throw invalid(verb, `"${k}" must be a number`);
  }
  try {
    checkRange(s.metric, s.radius as number | undefined, s.rangeFilter as number | undefined);
  } catch (err) {
    throw invalid(verb, (err as Error).message);
  }
  const q = s.queries as Float32Array;
  for (let i = 0; i < q.length; i++) {
    if (!Number.isFinite(q[i]!)) throw invalid(verb, `"queries" must hold finite numbers (index ${i} is ${q[i]})`);
  }
  if (schema) {
    const f = schema.fields.find((x) => x.fieldId === s.annsFieldId);
    if (!f || f.type !== "FloatVector") throw invalid(verb, `annsFieldId: field ${String(s.annsFieldId)} is not a FloatVector field of "${schema.name}"`);
    if ((s.queries as Float32Array).length !== nq * (f.dim ?? 0)) {
      throw invalid(verb, `"queries" holds ${(s.queries as Float32Array).length} floats, not nq (${nq}) × dim (${f.dim})`);
    }
  }
  return s as unknown as SearchSpec;
}

export function checkQuerySpec(v: unknown, verb: string, schema?: CollectionSchema): QuerySpec {
  const s = obj(v, `${verb} spec`);
  bigintField(s, "collectionId", verb);
  bigintList(s, "partitionIds", verb);
  checkOutputFields(s.outputFieldIds, schema, verb);
  checkFilter(s.filter, verb);
  if (s.limit !== undefined) intField(s, "limit", verb, { min: 0 });
  if (typeof s.countOnly !== "boolean") throw invalid(verb, `"countOnly" must be a boolean`);
  return s as unknown as QuerySpec;
}

export function checkGuarantee(v: unknown, verb: string): Guarantee {
  const g = obj(v, `${verb} guarantee`);
  if (typeof g.consistency !== "string" || !CONSISTENCY_LEVELS.includes(g.consistency as never)) {
    throw invalid(verb, `guarantee.consistency must be one of ${CONSISTENCY_LEVELS.join(", ")}`);
  }
  bigintField(g, "position", verb, { min: 0n });
  if (g.waitMs !== undefined) intField(g, "waitMs", verb, { min: 0 });
  if (g.gracefulMs !== undefined && (typeof g.gracefulMs !== "number" || g.gracefulMs < 0)) throw invalid(verb, `guarantee.gracefulMs must be ≥ 0`);
  return g as unknown as Guarantee;
}
