/**
 * How a datanode's sealed segments reach datacoord (Milvus's datanode sync manager and meta writer): per
 * vchannel, the reports — AllocSegment, SegmentSealed, SaveBinlogPaths, UpdateChannelCheckpoint — go
 * through one ordered queue, one at a time, so datacoord's records are always a prefix of what the
 * datanode decided (a segment's seal is recorded before the next segment of its partition is allocated;
 * a checkpoint is computed when its report is sent). A sealed segment is written to the object store
 * once its seal is recorded, concurrently with the channel going on; its SaveBinlogPaths joins the queue
 * when the objects are in the store. Everything runs in the datanode's mailbox; the asks and writes run
 * off it and continue back in it.
 */
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import type { SegmentInfo } from "../../protocol/meta.ts";
import type { ReporterRef } from "../../protocol/messages/datacoord.ts";
import type { ActorContext, PipeResult } from "../../runtime/actor.ts";
import { after } from "../continuations.ts";
import type { ClusterEnv } from "../env.ts";
import { I, type AskDatacoord, type Channel, type ChannelRef, type Op, type RetryLater } from "./channel.ts";
import { writeDeltaSegment, writeInsertSegment, type WrittenSegment } from "./sync.ts";
import type { BufferEvents, BufferedSegment } from "./write_buffer.ts";
import { dnFlushedRows, dnFlushedSize, dnSaveLatency } from "../metrics.ts";

/** What the sync manager needs of the datanode that holds the channels. */
export interface SyncNode {
  channelOf(vchannel: string, gen: number): Channel | undefined;
  askDatacoord: AskDatacoord;
  retryLater: RetryLater;
  readonly reporter: ReporterRef;
  /** stops watching a vchannel (datacoord gave it away, or no longer knows it) */
  dropChannel(ch: Channel, reason: string): void;
  /** starts a vchannel again from datacoord's records (datacoord refused a report for good) */
  resetChannel(ch: Channel, reason: string): void;
}

export class SyncManager {
  constructor(
    private readonly ctx: ActorContext,
    private readonly env: ClusterEnv,
    private readonly node: SyncNode,
  ) {}

  onEvents(ch: Channel, ev: BufferEvents): void {
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

  queueCheckpoint(ch: Channel): void {
    if (!ch.ops.some((o) => o.k === "checkpoint")) ch.ops.push({ k: "checkpoint" });
  }

  /** Sends the next queued report of a channel, if none is in flight. */
  pumpOps(t: ChannelRef): void {
    const ch = this.node.channelOf(t.vchannel, t.gen);
    if (!ch || ch.opInFlight || ch.ops.length === 0 || !ch.buffer) return;
    const op = ch.ops[0]!;
    const buf = ch.buffer;
    let work: Promise<unknown>;
    switch (op.k) {
      case "alloc":
        work = this.node.askDatacoord("AllocSegment", {
          collectionId: ch.collectionId,
          partitionId: op.seg.partitionId,
          vchannel: ch.vchannel,
          level: op.seg.level,
          startPosition: op.seg.start,
          ...this.node.reporter,
        });
        break;
      case "sealed":
        work = this.node.askDatacoord("SegmentSealed", {
          segmentId: op.seg.segmentId!,
          endPosition: op.seg.end!,
          endTs: op.seg.endTs ?? 0n,
          numRows: op.seg.level === "L1" ? op.seg.numRows : op.seg.deletes.length,
          ...this.node.reporter,
        });
        break;
      case "save": {
        const cp = buf.checkpoint(new Set([op.seg]));
        work = this.node.askDatacoord("SaveBinlogPaths", {
          segmentId: op.seg.segmentId!,
          numRows: op.written.numRows,
          binlogs: op.written.binlogs,
          deltalogs: op.written.deltalogs,
          statslogs: op.written.statslogs,
          memorySize: op.written.memorySize,
          checkpoint: { vchannel: ch.vchannel, position: cp.position, ts: cp.ts },
          ...this.node.reporter,
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
        work = this.node.askDatacoord("UpdateChannelCheckpoint", {
          checkpoint: { vchannel: ch.vchannel, position: cp.position, ts: cp.ts },
          ...this.node.reporter,
        }).then(() => cp.position);
        break;
      }
    }
    ch.opInFlight = true;
    after(this.ctx, work, (r) => this.onOpDone(t, op, r));
  }

  private onOpDone(t: ChannelRef, op: Op, p: PipeResult<unknown>): void {
    const ch = this.node.channelOf(t.vchannel, t.gen);
    if (!ch) return;
    ch.opInFlight = false;
    if (!p.ok) {
      const err = VbError.from(p.error);
      if (err.code === ErrorCode.NodeNotMatch) {
        this.node.dropChannel(ch, `datacoord gave it to another datanode: ${err.message}`);
        return;
      }
      if (!err.retriable && (err.code === ErrorCode.CollectionNotFound || err.code === ErrorCode.ChannelNotFound)) {
        this.node.dropChannel(ch, `datacoord no longer knows it: ${err.message}`);
        return;
      }
      const fields = { vchannel: ch.vchannel, op: op.k, segment: "seg" in op ? String(op.seg.segmentId) : undefined, err: err.message };
      if (!err.retriable) {
        this.ctx.log.error(fields, "datacoord refused a report; resetting the vchannel from its records");
        this.node.resetChannel(ch, err.message);
        return;
      }
      ch.opRetries++;
      this.ctx.log.warn(fields, "report to datacoord failed; retrying");
      this.node.retryLater(`ops:${ch.vchannel}`, ch.opRetries, I.PumpOps, { vchannel: ch.vchannel, gen: ch.gen });
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

  startWrite(t: ChannelRef & { seg: BufferedSegment }): void {
    const ch = this.node.channelOf(t.vchannel, t.gen);
    if (!ch || !ch.buffer) return;
    const buf = ch.buffer;
    const seg = t.seg;
    const header = { collectionId: ch.collectionId, partitionId: seg.partitionId, segmentId: seg.segmentId! };
    const work =
      seg.level === "L0"
        ? writeDeltaSegment(this.env.objectStore, header, () => buf.materializeDeletes(seg))
        : writeInsertSegment(this.env.objectStore, header, buf.collectionSchema, () => buf.materialize(seg));
    const started = performance.now();
    const kind = seg.level === "L0" ? "delete" : "insert";
    work.then(
      (w) => {
        const labels = { node_id: this.node.reporter.nodeId, msg_type: kind };
        dnSaveLatency.observe(labels, performance.now() - started);
        dnFlushedSize.inc(labels, w.memorySize);
        dnFlushedRows.inc(labels, w.numRows);
      },
      () => undefined,
    );
    after(this.ctx, work, (r) => this.onWritten(t, r));
  }

  private onWritten(t: ChannelRef & { seg: BufferedSegment }, r: PipeResult<WrittenSegment>): void {
    const ch = this.node.channelOf(t.vchannel, t.gen);
    if (!ch) return;
    const seg = t.seg;
    if (!r.ok) {
      ch.writeRetries++;
      this.ctx.log.warn({ collection: String(ch.collectionId), segment: String(seg.segmentId), err: String(r.error) }, "writing a segment failed; retrying");
      this.node.retryLater(`write:${seg.segmentId}`, ch.writeRetries, I.Write, t);
      return;
    }
    ch.writeRetries = 0;
    ch.ops.push({ k: "save", seg, written: r.value });
    this.pumpOps({ vchannel: ch.vchannel, gen: ch.gen });
  }
}
