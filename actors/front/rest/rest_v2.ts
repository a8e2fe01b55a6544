/**
 * Milvus's REST v2 API (`POST /v2/vectordb/<category>/<action>`) on the native API: each handler reads
 * the JSON body, asks the proxy through the typed client and returns the `data` of Milvus's envelope
 * `{code, message, data}`; a VbError becomes `{code, message}` with HTTP 200, as Milvus answers.
 */
import { fuseHits, normalizedScore } from "../fuse.ts";
import { ErrorCode, VbError } from "../../../protocol/errors.ts";
import type { CollectionInfo } from "../../../protocol/meta.ts";
import type { ProxyApi, SearchHits, SearchReq } from "../../../protocol/messages/proxy.ts";
import {
  CONSISTENCY_LEVELS,
  DataType,
  type CollectionSchema,
  type ConsistencyLevel,
  type DataTypeName,
  type FieldSchema,
} from "../../../protocol/schema.ts";
import type { VectorbusClient } from "../../control/client.ts";
import type { Trace } from "../../../runtime/trace.ts";
import { resourceGroupHandlers } from "./resource_groups.ts";

/** A request body as JSON.parse gives it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Body = Record<string, any>;

export interface RestContext {
  dbName: string | undefined;
  timeoutMs: number;
  /** `Accept-Type-Allow-Int64: true`: Int64 values as bare JSON numbers, else as decimal strings */
  allowInt64?: boolean;
  /** the caller's trace (a `traceparent` header): the native calls carry it on */
  trace?: Trace;
}

/** A handler's answer: the envelope's `data` and any other top-level fields (`topks`). */
export type RestHandler = (body: Body, ctx: RestContext) => Promise<{ data?: unknown; extra?: Record<string, unknown> }>;

function invalid(message: string): VbError {
  return new VbError(ErrorCode.ParameterInvalid, message);
}

function str(body: Body, key: string, what = key): string {
  const v = body[key];
  if (typeof v !== "string" || v === "") throw invalid(`${what} is required`);
  return v;
}

function opt(body: Body, key: string): string | undefined {
  const v = body[key];
  return typeof v === "string" && v !== "" ? v : undefined;
}

function list(v: unknown): string[] | undefined {
  return Array.isArray(v) && v.length > 0 ? (v as string[]) : undefined;
}

const TYPES = Object.keys(DataType) as DataTypeName[];

function typeOf(name: unknown, field: string): DataTypeName {
  const t = TYPES.find((x) => x.toLowerCase() === String(name ?? "").toLowerCase());
  if (!t) throw invalid(`field "${field}": data type ${JSON.stringify(name)} is not supported (supported: ${TYPES.join(", ")})`);
  return t;
}

function intParam(v: unknown, field: string, key: string): number | undefined {
  if (v === undefined || v === null || v === "") return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw invalid(`field "${field}": ${key} must be an integer, got ${JSON.stringify(v)}`);
  return n;
}

/** REST v2 `schema` → a native schema; `collectionName` + `dimension` alone is Milvus's quick setup. */
function schemaOf(body: Body, collectionName: string): { schema: CollectionSchema; quick: boolean } {
  const s = body.schema as Body | undefined;
  if (!s || !Array.isArray(s.fields) || s.fields.length === 0) {
    const dim = Number(body.dimension);
    if (!Number.isInteger(dim) || dim < 1) throw invalid(`collection "${collectionName}": give a schema with fields, or a dimension`);
    const pkName = opt(body, "primaryFieldName") ?? "id";
    const vecName = opt(body, "vectorFieldName") ?? "vector";
    const varcharPk = String(body.idType ?? "Int64").toLowerCase() === "varchar";
    const pk: FieldSchema = { name: pkName, type: varcharPk ? "VarChar" : "Int64", isPrimaryKey: true, ...(body.autoID || body.autoId ? { autoId: true } : {}) };
    if (varcharPk) pk.maxLength = intParam(body.params?.max_length, pkName, "max_length") ?? 65_535;
    return { schema: { name: collectionName, fields: [pk, { name: vecName, type: "FloatVector", dim }], enableDynamicField: true }, quick: true };
  }
  const fields = (s.fields as Body[]).map((f): FieldSchema => {
    const name = String(f.fieldName ?? "");
    const type = typeOf(f.dataType, name);
    const p = (f.elementTypeParams ?? {}) as Body;
    const out: FieldSchema = { name, type };
    if (f.description) out.description = String(f.description);
    if (f.isPrimary) {
      out.isPrimaryKey = true;
      if (s.autoId || s.autoID || f.autoId) out.autoId = true;
    }
    const dim = intParam(p.dim, name, "dim");
    if (dim !== undefined) out.dim = dim;
    const maxLength = intParam(p.max_length, name, "max_length");
    if (maxLength !== undefined) out.maxLength = maxLength;
    const maxCapacity = intParam(p.max_capacity, name, "max_capacity");
    if (maxCapacity !== undefined) out.maxCapacity = maxCapacity;
    if (type === "Array") out.elementType = typeOf(f.elementDataType, name);
    if (f.nullable) out.nullable = true;
    if (f.defaultValue !== undefined && f.defaultValue !== null) {
      out.defaultValue = type === "Int64" ? BigInt(f.defaultValue as number | string) : (f.defaultValue as boolean | number | string);
    }
    if (f.isPartitionKey) throw invalid(`field "${name}": partition key fields are not supported`);
    return out;
  });
  const schema: CollectionSchema = { name: collectionName, fields };
  if (s.enableDynamicField || s.enable_dynamic_field) schema.enableDynamicField = true;
  if (body.description) schema.description = String(body.description);
  return { schema, quick: false };
}

function consistency(v: unknown): ConsistencyLevel | undefined {
  return CONSISTENCY_LEVELS.includes(v as ConsistencyLevel) ? (v as ConsistencyLevel) : undefined;
}

/** A row from JSON → the native API's row: Int64 as bigint (numbers or decimal strings), elements of Int64 arrays too. */
function rowIn(info: CollectionInfo, row: unknown, i: number): Record<string, unknown> {
  if (typeof row !== "object" || row === null || Array.isArray(row)) throw invalid(`data[${i}] must be an object of field values`);
  const out: Record<string, unknown> = { ...(row as Body) };
  for (const f of info.schema.fields) {
    const v = out[f.name];
    if (v === undefined || v === null) continue;
    if (f.type === "Int64" && (typeof v === "number" || typeof v === "string")) out[f.name] = toBigInt(v, f.name, i);
    else if (f.type === "Array" && f.elementType === "Int64" && Array.isArray(v)) out[f.name] = v.map((x) => (typeof x === "bigint" ? x : toBigInt(x as number | string, f.name, i)));
  }
  return out;
}

function toBigInt(v: number | string, field: string, row: number): bigint {
  try {
    if (typeof v === "number" && !Number.isInteger(v)) throw new Error("not an integer");
    return BigInt(v);
  } catch {
    throw invalid(`field "${field}" of row ${row}: expected an Int64, got ${JSON.stringify(v)}`);
  }
}

/** Int64 values as the client asked: raw numbers (Accept-Type-Allow-Int64: true) or decimal strings. */
export class Int64Text {
  constructor(readonly text: string) {}
}

function out64(v: bigint | string | number, allowInt64: boolean): unknown {
  if (typeof v === "bigint") return allowInt64 ? new Int64Text(v.toString()) : v.toString();
  return v;
}

/** A native row/entity → a REST row: vectors as arrays, Int64 per the header, dynamic keys inline (as the native API gives them). */
function rowOut(info: CollectionInfo, row: Record<string, unknown>, allowInt64: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) {
    if (typeof v === "bigint") out[k] = out64(v, allowInt64);
    else if (v instanceof Float32Array || v instanceof Float64Array) out[k] = Array.from(v);
    else if (Array.isArray(v) && v.some((x) => typeof x === "bigint")) out[k] = v.map((x) => (typeof x === "bigint" ? out64(x, allowInt64) : x));
    else out[k] = v;
  }
  void info;
  return out;
}

function describeOut(info: CollectionInfo, load: string, indexes: { fieldName: string; indexName: string; metricType: string }[]): Body {
  const pk = info.schema.fields.find((f) => f.isPrimaryKey);
  return {
    collectionName: info.name,
    collectionID: Number(info.collectionId),
    dbName: info.dbName,
    description: info.schema.description ?? "",
    autoId: pk?.autoId === true,
    enableDynamicField: info.schema.enableDynamicField === true,
    fields: info.schema.fields
      .filter((f) => !f.isDynamic)
      .map((f) => ({
        id: f.fieldId,
        name: f.name,
        type: f.type,
        description: f.description ?? "",
        primaryKey: f.isPrimaryKey === true,
        autoId: f.autoId === true,
        partitionKey: false,
        clusteringKey: false,
        nullable: f.nullable === true,
        ...(f.defaultValue !== undefined ? { defaultValue: typeof f.defaultValue === "bigint" ? String(f.defaultValue) : f.defaultValue } : {}),
        ...(f.elementType ? { elementType: f.elementType } : {}),
        params: [
          ...(f.dim !== undefined ? [{ key: "dim", value: String(f.dim) }] : []),
          ...(f.maxLength !== undefined ? [{ key: "max_length", value: String(f.maxLength) }] : []),
          ...(f.maxCapacity !== undefined ? [{ key: "max_capacity", value: String(f.maxCapacity) }] : []),
        ],
      })),
    indexes: indexes.map((i) => ({ fieldName: i.fieldName, indexName: i.indexName, metricType: i.metricType })),
    load,
    shardsNum: info.shardsNum,
    partitionsNum: info.partitions.length,
    consistencyLevel: info.consistencyLevel,
    aliases: info.aliases,
    properties: Object.entries(info.properties ?? {}).map(([key, value]) => ({ key, value })),
    createTime: Number(info.createdTs >> 18n),
    functions: [],
  };
}

/** The REST v2 handlers, by `<category>/<action>`. */
export function restHandlers(client: VectorbusClient, opts: { allowInt64: (ctx: RestContext) => boolean }): Record<string, RestHandler> {
  const call = <V extends keyof ProxyApi & string>(verb: V, body: ProxyApi[V][0], ctx: RestContext) => client.call(verb, body, { timeoutMs: ctx.timeoutMs, ...(ctx.trace ? { trace: ctx.trace } : {}) });
  const db = (ctx: RestContext) => (ctx.dbName ? { dbName: ctx.dbName } : {});
  const describe = (ctx: RestContext, collectionName: string): Promise<CollectionInfo> => call("DescribeCollection", { ...db(ctx), collectionName }, ctx);
  const loadState = async (ctx: RestContext, collectionName: string, partitionNames?: string[]) => {
    const s = await call("GetLoadState", { ...db(ctx), collectionName, ...(partitionNames ? { partitionNames } : {}) }, ctx);
    return { loadState: `LoadState${s.state}`, loadProgress: s.state === "Loaded" ? 100 : Math.floor(s.progress) };
  };
  const createIndexes = async (ctx: RestContext, collectionName: string, params: unknown) => {
    if (!Array.isArray(params)) throw invalid("indexParams must be a list");
    for (const p of params as Body[]) {
      const fieldName = str(p, "fieldName", "indexParams[].fieldName");
      const { index_type, metric_type, ...rest } = (p.params ?? {}) as Body;
      await call(
        "CreateIndex",
        {
          ...db(ctx),
          collectionName,
          fieldName,
          ...(opt(p, "indexName") ? { indexName: p.indexName as string } : {}),
          indexType: String(p.indexType ?? index_type ?? "AUTOINDEX"),
          metricType: String(p.metricType ?? metric_type ?? "COSINE"),
          params: rest,
        },
        ctx,
      );
    }
  };

  const searchHits = async (s: Body, top: Body, info: CollectionInfo, ctx: RestContext): Promise<{ hits: SearchHits[]; limit: number }> => {
    const data = s.data as unknown;
    if (!Array.isArray(data) || data.length === 0) throw invalid(`search on collection "${info.name}": data must be a list of vectors`);
    const vectors = (typeof data[0] === "number" ? [data] : data) as number[][];
    const sp = (s.searchParams ?? top.searchParams ?? {}) as Body;
    const params = { ...((sp.params ?? {}) as Body) };
    const limit = Number(s.limit ?? top.limit ?? 100);
    const offset = Number(s.offset ?? top.offset ?? sp.offset ?? 0);
    const metric = (s.metricType ?? sp.metricType ?? sp.metric_type) as string | undefined;
    const filter = opt(s, "filter");
    const groupBy = (top.groupingField ?? s.groupingField) as string | undefined;
    const partitionNames = list(top.partitionNames);
    const level = consistency(top.consistencyLevel);
    const req: SearchReq = {
      ...db(ctx),
      collectionName: info.name,
      data: vectors.map((v) => Float32Array.from(v)),
      limit,
      offset,
      outputFields: (list(top.outputFields) ?? []) as string[],
      ...(opt(s, "annsField") ? { annsField: s.annsField as string } : {}),
      ...(metric ? { metricType: metric as SearchReq["metricType"] } : {}),
      ...(Object.keys(params).length > 0 ? { searchParams: params } : {}),
      ...(filter ? { filter } : {}),
      ...(s.filterParams || top.filterParams ? { filterParams: (s.filterParams ?? top.filterParams) as Record<string, unknown> } : {}),
      ...(groupBy ? { groupByField: groupBy } : {}),
      ...(partitionNames ? { partitionNames } : {}),
      ...(level ? { consistencyLevel: level } : {}),
    };
    const { results } = await call("Search", req, ctx);
    return { hits: results, limit };
  };

  const hitsOut = (info: CollectionInfo, hits: SearchHits[], ctx: RestContext) => {
    const pk = info.schema.fields.find((f) => f.isPrimaryKey)!;
    const allow = opts.allowInt64(ctx);
    const data: Record<string, unknown>[] = [];
    for (const h of hits) {
      for (let i = 0; i < h.ids.length; i++) {
        data.push({ ...rowOut(info, h.entities[i] ?? {}, allow), [pk.name]: out64(h.ids[i]!, allow), distance: h.scores[i] });
      }
    }
    return { data, extra: { topks: hits.map((h) => h.ids.length) } };
  };

  const write = async (verb: "Insert" | "Upsert", body: Body, ctx: RestContext) => {
    const collectionName = str(body, "collectionName");
    const info = await describe(ctx, collectionName);
    const rows = Array.isArray(body.data) ? (body.data as unknown[]) : body.data ? [body.data] : [];
    if (rows.length === 0) throw invalid(`insert into collection "${collectionName}": data is empty`);
    const res = await client[verb === "Insert" ? "insert" : "upsert"](
      { ...db(ctx), collectionName, ...(opt(body, "partitionName") ? { partitionName: body.partitionName as string } : {}), rows: rows.map((r, i) => rowIn(info, r, i)) },
      { timeoutMs: ctx.timeoutMs },
    );
    const allow = opts.allowInt64(ctx);
    const ids = Array.from(res.ids as ArrayLike<bigint | string>, (x) => out64(x, allow));
    return verb === "Insert" ? { data: { insertCount: res.insertCount, insertIds: ids } } : { data: { upsertCount: res.insertCount, upsertIds: ids } };
  };

  const query = async (body: Body, ctx: RestContext, ids?: unknown[]) => {
    const collectionName = str(body, "collectionName");
    const info = await describe(ctx, collectionName);
    const pk = info.schema.fields.find((f) => f.isPrimaryKey)!;
    const outputFields = (list(body.outputFields) ?? ["*"]) as string[];
    const level = consistency(body.consistencyLevel);
    const partitionNames = list(body.partitionNames);
    const filter = opt(body, "filter");
    const { rows } = await call(
      "Query",
      {
        ...db(ctx),
        collectionName,
        outputFields,
        ...(filter ? { filter } : {}),
        ...(body.filterParams ? { filterParams: body.filterParams as Record<string, unknown> } : {}),
        ...(ids ? { ids: (pk.type === "Int64" ? ids.map((x) => toBigInt(x as number | string, pk.name, 0)) : ids.map(String)) as bigint[] | string[] } : {}),
        ...(body.limit !== undefined ? { limit: Number(body.limit) } : {}),
        ...(body.offset !== undefined ? { offset: Number(body.offset) } : {}),
        ...(partitionNames ? { partitionNames } : {}),
        ...(level ? { consistencyLevel: level } : {}),
      },
      ctx,
    );
    const allow = opts.allowInt64(ctx);
    return { data: rows.map((r) => rowOut(info, r, allow)) };
  };

  return {
    // collections
    async "collections/create"(body, ctx) {
      const collectionName = str(body, "collectionName");
      const { schema, quick } = schemaOf(body, collectionName);
      const p = (body.params ?? {}) as Body;
      const level = consistency(p.consistencyLevel ?? body.consistencyLevel);
      const shards = Number(p.shardsNum ?? body.shardsNum ?? 0);
      await call("CreateCollection", { ...db(ctx), schema, ...(shards > 0 ? { shardsNum: shards } : {}), ...(level ? { consistencyLevel: level } : {}) }, ctx);
      if (quick) {
        const vec = schema.fields.find((f) => f.type === "FloatVector")!;
        await createIndexes(ctx, collectionName, [{ fieldName: vec.name, indexType: "AUTOINDEX", metricType: String(body.metricType ?? "COSINE") }]);
      } else if (Array.isArray(body.indexParams) && body.indexParams.length > 0) {
        await createIndexes(ctx, collectionName, body.indexParams);
      }
      // with an index given, Milvus loads the new (empty) collection: it is searchable when the call returns
      if (quick || (Array.isArray(body.indexParams) && body.indexParams.length > 0)) {
        await call("LoadCollection", { ...db(ctx), collectionName, wait: true, timeoutMs: ctx.timeoutMs }, ctx);
      }
      return { data: {} };
    },
    async "collections/describe"(body, ctx) {
      const collectionName = str(body, "collectionName");
      const info = await describe(ctx, collectionName);
      const [{ indexes }, load] = await Promise.all([call("DescribeIndex", { ...db(ctx), collectionName }, ctx).catch(() => ({ indexes: [] })), loadState(ctx, collectionName)]);
      return { data: describeOut(info, load.loadState, indexes) };
    },
    async "collections/list"(_body, ctx) {
      return { data: (await call("ListCollections", { ...db(ctx) }, ctx)).collections };
    },
    async "collections/has"(body, ctx) {
      return { data: { has: (await call("HasCollection", { ...db(ctx), collectionName: str(body, "collectionName") }, ctx)).has } };
    },
    async "collections/drop"(body, ctx) {
      await call("DropCollection", { ...db(ctx), collectionName: str(body, "collectionName") }, ctx);
      return { data: {} };
    },
    async "collections/rename"(body, ctx) {
      await call(
        "RenameCollection",
        { ...db(ctx), oldName: str(body, "collectionName"), newName: str(body, "newCollectionName"), ...(opt(body, "newDbName") ? { newDbName: body.newDbName as string } : {}) },
        ctx,
      );
      return { data: {} };
    },
    async "collections/get_stats"(body, ctx) {
      const s = await call("GetCollectionStatistics", { ...db(ctx), collectionName: str(body, "collectionName") }, ctx);
      return { data: { rowCount: s.rowCount } };
    },
    async "collections/alter_properties"(body, ctx) {
      const props = body.properties;
      if (!props || typeof props !== "object" || Array.isArray(props)) throw invalid("properties is required: an object of property names and values");
      const properties = Object.fromEntries(Object.entries(props as Body).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
      await call("AlterCollection", { ...db(ctx), collectionName: str(body, "collectionName"), properties }, ctx);
      return { data: {} };
    },
    async "collections/drop_properties"(body, ctx) {
      const deleteKeys = list(body.propertyKeys);
      if (!deleteKeys) throw invalid("propertyKeys is required: a list of property names");
      await call("AlterCollection", { ...db(ctx), collectionName: str(body, "collectionName"), deleteKeys }, ctx);
      return { data: {} };
    },
    async "collections/flush"(body, ctx) {
      await call("Flush", { ...db(ctx), collectionNames: [str(body, "collectionName")], wait: true, timeoutMs: ctx.timeoutMs }, ctx);
      return { data: {} };
    },
    async "collections/load"(body, ctx) {
      await call("LoadCollection", { ...db(ctx), collectionName: str(body, "collectionName"), wait: false }, ctx);
      return { data: {} };
    },
    async "collections/release"(body, ctx) {
      await call("ReleaseCollection", { ...db(ctx), collectionName: str(body, "collectionName") }, ctx);
      return { data: {} };
    },
    async "collections/get_load_state"(body, ctx) {
      return { data: await loadState(ctx, str(body, "collectionName"), list(body.partitionNames)) };
    },

    // entities
    "entities/insert": (body, ctx) => write("Insert", body, ctx),
    "entities/upsert": (body, ctx) => write("Upsert", body, ctx),
    async "entities/delete"(body, ctx) {
      const collectionName = str(body, "collectionName");
      const filter = str(body, "filter");
      const res = await call("Delete", { ...db(ctx), collectionName, filter, ...(opt(body, "partitionName") ? { partitionName: body.partitionName as string } : {}) }, ctx);
      return { data: { deleteCount: res.deleteCount } };
    },
    "entities/query": (body, ctx) => query(body, ctx),
    async "entities/get"(body, ctx) {
      const id = body.id as unknown;
      const ids = Array.isArray(id) ? id : id === undefined || id === null ? [] : [id];
      if (ids.length === 0) throw invalid("id is required");
      return query(body, ctx, ids);
    },
    async "entities/search"(body, ctx) {
      const info = await describe(ctx, str(body, "collectionName"));
      const { hits } = await searchHits(body, body, info, ctx);
      return hitsOut(info, hits, ctx);
    },
    async "entities/hybrid_search"(body, ctx) {
      const info = await describe(ctx, str(body, "collectionName"));
      const subs = body.search as Body[] | undefined;
      if (!Array.isArray(subs) || subs.length === 0) throw invalid(`hybrid search on collection "${info.name}": search must be a list of requests`);
      const limit = Number(body.limit ?? 100);
      const offset = Number(body.offset ?? 0);
      const rerank = (body.rerank ?? { strategy: "rrf", params: { k: 60 } }) as Body;
      const strategy = String(rerank.strategy ?? "rrf").toLowerCase();
      const rp = (rerank.params ?? {}) as Body;
      const ones = await Promise.all(subs.map((s) => searchHits({ ...s, offset: 0 }, { ...body, limit: undefined, offset: undefined, groupingField: undefined }, info, ctx)));
      const metrics = subs.map((s) => String(s.metricType ?? (s.searchParams as Body | undefined)?.metricType ?? "COSINE").toUpperCase());
      const weights = rp.weights as number[] | undefined;
      if (strategy === "weighted" && (!Array.isArray(weights) || weights.length !== subs.length)) {
        throw invalid(`hybrid search on collection "${info.name}": the weighted ranker needs ${subs.length} weights`);
      }
      if (strategy !== "rrf" && strategy !== "weighted") throw invalid(`hybrid search on collection "${info.name}": unknown ranker "${strategy}" (rrf or weighted)`);
      const k = Number(rp.k ?? 60);
      const nq = ones[0]!.hits.length;
      const rank = (i: number, r: number, score: number) =>
        strategy === "rrf" ? 1 / (k + r + 1) : weights![i]! * (rp.norm_score === false ? score : normalizedScore(score, metrics[i]!));
      const fused = fuseHits(ones.map((o) => o.hits), nq, rank, offset, limit);
      return hitsOut(info, fused, ctx);
    },

    // indexes
    async "indexes/create"(body, ctx) {
      await createIndexes(ctx, str(body, "collectionName"), body.indexParams);
      return { data: {} };
    },
    async "indexes/describe"(body, ctx) {
      const collectionName = str(body, "collectionName");
      const { indexes } = await call("DescribeIndex", { ...db(ctx), collectionName, ...(opt(body, "indexName") ? { indexName: body.indexName as string } : {}) }, ctx);
      if (indexes.length === 0) throw new VbError(ErrorCode.IndexNotFound, `index not found: collection "${collectionName}" has no index${opt(body, "indexName") ? ` "${String(body.indexName)}"` : ""} (700)`);
      return {
        data: indexes.map((i) => ({
          indexName: i.indexName,
          fieldName: i.fieldName,
          indexType: i.indexType,
          metricType: i.metricType,
          indexState: i.state,
          indexedRows: i.indexedRows,
          totalRows: i.totalRows,
          pendingRows: Math.max(0, i.totalRows - i.indexedRows),
          failReason: i.failedBuilds.map((f) => `segment ${f.segmentId}: ${f.reason}`).join("; "),
          params: i.params,
        })),
      };
    },
    async "indexes/list"(body, ctx) {
      const { indexes } = await call("DescribeIndex", { ...db(ctx), collectionName: str(body, "collectionName") }, ctx).catch((err: unknown) => {
        if (err instanceof VbError && err.code === ErrorCode.IndexNotFound) return { indexes: [] };
        throw err;
      });
      return { data: indexes.map((i) => i.indexName) };
    },
    async "indexes/drop"(body, ctx) {
      await call("DropIndex", { ...db(ctx), collectionName: str(body, "collectionName"), indexName: str(body, "indexName") }, ctx);
      return { data: {} };
    },

    // partitions
    async "partitions/create"(body, ctx) {
      await call("CreatePartition", { ...db(ctx), collectionName: str(body, "collectionName"), partitionName: str(body, "partitionName") }, ctx);
      return { data: {} };
    },
    async "partitions/drop"(body, ctx) {
      await call("DropPartition", { ...db(ctx), collectionName: str(body, "collectionName"), partitionName: str(body, "partitionName") }, ctx);
      return { data: {} };
    },
    async "partitions/has"(body, ctx) {
      return { data: { has: (await call("HasPartition", { ...db(ctx), collectionName: str(body, "collectionName"), partitionName: str(body, "partitionName") }, ctx)).has } };
    },
    async "partitions/get_stats"(body, ctx) {
      const s = await call("GetPartitionStatistics", { ...db(ctx), collectionName: str(body, "collectionName"), partitionName: str(body, "partitionName") }, ctx);
      return { data: { rowCount: s.rowCount } };
    },
    async "partitions/list"(body, ctx) {
      return { data: (await call("ListPartitions", { ...db(ctx), collectionName: str(body, "collectionName") }, ctx)).partitions };
    },
    async "partitions/load"(body, ctx) {
      await call("LoadPartitions", { ...db(ctx), collectionName: str(body, "collectionName"), partitionNames: list(body.partitionNames) ?? [], wait: false }, ctx);
      return { data: {} };
    },
    async "partitions/release"(body, ctx) {
      await call("ReleasePartitions", { ...db(ctx), collectionName: str(body, "collectionName"), partitionNames: list(body.partitionNames) ?? [] }, ctx);
      return { data: {} };
    },

    // aliases
    async "aliases/create"(body, ctx) {
      await call("CreateAlias", { ...db(ctx), alias: str(body, "aliasName"), collectionName: str(body, "collectionName") }, ctx);
      return { data: {} };
    },
    async "aliases/drop"(body, ctx) {
      await call("DropAlias", { ...db(ctx), alias: str(body, "aliasName") }, ctx);
      return { data: {} };
    },
    async "aliases/alter"(body, ctx) {
      await call("AlterAlias", { ...db(ctx), alias: str(body, "aliasName"), collectionName: str(body, "collectionName") }, ctx);
      return { data: {} };
    },
    async "aliases/describe"(body, ctx) {
      const a = await call("DescribeAlias", { ...db(ctx), alias: str(body, "aliasName") }, ctx);
      return { data: { aliasName: a.alias, collectionName: a.collectionName, dbName: a.dbName } };
    },
    async "aliases/list"(body, ctx) {
      const collectionName = opt(body, "collectionName");
      return { data: (await call("ListAliases", { ...db(ctx), ...(collectionName ? { collectionName } : {}) }, ctx)).aliases };
    },

    // databases
    async "databases/create"(body, ctx) {
      await call("CreateDatabase", { dbName: str(body, "dbName") }, ctx);
      return { data: {} };
    },
    async "databases/drop"(body, ctx) {
      await call("DropDatabase", { dbName: str(body, "dbName") }, ctx);
      return { data: {} };
    },
    async "databases/list"(_body, ctx) {
      return { data: (await call("ListDatabases", {}, ctx)).databases };
    },
    async "databases/describe"(body, ctx) {
      const dbName = str(body, "dbName");
      const { databases } = await call("ListDatabases", {}, ctx);
      if (!databases.includes(dbName)) throw new VbError(ErrorCode.DatabaseNotFound, `database "${dbName}" not found (800)`);
      return { data: { dbName, dbID: 0, properties: [] } };
    },

    // resource groups
    ...resourceGroupHandlers(call),
  };
}

/** JSON text of a reply, with Int64Text values written as bare numbers. */
export function replyJson(value: unknown): string {
  const marks: string[] = [];
  const text = JSON.stringify(value, (_k, v: unknown) => {
    if (v instanceof Int64Text) {
      marks.push(v.text);
      return `\u0000int64:${marks.length - 1}\u0000`;
    }
    if (typeof v === "bigint") return v.toString();
    return v;
  });
  return marks.length === 0 ? text : text.replace(/"\\u0000int64:(\d+)\\u0000"/g, (_m, i: string) => marks[Number(i)]!);
}
