/**
 * The datacoord actor (DESIGN §1, §4): segment allocation and lifecycle, channel checkpoints, flush,
 * vchannel → datanode assignment, recovery info, garbage collection, and indexes (Milvus 2.3+ folds
 * IndexCoord into datacoord): index definitions and one build per (Flushed L1 segment, index), given to
 * datanodes and retried when they fail or are lost.
 *
 * State lives in five KV buckets (segments, channel_watch, channel_checkpoints, indexes,
 * segment_indexes) and is loaded at start; every change is written to KV before it is answered. It
 * learns collections from rootcoord at start and from the events stream after, and datanodes from their
 * heartbeats on the dist feed. It never asks a datanode: it tells them (WatchDmChannels,
 * UnwatchDmChannels, FlushChannels, BuildIndex) and re-tells from their heartbeats what they missed, so
 * its mailbox never waits on a peer that may be waiting on it.
 */
import { ALL_PARTITIONS } from "../../protocol/dml.ts";
import { indexFileKey, type IndexInfo, type IndexLoadInfo } from "../../protocol/messages/indexes.ts";
import { ErrorCode, VbError, isVbError } from "../../protocol/errors.ts";
import { asNodeId } from "../../protocol/ids.ts";
import type { ChannelCheckpoint, CollectionInfo, SegmentInfo, SegmentState } from "../../protocol/meta.ts";
import { messageType, type Req, type Res } from "../../protocol/messages/api.ts";
import { DATACOORD, type ChannelWatch, type DatacoordApi, type DatanodeApi, type DatanodeHeartbeat } from "../../protocol/messages/datacoord.ts";
import { ROOTCOORD, type RootcoordApi } from "../../protocol/messages/rootcoord.ts";
import { Actor, type DeferredReply, type Message, type PipeResult } from "../../runtime/actor.ts";
import type { DmlConsumption } from "../../runtime/dml_log.ts";
import { Feed, type FeedFollower, type FeedMessage } from "../../runtime/feed.ts";
import type { KvMeta } from "../../runtime/kv_meta.ts";
import { DATANODE } from "../datanode/datanode_actor.ts";
import { decodeHeartbeat, ensureDistStream, heartbeatFilter } from "../datanode/heartbeat.ts";
import { after, backoffMs } from "../continuations.ts";
import type { ClusterEnv } from "../env.ts";
import { followEvents, publishEvent, type VbEvent } from "../events.ts";
import { CHECKPOINTS_BUCKET, ChannelCheckpoints } from "./channel_checkpoints.ts";
import { CHANNEL_WATCH_BUCKET, ChannelManager, planAssignments, type ChannelRecord } from "./channel_manager.ts";
import { Collections } from "./collections.ts";
import { PendingFlushes, isFlushed, segmentsToFlush } from "./flush.ts";
import { collectGarbage, collectIndexGarbage, deleteObjects, type IndexGcTarget } from "./gc.ts";
import { IdPool } from "./id_pool.ts";
import { validateIndexParams } from "../index/index_params.ts";
import { assigned, failed, failedForGood, finished, indexProgress, isDue, lost, missingBuilds, planBuilds, rearmed } from "./index_builds.ts";
import { INDEXES_BUCKET, IndexMeta, SEGMENT_INDEXES_BUCKET, type BuildRecord } from "./index_meta.ts";
import {
  bigintOf,
  binlogsOf,
  boolOf,
  checkpointOf,
  indexNameOf,
  intOf,
  levelOf,
  list,
  nodeIdOf,
  obj,
  optionalStringOf,
  reporterOf,
  statesOf,
  stringOf,
  vchannelOf,
} from "./requests.ts";
import { SEGMENTS_BUCKET, SegmentMeta, transition } from "./segment_meta.ts";
import { timestampBefore } from "./tso.ts";
import { DATACOORD_GET_STATUS, type DatacoordStatus } from "./status.ts";

const ASK_TIMEOUT_MS = 5_000;
const RETRY_MIN_MS = 200;
const RETRY_MAX_MS = 5_000;

/**
 * Messages the actor sends itself (ctx.self, timers): private, the runtime refuses them from anyone else.
 * Work off the mailbox comes back through continuations (`after`, ctx.reenterAfter), not messages.
 */
const I = {
  Tick: "datacoord.internal.Tick",
  Event: "datacoord.internal.Event",
  Heartbeat: "datacoord.internal.Heartbeat",
  FeedReady: "datacoord.internal.FeedReady",
  ListCollections: "datacoord.internal.ListCollections",
  Gc: "datacoord.internal.Gc",
  Sweep: "datacoord.internal.Sweep",
  Follow: "datacoord.internal.Follow",
  FollowEnded: "datacoord.internal.FollowEnded",
  ScheduleBuilds: "datacoord.internal.ScheduleBuilds",
  IndexGc: "datacoord.internal.IndexGc",
} as const;

const LIVE_STATES: readonly SegmentState[] = ["Growing", "Sealed", "Flushing", "Flushed"];

interface CreateIndexReq {
  collectionId: bigint;
  fieldName: string;
  indexName: string | undefined;
  indexType: unknown;
  metricType: unknown;
  params: unknown;
}

function sameParams(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) if (a[k] !== b[k]) return false;
  return true;
}

export class DatacoordActor extends Actor {
  private segments!: SegmentMeta;
  private channels!: ChannelManager;
  private checkpoints!: ChannelCheckpoints;
  private readonly collections = new Collections();
  private readonly pending = new PendingFlushes();
  private ids!: IdPool;
  private events: DmlConsumption | undefined;
  private feed: FeedFollower | undefined;
  private feedReady = false;
  private startedAt = 0;
  /** collections with records in KV at start: dropped ones among them are found by the first listing */
  private knownAtStart = new Set<bigint>();
  private listRetries = 0;
  /** collections being garbage-collected (a GC task in flight) */
  private readonly collecting = new Set<bigint>();
  private gcRetries = 0;
  private followGen = 0;
  private followRetries = 0;
  private stopping = false;
  private indexMeta!: IndexMeta;
  /** build records a garbage-collection task is removing */
  private readonly indexGcPending = new Set<bigint>();
  private indexGcRetries = 0;
  /** the KV buckets datacoord's state lives in */
  private buckets: KvMeta[] = [];

  constructor(private readonly env: ClusterEnv) {
    super();
  }

  // ---- lifecycle ----

  override async preStart(): Promise<void> {
    const env = this.env;
    this.startedAt = Date.now();
    const [segKv, watchKv, cpKv, indexKv, buildKv] = await Promise.all([
      env.meta(SEGMENTS_BUCKET),
      env.meta(CHANNEL_WATCH_BUCKET),
      env.meta(CHECKPOINTS_BUCKET),
      env.meta(INDEXES_BUCKET),
      env.meta(SEGMENT_INDEXES_BUCKET),
    ]);
    this.buckets = [segKv, watchKv, cpKv, indexKv, buildKv];
    [this.segments, this.channels, this.checkpoints, this.indexMeta] = await Promise.all([
      SegmentMeta.open(segKv),
      ChannelManager.open(watchKv),
      ChannelCheckpoints.open(cpKv),
      IndexMeta.open(indexKv, buildKv),
    ]);
    this.ids = new IdPool((count) => this.askRootcoord("AllocId", { count }));
    this.knownAtStart = new Set([...this.channels.collectionIds(), ...this.segments.collectionIds()]);

    // follow DDL events from now on, then list what exists: nothing created in between is missed
    this.watchFollowers(await this.startFollowers(undefined));
    this.ctx.timers.startPeriodic("tick", env.config.heartbeatIntervalMs, I.Tick);
    this.listCollections();
    // drops a previous run did not finish
    for (const id of new Set([...this.segments.all()].filter((s) => s.state === "Dropped").map((s) => s.collectionId))) {
      this.startGc(id);
    }
    // builds of indexes dropped (or segments removed) while a previous run was collecting them
    void this.startIndexGc();
    this.ctx.log.info(
      {
        segments: [...this.segments.all()].length,
        vchannels: [...this.channels.all()].length,
        indexes: [...this.indexMeta.allIndexes()].length,
        builds: [...this.indexMeta.allBuilds()].length,
      },
      "datacoord started",
    );
  }

  override async postStop(): Promise<void> {
    this.stopping = true;
    await Promise.all([this.events?.stop().catch(() => undefined), this.feed?.stop().catch(() => undefined)]);
  }

  /**
   * Follows the events stream (after `eventsFrom`, or from now on) and the datanodes' heartbeats. Either
   * ending by an error (the server went away) makes the actor follow both again, events from where it was.
   */
  private async startFollowers(eventsFrom: bigint | undefined): Promise<{ events: DmlConsumption; feed: FeedFollower }> {
    const env = this.env;
    const events = await followEvents(env, (ev) => this.ctx.self(I.Event, ev), eventsFrom, { log: this.ctx.log });
    try {
      await ensureDistStream(env);
      const feed = await new Feed(env.nc).follow(env.subjects.distStream(), heartbeatFilter(env.subjects), (m) =>
        this.ctx.self(I.Heartbeat, m),
      );
      return { events, feed };
    } catch (err) {
      await events.stop();
      throw err;
    }
  }

  private watchFollowers(f: { events: DmlConsumption; feed: FeedFollower }): void {
    this.events = f.events;
    this.feed = f.feed;
    const generation = ++this.followGen;
    f.feed.ready.then(
      () => this.ctx.self(I.FeedReady),
      () => undefined,
    );
    const ended = (err: unknown) => this.ctx.self(I.FollowEnded, { generation, err });
    f.events.done.catch(ended);
    f.feed.done.catch(ended);
  }

  private async onFollowEnded(d: { generation: number; err: unknown }): Promise<void> {
    if (d.generation !== this.followGen || this.stopping) return;
    this.followGen++;
    const from = this.events?.position;
    this.ctx.log.warn({ err: String(d.err), eventsFrom: String(from) }, "lost the events stream or the heartbeat feed; following again");
    await Promise.all([this.events?.stop().catch(() => undefined), this.feed?.stop().catch(() => undefined)]);
    this.events = undefined;
    this.feed = undefined;
    this.refollow(from);
  }

  private refollow(from: bigint | undefined): void {
    if (this.stopping) return;
    after(this.ctx, this.startFollowers(from), (r) => this.onFollowed(from, r));
  }

  private onFollowed(from: bigint | undefined, r: PipeResult<{ events: DmlConsumption; feed: FeedFollower }>): void {
    if (!r.ok) {
      this.followRetries++;
      this.retryLater("follow", this.followRetries, I.Follow, from);
      return;
    }
    if (this.stopping) {
      void r.value.events.stop().catch(() => undefined);
      void r.value.feed.stop().catch(() => undefined);
      return;
    }
    this.followRetries = 0;
    this.watchFollowers(r.value);
  }

  override async receive(msg: Message): Promise<unknown> {
    if (msg.type.startsWith("datacoord.internal.")) {
      await this.internal(msg.type, msg.body);
      return null;
    }
    const body = msg.body;
    switch (msg.type) {
      case messageType(DATACOORD, "AllocSegment"):
        return this.allocSegment(body);
      case messageType(DATACOORD, "SegmentSealed"):
        return this.segmentSealed(body);
      case messageType(DATACOORD, "SaveBinlogPaths"):
        return this.saveBinlogPaths(body);
      case messageType(DATACOORD, "UpdateChannelCheckpoint"):
        return this.updateChannelCheckpoint(body);
      case messageType(DATACOORD, "Flush"):
        return this.flush(body, this.deadlineOf(msg));
      case messageType(DATACOORD, "GetFlushState"):
        return this.getFlushState(body);
      case messageType(DATACOORD, "GetSegmentInfo"):
        return this.getSegmentInfo(body);
      case messageType(DATACOORD, "ListSegments"):
        return this.listSegments(body);
      case messageType(DATACOORD, "GetRecoveryInfo"):
        return this.getRecoveryInfo(body);
      case messageType(DATACOORD, "GetChannelCheckpoint"):
        return this.getChannelCheckpoint(body);
      case messageType(DATACOORD, "GetChannelWatches"):
        return this.getChannelWatches(body);
      case messageType(DATACOORD, "CreateIndex"):
        return this.createIndex(body, this.deadlineOf(msg));
      case messageType(DATACOORD, "DescribeIndex"):
        return this.describeIndex(body);
      case messageType(DATACOORD, "DropIndex"):
        return this.dropIndex(body);
      case messageType(DATACOORD, "GetIndexInfos"):
        return this.getIndexInfos(body);
      case messageType(DATACOORD, "IndexBuilt"):
        return this.indexBuilt(body);
      case DATACOORD_GET_STATUS:
        return this.status();
      default:
        throw VbError.invalid(`datacoord does not handle "${msg.type}"`);
    }
  }

  /** When an answer is due: the request's deadline, or the ask timeout for a request without one. */
  private deadlineOf(msg: Message): number {
    return msg.deadline > 0 ? msg.deadline : Date.now() + ASK_TIMEOUT_MS;
  }

  /** A timestamp from rootcoord's TSO before `deadline` (asked again while it does not answer); never the local clock. */
  private allocTimestamp(deadline: number, what: string): Promise<bigint> {
    const ask = (timeoutMs: number) =>
      this.ctx
        .ask<Res<RootcoordApi, "AllocTimestamp">>(this.env.subjects.rootcoord(), messageType(ROOTCOORD, "AllocTimestamp"), { count: 1 }, {
          timeoutMs: Math.min(timeoutMs, ASK_TIMEOUT_MS),
        })
        .then((r) => r.ts);
    return timestampBefore(ask, deadline, what);
  }

  private askRootcoord<V extends keyof RootcoordApi & string>(verb: V, body: Req<RootcoordApi, V>): Promise<Res<RootcoordApi, V>> {
    return this.ctx.ask(this.env.subjects.rootcoord(), messageType(ROOTCOORD, verb), body, { timeoutMs: ASK_TIMEOUT_MS });
  }

  private tellDatanode<V extends keyof DatanodeApi & string>(nodeId: string, verb: V, body: Req<DatanodeApi, V>): void {
    this.ctx.tell(this.env.subjects.datanode(asNodeId(nodeId)), messageType(DATANODE, verb), body);
  }

  /** Sends `type` to itself after the backoff of the `retries`-th retry. */
  private retryLater(key: string, retries: number, type: string, body: unknown): void {
    this.ctx.timers.startSingle(key, backoffMs(retries, RETRY_MIN_MS, RETRY_MAX_MS), type, body);
  }

  private async internal(type: string, data: unknown): Promise<void> {
    switch (type) {
      case I.Tick:
        return this.tick();
      case I.Event:
        return this.onEvent(data as VbEvent);
      case I.Heartbeat:
        return this.onHeartbeat(data as FeedMessage);
      case I.FeedReady:
        this.feedReady = true;
        await this.assign();
        return this.scheduleBuildsSafely();
      case I.ListCollections:
        return this.listCollections();
      case I.Gc:
        return this.startGc(data as bigint);
      case I.Sweep:
        return this.sweep(data as bigint);
      case I.Follow:
        return this.refollow(data as bigint | undefined);
      case I.FollowEnded:
        return this.onFollowEnded(data as { generation: number; err: unknown });
      case I.ScheduleBuilds:
        return this.scheduleBuildsSafely();
      case I.IndexGc:
        return void this.startIndexGc(data as IndexGcTarget["dropped"]);
    }
  }

  // ---- collections ----

  private listCollections(): void {
    const work = (async () => {
      const { databases } = await this.askRootcoord("ListDatabases", {});
      const out: CollectionInfo[] = [];
      for (const dbName of databases) {
        try {
          out.push(...(await this.askRootcoord("ListCollections", { dbName })).collections);
        } catch (err) {
          if (!isVbError(err, ErrorCode.DatabaseNotFound)) throw err;
        }
      }
      return out;
    })();
    after(this.ctx, work, (r) => this.onCollections(r));
  }

  private async onCollections(r: PipeResult<CollectionInfo[]>): Promise<void> {
    if (!r.ok) {
      this.listRetries++;
      this.ctx.log.warn({ err: String(r.error) }, "cannot list collections from rootcoord yet; retrying");
      this.retryLater("list", this.listRetries, I.ListCollections, null);
      return;
    }
    const live = new Set<bigint>();
    for (const info of r.value) {
      if (info.state === "Created") {
        live.add(info.collectionId);
        await this.addCollection(info);
      }
    }
    // collections datacoord kept records of but rootcoord no longer has: dropped while datacoord was away
    for (const id of this.knownAtStart) {
      if (!live.has(id) && !this.collections.has(id)) await this.dropCollection(id);
    }
    this.knownAtStart.clear();
  }

  private async addCollection(info: CollectionInfo): Promise<void> {
    if (!this.collections.add(info)) return;
    for (const v of info.vchannels) {
      if (this.channels.get(v.name)) continue;
      await this.channels.save({ collectionId: info.collectionId, vchannel: v.name, pchannel: v.pchannel });
    }
    await this.assign();
  }

  /** The collection, asking rootcoord if datacoord has not heard of it yet (100 when it does not exist). */
  private async ensureCollection(collectionId: bigint) {
    const known = this.collections.get(collectionId);
    if (known) return known;
    if (this.collections.wasDropped(collectionId)) {
      throw new VbError(ErrorCode.CollectionNotFound, `collection ${collectionId} was dropped`);
    }
    const info = await this.askRootcoord("DescribeCollection", { collectionId });
    if (info.state !== "Created") throw new VbError(ErrorCode.CollectionNotFound, `collection ${collectionId} is being dropped`);
    await this.addCollection(info);
    const c = this.collections.get(collectionId);
    if (!c) throw new VbError(ErrorCode.CollectionNotFound, `collection ${collectionId} was dropped`);
    return c;
  }

  private async onEvent(ev: VbEvent): Promise<void> {
    try {
      if (ev.kind === "collection.created") await this.addCollection(ev.collection);
      else if (ev.kind === "collection.dropped") await this.dropCollection(ev.collectionId);
      else if (ev.kind === "collection.altered" && this.collections.has(ev.collection.collectionId)) this.collections.add(ev.collection);
    } catch (err) {
      // a KV failure: the next tick (assignments) or the next start (listing) repairs what is missing
      this.ctx.log.error({ event: ev.kind, err: String(err) }, "could not apply an event");
    }
  }

  // ---- garbage collection ----

  private async dropCollection(collectionId: bigint): Promise<void> {
    this.collections.drop(collectionId);
    const records = this.channels.ofCollection(collectionId);
    const byNode = new Map<string, string[]>();
    for (const r of records) {
      if (r.nodeId !== undefined) byNode.set(r.nodeId, [...(byNode.get(r.nodeId) ?? []), r.vchannel]);
      await this.channels.remove(r.vchannel);
      await this.checkpoints.remove(r.vchannel);
      this.pending.delete(r.vchannel);
    }
    for (const [nodeId, vchannels] of byNode) this.tellDatanode(nodeId, "UnwatchDmChannels", { vchannels });
    for (const s of this.segments.ofCollection(collectionId)) this.segments.markDropped(s.segmentId);
    const indexes = this.indexMeta.indexesOf(collectionId);
    for (const i of indexes) await this.indexMeta.removeIndex(i);
    this.ctx.log.info({ collection: String(collectionId), vchannels: records.length, indexes: indexes.length }, "collection dropped; collecting its data");
    this.startGc(collectionId);
    void this.startIndexGc(indexes.map((i) => ({ collectionId, indexId: i.indexId })));
  }

  private startGc(collectionId: bigint): void {
    if (this.collecting.has(collectionId)) return;
    const segments = this.segments.ofCollection(collectionId).filter((s) => s.state === "Dropped");
    this.collecting.add(collectionId);
    const work = collectGarbage(this.env.objectStore, this.segments, { collectionId, segments });
    after(this.ctx, work, (r) => this.onGcDone(collectionId, segments, r));
  }

  private onGcDone(collectionId: bigint, segments: SegmentInfo[], r: PipeResult<number>): void {
    this.collecting.delete(collectionId);
    if (!r.ok) {
      this.gcRetries++;
      this.ctx.log.warn({ collection: String(collectionId), err: String(r.error) }, "garbage collection failed; retrying");
      this.retryLater(`gc:${collectionId}`, this.gcRetries, I.Gc, collectionId);
      return;
    }
    this.gcRetries = 0;
    for (const s of segments) this.segments.forget(s.segmentId);
    this.ctx.log.info({ collection: String(collectionId), segments: segments.length, objects: r.value }, "collection data removed");
    // a datanode may still have been writing when it was told to stop: sweep once more later
    this.ctx.timers.startSingle(`sweep:${collectionId}`, this.env.config.heartbeatAvailableMs, I.Sweep, collectionId);
  }

  private sweep(collectionId: bigint): void {
    if (this.collections.has(collectionId)) return;
    void deleteObjects(this.env.objectStore, collectionId).then(
      (n) => n > 0 && this.ctx.log.info({ collection: String(collectionId), objects: n }, "late objects of a dropped collection removed"),
      (err: unknown) => this.ctx.log.warn({ collection: String(collectionId), err: String(err) }, "late sweep failed"),
    );
  }

  // ---- datanodes and assignment ----

  private async onHeartbeat(m: FeedMessage): Promise<void> {
    let hb: DatanodeHeartbeat;
    try {
      hb = decodeHeartbeat(m.data);
    } catch (err) {
      this.ctx.log.warn({ subject: m.subject, err: String(err) }, "unreadable datanode heartbeat ignored");
      return;
    }
    const now = Date.now();
    // a value from before datacoord started is as old as the server says; a new one is fresh
    const seenAt = m.initial ? m.timestamp : now;
    const wasAlive = this.channels.isAlive(hb.nodeId, now, this.env.config.heartbeatAvailableMs);
    const node = this.channels.touch(hb.nodeId, seenAt, hb.session);
    if (node.session !== undefined && hb.session !== node.session) return; // an older incarnation: not this node any more
    node.reported = new Set(hb.channels.map((c) => c.vchannel));
    if (!wasAlive && this.channels.isAlive(hb.nodeId, now, this.env.config.heartbeatAvailableMs)) {
      this.ctx.log.info({ node: hb.nodeId }, "datanode is up");
      try {
        await this.assign();
      } catch (err) {
        this.ctx.log.error({ err: String(err) }, "assignment failed");
      }
      await this.scheduleBuildsSafely();
    }
    if (!m.initial) {
      this.reconcileNode(hb.nodeId, now);
      this.reconcileBuilds(hb, now);
    }
  }

  /** Re-tells a datanode what its heartbeat shows it missed (watches, unwatches, flushes). */
  private reconcileNode(nodeId: string, now: number): void {
    const node = this.channels.nodes.get(nodeId);
    if (!node) return;
    const gap = Math.max(1_000, 3 * this.env.config.heartbeatIntervalMs);
    const due = (key: string): boolean => {
      const at = node.sentAt.get(key);
      if (at !== undefined && now - at < gap) return false;
      node.sentAt.set(key, now);
      return true;
    };
    const watch: ChannelWatch[] = [];
    const flush: { vchannel: string; position: bigint }[] = [];
    for (const r of this.channels.ofNode(nodeId)) {
      if (!node.reported.has(r.vchannel)) {
        if (due(`watch:${r.vchannel}`)) watch.push(this.watchOf(r));
        continue;
      }
      const pos = this.pending.get(r.vchannel);
      if (pos !== undefined && this.checkpoints.get(r.vchannel).position < pos && due(`flush:${r.vchannel}`)) {
        flush.push({ vchannel: r.vchannel, position: pos });
      }
    }
    const unwatch = [...node.reported].filter((v) => this.channels.get(v)?.nodeId !== nodeId && due(`unwatch:${v}`));
    if (watch.length > 0) this.tellDatanode(nodeId, "WatchDmChannels", { channels: watch, sealPolicy: this.env.config.sealPolicy });
    if (unwatch.length > 0) this.tellDatanode(nodeId, "UnwatchDmChannels", { vchannels: unwatch });
    if (flush.length > 0) this.tellDatanode(nodeId, "FlushChannels", { channels: flush });
  }

  private watchOf(r: ChannelRecord): ChannelWatch {
    return { collectionId: r.collectionId, vchannel: r.vchannel, pchannel: r.pchannel, checkpoint: this.checkpoints.get(r.vchannel).position };
  }

  /** Gives every vchannel that needs a datanode to the least-loaded live one, and tells it. */
  private async assign(): Promise<void> {
    if (!this.feedReady) return;
    const now = Date.now();
    const available = this.env.config.heartbeatAvailableMs;
    const needs = this.channels.needing(now, available, this.startedAt + available);
    if (needs.length === 0) return;
    const plan = planAssignments(needs, this.channels.load(now, available));
    const told = new Map<string, ChannelWatch[]>();
    for (const [vchannel, nodeId] of plan) {
      const r = this.channels.get(vchannel);
      if (!r) continue;
      const prev = r.nodeId;
      const next: ChannelRecord = { ...r, nodeId };
      await this.channels.save(next);
      told.set(nodeId, [...(told.get(nodeId) ?? []), this.watchOf(next)]);
      this.channels.nodes.get(nodeId)?.sentAt.set(`watch:${vchannel}`, now);
      this.ctx.log.info({ collection: String(r.collectionId), vchannel, node: nodeId, from: prev }, "vchannel assigned");
    }
    for (const [nodeId, channels] of told) {
      this.tellDatanode(nodeId, "WatchDmChannels", { channels, sealPolicy: this.env.config.sealPolicy });
    }
  }

  private async tick(): Promise<void> {
    this.pending.settle((v) => this.checkpoints.get(v));
    try {
      await this.assign();
    } catch (err) {
      this.ctx.log.error({ err: String(err) }, "assignment failed");
    }
    try {
      await this.checkLostBuilds(Date.now());
    } catch (err) {
      this.ctx.log.error({ err: String(err) }, "checking index builds failed");
    }
    await this.scheduleBuildsSafely();
    // garbage found since (a failed collection backs off on its own timer)
    if (this.indexGcRetries === 0) void this.startIndexGc();
  }

  private async getChannelWatches(body: unknown): Promise<Res<DatacoordApi, "GetChannelWatches">> {
    const b = obj(body, "GetChannelWatches");
    const nodeId = nodeIdOf(b.nodeId, "nodeId");
    const session = b.session === undefined ? undefined : stringOf(b.session, "session");
    const now = Date.now();
    const node = this.channels.touch(nodeId, now, session, { takeSession: true });
    node.reported = new Set();
    await this.assign();
    const channels = this.channels.ofNode(nodeId).map((r) => this.watchOf(r));
    for (const c of channels) node.sentAt.set(`watch:${c.vchannel}`, now);
    return { channels, sealPolicy: this.env.config.sealPolicy };
  }

  // ---- segments ----

  private async allocSegment(body: unknown): Promise<SegmentInfo> {
    const b = obj(body, "AllocSegment");
    const collectionId = bigintOf(b.collectionId, "collectionId");
    const vchannel = vchannelOf(b.vchannel, "vchannel");
    const level = levelOf(b.level, "level");
    const partitionId = bigintOf(b.partitionId, "partitionId", ALL_PARTITIONS);
    const startPosition = bigintOf(b.startPosition, "startPosition", 1n);
    if ((level === "L0") !== (partitionId === ALL_PARTITIONS)) {
      throw VbError.invalid(`partitionId: an ${level} segment ${level === "L0" ? "spans every partition (-1)" : "belongs to one partition"}`);
    }
    const record = this.channels.fence(vchannel, reporterOf(b));
    if (record.collectionId !== collectionId) {
      throw VbError.invalid(`collectionId: vchannel "${vchannel}" belongs to collection ${record.collectionId}, not ${collectionId}`);
    }
    const existing = this.segments.findAlloc(vchannel, partitionId, level, startPosition);
    if (existing && existing.state !== "Dropped") return existing;
    const now = Date.now();
    const seg: SegmentInfo = {
      segmentId: await this.ids.take(),
      collectionId,
      partitionId,
      vchannel,
      level,
      state: "Growing",
      numRows: 0,
      startPosition,
      binlogs: [],
      deltalogs: [],
      statslogs: [],
      memorySize: 0,
      createdAt: now,
      updatedAt: now,
    };
    await this.segments.save(seg);
    this.ctx.log.debug({ collection: String(collectionId), segment: String(seg.segmentId), vchannel, level }, "segment allocated");
    return seg;
  }

  private segmentOf(v: unknown): SegmentInfo {
    const id = bigintOf(v, "segmentId");
    const s = this.segments.get(id);
    if (!s || s.state === "Dropped") throw new VbError(ErrorCode.SegmentNotFound, `segment ${id} not found`, { retriable: false });
    return s;
  }

  private async segmentSealed(body: unknown): Promise<null> {
    const b = obj(body, "SegmentSealed");
    const seg = this.segmentOf(b.segmentId);
    const endPosition = bigintOf(b.endPosition, "endPosition", 1n);
    const endTs = bigintOf(b.endTs, "endTs");
    const numRows = intOf(b.numRows, "numRows");
    this.channels.fence(seg.vchannel, reporterOf(b));
    if (endPosition < seg.startPosition) {
      throw VbError.invalid(`endPosition ${endPosition} is before segment ${seg.segmentId}'s start ${seg.startPosition}`);
    }
    if (seg.state !== "Growing") {
      if (seg.endPosition === endPosition) return null; // a repeated report
      throw VbError.invalid(`segment ${seg.segmentId} was sealed at ${String(seg.endPosition)}, not ${endPosition}`);
    }
    await this.segments.save({ ...transition(seg, "Sealed"), endPosition, endTs, numRows });
    return null;
  }

  private async saveBinlogPaths(body: unknown): Promise<null> {
    const b = obj(body, "SaveBinlogPaths");
    const seg = this.segmentOf(b.segmentId);
    const numRows = intOf(b.numRows, "numRows");
    const binlogs = binlogsOf(b.binlogs, "binlogs");
    const deltalogs = binlogsOf(b.deltalogs, "deltalogs");
    const statslogs = list(b.statslogs, "statslogs").map((k, i) => stringOf(k, `statslogs[${i}]`));
    const memorySize = intOf(b.memorySize, "memorySize");
    const checkpoint = checkpointOf(b.checkpoint, "checkpoint");
    if (checkpoint.vchannel !== seg.vchannel) {
      throw VbError.invalid(`checkpoint.vchannel: segment ${seg.segmentId} is on "${seg.vchannel}", not "${checkpoint.vchannel}"`);
    }
    this.channels.fence(seg.vchannel, reporterOf(b));
    if (seg.state === "Growing") {
      throw VbError.invalid(`segment ${seg.segmentId} is Growing: report SegmentSealed before SaveBinlogPaths`);
    }
    if (seg.state !== "Flushed") {
      const path: SegmentState[] = seg.state === "Sealed" ? ["Flushing", "Flushed"] : ["Flushed"];
      const flushed: SegmentInfo = { ...transition(seg, ...path), numRows, binlogs, deltalogs, statslogs, memorySize };
      await this.segments.save(flushed);
      this.ctx.log.info(
        { collection: String(seg.collectionId), segment: String(seg.segmentId), level: seg.level, rows: numRows },
        "segment flushed",
      );
      void publishEvent(this.env, { kind: "segment.flushed", segment: flushed }).catch((err: unknown) =>
        this.ctx.log.warn({ segment: String(seg.segmentId), err: String(err) }, "segment.flushed event not published"),
      );
      if (flushed.level === "L1" && this.indexMeta.indexesOf(flushed.collectionId).length > 0) {
        this.ctx.self(I.ScheduleBuilds);
      }
    }
    await this.advanceCheckpoint(checkpoint);
    return null;
  }

  private async advanceCheckpoint(cp: ChannelCheckpoint): Promise<void> {
    if (await this.checkpoints.advance(cp)) this.pending.settle((v) => this.checkpoints.get(v));
  }

  private async updateChannelCheckpoint(body: unknown): Promise<null> {
    const b = obj(body, "UpdateChannelCheckpoint");
    const cp = checkpointOf(b.checkpoint, "checkpoint");
    this.channels.fence(cp.vchannel, reporterOf(b));
    await this.advanceCheckpoint(cp);
    return null;
  }

  // ---- flush ----

  private async flush(body: unknown, deadline: number): Promise<DeferredReply<Res<DatacoordApi, "Flush">>> {
    const b = obj(body, "Flush");
    const coll = await this.ensureCollection(bigintOf(b.collectionId, "collectionId"));
    const flushPositions: Record<string, bigint> = {};
    const byNode = new Map<string, { vchannel: string; position: bigint }[]>();
    for (const v of coll.vchannels) {
      let pos: bigint;
      try {
        pos = await this.env.dml.lastPosition(this.env.subjects.dmlStream(v.pchannel), this.env.subjects.dmlSubject(v.pchannel, v.name));
      } catch (err) {
        if (!isVbError(err, ErrorCode.MqTopicNotFound)) throw err;
        pos = 0n; // no stream yet: nothing was written
      }
      flushPositions[v.name] = pos;
      if (pos === 0n || this.checkpoints.get(v.name).position >= pos) continue;
      this.pending.add(v.name, pos);
      const nodeId = this.channels.get(v.name)?.nodeId;
      if (nodeId !== undefined) {
        byNode.set(nodeId, [...(byNode.get(nodeId) ?? []), { vchannel: v.name, position: pos }]);
        this.channels.nodes.get(nodeId)?.sentAt.set(`flush:${v.name}`, Date.now());
      }
    }
    for (const [nodeId, channels] of byNode) this.tellDatanode(nodeId, "FlushChannels", { channels });
    // the timestamp is asked off the mailbox: rootcoord may take until the deadline to answer
    return this.ctx.reenterAfter(this.allocTimestamp(deadline, `Flush of collection ${coll.collectionId}`), (flushTs) => ({
      collectionId: coll.collectionId,
      flushPositions,
      segmentIds: segmentsToFlush(this.segments.ofCollection(coll.collectionId), flushPositions),
      flushTs,
    }));
  }

  private getFlushState(body: unknown): { flushed: boolean } {
    const b = obj(body, "GetFlushState");
    const collectionId = bigintOf(b.collectionId, "collectionId");
    const positions = obj(b.flushPositions, "flushPositions");
    const checked: Record<string, bigint> = {};
    for (const [v, p] of Object.entries(positions)) {
      const vchannel = vchannelOf(v, "flushPositions key");
      const r = this.channels.get(vchannel);
      if (r && r.collectionId !== collectionId) {
        throw VbError.invalid(`flushPositions: vchannel "${vchannel}" is not a vchannel of collection ${collectionId}`);
      }
      checked[vchannel] = bigintOf(p, `flushPositions["${vchannel}"]`);
    }
    if (this.collections.wasDropped(collectionId)) throw new VbError(ErrorCode.CollectionNotFound, `collection ${collectionId} was dropped`);
    return { flushed: isFlushed(checked, (v) => this.checkpoints.get(v)) };
  }

  // ---- reads ----

  private status(): DatacoordStatus {
    const undecodableRecords = this.buckets.flatMap((kv) => kv.undecodable());
    return {
      segments: [...this.segments.all()].filter((s) => s.state !== "Dropped").length,
      vchannels: [...this.channels.all()].length,
      indexes: [...this.indexMeta.allIndexes()].length,
      builds: [...this.indexMeta.allBuilds()].length,
      undecodableRecords,
    };
  }

  private getSegmentInfo(body: unknown): { segments: SegmentInfo[] } {
    const b = obj(body, "GetSegmentInfo");
    const ids = list(b.segmentIds, "segmentIds").map((v, i) => bigintOf(v, `segmentIds[${i}]`));
    return {
      segments: ids.map((id) => {
        const s = this.segments.get(id);
        if (!s) throw new VbError(ErrorCode.SegmentNotFound, `segment ${id} not found`);
        return s;
      }),
    };
  }

  private listSegments(body: unknown): { segments: SegmentInfo[] } {
    const b = obj(body, "ListSegments");
    const collectionId = bigintOf(b.collectionId, "collectionId");
    const states = b.states === undefined ? LIVE_STATES : statesOf(b.states, "states");
    return { segments: this.segments.ofCollection(collectionId).filter((s) => states.includes(s.state)) };
  }

  private async getRecoveryInfo(body: unknown): Promise<Res<DatacoordApi, "GetRecoveryInfo">> {
    const b = obj(body, "GetRecoveryInfo");
    const coll = await this.ensureCollection(bigintOf(b.collectionId, "collectionId"));
    const parts =
      b.partitionIds === undefined ? undefined : new Set(list(b.partitionIds, "partitionIds").map((p, i) => bigintOf(p, `partitionIds[${i}]`)));
    const segments = this.segments
      .ofCollection(coll.collectionId)
      .filter((s) => s.state === "Flushed" && (s.level === "L0" || parts === undefined || parts.has(s.partitionId)));
    return {
      collectionId: coll.collectionId,
      channels: coll.vchannels.map((v) => {
        const cp = this.checkpoints.get(v.name);
        return { vchannel: v.name, pchannel: v.pchannel, seekPosition: cp.position, checkpointTs: cp.ts };
      }),
      segments,
    };
  }

  private getChannelCheckpoint(body: unknown): ChannelCheckpoint {
    const b = obj(body, "GetChannelCheckpoint");
    const vchannel = vchannelOf(b.vchannel, "vchannel");
    if (!this.channels.get(vchannel) && !this.collections.ofVchannel(vchannel)) {
      throw new VbError(ErrorCode.ChannelNotFound, `vchannel "${vchannel}" is not a vchannel of any collection datacoord serves`);
    }
    return this.checkpoints.get(vchannel);
  }

  // ---- indexes ----

  private createIndex(body: unknown, deadline: number): DeferredReply<IndexInfo> {
    const b = obj(body, "CreateIndex");
    const req: CreateIndexReq = {
      collectionId: bigintOf(b.collectionId, "collectionId"),
      fieldName: stringOf(b.fieldName, "fieldName"),
      indexName: indexNameOf(b.indexName, "indexName"),
      indexType: b.indexType,
      metricType: b.metricType,
      params: b.params,
    };
    if (this.collections.wasDropped(req.collectionId)) {
      throw new VbError(ErrorCode.CollectionNotFound, `collection ${req.collectionId} was dropped`);
    }
    // the schema comes from rootcoord (asked off the mailbox); the check and the write run in it
    const work = Promise.all([
      this.askRootcoord("DescribeCollection", { collectionId: req.collectionId }),
      this.allocTimestamp(deadline, `CreateIndex on collection ${req.collectionId}`),
    ]);
    return this.ctx.reenterAfter(work, ([info, ts]) => this.commitCreateIndex(req, info, ts));
  }

  private async commitCreateIndex(req: CreateIndexReq, info: CollectionInfo, createdTs: bigint): Promise<IndexInfo> {
    if (info.state !== "Created" || this.collections.wasDropped(info.collectionId)) {
      throw new VbError(ErrorCode.CollectionNotFound, `collection "${info.name}" (${info.collectionId}) is being dropped`);
    }
    const field = info.schema.fields.find((f) => f.name === req.fieldName && !f.isDynamic);
    if (!field) {
      const vectors = info.schema.fields.filter((f) => f.type === "FloatVector").map((f) => `"${f.name}"`);
      throw VbError.invalid(`fieldName: collection "${info.name}" has no field "${req.fieldName}"; its vector fields are ${vectors.join(", ")}`);
    }
    const spec = validateIndexParams(req.indexType, req.metricType, req.params, field.type, field.dim ?? 0);
    const indexes = this.indexMeta.indexesOf(info.collectionId);
    const existing = indexes.find((i) => i.fieldId === field.fieldId);
    if (existing) {
      const same =
        existing.indexType === spec.indexType &&
        existing.metricType === spec.metric &&
        sameParams(existing.params, { ...spec.params }) &&
        (req.indexName === undefined || req.indexName === existing.indexName);
      if (!same) {
        throw VbError.invalid(
          `fieldName: field "${field.name}" already has index "${existing.indexName}" (${existing.indexType}, ${existing.metricType}, ` +
            `${JSON.stringify(existing.params)}); a field has one index: drop it first to index the field differently`,
        );
      }
      // the same index again: nothing to create, but builds that failed for good get another round
      const now = Date.now();
      for (const b of this.indexMeta.buildsOfIndex(existing.indexId)) if (failedForGood(b)) await this.indexMeta.saveBuild(rearmed(b, now));
      this.ctx.self(I.ScheduleBuilds);
      return existing;
    }
    const indexName = req.indexName ?? field.name;
    const taken = indexes.find((i) => i.indexName === indexName);
    if (taken) {
      throw VbError.invalid(`indexName: "${indexName}" already names the index of field "${taken.fieldName}"; choose another name`);
    }
    await this.addCollection(info);
    const index: IndexInfo = {
      indexId: await this.ids.take(),
      collectionId: info.collectionId,
      fieldId: field.fieldId!,
      fieldName: field.name,
      indexName,
      indexType: spec.indexType,
      metricType: spec.metric,
      params: { ...spec.params },
      createdTs,
    };
    await this.indexMeta.saveIndex(index);
    this.ctx.log.info(
      { collection: String(index.collectionId), index: String(index.indexId), name: indexName, type: index.indexType, metric: index.metricType },
      "index created",
    );
    void publishEvent(this.env, { kind: "index.created", index }).catch((err: unknown) =>
      this.ctx.log.warn({ index: String(index.indexId), err: String(err) }, "index.created event not published"),
    );
    this.ctx.self(I.ScheduleBuilds);
    return index;
  }

  /** How messages name a collection: by name when datacoord knows it. */
  private collectionLabel(collectionId: bigint): string {
    const c = this.collections.get(collectionId);
    return c ? `"${c.name}"` : String(collectionId);
  }

  /** The collection's indexes named by a request: the one named, or all of them; 700 when there is none. */
  private indexesNamed(collectionId: bigint, indexName: string | undefined): IndexInfo[] {
    const all = this.indexMeta.indexesOf(collectionId);
    const out = indexName === undefined ? all : all.filter((i) => i.indexName === indexName);
    if (out.length > 0) return out;
    const coll = this.collectionLabel(collectionId);
    throw new VbError(
      ErrorCode.IndexNotFound,
      indexName === undefined
        ? `collection ${coll} has no index (700): create one with CreateIndex`
        : `index "${indexName}" not found on collection ${coll} (700)${all.length ? `: its indexes are ${all.map((i) => `"${i.indexName}"`).join(", ")}` : ""}`,
      { retriable: false },
    );
  }

  private describeIndex(body: unknown): { indexes: ReturnType<typeof indexProgress>[] } {
    const b = obj(body, "DescribeIndex");
    const collectionId = bigintOf(b.collectionId, "collectionId");
    const indexes = this.indexesNamed(collectionId, optionalStringOf(b.indexName, "indexName"));
    const segments = this.segments.ofCollection(collectionId);
    return { indexes: indexes.map((i) => indexProgress(i, segments, (s) => this.indexMeta.build(s, i))) };
  }

  private async dropIndex(body: unknown): Promise<DeferredReply<null>> {
    const b = obj(body, "DropIndex");
    const collectionId = bigintOf(b.collectionId, "collectionId");
    const indexName = optionalStringOf(b.indexName, "indexName");
    const named = this.indexesNamed(collectionId, indexName);
    if (named.length > 1) {
      throw VbError.invalid(`indexName: collection ${this.collectionLabel(collectionId)} has ${named.length} indexes (${named.map((i) => `"${i.indexName}"`).join(", ")}): name the one to drop`);
    }
    const index = named[0]!;
    await this.indexMeta.removeIndex(index);
    this.ctx.log.info({ collection: String(collectionId), index: String(index.indexId), name: index.indexName }, "index dropped; removing its files");
    void publishEvent(this.env, { kind: "index.dropped", collectionId, indexId: index.indexId }).catch((err: unknown) =>
      this.ctx.log.warn({ index: String(index.indexId), err: String(err) }, "index.dropped event not published"),
    );
    // answered once the files are gone (a failure is retried later: the index is dropped either way)
    const gc = this.startIndexGc([{ collectionId, indexId: index.indexId }]);
    return this.ctx.reenter(gc.then(() => null));
  }

  private getIndexInfos(body: unknown): { indexes: IndexInfo[]; builds: IndexLoadInfo[] } {
    const b = obj(body, "GetIndexInfos");
    const collectionId = bigintOf(b.collectionId, "collectionId");
    const want =
      b.segmentIds === undefined ? undefined : new Set(list(b.segmentIds, "segmentIds").map((v, i) => bigintOf(v, `segmentIds[${i}]`)));
    const indexes = this.indexMeta.indexesOf(collectionId);
    const builds: IndexLoadInfo[] = [];
    for (const index of indexes) {
      for (const r of this.indexMeta.buildsOfIndex(index.indexId)) {
        if (r.state !== "Finished" || r.fileKey === undefined || (want && !want.has(r.segmentId))) continue;
        const seg = this.segments.get(r.segmentId);
        if (!seg || seg.state === "Dropped") continue;
        builds.push({
          segmentId: r.segmentId,
          fieldId: index.fieldId,
          indexId: index.indexId,
          buildId: r.buildId,
          fileKey: r.fileKey,
          indexType: index.indexType,
          metricType: index.metricType,
          memorySize: r.memorySize ?? 0,
        });
      }
    }
    builds.sort((x, y) => (x.segmentId < y.segmentId ? -1 : x.segmentId > y.segmentId ? 1 : 0));
    return { indexes, builds };
  }

  private async indexBuilt(body: unknown): Promise<null> {
    const b = obj(body, "IndexBuilt");
    const buildId = bigintOf(b.buildId, "buildId");
    const nodeId = nodeIdOf(b.nodeId, "nodeId");
    const ok = boolOf(b.ok, "ok");
    const rec = this.indexMeta.buildById(buildId);
    if (!rec || this.isIndexGarbage(rec)) {
      // the index was dropped (or its segment removed) while the datanode built it: its file is garbage
      const key = ok ? optionalStringOf(b.fileKey, "fileKey") : undefined;
      if (key !== undefined && key.startsWith("index_files/") && key.split("/")[5] === String(buildId)) {
        void this.env.objectStore.delete(key).catch((err: unknown) => this.ctx.log.warn({ key, err: String(err) }, "stray index file not removed"));
      }
      return null;
    }
    if (rec.state === "Finished") return null; // a repeated report
    if (rec.nodeId !== nodeId) {
      throw new VbError(ErrorCode.NodeNotMatch, `build ${buildId} is assigned to datanode ${rec.nodeId ?? "(none)"}, not ${nodeId}: drop it`, {
        retriable: false,
      });
    }
    const fields = { collection: String(rec.collectionId), segment: String(rec.segmentId), index: String(rec.indexId), node: nodeId };
    if (ok) {
      const expected = indexFileKey(rec.collectionId, rec.partitionId, rec.segmentId, rec.indexId, rec.buildId);
      const fileKey = stringOf(b.fileKey, "fileKey");
      if (fileKey !== expected) throw VbError.invalid(`fileKey: build ${buildId} writes "${expected}", not "${fileKey}"`);
      const done = finished(rec, { fileKey, serializedSize: intOf(b.serializedSize, "serializedSize"), memorySize: intOf(b.memorySize, "memorySize") });
      await this.indexMeta.saveBuild(done);
      this.ctx.log.info({ ...fields, rows: rec.numRows, bytes: done.serializedSize }, "segment indexed");
      void publishEvent(this.env, { kind: "segment.indexed", collectionId: rec.collectionId, segmentId: rec.segmentId, indexId: rec.indexId }).catch(
        (err: unknown) => this.ctx.log.warn({ ...fields, err: String(err) }, "segment.indexed event not published"),
      );
    } else if (rec.state === "InProgress") {
      const reason = optionalStringOf(b.failReason, "failReason") ?? "the datanode gave no reason";
      const next = failed(rec, `datanode ${nodeId}: ${reason}`, Date.now());
      await this.indexMeta.saveBuild(next);
      if (failedForGood(next)) this.ctx.log.error({ ...fields, attempts: next.attempts, reason }, "index build failed for good");
      else this.ctx.log.warn({ ...fields, attempts: next.attempts, reason, retryInMs: next.retryAt! - Date.now() }, "index build failed; retrying");
    }
    this.ctx.self(I.ScheduleBuilds); // a slot is free
    return null;
  }

  /** A build whose index was dropped or whose segment is gone. */
  private isIndexGarbage(b: BuildRecord): boolean {
    const seg = this.segments.get(b.segmentId);
    return !this.indexMeta.index(b.indexId) || !seg || seg.state === "Dropped";
  }

  private async scheduleBuildsSafely(): Promise<void> {
    try {
      await this.scheduleBuilds();
    } catch (err) {
      this.ctx.log.error({ err: String(err) }, "scheduling index builds failed; retrying on the next tick");
    }
  }

  /**
   * Gives out the builds that are due: a record for every (Flushed L1 segment, live index) that has
   * none, then Unissued builds and Failed ones whose retry time came, to the live datanodes with the
   * fewest builds in flight (at most BUILDS_PER_NODE each).
   */
  private async scheduleBuilds(): Promise<void> {
    if (!this.feedReady) return;
    const missing = missingBuilds(
      [...this.indexMeta.allIndexes()],
      (c) => this.segments.ofCollection(c),
      (s, i) => this.indexMeta.build(s, i) !== undefined,
    );
    const records: BuildRecord[] = [];
    for (const { segment, index } of missing) {
      records.push({
        segmentId: segment.segmentId,
        collectionId: segment.collectionId,
        partitionId: segment.partitionId,
        indexId: index.indexId,
        buildId: await this.ids.take(),
        state: "Unissued",
        numRows: segment.numRows,
        attempts: 0,
        lost: 0,
      });
    }
    await Promise.all(records.map((r) => this.indexMeta.saveBuild(r)));
    const now = Date.now();
    const inFlight = new Map<string, number>();
    for (const n of this.channels.liveNodes(now, this.env.config.heartbeatAvailableMs)) inFlight.set(n.nodeId, 0);
    if (inFlight.size === 0) return;
    const due: BuildRecord[] = [];
    for (const b of this.indexMeta.allBuilds()) {
      if (b.state === "InProgress" && b.nodeId !== undefined && inFlight.has(b.nodeId)) inFlight.set(b.nodeId, inFlight.get(b.nodeId)! + 1);
      else if (isDue(b, now) && !this.isIndexGarbage(b) && !this.indexGcPending.has(b.buildId) && this.collections.has(b.collectionId)) due.push(b);
    }
    if (due.length === 0) return;
    due.sort((x, y) => (x.buildId < y.buildId ? -1 : x.buildId > y.buildId ? 1 : 0));
    const plan = planBuilds(
      due.map((b) => b.buildId),
      inFlight,
    );
    for (const b of due) {
      const nodeId = plan.get(b.buildId);
      if (nodeId === undefined) continue;
      const next = assigned(b, nodeId, now);
      await this.indexMeta.saveBuild(next);
      this.tellBuild(next);
      this.ctx.log.info(
        { collection: String(b.collectionId), segment: String(b.segmentId), index: String(b.indexId), build: String(b.buildId), node: nodeId, retry: b.state === "Failed" },
        "index build given to a datanode",
      );
    }
  }

  private tellBuild(b: BuildRecord): void {
    const index = this.indexMeta.index(b.indexId);
    const segment = this.segments.get(b.segmentId);
    const coll = this.collections.get(b.collectionId);
    if (!index || !segment || !coll || b.nodeId === undefined) return;
    this.tellDatanode(b.nodeId, "BuildIndex", {
      buildId: b.buildId,
      collectionId: b.collectionId,
      segment,
      schema: coll.schema,
      index,
      fileKey: indexFileKey(b.collectionId, b.partitionId, b.segmentId, b.indexId, b.buildId),
    });
    this.channels.nodes.get(b.nodeId)?.sentAt.set(`build:${b.buildId}`, Date.now());
  }

  /** Builds whose datanode stopped heartbeating are lost: they are given out again after a backoff. */
  private async checkLostBuilds(now: number): Promise<void> {
    const available = this.env.config.heartbeatAvailableMs;
    for (const b of [...this.indexMeta.allBuilds()]) {
      if (b.state !== "InProgress" || b.nodeId === undefined || this.channels.isAlive(b.nodeId, now, available)) continue;
      // a node not heard of since datacoord started gets the same grace as its vchannels
      if (!this.channels.nodes.has(b.nodeId) && now < this.startedAt + available) continue;
      const next = lost(b, `datanode ${b.nodeId} was lost during the build (no heartbeat for ${available} ms)`, now);
      await this.indexMeta.saveBuild(next);
      this.ctx.log.warn(
        { collection: String(b.collectionId), segment: String(b.segmentId), build: String(b.buildId), node: b.nodeId, retryInMs: next.retryAt! - now },
        "index build lost with its datanode; it will be given out again",
      );
    }
  }

  /** Re-tells a datanode the builds its heartbeat does not list (a lost tell, or a restarted node). */
  private reconcileBuilds(hb: DatanodeHeartbeat, now: number): void {
    if (!Array.isArray(hb.indexBuilds)) return;
    const node = this.channels.nodes.get(hb.nodeId);
    if (!node) return;
    const held = new Set(hb.indexBuilds.map(String));
    const gap = Math.max(1_000, 3 * this.env.config.heartbeatIntervalMs);
    for (const b of this.indexMeta.allBuilds()) {
      if (b.state !== "InProgress" || b.nodeId !== hb.nodeId || held.has(String(b.buildId))) continue;
      const at = node.sentAt.get(`build:${b.buildId}`) ?? b.assignedAt ?? 0;
      if (now - at < gap) continue;
      this.ctx.log.info({ build: String(b.buildId), node: hb.nodeId }, "datanode does not hold a build given to it; telling it again");
      this.tellBuild(b);
    }
  }

  /**
   * Removes the artifacts and records of builds whose index was dropped or whose segment is gone (off the
   * mailbox), and sweeps the artifacts of `dropped` indexes. The promise settles when the task is done
   * and never rejects; a failure is retried later.
   */
  private startIndexGc(dropped: IndexGcTarget["dropped"] = []): Promise<void> {
    const builds = [...this.indexMeta.allBuilds()].filter((b) => !this.indexGcPending.has(b.buildId) && this.isIndexGarbage(b));
    if (builds.length === 0 && dropped.length === 0) return Promise.resolve();
    for (const b of builds) this.indexGcPending.add(b.buildId);
    const target: IndexGcTarget = { builds, dropped };
    const work = collectIndexGarbage(this.env.objectStore, this.indexMeta, target);
    after(this.ctx, work, (r) => this.onIndexGcDone(target, r));
    return work.then(
      () => undefined,
      () => undefined,
    );
  }

  private onIndexGcDone(target: IndexGcTarget, r: PipeResult<number>): void {
    for (const b of target.builds) this.indexGcPending.delete(b.buildId);
    if (!r.ok) {
      this.indexGcRetries++;
      this.ctx.log.warn({ builds: target.builds.length, err: String(r.error) }, "removing index files failed; retrying");
      this.retryLater(`index-gc:${this.indexGcRetries}`, this.indexGcRetries, I.IndexGc, target.dropped);
      return;
    }
    this.indexGcRetries = 0;
    for (const b of target.builds) this.indexMeta.forgetBuild(b);
    if (r.value > 0 || target.builds.length > 0) {
      this.ctx.log.info({ builds: target.builds.length, objects: r.value }, "index files removed");
    }
  }
}
