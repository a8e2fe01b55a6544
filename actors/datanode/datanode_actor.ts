/**
 * The datanode actor (DESIGN §1, §4): consumes the vchannels datacoord assigns it, cuts them into
 * segments (write_buffer.ts), writes sealed segments to the object store (sync.ts) and reports to
 * datacoord. Nothing here waits on a peer inside the mailbox: every ask and every write runs with
 * `pipeToSelf` and comes back as a message.
 *
 * Per vchannel, the reports to datacoord go through one ordered queue — AllocSegment, SegmentSealed,
 * SaveBinlogPaths, UpdateChannelCheckpoint — one at a time, so datacoord's records are always a prefix of
 * what the datanode decided (a segment's seal is recorded before the next segment of its partition is
 * allocated; a checkpoint is computed when its report is sent). A sealed segment is written once its seal
 * is recorded, concurrently with the channel going on; its SaveBinlogPaths joins the queue when the
 * objects are in the store.
 *
 * Index builds (BuildIndex, from datacoord) also run off the mailbox: the segment's vector column is
 * read, the index built in a worker thread (index_builder.ts), the artifact written to the key datacoord
 * gave, and the outcome reported with datacoord.IndexBuilt (retried until datacoord answers). The
 * heartbeat lists the builds the node holds, so datacoord re-tells one the node never got or forgot.
 */
import { randomBytes } from "node:crypto";
import { decode } from "../../protocol/codec.ts";
import type { DmlMsg } from "../../protocol/dml.ts";
import { ErrorCode, VbError, isVbError } from "../../protocol/errors.ts";
import type { CollectionInfo, SegmentInfo } from "../../protocol/meta.ts";
import type { IndexInfo } from "../../protocol/messages/indexes.ts";
import type { CollectionSchema } from "../../protocol/schema.ts";
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
import { estimateIndexMemory } from "../index/memory.ts";
import { readSegment } from "../storage/insert_log.ts";
import { ChannelConsumer } from "./channel_consumer.ts";
import { ensureDistStream, encodeHeartbeat, heartbeatSubject } from "./heartbeat.ts";
import { buildParamsOf, IndexBuilder } from "./index_builder.ts";
import { bigintOf, channelWatchOf, list, obj, sealPolicyOf, stringOf, vchannelOf } from "./requests.ts";
import { writeDeltaSegment, writeInsertSegment, type WrittenSegment } from "./sync.ts";
import { WriteBuffer, type BufferEvents, type BufferedSegment } from "./write_buffer.ts";

export const DATANODE = "datanode";

const ASK_TIMEOUT_MS = 10_000;
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;

/**
 * Messages the actor sends itself (ctx.self, timers): private, the runtime refuses them from anyone else.
 * Work off the mailbox comes back through continuations (`after`, ctx.reenterAfter), not messages.
 */
const I = {
  Tick: "datanode.internal.Tick",
  Dml: "datanode.internal.Dml",
  FetchWatches: "datanode.internal.FetchWatches",
  Prepare: "datanode.internal.Prepare",
  StartConsumer: "datanode.internal.StartConsumer",
  PumpOps: "datanode.internal.PumpOps",
  Write: "datanode.internal.Write",
  Report: "datanode.internal.Report",
} as const;

/** Watch generations, unique in the process (also across restarts of the actor by its supervisor). */
let nextGen = 1;

type Op =
  | { k: "alloc"; seg: BufferedSegment }
  | { k: "sealed"; seg: BufferedSegment }
  | { k: "save"; seg: BufferedSegment; written: WrittenSegment }
  | { k: "checkpoint" };

/** A channel as work started for it names it: results for an older watch of the vchannel are dropped. */
interface ChannelRef {
  vchannel: string;
  gen: number;
}

interface ConsumerRef extends ChannelRef {
  consumerGen: number;
}

interface Channel {
  /** unique per watch: results of work started for an older watch of the same vchannel are dropped */
  gen: number;
  collectionId: bigint;
  vchannel: string;
  pchannel: number;
  stream: string;
  subject: string;
  phase: "preparing" | "running";
  buffer?: WriteBuffer;
  consumer?: ChannelConsumer;
  consumerGen: number;
  consumerRetries: number;
  prepareRetries: number;
  /** times this vchannel was reset after an error datacoord will not take back */
  resets: number;
  ops: Op[];
  opInFlight: boolean;
  opRetries: number;
  writeRetries: number;
  lastReportedCheckpoint: bigint;
  /** a flush asked before the channel was ready */
  pendingFlush?: bigint;
  /** a flush is waiting for the channel to reach its position: report the checkpoint once it does */
  flushWaiting: boolean;
}

/** An index build this node holds: running, or reporting its outcome to datacoord. */
interface Build {
  buildId: bigint;
  collectionId: bigint;
  segmentId: bigint;
  indexId: bigint;
  phase: "building" | "reporting";
  report?: Req<DatacoordApi, "IndexBuilt">;
  reportRetries: number;
}

interface BuildOrder {
  segment: SegmentInfo;
  schema: CollectionSchema;
  index: IndexInfo;
  fileKey: string;
}

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
  private readonly builds = new Map<bigint, Build>();
  private readonly builder = new IndexBuilder();

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
    this.ctx.timers.startPeriodic("tick", this.env.config.heartbeatIntervalMs, I.Tick);
    this.fetchWatches();
    this.publishHeartbeat();
    this.ctx.log.info({ session: this.session }, "datanode started");
  }

  override async postStop(): Promise<void> {
    this.stopped = true;
    await Promise.all([
      ...[...this.channels.values()].map((ch) => ch.consumer?.stop().catch(() => undefined)),
      this.builder.close(),
    ]);
    this.channels.clear();
    this.builds.clear();
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
        return this.buildIndex(msg.body);
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
        return this.pumpOps(data as ChannelRef);
      case I.Write:
        return this.startWrite(data as ChannelRef & { seg: BufferedSegment });
      case I.Report:
        return this.sendReport(data as bigint);
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
    const consumer = new ChannelConsumer(this.env.dml, ch.stream, ch.subject, deliver);
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
    let dml: DmlMsg;
    try {
      dml = decode<DmlMsg>(d.msg.data);
    } catch (err) {
      this.ctx.log.error({ vchannel: ch.vchannel, position: String(d.msg.position), err: String(err) }, "undecodable DML message skipped");
      this.onEvents(ch, buf.skip(d.msg.position));
      return;
    }
    let ev: BufferEvents;
    try {
      ev = buf.apply(d.msg.position, dml, Date.now());
    } catch (err) {
      if (!(err instanceof VbError)) throw err;
      this.ctx.log.error(
        { collection: String(ch.collectionId), vchannel: ch.vchannel, position: String(d.msg.position), err: err.message },
        "malformed DML message skipped",
      );
      // apply changed nothing; moving past the message may seal segments, which are reported as usual
      ev = buf.skip(d.msg.position);
    }
    this.onEvents(ch, ev);
  }

  // ---- segments: allocate, seal, write, save ----

  private onEvents(ch: Channel, ev: BufferEvents): void {
    for (const seg of ev.opened) if (seg.segmentId === undefined) ch.ops.push({ k: "alloc", seg });
    for (const seg of ev.sealed) {
      ch.ops.push({ k: "sealed", seg });
      this.ctx.log.debug(
        { collection: String(ch.collectionId), vchannel: ch.vchannel, level: seg.level, start: String(seg.start), end: String(seg.end) },
        "segment sealed",
      );
    }
    if (ch.flushWaiting && ch.buffer!.pendingFlush === undefined) {
      ch.flushWaiting = false;
      this.queueCheckpoint(ch);
    }
    this.pumpOps({ vchannel: ch.vchannel, gen: ch.gen });
  }

  private queueCheckpoint(ch: Channel): void {
    if (!ch.ops.some((o) => o.k === "checkpoint")) ch.ops.push({ k: "checkpoint" });
  }

  /** Sends the next queued report of a channel, if none is in flight. */
  private pumpOps(t: ChannelRef): void {
    const ch = this.channelOf(t.vchannel, t.gen);
    if (!ch || ch.opInFlight || ch.ops.length === 0 || !ch.buffer) return;
    const op = ch.ops[0]!;
    const buf = ch.buffer;
    let work: Promise<unknown>;
    switch (op.k) {
      case "alloc":
        work = this.askDatacoord("AllocSegment", {
          collectionId: ch.collectionId,
          partitionId: op.seg.partitionId,
          vchannel: ch.vchannel,
          level: op.seg.level,
          startPosition: op.seg.start,
          ...this.reporter,
        });
        break;
      case "sealed":
        work = this.askDatacoord("SegmentSealed", {
          segmentId: op.seg.segmentId!,
          endPosition: op.seg.end!,
          endTs: op.seg.endTs ?? 0n,
          numRows: op.seg.level === "L1" ? op.seg.numRows : op.seg.deletes.length,
          ...this.reporter,
        });
        break;
      case "save": {
        const cp = buf.checkpoint(new Set([op.seg]));
        work = this.askDatacoord("SaveBinlogPaths", {
          segmentId: op.seg.segmentId!,
          numRows: op.written.numRows,
          binlogs: op.written.binlogs,
          deltalogs: op.written.deltalogs,
          statslogs: op.written.statslogs,
          memorySize: op.written.memorySize,
          checkpoint: { vchannel: ch.vchannel, position: cp.position, ts: cp.ts },
          ...this.reporter,
        }).then(() => cp.position);
        break;
      }
      case "checkpoint": {
        const cp = buf.checkpoint();
        if (cp.position <= ch.lastReportedCheckpoint) {
          ch.ops.shift();
          this.pumpOps(t);
          return;
        }
        work = this.askDatacoord("UpdateChannelCheckpoint", {
          checkpoint: { vchannel: ch.vchannel, position: cp.position, ts: cp.ts },
          ...this.reporter,
        }).then(() => cp.position);
        break;
      }
    }
    ch.opInFlight = true;
    after(this.ctx, work, (r) => this.onOpDone(t, op, r));
  }

  private onOpDone(t: ChannelRef, op: Op, p: PipeResult<unknown>): void {
    const ch = this.channelOf(t.vchannel, t.gen);
    if (!ch) return;
    ch.opInFlight = false;
    if (!p.ok) {
      const err = VbError.from(p.error);
      if (err.code === ErrorCode.NodeNotMatch) {
        this.dropChannel(ch, `datacoord gave it to another datanode: ${err.message}`);
        return;
      }
      if (!err.retriable && (err.code === ErrorCode.CollectionNotFound || err.code === ErrorCode.ChannelNotFound)) {
        this.dropChannel(ch, `datacoord no longer knows it: ${err.message}`);
        return;
      }
      const fields = { vchannel: ch.vchannel, op: op.k, segment: "seg" in op ? String(op.seg.segmentId) : undefined, err: err.message };
      if (!err.retriable) {
        this.ctx.log.error(fields, "datacoord refused a report; resetting the vchannel from its records");
        this.resetChannel(ch, err.message);
        return;
      }
      ch.opRetries++;
      this.ctx.log.warn(fields, "report to datacoord failed; retrying");
      this.retryLater(`ops:${ch.vchannel}`, ch.opRetries, I.PumpOps, { vchannel: ch.vchannel, gen: ch.gen });
      return;
    }
    ch.opRetries = 0;
    ch.ops.shift();
    switch (op.k) {
      case "alloc":
        op.seg.segmentId = (p.value as SegmentInfo).segmentId;
        this.ctx.log.debug(
          { collection: String(ch.collectionId), segment: String(op.seg.segmentId), vchannel: ch.vchannel, start: String(op.seg.start) },
          "segment allocated",
        );
        break;
      case "sealed":
        this.startWrite({ vchannel: ch.vchannel, gen: ch.gen, seg: op.seg });
        break;
      case "save":
        ch.buffer!.markFlushed(op.seg);
        ch.lastReportedCheckpoint = p.value as bigint;
        this.ctx.log.info(
          { collection: String(ch.collectionId), segment: String(op.seg.segmentId), level: op.seg.level, rows: op.written.numRows },
          "segment flushed",
        );
        break;
      case "checkpoint":
        ch.lastReportedCheckpoint = p.value as bigint;
        break;
    }
    this.pumpOps({ vchannel: ch.vchannel, gen: ch.gen });
  }

  private startWrite(t: ChannelRef & { seg: BufferedSegment }): void {
    const ch = this.channelOf(t.vchannel, t.gen);
    if (!ch || !ch.buffer) return;
    const buf = ch.buffer;
    const seg = t.seg;
    const header = { collectionId: ch.collectionId, partitionId: seg.partitionId, segmentId: seg.segmentId! };
    const work =
      seg.level === "L0"
        ? writeDeltaSegment(this.env.objectStore, header, () => buf.materializeDeletes(seg))
        : writeInsertSegment(this.env.objectStore, header, buf.collectionSchema, () => buf.materialize(seg));
    after(this.ctx, work, (r) => this.onWritten(t, r));
  }

  private onWritten(t: ChannelRef & { seg: BufferedSegment }, r: PipeResult<WrittenSegment>): void {
    const ch = this.channelOf(t.vchannel, t.gen);
    if (!ch) return;
    const seg = t.seg;
    if (!r.ok) {
      ch.writeRetries++;
      this.ctx.log.warn({ collection: String(ch.collectionId), segment: String(seg.segmentId), err: String(r.error) }, "writing a segment failed; retrying");
      this.retryLater(`write:${seg.segmentId}`, ch.writeRetries, I.Write, t);
      return;
    }
    ch.writeRetries = 0;
    ch.ops.push({ k: "save", seg, written: r.value });
    this.pumpOps({ vchannel: ch.vchannel, gen: ch.gen });
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
    else this.queueCheckpoint(ch);
    this.onEvents(ch, ev);
  }

  private tick(): void {
    const now = Date.now();
    for (const ch of this.channels.values()) {
      if (!ch.buffer) continue;
      const ev = ch.buffer.sealIdle(now);
      if (ch.buffer.checkpoint().position > ch.lastReportedCheckpoint) this.queueCheckpoint(ch);
      this.onEvents(ch, ev);
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
      indexBuilds: [...this.builds.keys()],
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
      indexBuilds: [...this.builds.values()].map((b) => ({ buildId: b.buildId, segmentId: b.segmentId, indexId: b.indexId, phase: b.phase })),
    };
  }

  // ---- index builds ----

  private buildIndex(body: unknown): null {
    const b = obj(body, "BuildIndex");
    const buildId = bigintOf(b.buildId, "buildId");
    const collectionId = bigintOf(b.collectionId, "collectionId");
    const segment = obj(b.segment, "segment") as unknown as SegmentInfo;
    const schema = obj(b.schema, "schema") as unknown as CollectionSchema;
    const index = obj(b.index, "index") as unknown as IndexInfo;
    const fileKey = stringOf(b.fileKey, "fileKey");
    bigintOf(segment.segmentId, "segment.segmentId");
    bigintOf(index.indexId, "index.indexId");
    if (!Array.isArray(schema.fields)) throw VbError.invalid("schema.fields must be a list");
    if (!fileKey.startsWith("index_files/")) throw VbError.invalid(`fileKey "${fileKey}": index artifacts live under index_files/`);
    if (segment.collectionId !== collectionId || index.collectionId !== collectionId) {
      throw VbError.invalid(`segment and index must belong to collection ${collectionId}`);
    }
    if (this.builds.has(buildId) || this.stopped) return null; // told again while it runs
    this.builds.set(buildId, { buildId, collectionId, segmentId: segment.segmentId, indexId: index.indexId, phase: "building", reportRetries: 0 });
    this.ctx.log.info(
      { collection: String(collectionId), segment: String(segment.segmentId), build: String(buildId), type: index.indexType, rows: segment.numRows },
      "building index",
    );
    after(this.ctx, this.runBuild({ segment, schema, index, fileKey }), (r) => this.onBuilt(buildId, fileKey, r));
    return null;
  }

  /** Reads the segment's vectors, builds the index in a worker thread, writes the artifact (off the mailbox). */
  private async runBuild(order: BuildOrder): Promise<{ serializedSize: number; memorySize: number }> {
    const { segment, schema, index } = order;
    const field = schema.fields.find((f) => f.fieldId === index.fieldId);
    if (!field || field.type !== "FloatVector" || !field.dim) {
      throw VbError.invalid(`index.fieldId: ${index.fieldId} is not a FloatVector field of collection ${index.collectionId}`);
    }
    // only the vector column is decoded
    const data = await readSegment(this.env.objectStore, segment, { ...schema, fields: [field] });
    const vectors = data.columns[0]!.data as Float32Array;
    const params = buildParamsOf(index);
    const bytes = await this.builder.build({ vectors, dim: field.dim, metric: index.metricType, indexType: index.indexType, params });
    await this.env.objectStore.put(order.fileKey, bytes);
    return { serializedSize: bytes.byteLength, memorySize: estimateIndexMemory(index.indexType, data.numRows, field.dim, params) };
  }

  private onBuilt(buildId: bigint, fileKey: string, r: PipeResult<{ serializedSize: number; memorySize: number }>): void {
    const build = this.builds.get(buildId);
    if (!build || build.phase !== "building") return;
    build.phase = "reporting";
    const fields = { collection: String(build.collectionId), segment: String(build.segmentId), build: String(build.buildId) };
    if (r.ok) {
      build.report = { buildId: build.buildId, nodeId: this.nodeId, ok: true, fileKey, ...r.value };
      this.ctx.log.info({ ...fields, bytes: r.value.serializedSize }, "index built");
    } else {
      const e = VbError.from(r.error);
      build.report = { buildId: build.buildId, nodeId: this.nodeId, ok: false, failReason: `${e.codeName} (${e.code}): ${e.message}` };
      this.ctx.log.warn({ ...fields, err: e.message }, "index build failed");
    }
    this.sendReport(build.buildId);
  }

  private sendReport(buildId: bigint): void {
    const build = this.builds.get(buildId);
    if (!build?.report || this.stopped) return;
    after(this.ctx, this.askDatacoord("IndexBuilt", build.report), (r) => this.onReported(buildId, r));
  }

  private onReported(buildId: bigint, r: PipeResult<unknown>): void {
    const build = this.builds.get(buildId);
    if (!build) return;
    if (r.ok) {
      this.builds.delete(buildId);
      return;
    }
    const err = VbError.from(r.error);
    if (!err.retriable) {
      // datacoord gave the build to another node, or no longer has it: nothing more to do here
      this.ctx.log.warn({ build: String(buildId), err: err.message }, "datacoord refused an index build report; dropping the build");
      this.builds.delete(buildId);
      return;
    }
    build.reportRetries++;
    this.retryLater(`report:${buildId}`, build.reportRetries, I.Report, buildId);
  }
}
