/**
 * Checks of what querynodes, delegators and segments are sent: a body that does not have the shape of its
 * message type gets a 1100 naming the field, never a crash. The shapes are the query plane's (schema,
 * SegmentInfo, IndexLoadInfo, sealed entries, search and query specs, guarantees); their fields are read
 * with actors/request_fields.ts, so the rules and messages are those of every other actor. Deep checks
 * that need the schema (the vector field, the output fields, the filter's fields) are made against it by
 * `checkSearchSpec` / `checkQuerySpec`. A checked map comes back as a copy whose 64-bit fields are bigints.
 */
import { ALL_PARTITIONS, type PkColumn } from "../../protocol/dml.ts";
import type { IndexLoadInfo } from "../../protocol/messages/indexes.ts";
import type { Guarantee, QuerySpec, SearchSpec, SealedEntry } from "../../protocol/messages/querynode.ts";
import type { SegmentInfo } from "../../protocol/meta.ts";
import { CONSISTENCY_LEVELS, type CollectionSchema } from "../../protocol/schema.ts";
import { checkRange } from "../search/range.ts";
import {
  invalid,
  obj,
  requiredId,
  requiredIds,
  requiredInt,
  requiredInteger,
  requiredList,
  requiredString,
  requiredToken,
  type Body,
} from "../request_fields.ts";

/** limit + offset of a plain search or query may not pass this (Milvus's max query result window) */
export const MAX_TOPK = 16_384;

/** A pk column: a BigInt64Array (Int64 pks) or a list of strings (VarChar pks). */
export function pkColumn(verb: string, b: Body, field: string): PkColumn {
  const v = b[field];
  if (v instanceof BigInt64Array) return v;
  if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v as string[];
  throw invalid(verb, `field "${field}" must be a BigInt64Array (Int64 pks) or a list of strings (VarChar pks)`);
}

export function checkSchema(v: unknown, verb: string): CollectionSchema {
  const s = obj(v, `${verb}: field "schema"`);
  if (typeof s.name !== "string" || !Array.isArray(s.fields) || s.fields.length === 0) {
    throw invalid(verb, `"schema" must be a collection schema with a name and fields`);
  }
  for (const [i, f] of (s.fields as unknown[]).entries()) {
    const fo = obj(f, `${verb}: field "schema.fields[${i}]"`);
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
  const at = `${verb}: ${field}`;
  const s = obj(v, `${verb}: field "${field}"`);
  const out: Record<string, unknown> = {
    ...s,
    segmentId: requiredId(at, s, "segmentId"),
    collectionId: requiredId(at, s, "collectionId"),
    // an L0 segment's deletes may hold for every partition (ALL_PARTITIONS)
    partitionId: requiredInteger(at, s, "partitionId", ALL_PARTITIONS),
    startPosition: requiredInteger(at, s, "startPosition"),
    vchannel: requiredString(at, s, "vchannel"),
    numRows: requiredInt(at, s, "numRows", 0),
  };
  if (s.level !== "L0" && s.level !== "L1") throw invalid(at, `field "level" must be L0 or L1`);
  for (const k of ["binlogs", "deltalogs", "statslogs"]) requiredList(at, s, k, "log files");
  if (s.endPosition !== undefined) out.endPosition = requiredInteger(at, s, "endPosition");
  return out as unknown as SegmentInfo;
}

const INDEX_TYPE_NAMES = ["FLAT", "HNSW", "HNSW_SQ8", "HNSW_FP16", "IVF_FLAT", "AUTOINDEX"];

/** Checks one IndexLoadInfo (what LoadIndex and LoadSegments carry); 1100 naming the field at fault. */
export function checkIndexLoadInfo(v: unknown, verb: string, field: string): IndexLoadInfo {
  const at = `${verb}: ${field}`;
  const i = obj(v, `${verb}: field "${field}"`);
  const out = {
    ...i,
    segmentId: requiredId(at, i, "segmentId"),
    indexId: requiredId(at, i, "indexId"),
    buildId: requiredId(at, i, "buildId"),
    fieldId: requiredInt(at, i, "fieldId", 0),
    fileKey: requiredString(at, i, "fileKey"),
  };
  if (typeof i.indexType !== "string" || !INDEX_TYPE_NAMES.includes(i.indexType)) {
    throw invalid(at, `field "indexType" must be one of ${INDEX_TYPE_NAMES.join(", ")}`);
  }
  if (i.metricType !== "L2" && i.metricType !== "IP" && i.metricType !== "COSINE") throw invalid(at, `field "metricType" must be L2, IP or COSINE`);
  if (typeof i.memorySize !== "number" || !Number.isFinite(i.memorySize) || i.memorySize < 0) {
    throw invalid(at, `field "memorySize" must be a number of bytes ≥ 0`);
  }
  return out as unknown as IndexLoadInfo;
}

/** A list of IndexLoadInfo (`field` of the body), checked; [] when absent and `optional`. */
export function indexLoadInfos(verb: string, b: Body, field: string, optional = false): IndexLoadInfo[] {
  if ((b[field] === undefined || b[field] === null) && optional) return [];
  return requiredList(verb, b, field, "index load infos").map((x, i) => checkIndexLoadInfo(x, verb, `${field}[${i}]`));
}

export function checkSealedEntry(v: unknown, verb: string, i: number, field = "sealed"): SealedEntry {
  const at = `${verb}: ${field}[${i}]`;
  const e = obj(v, `${verb}: field "${field}[${i}]"`);
  const out = {
    ...e,
    segmentId: requiredId(at, e, "segmentId"),
    partitionId: requiredId(at, e, "partitionId"),
    startPosition: requiredInteger(at, e, "startPosition"),
    endPosition: requiredInteger(at, e, "endPosition"),
    nodeId: requiredToken(at, e, "nodeId"),
    numRows: requiredInt(at, e, "numRows", 0),
  };
  if (out.startPosition > out.endPosition) throw invalid(at, `startPosition is after endPosition`);
  return out as unknown as SealedEntry;
}

function checkFilter(v: unknown, verb: string): void {
  if (v === undefined || v === null) return;
  const f = obj(v, `${verb}: field "filter"`);
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
  const s = obj(v, `${verb}: field "spec"`);
  const collectionId = requiredId(verb, s, "collectionId");
  requiredInt(verb, s, "annsFieldId", 0);
  if (s.metric !== "L2" && s.metric !== "IP" && s.metric !== "COSINE") throw invalid(verb, `"metric" must be L2, IP or COSINE`);
  if (!(s.queries instanceof Float32Array)) throw invalid(verb, `"queries" must be a Float32Array of nq × dim`);
  const nq = requiredInt(verb, s, "nq", 1);
  requiredInt(verb, s, "topk", 1, MAX_TOPK);
  if (s.queries.length === 0 || s.queries.length % nq !== 0) throw invalid(verb, `"queries" holds ${s.queries.length} floats, not nq (${nq}) rows`);
  const partitionIds = requiredIds(verb, s, "partitionIds");
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
  return { ...s, collectionId, partitionIds } as unknown as SearchSpec;
}

export function checkQuerySpec(v: unknown, verb: string, schema?: CollectionSchema): QuerySpec {
  const s = obj(v, `${verb}: field "spec"`);
  const collectionId = requiredId(verb, s, "collectionId");
  const partitionIds = requiredIds(verb, s, "partitionIds");
  checkOutputFields(s.outputFieldIds, schema, verb);
  checkFilter(s.filter, verb);
  if (s.limit !== undefined) requiredInt(verb, s, "limit", 0);
  if (typeof s.countOnly !== "boolean") throw invalid(verb, `field "countOnly" must be true or false`);
  return { ...s, collectionId, partitionIds } as unknown as QuerySpec;
}

export function checkGuarantee(v: unknown, verb: string): Guarantee {
  const at = `${verb}: guarantee`;
  const g = obj(v, `${verb}: field "guarantee"`);
  if (typeof g.consistency !== "string" || !CONSISTENCY_LEVELS.includes(g.consistency as never)) {
    throw invalid(at, `field "consistency" must be one of ${CONSISTENCY_LEVELS.join(", ")}`);
  }
  const position = requiredInteger(at, g, "position");
  if (g.waitMs !== undefined) requiredInt(at, g, "waitMs", 0);
  if (g.gracefulMs !== undefined && (typeof g.gracefulMs !== "number" || g.gracefulMs < 0)) throw invalid(at, `field "gracefulMs" must be ≥ 0`);
  return { ...g, position } as unknown as Guarantee;
}
