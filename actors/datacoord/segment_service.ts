/**
 * datacoord's segment services (Milvus's datacoord `services.go` for segments): segment allocation and
 * the reports a datanode makes as it cuts its vchannel into segments (AllocSegment, SegmentSealed,
 * SaveBinlogPaths, UpdateChannelCheckpoint), Flush and its state, and the reads of segments, recovery
 * info and checkpoints. Every change is written to KV before it is answered.
 */
import { encode } from "../../protocol/codec.ts";
import { ALL_PARTITIONS } from "../../protocol/dml.ts";
import { ErrorCode, VbError, isVbError } from "../../protocol/errors.ts";
import type { Res } from "../../protocol/messages/api.ts";
import type { DatacoordApi } from "../../protocol/messages/datacoord.ts";
import type { ChannelCheckpoint, SegmentInfo, SegmentState } from "../../protocol/meta.ts";
import type { DeferredReply } from "../../runtime/actor.ts";
import { publishEvent } from "../events.ts";
import type { DatacoordCluster } from "./cluster.ts";
import { I, type DatacoordCore } from "./core.ts";
import { isFlushed, segmentsToFlush } from "./flush.ts";
import {
  bigintOf,
  binlogsOf,
  checkpointOf,
  intOf,
  levelOf,
  list,
  obj,
  reporterOf,
  statesOf,
  stringOf,
  vchannelOf,
} from "./requests.ts";
import { transition } from "./segment_meta.ts";

const LIVE_STATES: readonly SegmentState[] = ["Growing", "Sealed", "Flushing", "Flushed"];

export class SegmentService {
  constructor(
    private readonly core: DatacoordCore,
    private readonly cluster: DatacoordCluster,
  ) {}

  async allocSegment(body: unknown): Promise<SegmentInfo> {
    const b = obj(body, "AllocSegment");
    const collectionId = bigintOf(b.collectionId, "collectionId");
    const vchannel = vchannelOf(b.vchannel, "vchannel");
    const level = levelOf(b.level, "level");
    const partitionId = bigintOf(b.partitionId, "partitionId", ALL_PARTITIONS);
    const startPosition = bigintOf(b.startPosition, "startPosition", 1n);
    if ((level === "L0") !== (partitionId === ALL_PARTITIONS)) {
      throw VbError.invalid(`partitionId: an ${level} segment ${level === "L0" ? "spans every partition (-1)" : "belongs to one partition"}`);
    }
    const record = this.core.channels.fence(vchannel, reporterOf(b));
    if (record.collectionId !== collectionId) {
      throw VbError.invalid(`collectionId: vchannel "${vchannel}" belongs to collection ${record.collectionId}, not ${collectionId}`);
    }
    const existing = this.core.segments.findAlloc(vchannel, partitionId, level, startPosition);
    if (existing && existing.state !== "Dropped") return existing;
    const now = Date.now();
    const seg: SegmentInfo = {
      segmentId: await this.core.ids.take(),
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
    await this.core.segments.save(seg);
    this.core.ctx.log.debug({ collection: String(collectionId), segment: String(seg.segmentId), vchannel, level }, "segment allocated");
    return seg;
  }

  private segmentOf(v: unknown): SegmentInfo {
    const id = bigintOf(v, "segmentId");
    const s = this.core.segments.get(id);
    if (!s || s.state === "Dropped") throw new VbError(ErrorCode.SegmentNotFound, `segment ${id} not found`, { retriable: false });
    return s;
  }

  async segmentSealed(body: unknown): Promise<null> {
    const b = obj(body, "SegmentSealed");
    const seg = this.segmentOf(b.segmentId);
    const endPosition = bigintOf(b.endPosition, "endPosition", 1n);
    const endTs = bigintOf(b.endTs, "endTs");
    const numRows = intOf(b.numRows, "numRows");
    this.core.channels.fence(seg.vchannel, reporterOf(b));
    if (endPosition < seg.startPosition) {
      throw VbError.invalid(`endPosition ${endPosition} is before segment ${seg.segmentId}'s start ${seg.startPosition}`);
    }
    if (seg.state !== "Growing") {
      if (seg.endPosition === endPosition) return null; // a repeated report
      throw VbError.invalid(`segment ${seg.segmentId} was sealed at ${String(seg.endPosition)}, not ${endPosition}`);
    }
    await this.core.segments.save({ ...transition(seg, "Sealed"), endPosition, endTs, numRows });
    return null;
  }

  async saveBinlogPaths(body: unknown): Promise<null> {
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
    this.core.channels.fence(seg.vchannel, reporterOf(b));
    if (seg.state === "Growing") {
      throw VbError.invalid(`segment ${seg.segmentId} is Growing: report SegmentSealed before SaveBinlogPaths`);
    }
    if (seg.state !== "Flushed") {
      const path: SegmentState[] = seg.state === "Sealed" ? ["Flushing", "Flushed"] : ["Flushed"];
      const flushed: SegmentInfo = { ...transition(seg, ...path), numRows, binlogs, deltalogs, statslogs, memorySize };
      await this.core.segments.save(flushed);
      this.core.ctx.log.info(
        { collection: String(seg.collectionId), segment: String(seg.segmentId), level: seg.level, rows: numRows },
        "segment flushed",
      );
      void publishEvent(this.core.env, { kind: "segment.flushed", segment: flushed }).catch((err: unknown) =>
        this.core.ctx.log.warn({ segment: String(seg.segmentId), err: String(err) }, "segment.flushed event not published"),
      );
      if (flushed.level === "L1" && this.core.indexMeta.indexesOf(flushed.collectionId).length > 0) {
        this.core.ctx.self(I.ScheduleBuilds);
      }
    }
    await this.advanceCheckpoint(checkpoint);
    return null;
  }

  private async advanceCheckpoint(cp: ChannelCheckpoint): Promise<void> {
    if (await this.core.checkpoints.advance(cp)) this.core.pending.settle((v) => this.core.checkpoints.get(v));
  }

  async updateChannelCheckpoint(body: unknown): Promise<null> {
    const b = obj(body, "UpdateChannelCheckpoint");
    const cp = checkpointOf(b.checkpoint, "checkpoint");
    this.core.channels.fence(cp.vchannel, reporterOf(b));
    await this.advanceCheckpoint(cp);
    return null;
  }

  async flush(body: unknown, deadline: number): Promise<DeferredReply<Res<DatacoordApi, "Flush">>> {
    const b = obj(body, "Flush");
    const coll = await this.cluster.ensureCollection(bigintOf(b.collectionId, "collectionId"));
    const flushPositions: Record<string, bigint> = {};
    const byNode = new Map<string, { vchannel: string; position: bigint }[]>();
    for (const v of coll.vchannels) {
      let pos: bigint;
      try {
        pos = await this.core.env.dml.lastPosition(this.core.env.subjects.dmlStream(v.pchannel), this.core.env.subjects.dmlSubject(v.pchannel, v.name));
      } catch (err) {
        if (!isVbError(err, ErrorCode.MqTopicNotFound)) throw err;
        pos = 0n; // no stream yet: nothing was written
      }
      flushPositions[v.name] = pos;
      if (pos === 0n || this.core.checkpoints.get(v.name).position >= pos) continue;
      this.core.pending.add(v.name, pos);
      const nodeId = this.core.channels.get(v.name)?.nodeId;
      if (nodeId !== undefined) {
        byNode.set(nodeId, [...(byNode.get(nodeId) ?? []), { vchannel: v.name, position: pos }]);
        this.core.channels.nodes.get(nodeId)?.sentAt.set(`flush:${v.name}`, Date.now());
      }
    }
    for (const [nodeId, channels] of byNode) this.core.tellDatanode(nodeId, "FlushChannels", { channels });
    // the timestamp is asked off the mailbox: rootcoord may take until the deadline to answer
    return this.core.ctx.reenterAfter(this.core.allocTimestamp(deadline, `Flush of collection ${coll.collectionId}`), (flushTs) => ({
      collectionId: coll.collectionId,
      flushPositions,
      segmentIds: segmentsToFlush(this.core.segments.ofCollection(coll.collectionId), flushPositions),
      flushTs,
    }));
  }

  getFlushState(body: unknown): { flushed: boolean } {
    const b = obj(body, "GetFlushState");
    const collectionId = bigintOf(b.collectionId, "collectionId");
    const positions = obj(b.flushPositions, "flushPositions");
    const checked: Record<string, bigint> = {};
    for (const [v, p] of Object.entries(positions)) {
      const vchannel = vchannelOf(v, "flushPositions key");
      const r = this.core.channels.get(vchannel);
      if (r && r.collectionId !== collectionId) {
        throw VbError.invalid(`flushPositions: vchannel "${vchannel}" is not a vchannel of collection ${collectionId}`);
      }
      checked[vchannel] = bigintOf(p, `flushPositions["${vchannel}"]`);
    }
    if (this.core.collections.wasDropped(collectionId)) throw new VbError(ErrorCode.CollectionNotFound, `collection ${collectionId} was dropped`);
    return { flushed: isFlushed(checked, (v) => this.core.checkpoints.get(v)) };
  }

  getSegmentInfo(body: unknown): { segments: SegmentInfo[] } {
    const b = obj(body, "GetSegmentInfo");
    const ids = list(b.segmentIds, "segmentIds").map((v, i) => bigintOf(v, `segmentIds[${i}]`));
    return {
      segments: ids.map((id) => {
        const s = this.core.segments.get(id);
        if (!s) throw new VbError(ErrorCode.SegmentNotFound, `segment ${id} not found`);
        return s;
      }),
    };
  }

  listSegments(body: unknown): { segments: SegmentInfo[] } {
    const b = obj(body, "ListSegments");
    const collectionId = bigintOf(b.collectionId, "collectionId");
    const states = b.states === undefined ? LIVE_STATES : statesOf(b.states, "states");
    return { segments: this.core.segments.ofCollection(collectionId).filter((s) => states.includes(s.state)) };
  }

  async getRecoveryInfo(body: unknown): Promise<Res<DatacoordApi, "GetRecoveryInfo">> {
    const b = obj(body, "GetRecoveryInfo");
    const coll = await this.cluster.ensureCollection(bigintOf(b.collectionId, "collectionId"));
    const parts =
      b.partitionIds === undefined ? undefined : new Set(list(b.partitionIds, "partitionIds").map((p, i) => bigintOf(p, `partitionIds[${i}]`)));
    if (b.unlessRevision !== undefined && typeof b.unlessRevision !== "string") throw VbError.invalid(`GetRecoveryInfo: field "unlessRevision" must be a string`);
    const revision = this.core.segments.flushedRevision(coll.collectionId);
    const channels = () =>
      coll.vchannels.map((v) => {
        const cp = this.core.checkpoints.get(v.name);
        return { vchannel: v.name, pchannel: v.pchannel, seekPosition: cp.position, checkpointTs: cp.ts };
      });
    if (b.unlessRevision === revision && b.afterSegmentId === undefined) {
      return { collectionId: coll.collectionId, channels: channels(), segments: [], revision, unchanged: true };
    }
    const all = this.core.segments
      .ofCollection(coll.collectionId)
      .filter((s) => s.state === "Flushed" && (s.level === "L0" || parts === undefined || parts.has(s.partitionId)));
    const limit = b.limit === undefined ? undefined : Number(b.limit);
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) throw VbError.invalid(`GetRecoveryInfo: field "limit" must be an integer ≥ 1`);
    const { segments, more } = limit === undefined ? { segments: all, more: false } : recoveryPage(all, b.afterSegmentId === undefined ? -1n : bigintOf(b.afterSegmentId, "afterSegmentId"), limit);
    return { ...(more ? { more } : {}), collectionId: coll.collectionId, channels: channels(), segments, revision };
  }

  getChannelCheckpoint(body: unknown): ChannelCheckpoint {
    const b = obj(body, "GetChannelCheckpoint");
    const vchannel = vchannelOf(b.vchannel, "vchannel");
    if (!this.core.channels.get(vchannel) && !this.core.collections.ofVchannel(vchannel)) {
      throw new VbError(ErrorCode.ChannelNotFound, `vchannel "${vchannel}" is not a vchannel of any collection datacoord serves`);
    }
    return this.core.checkpoints.get(vchannel);
  }
}

/** Bytes one page of recovery info may take: under the 1 MiB payload limit with room to spare. */
const RECOVERY_PAGE_BYTES = 768 * 1024;

/** The segments after `after` in id order, at most `limit` and about RECOVERY_PAGE_BYTES of them. */
export function recoveryPage(all: readonly SegmentInfo[], after: bigint, limit: number): { segments: SegmentInfo[]; more: boolean } {
  const rest = all.filter((s) => s.segmentId > after).sort((a, b) => (a.segmentId < b.segmentId ? -1 : a.segmentId > b.segmentId ? 1 : 0));
  const segments: SegmentInfo[] = [];
  let bytes = 0;
  for (const s of rest) {
    if (segments.length >= limit) break;
    const size = encode(s).byteLength;
    if (segments.length > 0 && bytes + size > RECOVERY_PAGE_BYTES) break;
    segments.push(s);
    bytes += size;
  }
  return { segments, more: segments.length < rest.length };
}
