/**
 * The datacoord actor (DESIGN §1, §4): segment allocation and lifecycle, channel checkpoints, flush,
 * vchannel → datanode assignment, recovery info, garbage collection, and indexes (Milvus 2.3+ folds
 * IndexCoord into datacoord): index definitions and one build per (Flushed L1 segment, index), given to
 * datanodes and retried when they fail or are lost.
 *
 * State lives in five KV buckets (segments, channel_watch, channel_checkpoints, indexes,
 * segment_indexes) and is loaded at start (core.ts); every change is written to KV before it is
 * answered. It learns collections from rootcoord at start and from the events stream after, and
 * datanodes from their heartbeats on the dist feed. It never asks a datanode: it tells them
 * (WatchDmChannels, UnwatchDmChannels, FlushChannels, BuildIndex) and re-tells from their heartbeats what
 * they missed, so its mailbox never waits on a peer that may be waiting on it.
 *
 * This file is the actor: its lifecycle, the streams it follows, and the routing of each verb to the
 * part that serves it — the cluster (cluster.ts), the segment services (segment_service.ts) and the
 * index service (index_service.ts), which share the state in core.ts.
 */
import { ErrorCode, VbError, isVbError } from "../../protocol/errors.ts";
import { DATACOORD, type DatacoordApi } from "../../protocol/messages/datacoord.ts";
import type { CollectionInfo } from "../../protocol/meta.ts";
import { Actor, type Message, type PipeResult } from "../../runtime/actor.ts";
import type { DmlConsumption } from "../../runtime/dml_log.ts";
import { Feed, type FeedFollower, type FeedMessage } from "../../runtime/feed.ts";
import { after } from "../continuations.ts";
import { ensureDistStream, heartbeatFilter } from "../datanode/heartbeat.ts";
import type { ClusterEnv } from "../env.ts";
import { followEvents, type VbEvent } from "../events.ts";
import { DatacoordCluster } from "./cluster.ts";
import { DatacoordCore, I } from "./core.ts";
import type { IndexGcTarget } from "./gc.ts";
import { IndexService } from "./index_service.ts";
import { SegmentService } from "./segment_service.ts";
import { DATACOORD_GET_STATUS, type DatacoordStatus } from "./status.ts";

type Verbs = { [V in keyof DatacoordApi]: (body: unknown, msg: Message) => unknown };

export class DatacoordActor extends Actor {
  private core!: DatacoordCore;
  private cluster!: DatacoordCluster;
  private indexService!: IndexService;
  /** every verb of DatacoordApi and the part that serves it: the compiler checks that none is missing */
  private verbs!: Verbs;
  private events: DmlConsumption | undefined;
  private feed: FeedFollower | undefined;
  /** collections with records in KV at start: dropped ones among them are found by the first listing */
  private knownAtStart = new Set<bigint>();
  private listRetries = 0;
  private followGen = 0;
  private followRetries = 0;
  private stopping = false;

  constructor(private readonly env: ClusterEnv) {
    super();
  }

  // ---- lifecycle ----

  override async preStart(): Promise<void> {
    const core = (this.core = await DatacoordCore.open(this.env, this.ctx));
    const cluster = (this.cluster = new DatacoordCluster(core));
    const segments = new SegmentService(core, cluster);
    const indexes = (this.indexService = new IndexService(core, cluster));
    this.verbs = {
      AllocSegment: (b) => segments.allocSegment(b),
      SegmentSealed: (b) => segments.segmentSealed(b),
      SaveBinlogPaths: (b) => segments.saveBinlogPaths(b),
      UpdateChannelCheckpoint: (b) => segments.updateChannelCheckpoint(b),
      Flush: (b, msg) => segments.flush(b, core.deadlineOf(msg)),
      GetFlushState: (b) => segments.getFlushState(b),
      GetSegmentInfo: (b) => segments.getSegmentInfo(b),
      ListSegments: (b) => segments.listSegments(b),
      GetRecoveryInfo: (b) => segments.getRecoveryInfo(b),
      GetChannelCheckpoint: (b) => segments.getChannelCheckpoint(b),
      GetChannelWatches: (b) => cluster.getChannelWatches(b),
      DatanodeLeaving: (b) => cluster.datanodeLeaving(b),
      CreateIndex: (b, msg) => indexes.createIndex(b, core.deadlineOf(msg)),
      DescribeIndex: (b) => indexes.describeIndex(b),
      DropIndex: (b) => indexes.dropIndex(b),
      GetIndexInfos: (b) => indexes.getIndexInfos(b),
      IndexBuilt: (b) => indexes.indexBuilt(b),
    };
    this.knownAtStart = new Set([...core.channels.collectionIds(), ...core.segments.collectionIds()]);

    // follow DDL events from now on, then list what exists: nothing created in between is missed
    this.watchFollowers(await this.startFollowers(undefined));
    this.ctx.timers.startPeriodic("tick", this.env.config.heartbeatIntervalMs, I.Tick);
    this.listCollections();
    // drops a previous run did not finish
    for (const id of new Set([...core.segments.all()].filter((s) => s.state === "Dropped").map((s) => s.collectionId))) {
      cluster.startGc(id);
    }
    // builds of indexes dropped (or segments removed) while a previous run was collecting them
    void indexes.startIndexGc();
    const { segments: segs, vchannels, indexes: idx, builds } = this.status();
    this.ctx.log.info({ segments: segs, vchannels, indexes: idx, builds }, "datacoord started");
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
      this.core.retryLater("follow", this.followRetries, I.Follow, from);
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

  // ---- messages ----

  override async receive(msg: Message): Promise<unknown> {
    if (msg.type.startsWith("datacoord.internal.")) {
      await this.internal(msg.type, msg.body);
      return null;
    }
    if (msg.type === DATACOORD_GET_STATUS) return this.status();
    const verb = msg.type.slice(DATACOORD.length + 1) as keyof Verbs;
    if (!msg.type.startsWith(`${DATACOORD}.`) || !Object.hasOwn(this.verbs, verb)) throw VbError.invalid(`datacoord does not handle "${msg.type}"`);
    return this.verbs[verb](msg.body, msg);
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
        this.core.feedReady = true;
        await this.cluster.assign();
        return this.indexService.scheduleBuildsSafely();
      case I.ListCollections:
        return this.listCollections();
      case I.Gc:
        return this.cluster.startGc(data as bigint);
      case I.Sweep:
        return this.cluster.sweep(data as bigint);
      case I.Follow:
        return this.refollow(data as bigint | undefined);
      case I.FollowEnded:
        return this.onFollowEnded(data as { generation: number; err: unknown });
      case I.ScheduleBuilds:
        return this.indexService.scheduleBuildsSafely();
      case I.IndexGc:
        return void this.indexService.startIndexGc(data as IndexGcTarget["dropped"]);
    }
  }

  private async tick(): Promise<void> {
    this.core.pending.settle((v) => this.core.checkpoints.get(v));
    await this.cluster.assignSafely();
    await this.indexService.tick(Date.now());
  }

  private async onHeartbeat(m: FeedMessage): Promise<void> {
    const seen = await this.cluster.onHeartbeat(m);
    if (!seen) return;
    if (seen.cameUp) await this.indexService.scheduleBuildsSafely();
    if (!m.initial) this.indexService.reconcileBuilds(seen.hb, Date.now());
  }

  private status(): DatacoordStatus {
    const core = this.core;
    return {
      segments: [...core.segments.all()].filter((s) => s.state !== "Dropped").length,
      vchannels: [...core.channels.all()].length,
      indexes: [...core.indexMeta.allIndexes()].length,
      builds: [...core.indexMeta.allBuilds()].length,
      undecodableRecords: core.undecodable(),
    };
  }

  // ---- collections ----

  private listCollections(): void {
    const work = (async () => {
      const { databases } = await this.core.askRootcoord("ListDatabases", {});
      const out: CollectionInfo[] = [];
      for (const dbName of databases) {
        try {
          out.push(...(await this.core.askRootcoord("ListCollections", { dbName })).collections);
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
      this.core.retryLater("list", this.listRetries, I.ListCollections, null);
      return;
    }
    const live = new Set<bigint>();
    for (const info of r.value) {
      if (info.state === "Created") {
        live.add(info.collectionId);
        await this.cluster.addCollection(info);
      }
    }
    // collections datacoord kept records of but rootcoord no longer has: dropped while datacoord was away
    for (const id of this.knownAtStart) {
      if (!live.has(id) && !this.core.collections.has(id)) await this.dropCollection(id);
    }
    this.knownAtStart.clear();
  }

  private async onEvent(ev: VbEvent): Promise<void> {
    try {
      if (ev.kind === "collection.created") await this.cluster.addCollection(ev.collection);
      else if (ev.kind === "collection.dropped") await this.dropCollection(ev.collectionId);
      else if (ev.kind === "collection.altered" && this.core.collections.has(ev.collection.collectionId)) this.core.collections.add(ev.collection);
    } catch (err) {
      // a KV failure: the next tick (assignments) or the next start (listing) repairs what is missing
      this.ctx.log.error({ event: ev.kind, err: String(err) }, "could not apply an event");
    }
  }

  private async dropCollection(collectionId: bigint): Promise<void> {
    await this.cluster.dropCollection(collectionId);
    await this.indexService.dropCollection(collectionId);
  }
}
