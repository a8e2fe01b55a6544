/**
 * The datanode actor (DESIGN §1, §4): consumes the vchannels datacoord assigns it, cuts them into
 * segments (write_buffer.ts), and has the sealed ones written to the object store and reported to
 * datacoord in order (sync_manager.ts). It also builds indexes for datacoord (build_service.ts). Nothing
 * here waits on a peer inside the mailbox: every ask and every write runs off it and continues back in
 * it (ctx.reenterAfter).
 *
 * This file is the write path's channel handling — watches, preparing a vchannel from datacoord's records,
 * reading it, applying its messages, flush and the seal policy's tick — and the node's heartbeat and status.
 */
import { randomBytes } from "node:crypto";
import { VbError, ErrorCode, isVbError } from "../../protocol/errors.ts";
import type { CollectionInfo, SegmentInfo } from "../../protocol/meta.ts";
import { messageType, type Req, type Res } from "../../protocol/messages/api.ts";
import {
  DATACOORD,
  type ChannelWatch,
  type DatacoordApi,
  type DatanodeApi,
  type DatanodeHeartbeat,
  type SealPolicy,
} from "../../protocol/messages/datacoord.ts";
import { ROOTCOORD, type RootcoordApi } from "../../protocol/messages/rootcoord.ts";
import { Actor, type Message, type PipeResult } from "../../runtime/actor.ts";
import type { DmlMessage } from "../../runtime/dml_log.ts";
import { Feed } from "../../runtime/feed.ts";
import { after, backoffMs } from "../continuations.ts";
import type { ClusterEnv } from "../env.ts";
import { decodeDml } from "../storage/dml_decode.ts";
import { IndexBuildService } from "./build_service.ts";
import { I, type AskDatacoord, type Channel, type ChannelRef, type ConsumerRef, type RetryLater } from "./channel.ts";
import { ChannelConsumer } from "./channel_consumer.ts";
import { ensureDistStream, encodeHeartbeat, heartbeatSubject } from "./heartbeat.ts";
import { bigintOf, channelWatchOf, list, obj, sealPolicyOf, vchannelOf } from "./requests.ts";
import { SyncManager } from "./sync_manager.ts";
import { WriteBuffer, type BufferEvents, type BufferedSegment } from "./write_buffer.ts";

export const DATANODE = "datanode";

const ASK_TIMEOUT_MS = 10_000;
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;

/** Watch generations, unique in the process (also across restarts of the actor by its supervisor). */
let nextGen = 1;

interface Prepared {
  schema: CollectionInfo["schema"];
  checkpoint: { position: bigint; ts: bigint };
  known: SegmentInfo[];
}

export interface DatanodeOptions {
  nodeId: string;
}

export class DatanodeActor extends Actor {
  readonly nodeId: string;
  /** this process's incarnation of the node: datacoord refuses reports from older ones */
  readonly session = randomBytes(8).toString("hex");
  private sealPolicy: SealPolicy;
  private readonly channels = new Map<string, Channel>();
  private watchesFetched = false;
  private watchRetries = 0;
  private stopped = false;
  private readonly feed: Feed;
  private heartbeatInFlight = false;
  /** the write path's reports and writes (set in preStart, with the context) */
  private sync!: SyncManager;
  /** the index-build role */
  private indexBuilds!: IndexBuildService;

  constructor(
    private readonly env: ClusterEnv,
    opts: DatanodeOptions,
  ) {
    super();
    this.nodeId = opts.nodeId;
    this.sealPolicy = env.config.sealPolicy;
    this.feed = new Feed(env.nc);
  }

  override preStart(): void {
    const askDatacoord: AskDatacoord = (verb, body) => this.askDatacoord(verb, body);
    const retryLater: RetryLater = (key, retries, type, body) => this.retryLater(key, retries, type, body);
    this.sync = new SyncManager(this.ctx, this.env, {
      channelOf: (vchannel, gen) => this.channelOf(vchannel, gen),
      askDatacoord,
      retryLater,
      reporter: this.reporter,
      dropChannel: (ch, reason) => this.dropChannel(ch, reason),
      resetChannel: (ch, reason) => this.resetChannel(ch, reason),
    });
    this.indexBuilds = new IndexBuildService(this.ctx, this.env, this.nodeId, askDatacoord, retryLater);
    this.ctx.timers.startPeriodic("tick", this.env.config.heartbeatIntervalMs, I.Tick);
    this.fetchWatches();
    this.publishHeartbeat();
    this.ctx.log.info({ session: this.session }, "datanode started");
  }

  override async postStop(): Promise<void> {
    this.stopped = true;
    await Promise.all([
      ...[...this.channels.values()].map((ch) => ch.consumer?.stop().catch(() => undefined)),
      this.indexBuilds.close(),
    ]);
    this.channels.clear();
  }

  override receive(msg: Message): unknown {
    if (msg.type.startsWith("datanode.internal.")) {
      this.internal(msg.type, msg.body);
      return null;
    }
    switch (msg.type) {
      case messageType(DATANODE, "WatchDmChannels"):
        return this.watch(msg.body);
      case messageType(DATANODE, "UnwatchDmChannels"):
        return this.unwatch(msg.body);
      case messageType(DATANODE, "FlushChannels"):
        return this.flushChannels(msg.body);
      case messageType(DATANODE, "GetStatus"):
        return this.status();
      case messageType(DATANODE, "BuildIndex"):
        return this.indexBuilds.buildIndex(msg.body);
      default:
        throw VbError.invalid(`datanode does not handle "${msg.type}"`);
    }
  }

  // ---- asks to peers (always off the mailbox, always with a deadline) ----

  private askDatacoord<V extends keyof DatacoordApi & string>(verb: V, body: Req<DatacoordApi, V>): Promise<Res<DatacoordApi, V>> {
    return this.ctx.ask(this.env.subjects.datacoord(), messageType(DATACOORD, verb), body, { timeoutMs: ASK_TIMEOUT_MS });
  }

  private askRootcoord<V extends keyof RootcoordApi & string>(verb: V, body: Req<RootcoordApi, V>): Promise<Res<RootcoordApi, V>> {
    return this.ctx.ask(this.env.subjects.rootcoord(), messageType(ROOTCOORD, verb), body, { timeoutMs: ASK_TIMEOUT_MS });
  }

  private get reporter(): { nodeId: string; session: string } {
    return { nodeId: this.nodeId, session: this.session };
  }

  /** Sends `type` to itself after the backoff of the `retries`-th retry. */
  private retryLater(key: string, retries: number, type: string, body: unknown): void {
    this.ctx.timers.startSingle(key, backoffMs(retries, RETRY_MIN_MS, RETRY_MAX_MS), type, body);
  }

  // ---- the messages it sends itself ----

  private internal(type: string, data: unknown): void {
    switch (type) {
      case I.Tick:
        return this.tick();
      case I.FetchWatches:
        return this.fetchWatches();
      case I.Prepare:
        return this.prepare(data as ChannelRef);
      case I.StartConsumer:
        return this.startConsumer(data as ChannelRef);
      case I.Dml:
        return this.onDml(data as { vchannel: string; gen: number; consumerGen: number; msg: DmlMessage; applied: () => void });
      case I.PumpOps:
        return this.sync.pumpOps(data as ChannelRef);
      case I.Write:
        return this.sync.startWrite(data as ChannelRef & { seg: BufferedSegment });
      case I.Report:
        return this.indexBuilds.sendReport(data as bigint);
    }
  }

  private channelOf(vchannel: string, gen: number): Channel | undefined {
    const ch = this.channels.get(vchannel);
    return ch && ch.gen === gen ? ch : undefined;
  }

  // ---- watches ----

  /** Asks datacoord what this node watches (at start, and until it answers). */
  private fetchWatches(): void {
    if (this.watchesFetched || this.stopped) return;
    after(this.ctx, this.askDatacoord("GetChannelWatches", { nodeId: this.nodeId, session: this.session }), (r) => this.onWatches(r));
  }

  private onWatches(p: PipeResult<Res<DatacoordApi, "GetChannelWatches">>): void {
    if (!p.ok) {
      this.watchRetries++;
      this.ctx.log.debug({ err: String(p.error) }, "GetChannelWatches failed; retrying");
      this.retryLater("watches", this.watchRetries, I.FetchWatches, null);
      return;
    }
    this.watchesFetched = true;
    this.applyWatch(p.value.channels, p.value.sealPolicy);
  }

  private watch(body: unknown): null {
    const b = obj(body, "WatchDmChannels");
    const channels = list(b.channels, "channels").map((c, i) => channelWatchOf(c, `channels[${i}]`));
    const sealPolicy = sealPolicyOf(b.sealPolicy, "sealPolicy");
    this.applyWatch(channels, sealPolicy);
    return null;
  }

  private applyWatch(channels: ChannelWatch[], sealPolicy: SealPolicy): void {
    this.sealPolicy = sealPolicy;
    for (const ch of this.channels.values()) if (ch.buffer) ch.buffer.sealPolicy = sealPolicy;
    for (const w of channels) {
      const cur = this.channels.get(w.vchannel);
      if (cur && cur.collectionId === w.collectionId) continue; // already watching: a repeated watch changes nothing
      if (cur) this.dropChannel(cur, "watched again for another collection");
      this.openChannel(w, 0);
    }
  }

  /** Starts watching a vchannel; `resets` > 0 delays its start (a channel reset after an error). */
  private openChannel(w: ChannelWatch, resets: number): void {
    const ch: Channel = {
      gen: nextGen++,
      collectionId: w.collectionId,
      vchannel: w.vchannel,
      pchannel: w.pchannel,
      stream: this.env.subjects.dmlStream(w.pchannel),
      subject: this.env.subjects.dmlSubject(w.pchannel, w.vchannel),
      phase: "preparing",
      consumerGen: 0,
      consumerRetries: 0,
      prepareRetries: resets,
      resets,
      ops: [],
      opInFlight: false,
      opRetries: 0,
      writeRetries: 0,
      lastReportedCheckpoint: w.checkpoint,
      flushWaiting: false,
    };
    this.channels.set(w.vchannel, ch);
    this.ctx.log.info({ collection: String(w.collectionId), vchannel: w.vchannel, resets }, "watching vchannel");
    if (resets === 0) this.prepare({ vchannel: ch.vchannel, gen: ch.gen });
    else this.retryLater(`prepare:${ch.vchannel}`, resets, I.Prepare, { vchannel: ch.vchannel, gen: ch.gen });
  }

  /**
   * Forgets everything buffered for a vchannel and starts it again from datacoord's records, as a
   * restarted datanode would: the way out of a disagreement with datacoord that retrying cannot fix.
   */
  private resetChannel(ch: Channel, reason: string): void {
    this.dropChannel(ch, `reset: ${reason}`);
    const resets = ch.resets + 1;
    this.openChannel({ collectionId: ch.collectionId, vchannel: ch.vchannel, pchannel: ch.pchannel, checkpoint: ch.lastReportedCheckpoint }, resets);
    if (ch.pendingFlush !== undefined || ch.buffer?.pendingFlush !== undefined) {
      const next = this.channels.get(ch.vchannel)!;
      next.pendingFlush = ch.pendingFlush ?? ch.buffer?.pendingFlush;
    }
  }

  private unwatch(body: unknown): null {
    const b = obj(body, "UnwatchDmChannels");
    const names = list(b.vchannels, "vchannels").map((v, i) => vchannelOf(v, `vchannels[${i}]`));
    for (const v of names) {
      const ch = this.channels.get(v);
      if (ch) this.dropChannel(ch, "unwatched");
    }
    return null;
  }

  private dropChannel(ch: Channel, reason: string): void {
    if (this.channels.get(ch.vchannel) === ch) this.channels.delete(ch.vchannel);
    for (const key of [`prepare:${ch.vchannel}`, `consumer:${ch.vchannel}`, `ops:${ch.vchannel}`]) this.ctx.timers.cancel(key);
    const c = ch.consumer;
    ch.consumer = undefined;
    void c?.stop().catch(() => undefined);
    this.ctx.log.info({ collection: String(ch.collectionId), vchannel: ch.vchannel, reason }, "stopped watching vchannel");
  }

  /** Fetches what a channel needs before it reads: the schema, its checkpoint and its segments. */
  private prepare(t: { vchannel: string; gen: number }): void {
    const ch = this.channelOf(t.vchannel, t.gen);
    if (!ch || ch.phase !== "preparing") return;
    const work = (async (): Promise<Prepared> => {
      const [info, cp, segs] = await Promise.all([
        this.askRootcoord("DescribeCollection", { collectionId: ch.collectionId }),
        this.askDatacoord("GetChannelCheckpoint", { vchannel: ch.vchannel }),
        this.askDatacoord("ListSegments", { collectionId: ch.collectionId }),
      ]);
      return {
        schema: info.schema,
        checkpoint: { position: cp.position, ts: cp.ts },
        known: segs.segments.filter((s) => s.vchannel === ch.vchannel),
      };
    })();
    after(this.ctx, work, (r) => this.onPrepared(t, r));
  }

  private onPrepared(t: ChannelRef, p: PipeResult<Prepared>): void {
    const ch = this.channelOf(t.vchannel, t.gen);
    if (!ch || ch.phase !== "preparing") return;
    if (!p.ok) {
      if (isVbError(p.error, ErrorCode.CollectionNotFound)) {
        this.dropChannel(ch, "its collection no longer exists");
        return;
      }
      ch.prepareRetries++;
      this.ctx.log.warn({ vchannel: ch.vchannel, err: String(p.error) }, "preparing vchannel failed; retrying");
      this.retryLater(`prepare:${ch.vchannel}`, ch.prepareRetries, I.Prepare, t);
      return;
    }
    const { schema, checkpoint, known } = p.value;
    try {
      ch.buffer = new WriteBuffer({
        collectionId: ch.collectionId,
        vchannel: ch.vchannel,
        schema,
        sealPolicy: this.sealPolicy,
        checkpoint,
        known,
      });
    } catch (err) {
      this.ctx.log.error({ vchannel: ch.vchannel, err: String(err) }, "cannot buffer this collection's schema");
      this.dropChannel(ch, "unusable schema");
      return;
    }
    ch.phase = "running";
    ch.lastReportedCheckpoint = checkpoint.position;
    this.ctx.log.info(
      {
        collection: String(ch.collectionId),
        vchannel: ch.vchannel,
        checkpoint: String(checkpoint.position),
        refilling: ch.buffer.unflushed().length,
      },
      "vchannel ready; consuming from its checkpoint",
    );
    if (ch.pendingFlush !== undefined) {
      const pos = ch.pendingFlush;
      ch.pendingFlush = undefined;
      this.requestFlush(ch, pos);
    }
    this.startConsumer({ vchannel: ch.vchannel, gen: ch.gen });
  }

  // ---- consuming ----

  private startConsumer(t: { vchannel: string; gen: number }): void {
    const ch = this.channelOf(t.vchannel, t.gen);
    if (!ch || ch.phase !== "running" || ch.consumer || this.stopped) return;
    const consumerGen = ++ch.consumerGen;
    const deliver = (msg: DmlMessage, applied: () => void): void =>
      this.ctx.self(I.Dml, { vchannel: ch.vchannel, gen: ch.gen, consumerGen, msg, applied });
    const consumer = new ChannelConsumer(this.env.dml, ch.stream, ch.subject, deliver, undefined, this.ctx.address);
    ch.consumer = consumer;
    const tag = { vchannel: ch.vchannel, gen: ch.gen, consumerGen };
    after(this.ctx, consumer.start(ch.buffer!.consumed), (r) => this.onConsumerStarted(tag, consumer, r));
  }

  private onConsumerStarted(t: ConsumerRef, consumer: ChannelConsumer, p: PipeResult<{ done: Promise<void> }>): void {
    const ch = this.channelOf(t.vchannel, t.gen);
    const current = ch !== undefined && ch.consumer === consumer && ch.consumerGen === t.consumerGen;
    if (!current) {
      void consumer.stop().catch(() => undefined);
      return;
    }
    if (!p.ok) {
      ch.consumer = undefined;
      ch.consumerRetries++;
      this.ctx.log.warn({ vchannel: ch.vchannel, err: String(p.error) }, "cannot read the vchannel yet; retrying");
      this.retryLater(`consumer:${ch.vchannel}`, ch.consumerRetries, I.StartConsumer, { vchannel: ch.vchannel, gen: ch.gen });
      return;
    }
    ch.consumerRetries = 0;
    after(this.ctx, p.value.done, (r) => this.onConsumerEnded(t, r));
  }

  private onConsumerEnded(t: ConsumerRef, r: PipeResult<void>): void {
    const ch = this.channelOf(t.vchannel, t.gen);
    if (!ch || ch.consumerGen !== t.consumerGen || this.stopped) return;
    // the consumer failed (the server went away, the stream was removed ...): read again from where we are
    ch.consumer = undefined;
    ch.consumerRetries++;
    this.ctx.log.warn({ vchannel: ch.vchannel, err: r.ok ? "ended" : String(r.error) }, "vchannel reader ended; restarting it");
    this.retryLater(`consumer:${ch.vchannel}`, ch.consumerRetries, I.StartConsumer, { vchannel: ch.vchannel, gen: ch.gen });
  }

  private onDml(d: { vchannel: string; gen: number; consumerGen: number; msg: DmlMessage; applied: () => void }): void {
    d.applied();
    const ch = this.channelOf(d.vchannel, d.gen);
    if (!ch || ch.consumerGen !== d.consumerGen || !ch.buffer) return;
    const buf = ch.buffer;
    const position = d.msg.position;
    let ev: BufferEvents;
    try {
      // the rules the delegator reads the channel by: both skip the same messages
      ev = buf.apply(position, decodeDml(d.msg.data, ch.collectionId, buf.collectionSchema), Date.now());
    } catch (err) {
      if (!(err instanceof VbError)) throw err;
      this.ctx.log.error(
        { collection: String(ch.collectionId), vchannel: ch.vchannel, position: String(position), err: err.message },
        "DML message that cannot be applied skipped",
      );
      // apply changed nothing; moving past the message may seal segments, which are reported as usual
      ev = buf.passOver(position);
    }
    this.sync.onEvents(ch, ev);
  }

  // ---- flush, tick, status ----

  private flushChannels(body: unknown): null {
    const b = obj(body, "FlushChannels");
    const items = list(b.channels, "channels").map((c, i) => {
      const o = obj(c, `channels[${i}]`);
      return { vchannel: vchannelOf(o.vchannel, `channels[${i}].vchannel`), position: bigintOf(o.position, `channels[${i}].position`) };
    });
    for (const { vchannel, position } of items) {
      const ch = this.channels.get(vchannel);
      if (!ch) {
        this.ctx.log.warn({ vchannel }, "asked to flush a vchannel this datanode does not watch");
        continue;
      }
      if (!ch.buffer) {
        ch.pendingFlush = ch.pendingFlush === undefined || position > ch.pendingFlush ? position : ch.pendingFlush;
        continue;
      }
      this.requestFlush(ch, position);
    }
    return null;
  }

  private requestFlush(ch: Channel, position: bigint): void {
    const ev = ch.buffer!.requestFlush(position);
    if (ch.buffer!.pendingFlush !== undefined) ch.flushWaiting = true;
    else this.sync.queueCheckpoint(ch);
    this.sync.onEvents(ch, ev);
  }

  private tick(): void {
    const now = Date.now();
    for (const ch of this.channels.values()) {
      if (!ch.buffer) continue;
      const ev = ch.buffer.sealIdle(now);
      if (ch.buffer.checkpoint().position > ch.lastReportedCheckpoint) this.sync.queueCheckpoint(ch);
      this.sync.onEvents(ch, ev);
    }
    this.publishHeartbeat();
  }

  private heartbeat(): DatanodeHeartbeat {
    return {
      nodeId: this.nodeId,
      session: this.session,
      ts: Date.now(),
      channels: [...this.channels.values()].map((ch) => ({
        vchannel: ch.vchannel,
        collectionId: ch.collectionId,
        consumed: ch.buffer?.consumed ?? 0n,
        checkpoint: ch.buffer?.checkpoint().position ?? ch.lastReportedCheckpoint,
        growing: ch.buffer?.growingCount() ?? 0,
        bufferedRows: ch.buffer?.bufferedRows() ?? 0,
      })),
      indexBuilds: this.indexBuilds.held(),
    };
  }

  private publishHeartbeat(): void {
    if (this.heartbeatInFlight || this.stopped) return;
    this.heartbeatInFlight = true;
    const payload = encodeHeartbeat(this.heartbeat());
    const subject = heartbeatSubject(this.env.subjects, this.nodeId);
    void (async () => {
      try {
        await ensureDistStream(this.env);
        await this.feed.publish(subject, payload);
      } catch (err) {
        this.ctx.log.warn({ err: String(err) }, "heartbeat not published");
      } finally {
        this.heartbeatInFlight = false;
      }
    })();
  }

  private status(): Res<DatanodeApi, "GetStatus"> {
    return {
      nodeId: this.nodeId,
      channels: [...this.channels.values()].map((ch) => ({
        vchannel: ch.vchannel,
        consumed: ch.buffer?.consumed ?? 0n,
        growing: ch.buffer?.growingCount() ?? 0,
        bufferedRows: ch.buffer?.bufferedRows() ?? 0,
        checkpoint: ch.buffer?.checkpoint().position ?? ch.lastReportedCheckpoint,
      })),
      indexBuilds: this.indexBuilds.status(),
    };
  }
}
