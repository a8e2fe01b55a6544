/**
 * The proxy: the front door of the native API (`vb.proxy`, a queue group shared by every proxy).
 * DDL is checked and forwarded to rootcoord; writes are validated against the schema, given ids and a
 * timestamp, split by shard and published to the DML channels; Flush goes through datacoord.
 *
 * Requests run concurrently (`ctx.reenter`): a proxy is stateless but for its meta cache, which only the
 * mailbox changes (DDL events arrive as messages).
 */
import { encode } from "../../protocol/codec.ts";
import { ALL_PARTITIONS, type DeleteMsg, type InsertMsg, type PkColumn, type UpsertMsg } from "../../protocol/dml.ts";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import { shardOfPk } from "../../protocol/hash.ts";
import { DEFAULT_PARTITION, type CollectionInfo } from "../../protocol/meta.ts";
import { DATACOORD, type DatacoordApi, type FlushResult } from "../../protocol/messages/datacoord.ts";
import type { Req, Res } from "../../protocol/messages/api.ts";
import type { DeleteReq, FlushRes, InsertReq, InsertRes, ProxyApi } from "../../protocol/messages/proxy.ts";
import { ROOTCOORD, type RootcoordApi } from "../../protocol/messages/rootcoord.ts";
import { primaryField } from "../../protocol/schema.ts";
import { Actor, type Message } from "../../runtime/actor.ts";
import type { DmlBatchItem, DmlConsumption } from "../../runtime/dml_log.ts";
import { followEvents, type VbEvent } from "../events.ts";
import type { ClusterEnv } from "../env.ts";
import { MetaCache } from "./meta_cache.ts";
import { splitByShard } from "./shard_split.ts";
import { validateColumns, validateRows } from "./validate.ts";

const ASK_MS = 30_000;
/** the share of the payload limit an encoded DML message may fill (the estimate is rough) */
const PAYLOAD_SHARE = 0.7;

function requireObject(body: unknown, verb: string): Record<string, unknown> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw VbError.invalid(`${verb}: the request body must be an object`);
  }
  return body as Record<string, unknown>;
}

function requireString(body: Record<string, unknown>, field: string, verb: string): string {
  const v = body[field];
  if (typeof v !== "string" || v.length === 0) throw VbError.invalid(`${verb}: "${field}" must be a non-empty string`);
  return v;
}

const DDL_VERBS = [
  "CreateDatabase",
  "DropDatabase",
  "ListDatabases",
  "CreateCollection",
  "DropCollection",
  "DescribeCollection",
  "HasCollection",
  "RenameCollection",
  "CreatePartition",
  "DropPartition",
  "HasPartition",
  "CreateAlias",
  "DropAlias",
  "AlterAlias",
  "DescribeAlias",
  "ListAliases",
] as const;
const PASS_THROUGH = new Set<string>(DDL_VERBS);

export class ProxyActor extends Actor {
  private readonly cache = new MetaCache();
  private events: DmlConsumption | undefined;

  constructor(private readonly env: ClusterEnv) {
    super();
  }

  override async preStart(): Promise<void> {
    this.events = await followEvents(this.env, (ev) => this.ctx.self("proxy.Event", ev));
  }

  override async postStop(): Promise<void> {
    await this.events?.stop();
  }

  override receive(msg: Message): unknown {
    const verb = msg.type.startsWith("proxy.") ? msg.type.slice(6) : msg.type;
    if (verb === "Event") return this.onEvent(msg.body as VbEvent);
    if (verb === "Forget") {
      const f = msg.body as { dbName?: string; name: string };
      return this.cache.invalidateName(f.dbName, f.name);
    }
    if (PASS_THROUGH.has(verb)) return this.ctx.reenter(this.ddl(verb, msg.body));
    switch (verb) {
      case "ListCollections":
        return this.ctx.reenter(this.listCollections(msg.body));
      case "ListPartitions":
        return this.ctx.reenter(this.listPartitions(msg.body));
      case "Insert":
        return this.ctx.reenter(this.insert(msg.body, false));
      case "Upsert":
        return this.ctx.reenter(this.insert(msg.body, true));
      case "Delete":
        return this.ctx.reenter(this.delete(msg.body));
      case "Flush":
        return this.ctx.reenter(this.flush(msg.body));
      case "GetFlushState":
        return this.ctx.reenter(this.getFlushState(msg.body));
      case "GetCollectionStatistics":
        return this.ctx.reenter(this.statistics(msg.body));
      default:
        throw new VbError(ErrorCode.Unimplemented, `unknown request "${msg.type}": see ProxyApi for the verbs the proxy serves`);
    }
  }

  // ---- cache ----

  private onEvent(ev: VbEvent): void {
    switch (ev.kind) {
      case "collection.dropped":
        this.cache.invalidate(ev.collectionId);
        break;
      case "collection.altered":
        this.cache.invalidate(ev.collection.collectionId);
        this.cache.invalidateName(ev.collection.dbName, ev.collection.name);
        break;
      case "partition.created":
      case "partition.dropped":
        this.cache.invalidate(ev.collectionId);
        break;
      case "collection.created":
        this.cache.invalidateName(ev.collection.dbName, ev.collection.name);
        break;
      case "database.dropped":
        this.cache.clear();
        break;
    }
  }

  private rootcoord<V extends keyof RootcoordApi & string>(verb: V, body: Req<RootcoordApi, V>): Promise<Res<RootcoordApi, V>> {
    return this.ctx.ask(this.env.subjects.rootcoord(), `${ROOTCOORD}.${verb}`, body, { timeoutMs: ASK_MS });
  }

  private datacoord<V extends keyof DatacoordApi & string>(verb: V, body: Req<DatacoordApi, V>): Promise<Res<DatacoordApi, V>> {
    return this.ctx.ask(this.env.subjects.datacoord(), `${DATACOORD}.${verb}`, body, { timeoutMs: ASK_MS });
  }

  private async describe(dbName: string | undefined, name: string): Promise<CollectionInfo> {
    const hit = this.cache.get(dbName, name);
    if (hit) return hit;
    const info = await this.rootcoord("DescribeCollection", { ...(dbName ? { dbName } : {}), collectionName: name });
    this.cache.put(dbName, name, info);
    return info;
  }

  // ---- DDL ----

  private async ddl(verb: string, body: unknown): Promise<unknown> {
    const b = requireObject(body ?? {}, verb);
    const result = await this.ctx.ask(this.env.subjects.rootcoord(), `${ROOTCOORD}.${verb}`, b, { timeoutMs: ASK_MS });
    // our own DDL must be seen by our next request, before the event comes round
    const db = typeof b.dbName === "string" ? b.dbName : undefined;
    for (const k of ["collectionName", "oldName", "alias"]) {
      if (typeof b[k] === "string") this.ctx.self("proxy.Forget", { dbName: db, name: b[k] });
    }
    return result;
  }

  private async listCollections(body: unknown): Promise<Res<ProxyApi, "ListCollections">> {
    const b = requireObject(body ?? {}, "ListCollections");
    const res = await this.rootcoord("ListCollections", b);
    return { collections: res.collections.map((c) => c.name) };
  }

  private async listPartitions(body: unknown): Promise<Res<ProxyApi, "ListPartitions">> {
    const b = requireObject(body ?? {}, "ListPartitions");
    const res = await this.rootcoord("ListPartitions", b);
    return { partitions: res.partitions.map((p) => p.name) };
  }

  // ---- writes ----

  private partitionId(info: CollectionInfo, name: string | undefined): bigint {
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

  private maxMessageBytes(): number {
    const limit = this.env.nc.info?.max_payload ?? 1024 * 1024;
    return Math.floor(limit * PAYLOAD_SHARE);
  }

  private async insert(body: unknown, upsert: boolean): Promise<InsertRes> {
    const verb = upsert ? "Upsert" : "Insert";
    const req = requireObject(body, verb) as unknown as InsertReq;
    const name = requireString(req as unknown as Record<string, unknown>, "collectionName", verb);
    if ((req.rows === undefined) === (req.columns === undefined)) {
      throw VbError.invalid(`${verb}: give either "rows" (a list of objects) or "columns" (field name → values)`);
    }
    const info = await this.describe(req.dbName, name);
    const partitionId = this.partitionId(info, req.partitionName);
    const schema = info.schema;
    const batch = req.rows !== undefined ? validateRows(schema, req.rows, { upsert }) : validateColumns(schema, req.columns, { upsert });
    if (batch.needsIds) {
      const ids = await this.rootcoord("AllocId", { count: batch.numRows });
      const pk = new BigInt64Array(batch.numRows);
      for (let i = 0; i < batch.numRows; i++) pk[i] = ids.start + BigInt(i);
      batch.columns[batch.pkIndex] = { fieldId: batch.columns[batch.pkIndex]!.fieldId, data: pk };
    }
    const { ts } = await this.rootcoord("AllocTimestamp", { count: 1 });
    const parts = splitByShard(schema, batch.columns, batch.pkIndex, batch.numRows, info.shardsNum, {
      maxRows: this.env.config.maxRowsPerMessage,
      maxBytes: this.maxMessageBytes(),
    });
    const items: DmlBatchItem[] = parts.map((p) => {
      const vch = info.vchannels[p.shard]!;
      const msg: InsertMsg | UpsertMsg = {
        k: upsert ? "upsert" : "insert",
        collectionId: info.collectionId,
        partitionId,
        ts,
        numRows: p.numRows,
        pks: p.pks,
        columns: p.columns,
      };
      return { subject: this.env.subjects.dmlSubject(vch.pchannel, vch.name), payload: encode(msg) };
    });
    await this.env.dml.publishBatch(items);
    return { insertCount: batch.numRows, ids: batch.columns[batch.pkIndex]!.data as PkColumn, timestamp: ts };
  }

  private async delete(body: unknown): Promise<{ deleteCount: number; timestamp: bigint }> {
    const req = requireObject(body, "Delete") as unknown as DeleteReq;
    const name = requireString(req as unknown as Record<string, unknown>, "collectionName", "Delete");
    const info = await this.describe(req.dbName, name);
    if (req.filter !== undefined) {
      throw new VbError(
        ErrorCode.OperationNotSupported,
        `Delete by filter needs the query plane, which this deployment does not run yet: delete by "ids"`,
      );
    }
    const pkField = primaryField(info.schema);
    const pks = normalizePks(req.ids, pkField.type === "Int64");
    const partitionId = req.partitionName === undefined ? ALL_PARTITIONS : this.partitionId(info, req.partitionName);
    const { ts } = await this.rootcoord("AllocTimestamp", { count: 1 });
    const byShard: number[][] = Array.from({ length: info.shardsNum }, () => []);
    for (let i = 0; i < pks.length; i++) byShard[shardOfPk(pks[i]!, info.shardsNum)]!.push(i);
    const perMsg = 50_000;
    const items: DmlBatchItem[] = [];
    byShard.forEach((idx, shard) => {
      const vch = info.vchannels[shard]!;
      for (let off = 0; off < idx.length; off += perMsg) {
        const part = idx.slice(off, off + perMsg);
        const partPks: PkColumn =
          pks instanceof BigInt64Array ? BigInt64Array.from(part, (i) => pks[i]!) : part.map((i) => (pks as string[])[i]!);
        const msg: DeleteMsg = { k: "delete", collectionId: info.collectionId, partitionId, ts, pks: partPks };
        items.push({ subject: this.env.subjects.dmlSubject(vch.pchannel, vch.name), payload: encode(msg) });
      }
    });
    await this.env.dml.publishBatch(items);
    return { deleteCount: pks.length, timestamp: ts };
  }

  // ---- flush ----

  private async flush(body: unknown): Promise<FlushRes> {
    const req = requireObject(body, "Flush") as { dbName?: string; collectionNames?: unknown; wait?: boolean; timeoutMs?: number };
    if (!Array.isArray(req.collectionNames) || req.collectionNames.some((n) => typeof n !== "string")) {
      throw VbError.invalid(`Flush: "collectionNames" must be a list of collection names`);
    }
    const wait = req.wait !== false;
    const deadline = Date.now() + (typeof req.timeoutMs === "number" ? req.timeoutMs : 120_000);
    const out: FlushRes = { collections: {} };
    const started: [string, FlushResult][] = [];
    for (const name of req.collectionNames as string[]) {
      const info = await this.describe(req.dbName, name);
      started.push([name, await this.datacoord("Flush", { collectionId: info.collectionId })]);
    }
    for (const [name, fr] of started) {
      let flushed = false;
      if (wait) {
        for (;;) {
          ({ flushed } = await this.datacoord("GetFlushState", { collectionId: fr.collectionId, flushPositions: fr.flushPositions }));
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

  private async getFlushState(body: unknown): Promise<{ flushed: boolean }> {
    const req = requireObject(body, "GetFlushState") as { dbName?: string; collectionName?: string };
    const name = requireString(req as Record<string, unknown>, "collectionName", "GetFlushState");
    const info = await this.describe(req.dbName, name);
    // flushed as of now: every vchannel's checkpoint has reached its current end
    const flushPositions: Record<string, bigint> = {};
    for (const v of info.vchannels) {
      flushPositions[v.name] = await this.env.dml.lastPosition(this.env.subjects.dmlStream(v.pchannel), this.env.subjects.dmlSubject(v.pchannel, v.name));
    }
    return this.datacoord("GetFlushState", { collectionId: info.collectionId, flushPositions });
  }

  private async statistics(body: unknown): Promise<Res<ProxyApi, "GetCollectionStatistics">> {
    const req = requireObject(body, "GetCollectionStatistics") as { dbName?: string; collectionName?: string };
    const name = requireString(req as Record<string, unknown>, "collectionName", "GetCollectionStatistics");
    const info = await this.describe(req.dbName, name);
    const { segments } = await this.datacoord("ListSegments", { collectionId: info.collectionId });
    let rowCount = 0;
    let flushedRows = 0;
    let count = 0;
    for (const s of segments) {
      if (s.level !== "L1" || s.state === "Dropped") continue;
      rowCount += s.numRows;
      if (s.state === "Flushed") {
        flushedRows += s.numRows;
        count++;
      }
    }
    return { rowCount, flushedRows, segments: count };
  }
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
