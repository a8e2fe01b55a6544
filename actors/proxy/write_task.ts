/**
 * Insert, Upsert, Delete and Flush in the proxy (Milvus's insertTask, upsertTask, deleteTask and
 * flushTask), beside read_task.ts:
 *  - PreExecute: resolve the collection and partition, check the rows against the schema (validate.ts),
 *    allocate primary keys for autoId, take a timestamp.
 *  - Execute: split the rows (or the keys to delete) by shard into messages that fit the payload limit
 *    (shard_split.ts) and publish them to the vchannels; note the positions reached for Session reads.
 * A Delete by filter is a Strong query for the keys first. Flush asks datacoord to seal the growing
 * segments and, with `wait`, polls its flush state until the segments are Flushed.
 *
 * The tasks run off the proxy's mailbox: what they need of the proxy (its caches, allocators, peers) comes
 * through a WriteContext, and what they change of it (the positions written) goes back through it.
 */
import { encode } from "../../protocol/codec.ts";
import { ALL_PARTITIONS, type DeleteMsg, type InsertMsg, type PkColumn, type UpsertMsg } from "../../protocol/dml.ts";
import { ErrorCode, namingCollection, VbError } from "../../protocol/errors.ts";
import { shardOfPk } from "../../protocol/hash.ts";
import { DEFAULT_PARTITION, type CollectionInfo } from "../../protocol/meta.ts";
import type { Req, Res } from "../../protocol/messages/api.ts";
import type { DatacoordApi, FlushResult } from "../../protocol/messages/datacoord.ts";
import type { DeleteReq, FlushRes, InsertReq, InsertRes, ProxyApi, QueryReq } from "../../protocol/messages/proxy.ts";
import { primaryField } from "../../protocol/schema.ts";
import type { DmlBatchItem } from "../../runtime/dml_log.ts";
import type { ClusterEnv } from "../env.ts";
import { obj, stringOf } from "../request_fields.ts";
import { splitByShard } from "./shard_split.ts";
import { validateColumns, validateRows } from "./validate.ts";

/** the share of the payload limit an encoded DML message may fill (the estimate is rough) */
const PAYLOAD_SHARE = 0.7;
/** primary keys in one delete message */
const DELETE_KEYS_PER_MSG = 50_000;
/** how long a waiting Flush waits by default */
const FLUSH_WAIT_MS = 120_000;

/** What the write tasks need of the proxy. */
export interface WriteContext {
  readonly env: ClusterEnv;
  /** the collection, from the proxy's cache or rootcoord */
  describe(dbName: string | undefined, name: string): Promise<CollectionInfo>;
  /** allocates `count` consecutive primary keys (autoId); returns the first */
  allocIds(count: number): Promise<bigint>;
  /** a timestamp from the proxy's pool */
  timestamp(): Promise<bigint>;
  datacoord<V extends keyof DatacoordApi & string>(verb: V, body: Req<DatacoordApi, V>): Promise<Res<DatacoordApi, V>>;
  /** a query through the proxy's read path (a Delete by filter finds its keys with one) */
  query(req: QueryReq): Promise<Res<ProxyApi, "Query">>;
  /** the furthest position a write reached on each vchannel it wrote to (Session reads wait for them) */
  written(positions: [vchannel: string, position: bigint][]): void;
}

/** A request body's `collectionName`, the body checked to be an object. */
function target<T>(body: unknown, verb: string): { req: T; name: string } {
  const req = obj(body, `${verb}: the request body`);
  return { req: req as T, name: stringOf(req.collectionName, `${verb}: "collectionName"`) };
}

function partitionId(info: CollectionInfo, name: string | undefined): bigint {
  const want = name ?? DEFAULT_PARTITION;
  const p = info.partitions.find((x) => x.name === want);
  if (!p) {
    throw new VbError(
      ErrorCode.PartitionNotFound,
      `partition "${want}" not found in collection "${info.name}" (200): create it first or name an existing one`,
    );
  }
  return p.partitionId;
}

/** Publishes the messages (message i to shard `shards[i]`) and notes the positions reached. */
async function publish(w: WriteContext, info: CollectionInfo, shards: number[], payloads: Uint8Array[]): Promise<void> {
  const items: DmlBatchItem[] = payloads.map((payload, i) => {
    const vch = info.vchannels[shards[i]!]!;
    return { subject: w.env.subjects.dmlSubject(vch.pchannel, vch.name), payload };
  });
  const positions = await w.env.dml.publishBatch(items);
  const best = new Map<string, bigint>();
  shards.forEach((shard, i) => {
    const v = info.vchannels[shard]!.name;
    if ((best.get(v) ?? 0n) < positions[i]!) best.set(v, positions[i]!);
  });
  w.written([...best]);
}

/** Insert (or Upsert: the rows replace those with the same primary keys). */
export async function insertTask(w: WriteContext, body: unknown, upsert: boolean): Promise<InsertRes> {
  const verb = upsert ? "Upsert" : "Insert";
  const { req, name } = target<InsertReq>(body, verb);
  if ((req.rows === undefined) === (req.columns === undefined)) {
    throw VbError.invalid(`${verb}: give either "rows" (a list of objects) or "columns" (field name → values)`);
  }
  const info = await w.describe(req.dbName, name);
  const partition = partitionId(info, req.partitionName);
  const schema = info.schema;
  const batch = req.rows !== undefined ? validateRows(schema, req.rows, { upsert }) : validateColumns(schema, req.columns, { upsert });
  if (batch.needsIds) {
    const start = await w.allocIds(batch.numRows);
    const pk = new BigInt64Array(batch.numRows);
    for (let i = 0; i < batch.numRows; i++) pk[i] = start + BigInt(i);
    batch.columns[batch.pkIndex] = { fieldId: batch.columns[batch.pkIndex]!.fieldId, data: pk };
  }
  const ts = await w.timestamp();
  const limit = w.env.nc.info?.max_payload ?? 1024 * 1024;
  const parts = splitByShard(schema, batch.columns, batch.pkIndex, batch.numRows, info.shardsNum, {
    maxRows: w.env.config.maxRowsPerMessage,
    maxBytes: Math.floor(limit * PAYLOAD_SHARE),
  });
  const payloads = parts.map((p) => {
    const msg: InsertMsg | UpsertMsg = {
      k: upsert ? "upsert" : "insert",
      collectionId: info.collectionId,
      partitionId: partition,
      ts,
      numRows: p.numRows,
      pks: p.pks,
      columns: p.columns,
    };
    return encode(msg);
  });
  await publish(w, info, parts.map((p) => p.shard), payloads);
  return { insertCount: batch.numRows, ids: batch.columns[batch.pkIndex]!.data as PkColumn, timestamp: ts };
}

/** Delete by primary keys, or by filter (a Strong query for the keys first). */
export async function deleteTask(w: WriteContext, body: unknown): Promise<{ deleteCount: number; timestamp: bigint }> {
  const { req, name } = target<DeleteReq>(body, "Delete");
  const info = await w.describe(req.dbName, name);
  const pkField = primaryField(info.schema);
  let ids = req.ids;
  if (req.filter !== undefined) {
    const found = await w.query({
      ...(req.dbName ? { dbName: req.dbName } : {}),
      collectionName: name,
      filter: req.filter,
      ...(req.ids !== undefined ? { ids: req.ids } : {}),
      ...(req.partitionName ? { partitionNames: [req.partitionName] } : {}),
      outputFields: [pkField.name],
      consistencyLevel: "Strong",
    } as QueryReq);
    if (found.rows.length === 0) return { deleteCount: 0, timestamp: 0n };
    ids = found.rows.map((r) => r[pkField.name]) as bigint[] | string[];
  }
  const pks = normalizePks(ids, pkField.type === "Int64");
  const partition = req.partitionName === undefined ? ALL_PARTITIONS : partitionId(info, req.partitionName);
  const ts = await w.timestamp();
  const byShard: number[][] = Array.from({ length: info.shardsNum }, () => []);
  for (let i = 0; i < pks.length; i++) byShard[shardOfPk(pks[i]!, info.shardsNum)]!.push(i);
  const shards: number[] = [];
  const payloads: Uint8Array[] = [];
  byShard.forEach((idx, shard) => {
    for (let off = 0; off < idx.length; off += DELETE_KEYS_PER_MSG) {
      const part = idx.slice(off, off + DELETE_KEYS_PER_MSG);
      const partPks: PkColumn = pks instanceof BigInt64Array ? BigInt64Array.from(part, (i) => pks[i]!) : part.map((i) => (pks as string[])[i]!);
      const msg: DeleteMsg = { k: "delete", collectionId: info.collectionId, partitionId: partition, ts, pks: partPks };
      shards.push(shard);
      payloads.push(encode(msg));
    }
  });
  await publish(w, info, shards, payloads);
  return { deleteCount: pks.length, timestamp: ts };
}

/** Seals the collections' growing segments; with `wait` (the default) answers once they are Flushed. */
export async function flushTask(w: WriteContext, body: unknown): Promise<FlushRes> {
  const req = obj(body, "Flush: the request body") as { dbName?: string; collectionNames?: unknown; wait?: boolean; timeoutMs?: number };
  if (!Array.isArray(req.collectionNames) || req.collectionNames.some((n) => typeof n !== "string")) {
    throw VbError.invalid(`Flush: "collectionNames" must be a list of collection names`);
  }
  const wait = req.wait !== false;
  const deadline = Date.now() + (typeof req.timeoutMs === "number" ? req.timeoutMs : FLUSH_WAIT_MS);
  const out: FlushRes = { collections: {} };
  const started: [string, FlushResult][] = [];
  for (const name of req.collectionNames as string[]) {
    const info = await w.describe(req.dbName, name);
    started.push([name, await named(info, w.datacoord("Flush", { collectionId: info.collectionId }))]);
  }
  for (const [name, fr] of started) {
    let flushed = false;
    if (wait) {
      for (;;) {
        ({ flushed } = await w
          .datacoord("GetFlushState", { collectionId: fr.collectionId, flushPositions: fr.flushPositions })
          .catch((err: unknown) => Promise.reject(namingCollection(err, fr.collectionId, name))));
        if (flushed) break;
        if (Date.now() > deadline) {
          throw new VbError(
            ErrorCode.Timeout,
            `flush of "${name}" did not finish in time: its datanode may be down or behind; check vbus status and retry`,
            { retriable: true },
          );
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    out.collections[name] = { segmentIds: fr.segmentIds, flushTs: fr.flushTs, flushed };
  }
  return out;
}

/** Whether the collection is flushed as of now: every vchannel's checkpoint has reached its current end. */
export async function flushStateTask(w: WriteContext, body: unknown): Promise<{ flushed: boolean }> {
  const { req, name } = target<{ dbName?: string }>(body, "GetFlushState");
  const info = await w.describe(req.dbName, name);
  const flushPositions: Record<string, bigint> = {};
  for (const v of info.vchannels) {
    flushPositions[v.name] = await w.env.dml.lastPosition(w.env.subjects.dmlStream(v.pchannel), w.env.subjects.dmlSubject(v.pchannel, v.name));
  }
  return named(info, w.datacoord("GetFlushState", { collectionId: info.collectionId, flushPositions }));
}

/** datacoord knows a collection by id only (`collection 69 was dropped`): the name goes in. */
function named<T>(info: CollectionInfo, work: Promise<T>): Promise<T> {
  return work.catch((err: unknown) => Promise.reject(namingCollection(err, info.collectionId, info.name)));
}

function normalizePks(ids: unknown, int64: boolean): PkColumn {
  const bad = () => VbError.invalid(`Delete: "ids" must be a non-empty list of ${int64 ? "Int64 (bigint or safe integer)" : "VarChar"} primary keys`);
  if (int64) {
    if (ids instanceof BigInt64Array) {
      if (ids.length === 0) throw bad();
      return ids;
    }
    if (!Array.isArray(ids) || ids.length === 0) throw bad();
    return BigInt64Array.from(ids, (v: unknown) => {
      if (typeof v === "bigint") return v;
      if (typeof v === "number" && Number.isSafeInteger(v)) return BigInt(v);
      throw bad();
    });
  }
  if (!Array.isArray(ids) || ids.length === 0 || ids.some((v) => typeof v !== "string")) throw bad();
  return ids as string[];
}
