/**
 * MilvusService, call by call, on the native API: each handler reads the Milvus request, asks the proxy
 * through the typed client, and returns the reply's fields (the status is added by the server: OK, or
 * the VbError's code as Milvus numbers it). A call with no handler here answers "unimplemented".
 */
import { fuseHits, normalizedScore } from "../fuse.ts";
import { nodeNumber, resourceGroupOf, rgConfigOf } from "../rgpb.ts";
import { randomInt } from "node:crypto";
import { encode } from "../../../protocol/codec.ts";
import { ErrorCode, VbError } from "../../../protocol/errors.ts";
import type { CollectionInfo } from "../../../protocol/meta.ts";
import type { InsertRes, ProxyApi, SearchHits, SearchReq } from "../../../protocol/messages/proxy.ts";
import { CONSISTENCY_LEVELS, type ConsistencyLevel } from "../../../protocol/schema.ts";
import type { VectorbusClient } from "../../control/client.ts";
import type { Trace } from "../../../runtime/trace.ts";
import { columnsFromFieldData, fieldsDataOf, outputPlan, rowCountOf, sliceColumns } from "./field_data.ts";
import { decodeCollectionSchema, decodePlaceholderGroup, type Msg } from "./proto.ts";
import { describeToMilvus, keyValues, schemaFromMilvus, toKeyValues, utcMs } from "./schema_map.ts";
import { unimplemented } from "./status.ts";

/** The Milvus API level this front door answers GetVersion with. */
export const MILVUS_API_VERSION = "v2.6.0";
const COUNT_STAR = "count(*)";

export interface CallContext {
  /** the request's db_name, else the `dbname` header the SDKs send */
  dbName: string | undefined;
  timeoutMs: number;
  /** the caller's trace (a gRPC `traceparent`): the native calls carry it on */
  trace?: Trace;
}

export type Handler = (req: Msg, ctx: CallContext) => Promise<Msg>;

function invalid(message: string): VbError {
  return new VbError(ErrorCode.ParameterInvalid, message);
}

function nonEmpty(s: unknown): string | undefined {
  return typeof s === "string" && s !== "" ? s : undefined;
}

function requireName(req: Msg, key = "collection_name"): string {
  const v = nonEmpty(req[key]);
  if (!v) throw invalid(`${key} is required`);
  return v;
}

function consistencyOf(req: Msg): ConsistencyLevel | undefined {
  if (req.use_default_consistency) return undefined;
  const c = req.consistency_level as string;
  return CONSISTENCY_LEVELS.includes(c as ConsistencyLevel) ? (c as ConsistencyLevel) : undefined;
}

function guaranteeOf(req: Msg): bigint | undefined {
  const g = req.guarantee_timestamp as string | undefined;
  return g && g !== "0" ? BigInt(g) : undefined;
}

function names(xs: unknown): string[] | undefined {
  return Array.isArray(xs) && xs.length > 0 ? (xs as string[]) : undefined;
}

function parseJsonObject(text: string, what: string): Record<string, unknown> {
  if (text.trim() === "") return {};
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v === "object" && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // said below
  }
  throw invalid(`${what} must be a JSON object, got ${JSON.stringify(text)}`);
}

/** A key-value string that looks like a number becomes one (index params arrive as strings). */
function numeric(v: string): unknown {
  return v.trim() !== "" && Number.isFinite(Number(v)) ? Number(v) : v;
}

function templateValue(v: Msg): unknown {
  switch (v?.val) {
    case "bool_val":
      return v.bool_val;
    case "int64_val": {
      const b = BigInt(v.int64_val as string);
      return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
    }
    case "float_val":
      return v.float_val;
    case "string_val":
      return v.string_val;
    case "array_val":
      return templateArray(v.array_val as Msg);
    default:
      return null;
  }
}

function templateArray(a: Msg): unknown[] {
  const k = a?.data as string | undefined;
  if (!k) return [];
  const xs = (a[k]?.data ?? []) as unknown[];
  if (k === "long_data") return xs.map((x) => Number(x));
  if (k === "array_data") return xs.map((x) => templateArray(x as Msg));
  if (k === "json_data") return xs.map((x) => JSON.parse(Buffer.from(x as Uint8Array).toString("utf8")) as unknown);
  return xs;
}

function filterParamsOf(req: Msg): Record<string, unknown> | undefined {
  const m = req.expr_template_values as Record<string, Msg> | undefined;
  if (!m || Object.keys(m).length === 0) return undefined;
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, templateValue(v)]));
}

/** One query vector per placeholder value: little-endian float32 bytes. */
function queryVectors(bytes: Uint8Array, collection: string): Float32Array[] {
  const group = decodePlaceholderGroup(bytes);
  const ph = (group.placeholders as Msg[] | undefined)?.[0];
  if (!ph) throw invalid(`search on collection "${collection}": the placeholder group holds no vectors`);
  if (ph.type !== "FloatVector") {
    throw invalid(`search on collection "${collection}": placeholder type ${String(ph.type)} is not supported (FloatVector only)`);
  }
  return (ph.values as Uint8Array[]).map((b, i) => {
    if (b.byteLength % 4 !== 0) throw invalid(`search on collection "${collection}": query vector ${i} is ${b.byteLength} bytes, not float32 values`);
    const out = new Float32Array(b.byteLength / 4);
    const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    for (let j = 0; j < out.length; j++) out[j] = view.getFloat32(j * 4, true);
    return out;
  });
}

function roundTo(x: number, decimals: number): number {
  if (decimals < 0) return x;
  const p = 10 ** decimals;
  return Math.round(x * p) / p;
}

/** Some native errors name a collection by id (`collection 69 is not loaded`): a Milvus client knows it by name. */
function namingCollection(err: unknown, name: string | undefined): unknown {
  if (!(err instanceof VbError) || !name) return err;
  const m = /\bcollection (\d+)\b/.exec(err.message);
  if (!m) return err;
  const message = err.message.replace(m[0], `collection "${name}" (id ${m[1]})`);
  return new VbError(err.code, message, { retriable: err.retriable, cause: err });
}

/** One search of a SearchRequest (or a HybridSearch sub-request): the native request built from it, and its hits. */
interface OneSearch {
  hits: SearchHits[];
  nq: number;
  limit: number;
  roundDecimal: number;
  annsField: string;
  metric: string | undefined;
  dbName: string | undefined;
}

function outputNames(xs: unknown): string[] {
  return ((xs ?? []) as string[]).map((n) => n.trim()).filter((n) => n !== "");
}

function rejectFunctionScore(req: Msg, collection: string): void {
  const fs = req.function_score as Msg | null | undefined;
  if (fs && Array.isArray(fs.functions) && fs.functions.length > 0) {
    throw invalid(`search on collection "${collection}": function rerankers are not supported; use the RRF or weighted ranker`);
  }
}

/** The ranker of a HybridSearch's rank_params: RRF (`k`, default 60) or weighted (one weight per request). */
function rankerOf(rp: Record<string, string>, requests: number, collection: string): (req: number, rank: number, score: number, metric: string) => number {
  const strategy = (rp.strategy ?? "rrf").toLowerCase();
  const params = rp.params ? parseJsonObject(rp.params, "rank_params.params") : {};
  if (strategy === "rrf") {
    const k = Number(params.k ?? 60);
    if (!Number.isFinite(k) || k <= 0 || k >= 16_384) throw invalid(`hybrid search on collection "${collection}": RRF k must be in (0, 16384), got ${String(params.k)}`);
    return (_req, rank) => 1 / (k + rank + 1);
  }
  if (strategy === "weighted") {
    const weights = params.weights as unknown;
    if (!Array.isArray(weights) || weights.length !== requests || weights.some((w) => typeof w !== "number" || w < 0 || w > 1)) {
      throw invalid(`hybrid search on collection "${collection}": the weighted ranker needs ${requests} weights in [0, 1], got ${JSON.stringify(weights)}`);
    }
    const norm = params.norm_score !== false;
    return (req, _rank, score, metric) => (weights[req] as number) * (norm ? normalizedScore(score, metric) : score);
  }
  throw invalid(`hybrid search on collection "${collection}": unknown ranker "${strategy}" (rrf or weighted)`);
}

export function milvusHandlers(client: VectorbusClient, opts: { serverVersion: string }): Record<string, Handler> {
  const call = <V extends keyof ProxyApi & string>(verb: V, body: ProxyApi[V][0], ctx: CallContext) =>
    client.call(verb, body, { timeoutMs: ctx.timeoutMs, ...(ctx.trace ? { trace: ctx.trace } : {}) }).catch((err: unknown) => {
      throw namingCollection(err, (body as { collectionName?: string } | null)?.collectionName);
    });
  const describe = (ctx: CallContext, collectionName: string): Promise<CollectionInfo> =>
    call("DescribeCollection", { ...(ctx.dbName ? { dbName: ctx.dbName } : {}), collectionName }, ctx);
  const db = (ctx: CallContext) => (ctx.dbName ? { dbName: ctx.dbName } : {});
  /** segment id → the flush that covers it (GetFlushState may name segments only, as the SDK's flushSync does) */
  const flushes = new Map<string, { dbName: string | undefined; collectionName: string; flushTs: bigint }>();

  const write = async (verb: "Insert" | "Upsert", req: Msg, ctx: CallContext): Promise<Msg> => {
    const collectionName = requireName(req);
    const info = await describe(ctx, collectionName);
    const columns = columnsFromFieldData((req.fields_data ?? []) as Msg[], Number(req.num_rows ?? 0), info.schema);
    const n = rowCountOf(columns, info.schema);
    const base = { ...db(ctx), collectionName, ...(nonEmpty(req.partition_name) ? { partitionName: req.partition_name as string } : {}) };
    // one NATS message per part: the payload limit (1 MiB by default) is smaller than a gRPC message
    const limit = Math.floor((client.nc.info?.max_payload ?? 1024 * 1024) * 0.8);
    let per = Math.max(1, Math.ceil(n / Math.max(1, Math.ceil(encode({ columns }).byteLength / limit))));
    const parts: InsertRes[] = [];
    for (let start = 0; start < n || (n === 0 && parts.length === 0); ) {
      const end = Math.min(n, start + per);
      const part = n === 0 ? columns : sliceColumns(columns, info.schema, start, end);
      if (per > 1 && encode({ columns: part }).byteLength > limit) {
        per = Math.ceil(per / 2);
        continue;
      }
      parts.push(await call(verb, { ...base, columns: part }, ctx));
      if (n === 0) break;
      start = end;
    }
    const intIds = parts.every((p) => p.ids instanceof BigInt64Array);
    const ids = parts.flatMap((p) => Array.from(p.ids as ArrayLike<bigint | string>, (x) => String(x)));
    const timestamp = parts.reduce((t, p) => (p.timestamp > t ? p.timestamp : t), 0n);
    const count = parts.reduce((s, p) => s + p.insertCount, 0);
    return {
      IDs: intIds ? { int_id: { data: ids } } : { str_id: { data: ids } },
      succ_index: Array.from({ length: count }, (_, i) => i),
      err_index: [],
      acknowledged: true,
      insert_cnt: String(verb === "Insert" ? count : 0),
      upsert_cnt: String(verb === "Upsert" ? count : 0),
      timestamp: String(timestamp),
    };
  };

  const indexesOf = async (req: Msg, ctx: CallContext) => {
    const collectionName = requireName(req);
    const { indexes } = await call("DescribeIndex", { ...db(ctx), collectionName, ...(nonEmpty(req.index_name) ? { indexName: req.index_name as string } : {}) }, ctx);
    const field = nonEmpty(req.field_name);
    const found = field ? indexes.filter((i) => i.fieldName === field) : indexes;
    if (found.length === 0) {
      const what = nonEmpty(req.index_name) ? `index "${String(req.index_name)}"` : field ? `an index on field "${field}"` : "an index";
      throw new VbError(ErrorCode.IndexNotFound, `index not found: collection "${collectionName}" has no ${what} (700)`);
    }
    return { collectionName, indexes: found };
  };

  /** `req` is the search (or sub-request); `outer` carries the partitions, consistency and guarantee (the same object for a plain Search). */
  /** Search by primary keys: the stored vectors of those rows, in the order given, are the queries. */
  const vectorsOfIds = async (req: Msg, info: CollectionInfo, ctx: CallContext): Promise<Float32Array[]> => {
    const sp = keyValues(req.search_params);
    const field = sp.anns_field ? info.schema.fields.find((f) => f.name === sp.anns_field) : info.schema.fields.find((f) => f.type === "FloatVector");
    if (!field || field.type !== "FloatVector") throw invalid(`search on collection "${info.name}": no vector field ${JSON.stringify(sp.anns_field ?? "")}`);
    const pk = info.schema.fields.find((f) => f.isPrimaryKey)!;
    const given = req.ids as Msg;
    const ids: (bigint | string)[] =
      given?.id_field === "int_id" ? ((given.int_id?.data ?? []) as string[]).map((x) => BigInt(x)) : ((given?.str_id?.data ?? []) as string[]);
    if (ids.length === 0) throw invalid(`search on collection "${info.name}": ids is empty`);
    const { rows } = await call(
      "Query",
      {
        ...db(ctx),
        collectionName: info.name,
        ids: (pk.type === "Int64" ? (ids as bigint[]) : (ids as string[])) as bigint[] | string[],
        outputFields: [field.name],
        ...(consistencyOf(req) ? { consistencyLevel: consistencyOf(req)! } : {}),
      },
      ctx,
    );
    const byPk = new Map(rows.map((r) => [String(r[pk.name]), r[field.name] as ArrayLike<number>]));
    return ids.map((id) => {
      const v = byPk.get(String(id));
      if (!v) throw invalid(`search on collection "${info.name}": primary key ${String(id)} not found`);
      return Float32Array.from(v);
    });
  };

  const searchOne = async (req: Msg, outer: Msg, info: CollectionInfo, requested: string[], ctx: CallContext, vectors?: Float32Array[]): Promise<OneSearch> => {
    const collectionName = info.name;
    const sp = keyValues(req.search_params);
    const params = sp.params ? parseJsonObject(sp.params, "search_params.params") : {};
    const limit = Number(sp.topk ?? sp.limit ?? params.topk ?? params.limit ?? 10);
    const offset = Number(sp.offset ?? params.offset ?? 0);
    const roundDecimal = Number(sp.round_decimal ?? params.round_decimal ?? -1);
    const metric = sp.metric_type || (params.metric_type as string | undefined);
    const groupBy = sp.group_by_field || (params.group_by_field as string | undefined);
    const searchParams: Record<string, unknown> = { ...params };
    for (const k of ["topk", "limit", "offset", "round_decimal", "metric_type", "group_by_field", "anns_field"]) delete searchParams[k];
    const data = vectors ?? queryVectors((req.placeholder_group ?? new Uint8Array()) as Uint8Array, collectionName);
    const partitionNames = names(outer.partition_names);
    const filterParams = filterParamsOf(req);
    const consistencyLevel = consistencyOf(outer);
    const guaranteeTimestamp = guaranteeOf(outer);
    const annsField = sp.anns_field || info.schema.fields.find((f) => f.type === "FloatVector")?.name || "";
    const nreq: SearchReq = {
      ...db(ctx),
      collectionName,
      data,
      limit,
      offset,
      outputFields: requested,
      ...(sp.anns_field ? { annsField: sp.anns_field } : {}),
      ...(metric ? { metricType: metric as SearchReq["metricType"] } : {}),
      ...(Object.keys(searchParams).length > 0 ? { searchParams } : {}),
      ...(groupBy ? { groupByField: groupBy } : {}),
      ...(nonEmpty(req.dsl) ? { filter: req.dsl as string } : {}),
      ...(filterParams ? { filterParams } : {}),
      ...(partitionNames ? { partitionNames } : {}),
      ...(consistencyLevel ? { consistencyLevel } : {}),
      ...(guaranteeTimestamp !== undefined ? { guaranteeTimestamp } : {}),
    };
    const { results } = await call("Search", nreq, ctx);
    return { hits: results, nq: data.length, limit, roundDecimal, annsField, metric, dbName: ctx.dbName };
  };

  /** the metric a search ran with: the one asked for, else the index's on its field (COSINE without an index, as Milvus defaults) */
  const metricOf = async (o: OneSearch, collectionName: string, ctx: CallContext): Promise<string> => {
    if (o.metric) return o.metric.toUpperCase();
    const { indexes } = await call("DescribeIndex", { ...db(ctx), collectionName }, ctx).catch(() => ({ indexes: [] as { fieldName: string; metricType: string }[] }));
    return indexes.find((i) => i.fieldName === o.annsField)?.metricType ?? "COSINE";
  };

  const searchReply = (info: CollectionInfo, requested: string[], hits: SearchHits[], limit: number, roundDecimal: number, nq: number): Msg => {
    const plan = outputPlan(info, requested);
    const pk = info.schema.fields.find((f) => f.isPrimaryKey)!;
    const ids: string[] = [];
    const scores: number[] = [];
    const rows: Record<string, unknown>[] = [];
    for (const h of hits) {
      for (let i = 0; i < h.ids.length; i++) {
        const id = h.ids[i]!;
        ids.push(String(id));
        scores.push(roundTo(h.scores[i]!, roundDecimal));
        rows.push({ ...h.entities[i], [pk.name]: id });
      }
    }
    return {
      collection_name: info.name,
      session_ts: "0",
      results: {
        num_queries: String(nq),
        top_k: String(limit),
        topks: hits.map((h) => String(h.ids.length)),
        scores,
        ids: pk.type === "Int64" ? { int_id: { data: ids } } : { str_id: { data: ids } },
        fields_data: fieldsDataOf(info, plan, rows),
        output_fields: plan.names,
        primary_field_name: pk.name,
        recalls: [],
      },
    };
  };

  return {
    async Connect() {
      return {
        server_info: {
          build_tags: `vectorbus-${opts.serverVersion}`,
          build_time: "",
          git_commit: "",
          go_version: "",
          deploy_mode: "STANDALONE",
          reserved: { server: "vectorbus", version: opts.serverVersion },
        },
        identifier: String(randomInt(1, 2 ** 47)),
      };
    },
    async GetVersion() {
      return { version: MILVUS_API_VERSION };
    },
    async CheckHealth(_req, ctx) {
      try {
        await client.call("ListDatabases", {}, { timeoutMs: Math.min(ctx.timeoutMs, 5_000) });
        return { isHealthy: true, reasons: [], quota_states: [] };
      } catch (err) {
        return { isHealthy: false, reasons: [VbError.from(err).message], quota_states: [] };
      }
    },

    // databases
    async CreateDatabase(req, ctx) {
      await call("CreateDatabase", { dbName: requireName(req, "db_name") }, ctx);
      return {};
    },
    async DropDatabase(req, ctx) {
      await call("DropDatabase", { dbName: requireName(req, "db_name") }, ctx);
      return {};
    },
    async DescribeDatabase(req, ctx) {
      const dbName = nonEmpty(req.db_name) ?? "default";
      const { databases } = await call("ListDatabases", {}, ctx);
      if (!databases.includes(dbName)) throw new VbError(ErrorCode.DatabaseNotFound, `database "${dbName}" not found (800)`);
      return { db_name: dbName, dbID: "0", created_timestamp: "0", properties: [] };
    },
    async GetComponentStates(_req, ctx) {
      const healthy = await client.call("ListDatabases", {}, { timeoutMs: Math.min(ctx.timeoutMs, 5_000) }).then(
        () => true,
        () => false,
      );
      const state = { nodeID: "0", role: "Proxy", state_code: healthy ? "Healthy" : "Abnormal", extra_info: [] };
      return { state, subcomponent_states: [] };
    },
    async ListDatabases(_req, ctx) {
      const { databases } = await call("ListDatabases", {}, ctx);
      return { db_names: databases, created_timestamp: [], db_ids: [] };
    },

    // collections
    async CreateCollection(req, ctx) {
      const collectionName = requireName(req);
      const bytes = req.schema as Uint8Array | undefined;
      if (!bytes || bytes.byteLength === 0) throw invalid(`collection "${collectionName}": schema is required`);
      let decoded: Msg;
      try {
        decoded = decodeCollectionSchema(bytes);
      } catch (err) {
        throw invalid(`collection "${collectionName}": ${(err as Error).message}`);
      }
      const schema = schemaFromMilvus(decoded, collectionName);
      const shards = Number(req.shards_num ?? 0);
      const consistency = consistencyOf(req);
      const properties = keyValues(req.properties);
      await call(
        "CreateCollection",
        {
          ...db(ctx),
          schema,
          ...(shards > 0 ? { shardsNum: shards } : {}),
          ...(consistency ? { consistencyLevel: consistency } : {}),
          ...(Object.keys(properties).length > 0 ? { properties } : {}),
        },
        ctx,
      );
      return {};
    },
    async DescribeCollection(req, ctx) {
      const name = nonEmpty(req.collection_name);
      const id = req.collectionID && req.collectionID !== "0" ? BigInt(req.collectionID as string) : undefined;
      if (!name && id === undefined) throw invalid("collection_name is required");
      const info = await call("DescribeCollection", { ...db(ctx), ...(name ? { collectionName: name } : { collectionId: id! }) }, ctx);
      return describeToMilvus(info);
    },
    async HasCollection(req, ctx) {
      const { has } = await call("HasCollection", { ...db(ctx), collectionName: requireName(req) }, ctx);
      return { value: has };
    },
    async DropCollection(req, ctx) {
      await call("DropCollection", { ...db(ctx), collectionName: requireName(req) }, ctx);
      return {};
    },
    async ShowCollections(req, ctx) {
      const { collections } = await call("ListCollections", { ...db(ctx) }, ctx);
      const wanted = names(req.collection_names);
      const list = wanted ? collections.filter((c) => wanted.includes(c)) : collections;
      const rows = await Promise.all(
        list.map(async (name) => {
          const [info, load] = await Promise.all([
            describe(ctx, name),
            call("GetLoadState", { ...db(ctx), collectionName: name }, ctx).catch(() => ({ state: "NotLoad", progress: 0 })),
          ]);
          return { info, load };
        }),
      );
      const shown = req.type === "InMemory" ? rows.filter((r) => r.load.state === "Loaded" || r.load.state === "Loading") : rows;
      return {
        collection_names: shown.map((r) => r.info.name),
        collection_ids: shown.map((r) => String(r.info.collectionId)),
        created_timestamps: shown.map((r) => String(r.info.createdTs)),
        created_utc_timestamps: shown.map((r) => utcMs(r.info.createdTs)),
        inMemory_percentages: shown.map((r) => String(r.load.state === "Loaded" ? 100 : Math.floor(r.load.progress))),
        query_service_available: shown.map((r) => r.load.state === "Loaded"),
        shards_num: shown.map((r) => r.info.shardsNum),
      };
    },
    async GetCollectionStatistics(req, ctx) {
      const s = await call("GetCollectionStatistics", { ...db(ctx), collectionName: requireName(req) }, ctx);
      return { stats: [{ key: "row_count", value: String(s.rowCount) }] };
    },
    async AlterCollection(req, ctx) {
      const collectionName = requireName(req);
      if (nonEmpty(req.field_name)) throw unimplemented(`AlterCollection of field "${String(req.field_name)}" (AlterCollectionField)`);
      const properties = keyValues(req.properties);
      const deleteKeys = names(req.delete_keys) ?? [];
      await call("AlterCollection", { ...db(ctx), collectionName, properties, deleteKeys }, ctx);
      return {};
    },
    async GetPartitionStatistics(req, ctx) {
      const s = await call("GetPartitionStatistics", { ...db(ctx), collectionName: requireName(req), partitionName: requireName(req, "partition_name") }, ctx);
      return { stats: [{ key: "row_count", value: String(s.rowCount) }] };
    },
    async RenameCollection(req, ctx) {
      await call(
        "RenameCollection",
        { ...db(ctx), oldName: requireName(req, "oldName"), newName: requireName(req, "newName"), ...(nonEmpty(req.newDBName) ? { newDbName: req.newDBName as string } : {}) },
        ctx,
      );
      return {};
    },

    // partitions
    async CreatePartition(req, ctx) {
      await call("CreatePartition", { ...db(ctx), collectionName: requireName(req), partitionName: requireName(req, "partition_name") }, ctx);
      return {};
    },
    async DropPartition(req, ctx) {
      await call("DropPartition", { ...db(ctx), collectionName: requireName(req), partitionName: requireName(req, "partition_name") }, ctx);
      return {};
    },
    async HasPartition(req, ctx) {
      const { has } = await call("HasPartition", { ...db(ctx), collectionName: requireName(req), partitionName: requireName(req, "partition_name") }, ctx);
      return { value: has };
    },
    async ShowPartitions(req, ctx) {
      const info = await describe(ctx, requireName(req));
      const wanted = names(req.partition_names);
      const parts = wanted ? info.partitions.filter((p) => wanted.includes(p.name)) : info.partitions;
      return {
        partition_names: parts.map((p) => p.name),
        partitionIDs: parts.map((p) => String(p.partitionId)),
        created_timestamps: parts.map((p) => String(p.createdTs)),
        created_utc_timestamps: parts.map((p) => utcMs(p.createdTs)),
        inMemory_percentages: [],
      };
    },
    async LoadPartitions(req, ctx) {
      const replicas = Number(req.replica_number ?? 0);
      await call(
        "LoadPartitions",
        { ...db(ctx), collectionName: requireName(req), partitionNames: names(req.partition_names) ?? [], ...(replicas > 0 ? { replicaNumber: replicas } : {}), wait: false },
        ctx,
      );
      return {};
    },
    async ReleasePartitions(req, ctx) {
      await call("ReleasePartitions", { ...db(ctx), collectionName: requireName(req), partitionNames: names(req.partition_names) ?? [] }, ctx);
      return {};
    },

    // aliases
    async CreateAlias(req, ctx) {
      await call("CreateAlias", { ...db(ctx), alias: requireName(req, "alias"), collectionName: requireName(req) }, ctx);
      return {};
    },
    async DropAlias(req, ctx) {
      await call("DropAlias", { ...db(ctx), alias: requireName(req, "alias") }, ctx);
      return {};
    },
    async AlterAlias(req, ctx) {
      await call("AlterAlias", { ...db(ctx), alias: requireName(req, "alias"), collectionName: requireName(req) }, ctx);
      return {};
    },
    async DescribeAlias(req, ctx) {
      const a = await call("DescribeAlias", { ...db(ctx), alias: requireName(req, "alias") }, ctx);
      return { db_name: a.dbName, alias: a.alias, collection: a.collectionName };
    },
    async ListAliases(req, ctx) {
      const collectionName = nonEmpty(req.collection_name);
      const { aliases } = await call("ListAliases", { ...db(ctx), ...(collectionName ? { collectionName } : {}) }, ctx);
      return { db_name: ctx.dbName ?? "default", collection_name: collectionName ?? "", aliases };
    },

    // writes
    Insert: (req, ctx) => write("Insert", req, ctx),
    Upsert: (req, ctx) => write("Upsert", req, ctx),
    async Delete(req, ctx) {
      const collectionName = requireName(req);
      const filter = nonEmpty(req.expr);
      if (!filter) throw invalid(`delete from collection "${collectionName}": expr is required`);
      if (filterParamsOf(req)) throw invalid(`delete from collection "${collectionName}": template parameters in a delete expression are not supported`);
      const partitionName = nonEmpty(req.partition_name);
      const res = await call("Delete", { ...db(ctx), collectionName, filter, ...(partitionName ? { partitionName } : {}) }, ctx);
      return {
        IDs: { int_id: { data: [] } },
        succ_index: [],
        err_index: [],
        acknowledged: true,
        delete_cnt: String(res.deleteCount),
        timestamp: String(res.timestamp),
      };
    },
    async Flush(req, ctx) {
      const collectionNames = names(req.collection_names);
      if (!collectionNames) throw invalid("collection_names is required");
      const res = await call("Flush", { ...db(ctx), collectionNames, wait: false }, ctx);
      const segs: Record<string, { data: string[] }> = {};
      const flushTs: Record<string, string> = {};
      const sealTimes: Record<string, string> = {};
      const now = String(Math.floor(Date.now() / 1000));
      for (const [name, c] of Object.entries(res.collections)) {
        segs[name] = { data: c.segmentIds.map(String) };
        flushTs[name] = String(c.flushTs);
        sealTimes[name] = now;
        for (const s of c.segmentIds) flushes.set(String(s), { dbName: ctx.dbName, collectionName: name, flushTs: c.flushTs });
      }
      return { db_name: ctx.dbName ?? "default", coll_segIDs: segs, flush_coll_segIDs: segs, coll_seal_times: sealTimes, coll_flush_ts: flushTs, channel_cps: {} };
    },
    async GetFlushState(req, ctx) {
      const dbName = nonEmpty(req.db_name) ?? ctx.dbName;
      const collectionName = nonEmpty(req.collection_name);
      if (collectionName) {
        const flushTs = req.flush_ts && req.flush_ts !== "0" ? BigInt(req.flush_ts as string) : undefined;
        const { flushed } = await call("GetFlushState", { ...(dbName ? { dbName } : {}), collectionName, ...(flushTs !== undefined ? { flushTs } : {}) }, ctx);
        return { flushed };
      }
      // by segment ids: the flushes this front door started (a segment it did not see is taken as flushed)
      const pending = new Map<string, { dbName: string | undefined; collectionName: string; flushTs: bigint }>();
      for (const id of (req.segmentIDs ?? []) as string[]) {
        const f = flushes.get(String(id));
        if (f) pending.set(`${f.dbName ?? ""}/${f.collectionName}/${f.flushTs}`, f);
      }
      for (const f of pending.values()) {
        const { flushed } = await call("GetFlushState", { ...(f.dbName ? { dbName: f.dbName } : {}), collectionName: f.collectionName, flushTs: f.flushTs }, ctx);
        if (!flushed) return { flushed: false };
      }
      for (const id of (req.segmentIDs ?? []) as string[]) flushes.delete(String(id));
      return { flushed: true };
    },

    // indexes
    async CreateIndex(req, ctx) {
      const collectionName = requireName(req);
      const kv = keyValues(req.extra_params);
      const { index_type: indexType, metric_type: metricType, params: paramsText, ...rest } = kv;
      const params: Record<string, unknown> = paramsText ? parseJsonObject(paramsText, "extra_params.params") : {};
      for (const [k, v] of Object.entries(rest)) if (!(k in params)) params[k] = numeric(v);
      let fieldName = nonEmpty(req.field_name);
      if (!fieldName) {
        const info = await describe(ctx, collectionName);
        const vecs = info.schema.fields.filter((f) => f.type === "FloatVector");
        if (vecs.length !== 1) throw invalid(`create index on collection "${collectionName}": field_name is required`);
        fieldName = vecs[0]!.name;
      }
      await call(
        "CreateIndex",
        {
          ...db(ctx),
          collectionName,
          fieldName,
          ...(nonEmpty(req.index_name) ? { indexName: req.index_name as string } : {}),
          indexType: indexType || "AUTOINDEX",
          metricType: metricType || "COSINE",
          params,
        },
        ctx,
      );
      return {};
    },
    async DescribeIndex(req, ctx) {
      const { indexes } = await indexesOf(req, ctx);
      return {
        index_descriptions: indexes.map((i) => ({
          index_name: i.indexName,
          indexID: String(i.indexId),
          params: toKeyValues({ index_type: i.indexType, metric_type: i.metricType, params: JSON.stringify(i.params ?? {}) }),
          field_name: i.fieldName,
          indexed_rows: String(i.indexedRows),
          total_rows: String(i.totalRows),
          state: i.state,
          index_state_fail_reason: i.failedBuilds.map((f) => `segment ${f.segmentId}: ${f.reason}`).join("; "),
          pending_index_rows: String(Math.max(0, i.totalRows - i.indexedRows)),
        })),
      };
    },
    async GetIndexState(req, ctx) {
      const { indexes } = await indexesOf(req, ctx);
      const i = indexes[0]!;
      return { state: i.state, fail_reason: i.failedBuilds.map((f) => `segment ${f.segmentId}: ${f.reason}`).join("; ") };
    },
    async GetIndexBuildProgress(req, ctx) {
      const { collectionName, indexes } = await indexesOf(req, ctx);
      const p = await call("GetIndexBuildProgress", { ...db(ctx), collectionName, indexName: indexes[0]!.indexName }, ctx);
      return { indexed_rows: String(p.indexedRows), total_rows: String(p.totalRows) };
    },
    async DropIndex(req, ctx) {
      const { collectionName, indexes } = await indexesOf(req, ctx);
      for (const i of indexes) await call("DropIndex", { ...db(ctx), collectionName, indexName: i.indexName }, ctx);
      return {};
    },

    // load
    async LoadCollection(req, ctx) {
      const replicas = Number(req.replica_number ?? 0);
      const resourceGroups = names(req.resource_groups);
      await call(
        "LoadCollection",
        { ...db(ctx), collectionName: requireName(req), ...(replicas > 0 ? { replicaNumber: replicas } : {}), ...(resourceGroups ? { resourceGroups } : {}), wait: false },
        ctx,
      );
      return {};
    },
    async ReleaseCollection(req, ctx) {
      await call("ReleaseCollection", { ...db(ctx), collectionName: requireName(req) }, ctx);
      return {};
    },
    async GetLoadState(req, ctx) {
      const partitionNames = names(req.partition_names);
      const { state } = await call("GetLoadState", { ...db(ctx), collectionName: requireName(req), ...(partitionNames ? { partitionNames } : {}) }, ctx);
      return { state: `LoadState${state}` };
    },
    async GetLoadingProgress(req, ctx) {
      const p = await call("GetLoadingProgress", { ...db(ctx), collectionName: requireName(req) }, ctx);
      const progress = String(p.state === "Loaded" ? 100 : Math.floor(p.progress));
      return { progress, refresh_progress: progress };
    },
    async GetReplicas(req, ctx) {
      const name = nonEmpty(req.collection_name);
      const info = name
        ? await describe(ctx, name)
        : await call("DescribeCollection", { ...db(ctx), collectionId: BigInt((req.collectionID as string) || "0") }, ctx);
      const status = await call("GetStatus", {}, ctx);
      const c = status.collections.find((x) => x.collectionId === info.collectionId);
      return {
        replicas: (c?.replicas ?? []).map((r) => ({
          replicaID: String(r.replicaId),
          collectionID: String(r.collectionId),
          partition_ids: info.partitions.map((p) => String(p.partitionId)),
          shard_replicas: r.shardLeaders.map((l) => ({
            leaderID: nodeNumber(l.nodeId),
            leader_addr: l.address,
            dm_channel_name: l.vchannel,
            node_ids: [nodeNumber(l.nodeId)],
          })),
          node_ids: r.nodes.map(nodeNumber),
          resource_group_name: r.resourceGroup ?? "__default_resource_group",
          num_outbound_node: {},
        })),
      };
    },

    // resource groups and manual balance
    async CreateResourceGroup(req, ctx) {
      const config = req.config ? rgConfigOf(req.config as Msg) : undefined;
      await call("CreateResourceGroup", { resourceGroup: String(req.resource_group ?? ""), ...(config ? { config } : {}) }, ctx);
      return {};
    },
    async DropResourceGroup(req, ctx) {
      await call("DropResourceGroup", { resourceGroup: String(req.resource_group ?? "") }, ctx);
      return {};
    },
    async UpdateResourceGroups(req, ctx) {
      const groups = Object.fromEntries(Object.entries((req.resource_groups ?? {}) as Record<string, Msg>).map(([name, c]) => [name, rgConfigOf(c)]));
      await call("UpdateResourceGroups", { resourceGroups: groups }, ctx);
      return {};
    },
    async ListResourceGroups(_req, ctx) {
      const r = await call("ListResourceGroups", {}, ctx);
      return { resource_groups: r.resourceGroups };
    },
    async DescribeResourceGroup(req, ctx) {
      const { resourceGroup: g } = await call("DescribeResourceGroup", { resourceGroup: String(req.resource_group ?? "") }, ctx);
      return { resource_group: resourceGroupOf(g, (n) => n) };
    },
    async TransferNode(req, ctx) {
      const numNode = Number(req.num_node ?? 0);
      await call(
        "TransferNode",
        { sourceResourceGroup: String(req.source_resource_group ?? ""), targetResourceGroup: String(req.target_resource_group ?? ""), ...(numNode !== 0 ? { numNode } : {}) },
        ctx,
      );
      return {};
    },
    async TransferReplica(req, ctx) {
      const numReplica = Number(req.num_replica ?? 0);
      await call(
        "TransferReplica",
        {
          ...(nonEmpty(req.db_name) ? { dbName: req.db_name as string } : db(ctx)),
          collectionName: requireName(req),
          sourceResourceGroup: String(req.source_resource_group ?? ""),
          targetResourceGroup: String(req.target_resource_group ?? ""),
          ...(numReplica !== 0 ? { numReplica } : {}),
        },
        ctx,
      );
      return {};
    },
    async LoadBalance(req, ctx) {
      // Milvus numbers querynodes; Vectorbus names them (qn1): the number is the name's trailing digits
      const { nodes } = await call("GetStatus", {}, ctx);
      const nodeOf = (n: unknown) => {
        const hit = nodes.find((x) => nodeNumber(x.nodeId) === String(n));
        if (!hit) throw new VbError(ErrorCode.NodeNotFound, `LoadBalance: no querynode numbered ${String(n)} (901): vbus status lists them`);
        return hit.nodeId;
      };
      const dst = ((req.dst_nodeIDs ?? []) as unknown[]).map(nodeOf);
      const segs = ((req.sealed_segmentIDs ?? []) as unknown[]).map((x) => BigInt(String(x)));
      await call(
        "LoadBalance",
        {
          ...(nonEmpty(req.db_name) ? { dbName: req.db_name as string } : db(ctx)),
          ...(nonEmpty(req.collectionName) ? { collectionName: req.collectionName as string } : {}),
          srcNode: nodeOf(req.src_nodeID),
          ...(dst.length > 0 ? { dstNodes: dst } : {}),
          ...(segs.length > 0 ? { sealedSegmentIds: segs } : {}),
          wait: true,
          ...(ctx.timeoutMs ? { timeoutMs: ctx.timeoutMs } : {}),
        },
        ctx,
      );
      return {};
    },

    // reads
    async Search(req, ctx) {
      const collectionName = requireName(req);
      rejectFunctionScore(req, collectionName);
      const info = await describe(ctx, collectionName);
      const requested = outputNames(req.output_fields);
      const vectors = req.search_input === "ids" ? await vectorsOfIds(req, info, ctx) : undefined;
      const one = await searchOne(req, req, info, requested, ctx, vectors);
      return searchReply(info, requested, one.hits, one.limit, one.roundDecimal, one.nq);
    },
    async HybridSearch(req, ctx) {
      const collectionName = requireName(req);
      rejectFunctionScore(req, collectionName);
      const subs = (req.requests ?? []) as Msg[];
      if (subs.length === 0) throw invalid(`hybrid search on collection "${collectionName}": requests is empty`);
      const info = await describe(ctx, collectionName);
      const requested = outputNames(req.output_fields);
      const rp = keyValues(req.rank_params);
      const limit = Number(rp.limit ?? 10);
      const offset = Number(rp.offset ?? 0);
      const roundDecimal = Number(rp.round_decimal ?? -1);
      const ranker = rankerOf(rp, subs.length, collectionName);
      const ones = await Promise.all(subs.map((sub) => searchOne({ ...sub, collection_name: collectionName }, req, info, requested, ctx)));
      const nq = ones[0]!.nq;
      if (ones.some((o) => o.nq !== nq)) throw invalid(`hybrid search on collection "${collectionName}": every request must have the same nq`);
      const metrics = await Promise.all(ones.map((o) => metricOf(o, collectionName, ctx)));
      const fused = fuseHits(ones.map((o) => o.hits), nq, (i, r, score) => ranker(i, r, score, metrics[i]!), offset, limit);
      return searchReply(info, requested, fused, limit, roundDecimal, nq);
    },
    async Query(req, ctx) {
      const collectionName = requireName(req);
      const info = await describe(ctx, collectionName);
      const qp = keyValues(req.query_params);
      const limit = qp.limit !== undefined && qp.limit !== "" ? Number(qp.limit) : undefined;
      const offset = qp.offset !== undefined && qp.offset !== "" ? Number(qp.offset) : undefined;
      const requested = ((req.output_fields ?? []) as string[]).map((n) => n.trim()).filter((n) => n !== "");
      const countOnly = requested.length === 1 && requested[0]!.toLowerCase() === COUNT_STAR;
      const partitionNames = names(req.partition_names);
      const filterParams = filterParamsOf(req);
      const consistencyLevel = consistencyOf(req);
      const guaranteeTimestamp = guaranteeOf(req);
      const { rows } = await call(
        "Query",
        {
          ...db(ctx),
          collectionName,
          outputFields: countOnly ? [COUNT_STAR] : requested,
          ...(nonEmpty(req.expr) ? { filter: req.expr as string } : {}),
          ...(filterParams ? { filterParams } : {}),
          ...(limit !== undefined ? { limit } : {}),
          ...(offset !== undefined ? { offset } : {}),
          ...(partitionNames ? { partitionNames } : {}),
          ...(consistencyLevel ? { consistencyLevel } : {}),
          ...(guaranteeTimestamp !== undefined ? { guaranteeTimestamp } : {}),
        },
        ctx,
      );
      const pk = info.schema.fields.find((f) => f.isPrimaryKey)!;
      if (countOnly) {
        return {
          collection_name: collectionName,
          output_fields: [COUNT_STAR],
          primary_field_name: pk.name,
          fields_data: [{ type: "Int64", field_name: COUNT_STAR, scalars: { long_data: { data: [String(rows[0]?.[COUNT_STAR] ?? 0)] } } }],
        };
      }
      const plan = outputPlan(info, requested);
      return { collection_name: collectionName, output_fields: plan.names, primary_field_name: pk.name, fields_data: fieldsDataOf(info, plan, rows) };
    },
  };
}

/** ClientTelemetryService: the heartbeat the SDK sends once Connect named it. */
export const telemetryHandlers: Record<string, Handler> = {
  async ClientHeartbeat() {
    return { server_timestamp: String(Date.now()), commands: [] };
  },
};
