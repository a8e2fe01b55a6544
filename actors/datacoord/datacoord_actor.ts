/**
 * The datacoord actor (DESIGN §1, §4): segment allocation and lifecycle, channel checkpoints, flush,
 * vchannel → datanode assignment, recovery info and garbage collection.
 *
 * State lives in three KV buckets (segments, channel_watch, channel_checkpoints) and is loaded at start;
 * every change is written to KV before it is answered. It learns collections from rootcoord at start and
 * from the events stream after, and datanodes from their heartbeats on the dist feed. It never asks a
 * datanode: it tells them (WatchDmChannels, UnwatchDmChannels, FlushChannels) and re-tells from their
 * heartbeats what they missed, so its mailbox never waits on a peer that may be waiting on it.
 */
import { ALL_PARTITIONS } from "../../protocol/dml.ts";
import { ErrorCode, VbError, isVbError } from "../../protocol/errors.ts";
import { asNodeId, composeTs } from "../../protocol/ids.ts";
import type { ChannelCheckpoint, CollectionInfo, SegmentInfo, SegmentState } from "../../protocol/meta.ts";
import { messageType, type Req, type Res } from "../../protocol/messages/api.ts";
import { DATACOORD, type ChannelWatch, type DatacoordApi, type DatanodeApi, type DatanodeHeartbeat } from "../../protocol/messages/datacoord.ts";
import { ROOTCOORD, type RootcoordApi } from "../../protocol/messages/rootcoord.ts";
import { Actor, type Message } from "../../runtime/actor.ts";
import type { DmlConsumption } from "../../runtime/dml_log.ts";
import { Feed, type FeedFollower, type FeedMessage } from "../../runtime/feed.ts";
import { DATANODE } from "../datanode/datanode_actor.ts";
import { decodeHeartbeat, ensureDistStream, heartbeatFilter } from "../datanode/heartbeat.ts";
import type { ClusterEnv } from "../env.ts";
import { followEvents, publishEvent, type VbEvent } from "../events.ts";
import { CHECKPOINTS_BUCKET, ChannelCheckpoints } from "./channel_checkpoints.ts";
import { CHANNEL_WATCH_BUCKET, ChannelManager, planAssignments, type ChannelRecord } from "./channel_manager.ts";
import { Collections } from "./collections.ts";
import { PendingFlushes, isFlushed, segmentsToFlush } from "./flush.ts";
import { collectGarbage, deleteObjects } from "./gc.ts";
import { IdPool } from "./id_pool.ts";
import {
  bigintOf,
  binlogsOf,
  checkpointOf,
  intOf,
  levelOf,
  list,
  nodeIdOf,
  obj,
  reporterOf,
  statesOf,
  stringOf,
  vchannelOf,
} from "./requests.ts";
import { SEGMENTS_BUCKET, SegmentMeta, transition } from "./segment_meta.ts";

const ASK_TIMEOUT_MS = 5_000;
const RETRY_MIN_MS = 200;
const RETRY_MAX_MS = 5_000;

/** Messages the actor sends itself; their bodies are `Internal` instances, which no peer can forge. */
const I = {
  Tick: "datacoord.internal.Tick",
  Event: "datacoord.internal.Event",
  Heartbeat: "datacoord.internal.Heartbeat",
  FeedReady: "datacoord.internal.FeedReady",
  ListCollections: "datacoord.internal.ListCollections",
  Collections: "datacoord.internal.Collections",
  Gc: "datacoord.internal.Gc",
  GcDone: "datacoord.internal.GcDone",
  Sweep: "datacoord.internal.Sweep",
  Follow: "datacoord.internal.Follow",
  Followed: "datacoord.internal.Followed",
  FollowEnded: "datacoord.internal.FollowEnded",
} as const;

class Internal<T = unknown> {
  constructor(readonly data: T) {}
}

/**
 * The data of a message the actor sent itself: an `Internal` body, or the outcome of `pipeToSelf` work
 * that resolved to one. Anything else (the same type name sent over NATS) is refused with 1100.
 */
function internalData(msg: Message): unknown {
  let b = msg.body;
  if (typeof b === "object" && b !== null && (b as { ok?: unknown }).ok === true && "value" in b) b = (b as { value: unknown }).value;
  if (!(b instanceof Internal)) throw VbError.invalid(`${msg.type} is internal to datacoord`);
  return b.data;
}

type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

function settle<T, C>(work: Promise<T>, tag: C): Promise<Internal<{ tag: C; outcome: Outcome<T> }>> {
  return work.then(
    (value) => new Internal({ tag, outcome: { ok: true, value } as Outcome<T> }),
    (error: unknown) => new Internal({ tag, outcome: { ok: false, error } as Outcome<T> }),
  );
}

const LIVE_STATES: readonly SegmentState[] = ["Growing", "Sealed", "Flushing", "Flushed"];

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

  constructor(private readonly env: ClusterEnv) {
    super();
  }

  // ---- lifecycle ----

  override async preStart(): Promise<void> {
    const env = this.env;
    this.startedAt = Date.now();
    const [segKv, watchKv, cpKv] = await Promise.all([
      env.meta(SEGMENTS_BUCKET),
      env.meta(CHANNEL_WATCH_BUCKET),
      env.meta(CHECKPOINTS_BUCKET),
    ]);
    [this.segments, this.channels, this.checkpoints] = await Promise.all([
      SegmentMeta.open(segKv),
      ChannelManager.open(watchKv),
      ChannelCheckpoints.open(cpKv),
    ]);
    this.ids = new IdPool((count) => this.askRootcoord("AllocId", { count }));
    this.knownAtStart = new Set([...this.channels.collectionIds(), ...this.segments.collectionIds()]);

    // follow DDL events from now on, then list what exists: nothing created in between is missed
    this.watchFollowers(await this.startFollowers(undefined));
    this.ctx.timers.startPeriodic("tick", env.config.heartbeatIntervalMs, I.Tick, new Internal(null));
    this.listCollections();
    // drops a previous run did not finish
    for (const id of new Set([...this.segments.all()].filter((s) => s.state === "Dropped").map((s) => s.collectionId))) {
      this.startGc(id);
    }
    this.ctx.log.info(
      { segments: [...this.segments.all()].length, vchannels: [...this.channels.all()].length },
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
    const events = await followEvents(env, (ev) => this.ctx.self(I.Event, new Internal(ev)), eventsFrom);
    try {
      await ensureDistStream(env);
      const feed = await new Feed(env.nc).follow(env.subjects.distStream(), heartbeatFilter(env.subjects), (m) =>
        this.ctx.self(I.Heartbeat, new Internal(m)),
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
      () => this.ctx.self(I.FeedReady, new Internal(null)),
      () => undefined,
    );
    const ended = (err: unknown) => this.ctx.self(I.FollowEnded, new Internal({ generation, err }));
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
    this.ctx.pipeToSelf(settle(this.startFollowers(from), from), I.Followed);
  }

  private onFollowed(r: { tag: bigint | undefined; outcome: Outcome<{ events: DmlConsumption; feed: FeedFollower }> }): void {
    if (!r.outcome.ok) {
      this.followRetries++;
      this.later("follow", this.followRetries, I.Follow, r.tag);
      return;
    }
    if (this.stopping) {
      void r.outcome.value.events.stop().catch(() => undefined);
      void r.outcome.value.feed.stop().catch(() => undefined);
      return;
    }
    this.followRetries = 0;
    this.watchFollowers(r.outcome.value);
  }

  override async receive(msg: Message): Promise<unknown> {
    if (msg.type.startsWith("datacoord.internal.")) {
      await this.internal(msg.type, internalData(msg));
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
        return this.flush(body);
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
      default:
        throw VbError.invalid(`datacoord does not handle "${msg.type}"`);
    }
  }

  private askRootcoord<V extends keyof RootcoordApi & string>(verb: V, body: Req<RootcoordApi, V>): Promise<Res<RootcoordApi, V>> {
    return this.ctx.ask(this.env.subjects.rootcoord(), messageType(ROOTCOORD, verb), body, { timeoutMs: ASK_TIMEOUT_MS });
  }

  private tellDatanode<V extends keyof DatanodeApi & string>(nodeId: string, verb: V, body: Req<DatanodeApi, V>): void {
    this.ctx.tell(this.env.subjects.datanode(asNodeId(nodeId)), messageType(DATANODE, verb), body);
  }

  private later(key: string, retries: number, type: string, data: unknown): void {
    const ms = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(retries, 10));
    this.ctx.timers.startSingle(key, ms, type, new Internal(data));
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
        return this.assign();
      case I.ListCollections:
        return this.listCollections();
      case I.Collections:
        return this.onCollections(data as { outcome: Outcome<CollectionInfo[]> });
      case I.Gc:
        return this.startGc(data as bigint);
      case I.GcDone:
        return this.onGcDone(data as { tag: { collectionId: bigint; segments: SegmentInfo[] }; outcome: Outcome<number> });
      case I.Sweep:
        return this.sweep(data as bigint);
      case I.Follow:
        return this.refollow(data as bigint | undefined);
      case I.Followed:
        return this.onFollowed(data as { tag: bigint | undefined; outcome: Outcome<{ events: DmlConsumption; feed: FeedFollower }> });
      case I.FollowEnded:
        return this.onFollowEnded(data as { generation: number; err: unknown });
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
    this.ctx.pipeToSelf(settle(work, null), I.Collections);
  }

  private async onCollections(r: { outcome: Outcome<CollectionInfo[]> }): Promise<void> {
    if (!r.outcome.ok) {
      this.listRetries++;
      this.ctx.log.warn({ err: String(r.outcome.error) }, "cannot list collections from rootcoord yet; retrying");
      this.later("list", this.listRetries, I.ListCollections, null);
      return;
    }
    const live = new Set<bigint>();
    for (const info of r.outcome.value) {
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
    this.ctx.log.info({ collection: String(collectionId), vchannels: records.length }, "collection dropped; collecting its data");
    this.startGc(collectionId);
  }

  private startGc(collectionId: bigint): void {
    if (this.collecting.has(collectionId)) return;
    const segments = this.segments.ofCollection(collectionId).filter((s) => s.state === "Dropped");
    this.collecting.add(collectionId);
    const work = collectGarbage(this.env.objectStore, this.segments, { collectionId, segments });
    this.ctx.pipeToSelf(settle(work, { collectionId, segments }), I.GcDone);
  }

  private onGcDone(r: { tag: { collectionId: bigint; segments: SegmentInfo[] }; outcome: Outcome<number> }): void {
    const { collectionId, segments } = r.tag;
    this.collecting.delete(collectionId);
    if (!r.outcome.ok) {
      this.gcRetries++;
      this.ctx.log.warn({ collection: String(collectionId), err: String(r.outcome.error) }, "garbage collection failed; retrying");
      this.later(`gc:${collectionId}`, this.gcRetries, I.Gc, collectionId);
      return;
    }
    this.gcRetries = 0;
    for (const s of segments) this.segments.forget(s.segmentId);
    this.ctx.log.info({ collection: String(collectionId), segments: segments.length, objects: r.outcome.value }, "collection data removed");
    // a datanode may still have been writing when it was told to stop: sweep once more later
    this.ctx.timers.startSingle(`sweep:${collectionId}`, this.env.config.heartbeatAvailableMs, I.Sweep, new Internal(collectionId));
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
    }
    if (!m.initial) this.reconcileNode(hb.nodeId, now);
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

  private async flush(body: unknown): Promise<Res<DatacoordApi, "Flush">> {
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
    let flushTs: bigint;
    try {
      flushTs = (await this.askRootcoord("AllocTimestamp", { count: 1 })).ts;
    } catch {
      flushTs = composeTs(Date.now(), 0);
    }
    return {
      collectionId: coll.collectionId,
      flushPositions,
      segmentIds: segmentsToFlush(this.segments.ofCollection(coll.collectionId), flushPositions),
      flushTs,
    };
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
}
