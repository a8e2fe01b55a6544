/**
 * The proxy: the front door of the native API (`vb.proxy`, a queue group shared by every proxy).
 * DDL is checked and forwarded to rootcoord; writes and Flush are write tasks (write_task.ts), Search and
 * Query read tasks (read_task.ts); the index verbs (CreateIndex, DescribeIndex, DropIndex,
 * GetIndexBuildProgress) go through datacoord, names turned into ids.
 *
 * Requests run concurrently (`ctx.reenter`): a proxy is stateless but for its caches (collections and
 * their indexes), which only the mailbox changes (DDL and index events arrive as messages).
 */
import { partitionNotFound } from "../rootcoord/errors.ts";
import { ErrorCode, namingCollection, VbError } from "../../protocol/errors.ts";
import type { CollectionInfo } from "../../protocol/meta.ts";
import { DATACOORD, type DatacoordApi } from "../../protocol/messages/datacoord.ts";
import type { Req, Res } from "../../protocol/messages/api.ts";
import { FORWARDED_DDL, type ProxyApi } from "../../protocol/messages/proxy.ts";
import { ROOTCOORD, type RootcoordApi } from "../../protocol/messages/rootcoord.ts";
import { primaryField } from "../../protocol/schema.ts";
import { Actor, DeferredReply, type Message } from "../../runtime/actor.ts";
import { metricsNode } from "../../runtime/metrics.ts";
import type { Trace } from "../../runtime/trace.ts";
import { observeRequest } from "../metrics.ts";
import { observedRead } from "./slow_query.ts";
import type { DmlConsumption } from "../../runtime/dml_log.ts";
import { followEvents, type VbEvent } from "../events.ts";
import type { ClusterEnv } from "../env.ts";
import { MetaCache } from "./meta_cache.ts";
import { IndexCache } from "./index_cache.ts";
import type { IndexInfo } from "../../protocol/messages/indexes.ts";
import { TimestampPool } from "./timestamp_pool.ts";
import { deleteTask, flushStateTask, flushTask, insertTask, type WriteContext } from "./write_task.ts";
import { obj, stringOf } from "../request_fields.ts";
import { QUERYCOORD, type QuerycoordApi, type ShardLeader } from "../../protocol/messages/querycoord.ts";
import { DELEGATOR, type Guarantee, type QueryResult, type SearchResult } from "../../protocol/messages/querynode.ts";
import type { QueryReq, SearchReq } from "../../protocol/messages/proxy.ts";
import { mergeQuery, mergeSearch, partitionIdsOf, prepareQuery, prepareSearch } from "./read_task.ts";
import { RESOURCE_GROUP_VERBS, resourceGroupCall, type ResourceGroupContext } from "./resource_group_task.ts";
import type { ConsistencyLevel } from "../../protocol/schema.ts";

const ASK_MS = 30_000;
/** Bounded staleness: a read may lag the channel's end by up to this much (Milvus's gracefulTime) */
const GRACEFUL_MS = 5_000;
/** shard leaders are refreshed after this long even without errors */
const LEADERS_TTL_MS = 10_000;
/** GetShardLeaders: a short ask (the cached leaders serve when querycoord is slow or failing over) */
const LEADERS_ASK_MS = 3_000;
/** how long a write waits for rootcoord's timestamps while rootcoord fails over to its standby */
const COORDINATOR_FAILOVER_MS = 20_000;
/** how long a read keeps retrying transient shard failures (a leader moving after a node loss) */
const READ_BUDGET_MS = 15_000;

function requireObject(body: unknown, verb: string): Record<string, unknown> {
  return obj(body, `${verb}: the request body`);
}

function requireString(body: Record<string, unknown>, field: string, verb: string): string {
  return stringOf(body[field], `${verb}: "${field}"`);
}

const PASS_THROUGH = new Set<string>(FORWARDED_DDL);

/**
 * The messages the proxy sends itself. Their types are internal (`proxy.internal.*`): the runtime refuses
 * them from any other sender, so no client can fill or empty the caches.
 */
const SELF = {
  /** a DDL or index event: VbEvent */
  event: "proxy.internal.Event",
  /** positions this proxy's writes reached: [vchannel, position][] */
  written: "proxy.internal.Written",
  /** a collection name to look up again after our own DDL: { dbName?, name } */
  forget: "proxy.internal.Forget",
  /** a collection's indexes to fetch again after our own index DDL: collectionId */
  forgetIndexes: "proxy.internal.ForgetIndexes",
  /** a fetched answer for the index cache: CacheFill */
  indexInfos: "proxy.internal.IndexInfos",
} as const;

/** A fetched answer for the index cache. */
interface CacheFill {
  collectionId: bigint;
  indexes: IndexInfo[];
  generation: string;
}

export class ProxyActor extends Actor {
  private readonly cache = new MetaCache();
  private readonly indexCache = new IndexCache();
  private events: DmlConsumption | undefined;
  /** the last position this proxy's writes reached per vchannel (Session reads) */
  private readonly written = new Map<string, bigint>();
  /** vchannel ends read recently (Bounded reads), with when */
  private readonly ends = new Map<string, { position: bigint; at: number }>();
  private readonly leaders = new Map<bigint, { shards: { vchannel: string; leaders: ShardLeader[] }[]; at: number }>();
  // rootcoord moving to its standby (its lease's TTL) is waited out, not turned into failed writes
  private readonly tso = new TimestampPool((count) => this.whileUnavailable(() => this.rootcoord("AllocTimestamp", { count }), COORDINATOR_FAILOVER_MS));
  /** what the write path (write_task.ts) uses of this proxy */
  private readonly writes: WriteContext;
  /** what resource-group calls and LoadBalance (resource_group_task.ts) use of this proxy */
  private readonly rgContext: ResourceGroupContext = {
    querycoord: (verb, body, timeoutMs) => this.querycoord(verb, body, timeoutMs),
    describe: (dbName, name) => this.describe(dbName, name),
  };

  constructor(private readonly env: ClusterEnv) {
    super();
    this.writes = {
      env,
      describe: (dbName, name) => this.describe(dbName, name),
      allocIds: async (count) => (await this.rootcoord("AllocId", { count })).start,
      timestamp: () => this.tso.take(),
      datacoord: (verb, body) => this.datacoord(verb, body),
      query: (req) => this.query(req),
      written: (positions) => this.ctx.self(SELF.written, positions),
    };
  }

  override async preStart(): Promise<void> {
    this.events = await followEvents(this.env, (ev) => this.ctx.self(SELF.event, ev));
  }

  override async postStop(): Promise<void> {
    await this.events?.stop();
  }

  override receive(msg: Message): unknown {
    switch (msg.type) {
      case SELF.event:
        return this.onEvent(msg.body as VbEvent);
      case SELF.written:
        for (const [v, pos] of msg.body as [string, bigint][]) if ((this.written.get(v) ?? 0n) < pos) this.written.set(v, pos);
        return;
      case SELF.forget: {
        const f = msg.body as { dbName?: string; name: string };
        return this.cache.invalidateName(f.dbName, f.name);
      }
      case SELF.forgetIndexes:
        return this.indexCache.invalidate(msg.body as bigint);
      case SELF.indexInfos: {
        const fill = msg.body as CacheFill;
        return this.indexCache.put(fill.collectionId, fill.indexes, fill.generation);
      }
    }
    const verb = msg.type.startsWith("proxy.") ? msg.type.slice(6) : msg.type;
    // every request counts at the native door: vectorbus_proxy_req_count and _req_latency
    const started = msg.receivedAt ?? performance.now();
    const node = metricsNode();
    const observe = (ok: boolean) => observeRequest(node, "native", verb, ok, performance.now() - started);
    let reply: unknown;
    try {
      reply = this.serve(verb, msg);
    } catch (err) {
      observe(false);
      throw err;
    }
    if (reply instanceof DeferredReply) {
      (reply.work as Promise<unknown>).then(
        () => observe(true),
        () => observe(false),
      );
    } else {
      observe(true);
    }
    return reply;
  }

  private serve(verb: string, msg: Message): unknown {
    if (PASS_THROUGH.has(verb)) return this.ctx.reenter(this.ddl(verb, msg.body));
    if (RESOURCE_GROUP_VERBS.has(verb)) return this.ctx.reenter(resourceGroupCall(this.rgContext, verb, msg.body));
    switch (verb) {
      case "ListCollections":
        return this.ctx.reenter(this.listCollections(msg.body));
      case "ListPartitions":
        return this.ctx.reenter(this.listPartitions(msg.body));
      case "Insert":
        return this.ctx.reenter(insertTask(this.writes, msg.body, false));
      case "Upsert":
        return this.ctx.reenter(insertTask(this.writes, msg.body, true));
      case "Delete":
        return this.ctx.reenter(deleteTask(this.writes, msg.body));
      case "Flush":
        return this.ctx.reenter(flushTask(this.writes, msg.body));
      case "GetFlushState":
        return this.ctx.reenter(flushStateTask(this.writes, msg.body));
      case "GetCollectionStatistics":
        return this.ctx.reenter(this.statistics(msg.body));
      case "GetPartitionStatistics":
        return this.ctx.reenter(this.statistics(msg.body, true));
      case "LoadCollection":
      case "ReleaseCollection":
      case "LoadPartitions":
      case "ReleasePartitions":
      case "GetLoadState":
      case "GetLoadingProgress":
        return this.ctx.reenter(this.loadCall(verb, msg.body));
      case "GetStatus":
        return this.ctx.reenter(this.querycoord("GetStatus", {}));
      case "Search":
      case "Query": {
        const read = { kind: verb, msg, thresholdMs: this.env.config.slowQueryMs, nodeId: metricsNode(), address: this.ctx.address } as const;
        return this.ctx.reenter(observedRead(read, (trace): Promise<unknown> => (verb === "Search" ? this.search(msg.body, trace) : this.query(msg.body, trace))));
      }
      case "CreateIndex":
        return this.ctx.reenter(this.createIndex(msg.body));
      case "DescribeIndex":
        return this.ctx.reenter(this.describeIndex(msg.body));
      case "DropIndex":
        return this.ctx.reenter(this.dropIndex(msg.body));
      case "GetIndexBuildProgress":
        return this.ctx.reenter(this.indexBuildProgress(msg.body));
      default:
        throw new VbError(ErrorCode.Unimplemented, `unknown request "${msg.type}": see ProxyApi for the verbs the proxy serves`);
    }
  }

  // ---- cache ----

  private onEvent(ev: VbEvent): void {
    switch (ev.kind) {
      case "collection.dropped":
        this.cache.invalidate(ev.collectionId);
        this.indexCache.invalidate(ev.collectionId);
        break;
      case "index.created":
        this.indexCache.invalidate(ev.index.collectionId);
        break;
      case "index.dropped":
        this.indexCache.invalidate(ev.collectionId);
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
        this.indexCache.clear();
        break;
    }
  }

  private rootcoord<V extends keyof RootcoordApi & string>(verb: V, body: Req<RootcoordApi, V>): Promise<Res<RootcoordApi, V>> {
    return this.ctx.ask(this.env.subjects.rootcoord(), `${ROOTCOORD}.${verb}`, body, { timeoutMs: ASK_MS });
  }

  private datacoord<V extends keyof DatacoordApi & string>(verb: V, body: Req<DatacoordApi, V>): Promise<Res<DatacoordApi, V>> {
    return this.ctx.ask(this.env.subjects.datacoord(), `${DATACOORD}.${verb}`, body, { timeoutMs: ASK_MS });
  }

  private querycoord<V extends keyof QuerycoordApi & string>(verb: V, body: Req<QuerycoordApi, V>, timeoutMs = ASK_MS): Promise<Res<QuerycoordApi, V>> {
    return this.ctx.ask(this.env.subjects.querycoord(), `${QUERYCOORD}.${verb}`, body, { timeoutMs });
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
      if (typeof b[k] === "string") this.ctx.self(SELF.forget, { dbName: db, name: b[k] });
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

  // ---- load / release ----

  private async loadCall(verb: string, body: unknown): Promise<unknown> {
    const req = requireObject(body, verb) as {
      dbName?: string;
      collectionName?: string;
      partitionNames?: unknown;
      replicaNumber?: unknown;
      resourceGroups?: unknown;
      wait?: unknown;
      timeoutMs?: unknown;
    };
    const name = requireString(req as Record<string, unknown>, "collectionName", verb);
    const info = await this.describe(req.dbName, name);
    if (req.replicaNumber !== undefined && (typeof req.replicaNumber !== "number" || !Number.isInteger(req.replicaNumber) || req.replicaNumber < 1)) {
      throw VbError.invalid(`${verb}: "replicaNumber" must be an integer ≥ 1`);
    }
    const wait = req.wait === true;
    const timeoutMs = typeof req.timeoutMs === "number" ? req.timeoutMs : 300_000;
    const opts = {
      ...(req.replicaNumber !== undefined ? { replicaNumber: req.replicaNumber as number } : {}),
      ...(req.resourceGroups !== undefined && req.resourceGroups !== null ? { resourceGroups: req.resourceGroups as string[] } : {}),
      ...(wait ? { wait, timeoutMs } : {}),
    };
    return named(info, this.loadCallOf(verb, info, req, opts, wait, timeoutMs));
  }

  private async loadCallOf(
    verb: string,
    info: CollectionInfo,
    req: { partitionNames?: unknown },
    opts: { replicaNumber?: number; resourceGroups?: string[]; wait?: boolean; timeoutMs?: number },
    wait: boolean,
    timeoutMs: number,
  ): Promise<unknown> {
    const collectionId = info.collectionId;
    switch (verb) {
      case "LoadCollection":
        return this.querycoord("LoadCollection", { collectionId, ...opts }, wait ? timeoutMs + 5_000 : ASK_MS);
      case "ReleaseCollection":
        return this.querycoord("ReleaseCollection", { collectionId });
      case "LoadPartitions": {
        const partitionIds = partitionIdsOf(info, req.partitionNames);
        if (partitionIds.length === 0) throw VbError.invalid(`LoadPartitions: "partitionNames" must name at least one partition`);
        return this.querycoord("LoadPartitions", { collectionId, partitionIds, ...opts }, wait ? timeoutMs + 5_000 : ASK_MS);
      }
      case "ReleasePartitions": {
        const partitionIds = partitionIdsOf(info, req.partitionNames);
        if (partitionIds.length === 0) throw VbError.invalid(`ReleasePartitions: "partitionNames" must name at least one partition`);
        return this.querycoord("ReleasePartitions", { collectionId, partitionIds });
      }
      case "GetLoadState":
        return this.querycoord("GetLoadState", {
          collectionId,
          ...(req.partitionNames !== undefined ? { partitionIds: partitionIdsOf(info, req.partitionNames) } : {}),
        });
      default: {
        const p = await this.querycoord("GetLoadingProgress", { collectionId });
        return { progress: p.progress, state: p.state, blockers: p.blockers };
      }
    }
  }

  // ---- reads ----

  private async shardLeaders(collectionId: bigint, refresh: boolean): Promise<{ vchannel: string; leaders: ShardLeader[] }[]> {
    const hit = this.leaders.get(collectionId);
    if (hit && !refresh && Date.now() - hit.at < LEADERS_TTL_MS) return hit.shards;
    try {
      const { shards } = await this.querycoord("GetShardLeaders", { collectionId }, LEADERS_ASK_MS);
      this.leaders.set(collectionId, { shards, at: Date.now() });
      return shards;
    } catch (err) {
      // querycoord moving to its standby: the leaders known last keep serving meanwhile (a dead one
      // answers "no responders" at once, and the next is tried)
      const e = VbError.from(err);
      if (hit && (e.code === ErrorCode.ServiceUnavailable || e.code === ErrorCode.Timeout)) return hit.shards;
      throw err;
    }
  }

  /** Runs `call` again while it fails with 2 (no one at the address: a coordinator failing over), for up to `budgetMs`. */
  private async whileUnavailable<T>(call: () => Promise<T>, budgetMs: number): Promise<T> {
    const deadline = Date.now() + budgetMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return await call();
      } catch (err) {
        if (!(err instanceof VbError && err.code === ErrorCode.ServiceUnavailable) || Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, Math.min(500, 25 * 2 ** attempt)));
      }
    }
  }

  private async channelEnd(info: CollectionInfo, vchannel: string): Promise<bigint> {
    const v = info.vchannels.find((x) => x.name === vchannel)!;
    const position = await this.env.dml.lastPosition(this.env.subjects.dmlStream(v.pchannel), this.env.subjects.dmlSubject(v.pchannel, v.name));
    this.ends.set(vchannel, { position, at: Date.now() });
    return position;
  }

  private async guarantee(info: CollectionInfo, vchannel: string, level: ConsistencyLevel, sessionTs: unknown, waitMs: number): Promise<Guarantee> {
    let position = 0n;
    switch (level) {
      case "Strong":
        position = await this.channelEnd(info, vchannel);
        break;
      case "Session":
        // a caller that names its last write may have written through another proxy: read the end
        position = sessionTs !== undefined ? await this.channelEnd(info, vchannel) : (this.written.get(vchannel) ?? 0n);
        break;
      case "Bounded": {
        const e = this.ends.get(vchannel);
        position = e && Date.now() - e.at < GRACEFUL_MS ? e.position : await this.channelEnd(info, vchannel);
        break;
      }
      case "Eventually":
        break;
    }
    return { consistency: level, position, waitMs };
  }

  /**
   * Sends one shard's request to a leader. On a transient failure (no leader right now, a node gone,
   * a segment being placed again) it tries the shard's other replicas, then refreshes the leaders and
   * tries again with backoff until the request's time budget is spent: a read during node loss waits
   * for the new leader instead of failing. Load states (101, 103) are answered at once.
   */
  private async perShard<R>(
    info: CollectionInfo,
    verb: "Search" | "Query",
    make: (vchannel: string) => Promise<unknown>,
    timeoutMs: number,
    budgetMs: number,
    trace?: Trace,
  ): Promise<R[]> {
    const deadline = Date.now() + budgetMs;
    const transient = (err: unknown) =>
      err instanceof VbError && err.retriable && err.code !== ErrorCode.CollectionNotFullyLoaded && err.code !== ErrorCode.CollectionNotLoaded;
    const run = async (vchannel: string): Promise<R> => {
      const body = await make(vchannel);
      let lastErr: unknown;
      for (let attempt = 0; ; attempt++) {
        try {
          const shards = await this.shardLeaders(info.collectionId, attempt > 0);
          const shard = shards.find((s) => s.vchannel === vchannel);
          const leaders = (shard?.leaders ?? []).filter((l) => l.serviceable);
          // spread reads over replicas: start at a random leader
          const start = leaders.length ? Math.floor(Math.random() * leaders.length) : 0;
          for (let i = 0; i < leaders.length; i++) {
            const l = leaders[(start + i) % leaders.length]!;
            try {
              // shared when the leader is in this process: the body is not changed after this, the
              // delegator builds its result for this read
              return await this.ctx.ask<R>(l.address, `${DELEGATOR}.${verb}`, body, { timeoutMs, share: true, ...(trace ? { trace } : {}) });
            } catch (err) {
              if (!transient(err)) throw err;
              lastErr = err;
              // the next read asks querycoord again: a leader that failed may be gone, and a node that
              // comes back under the same id hosts a new delegator at the same address, not yet synced
              this.leaders.delete(info.collectionId);
            }
          }
          if (leaders.length === 0) {
            lastErr = new VbError(
              ErrorCode.ChannelNotAvailable,
              `no serviceable shard leader for channel ${vchannel} of "${info.name}" (503): check vbus status; the load may still be in progress`,
              { retriable: true },
            );
          }
        } catch (err) {
          if (!transient(err)) throw err;
          lastErr = err;
        }
        if (Date.now() + 50 > deadline) throw lastErr;
        await new Promise((r) => setTimeout(r, Math.min(1_000, 50 * 2 ** attempt, Math.max(0, deadline - Date.now()))));
      }
    };
    return Promise.all(info.vchannels.map((v) => run(v.name)));
  }

  private async search(body: unknown, trace?: Trace): Promise<Res<ProxyApi, "Search">> {
    const req = requireObject(body, "Search") as unknown as SearchReq;
    const name = requireString(req as unknown as Record<string, unknown>, "collectionName", "Search");
    const info = await this.describe(req.dbName, name);
    const prepared = prepareSearch(info, req, await this.indexesOf(info.collectionId));
    const waitMs = 10_000;
    const results = await named(info, this.perShard<SearchResult>(
      info,
      "Search",
      async (vchannel) => ({ spec: prepared.spec, guarantee: await this.guarantee(info, vchannel, prepared.consistency, req.guaranteeTimestamp, waitMs) }),
      waitMs + ASK_MS,
      READ_BUDGET_MS,
      trace,
    ));
    const pk = primaryField(info.schema);
    return { results: mergeSearch(results, prepared, pk.type === "Int64") };
  }

  private async query(body: unknown, trace?: Trace): Promise<Res<ProxyApi, "Query">> {
    const req = requireObject(body, "Query") as unknown as QueryReq;
    const name = requireString(req as unknown as Record<string, unknown>, "collectionName", "Query");
    const info = await this.describe(req.dbName, name);
    const prepared = prepareQuery(info, req);
    const waitMs = 10_000;
    const results = await named(info, this.perShard<QueryResult>(
      info,
      "Query",
      async (vchannel) => ({ spec: prepared.spec, guarantee: await this.guarantee(info, vchannel, prepared.consistency, req.guaranteeTimestamp, waitMs) }),
      waitMs + ASK_MS,
      READ_BUDGET_MS,
      trace,
    ));
    return { rows: mergeQuery(results, prepared, info) };
  }

  // ---- indexes ----

  /** The collection's indexes, from the cache or datacoord (the answer is cached in the mailbox). */
  private async indexesOf(collectionId: bigint): Promise<IndexInfo[]> {
    const hit = this.indexCache.get(collectionId);
    if (hit) return hit;
    const generation = this.indexCache.generation(collectionId);
    const { indexes } = await this.datacoord("GetIndexInfos", { collectionId, segmentIds: [] });
    this.ctx.self(SELF.indexInfos, { collectionId, indexes, generation } satisfies CacheFill);
    return indexes;
  }

  private async indexTarget(body: unknown, verb: string): Promise<{ info: CollectionInfo; indexName: string | undefined; req: Record<string, unknown> }> {
    const req = requireObject(body, verb);
    const name = requireString(req, "collectionName", verb);
    const info = await this.describe(req.dbName as string | undefined, name);
    if (req.indexName !== undefined && typeof req.indexName !== "string") throw VbError.invalid(`${verb}: "indexName" must be a string`);
    return { info, indexName: (req.indexName as string | undefined) || undefined, req };
  }

  private async createIndex(body: unknown): Promise<null> {
    const { info, indexName, req } = await this.indexTarget(body, "CreateIndex");
    const fieldName = requireString(req, "fieldName", "CreateIndex");
    if (!info.schema.fields.some((f) => f.name === fieldName && !f.isDynamic)) {
      const vectors = info.schema.fields.filter((f) => f.type === "FloatVector").map((f) => `"${f.name}"`);
      throw VbError.invalid(`CreateIndex: fieldName "${fieldName}" is not a field of collection "${info.name}"; its vector fields are ${vectors.join(", ")}`);
    }
    if (req.params !== undefined && (typeof req.params !== "object" || req.params === null || Array.isArray(req.params))) {
      throw VbError.invalid(`CreateIndex: "params" must be an object of index parameters, such as {"M": 16, "efConstruction": 128}`);
    }
    try {
      await named(info, this.datacoord("CreateIndex", {
        collectionId: info.collectionId,
        fieldName,
        ...(indexName !== undefined ? { indexName } : {}),
        indexType: req.indexType as string,
        metricType: req.metricType as string,
        ...(req.params !== undefined ? { params: req.params as Record<string, unknown> } : {}),
      }));
    } finally {
      this.ctx.self(SELF.forgetIndexes, info.collectionId);
    }
    return null;
  }

  private async describeIndex(body: unknown): Promise<Res<ProxyApi, "DescribeIndex">> {
    const { info, indexName } = await this.indexTarget(body, "DescribeIndex");
    return named(info, this.datacoord("DescribeIndex", { collectionId: info.collectionId, ...(indexName !== undefined ? { indexName } : {}) }));
  }

  private async dropIndex(body: unknown): Promise<null> {
    const { info, indexName } = await this.indexTarget(body, "DropIndex");
    try {
      await named(info, this.datacoord("DropIndex", { collectionId: info.collectionId, ...(indexName !== undefined ? { indexName } : {}) }));
    } finally {
      this.ctx.self(SELF.forgetIndexes, info.collectionId);
    }
    return null;
  }

  private async indexBuildProgress(body: unknown): Promise<Res<ProxyApi, "GetIndexBuildProgress">> {
    const { indexes } = await this.describeIndex(body);
    let totalRows = 0;
    let indexedRows = 0;
    let pendingBuilds = 0;
    for (const i of indexes) {
      totalRows += i.totalRows;
      indexedRows += i.indexedRows;
      pendingBuilds += i.pendingBuilds;
    }
    return { totalRows, indexedRows, pendingBuilds };
  }

  /** rows of a collection (or, `ofPartition`, of the partition named by `partitionName`) by its segments */
  private async statistics(body: unknown, ofPartition = false): Promise<Res<ProxyApi, "GetCollectionStatistics">> {
    const verb = ofPartition ? "GetPartitionStatistics" : "GetCollectionStatistics";
    const req = requireObject(body, verb) as { dbName?: string; collectionName?: string };
    const name = requireString(req as Record<string, unknown>, "collectionName", verb);
    const info = await this.describe(req.dbName, name);
    let partitionId: bigint | undefined;
    if (ofPartition) {
      const partitionName = requireString(req as Record<string, unknown>, "partitionName", verb);
      const p = info.partitions.find((x) => x.name === partitionName);
      if (!p) throw partitionNotFound(info.name, partitionName);
      partitionId = p.partitionId;
    }
    const { segments } = await named(info, this.datacoord("ListSegments", { collectionId: info.collectionId }));
    let rowCount = 0;
    let flushedRows = 0;
    let count = 0;
    for (const s of segments) {
      if (s.level !== "L1" || s.state === "Dropped") continue;
      if (partitionId !== undefined && s.partitionId !== partitionId) continue;
      rowCount += s.numRows;
      if (s.state === "Flushed") {
        flushedRows += s.numRows;
        count++;
      }
    }
    return { rowCount, flushedRows, segments: count };
  }
}

/** Coordinators that know a collection by id only name it so (`collection 69 ...`): the proxy knows its name and puts it in. */
function named<T>(info: CollectionInfo, work: Promise<T>): Promise<T> {
  return work.catch((err: unknown) => {
    throw namingCollection(err, info.collectionId, info.name);
  });
}
