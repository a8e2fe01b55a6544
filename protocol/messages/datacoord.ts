/**
 * datacoord: segments and their lifecycle, channel checkpoints, flush, vchannel → datanode assignment,
 * recovery info, garbage collection (DESIGN §1, §4).
 *
 * Segments are position ranges: proxies publish rows per (vchannel, partition) without segment ids;
 * the datanode that consumes a vchannel cuts it into segments as it reads (a new segment opens at the
 * first row of a partition after the previous one sealed), asking datacoord for the id and recording
 * the start position. Replay from a checkpoint therefore cuts the same segments again.
 */
import type { ChannelCheckpoint, SegmentInfo, SegmentLevel, SegmentState, BinlogRef } from "../meta.ts";
import type { DatacoordIndexApi, DatanodeIndexApi } from "./indexes.ts";

export const DATACOORD = "datacoord";

export interface SealPolicy {
  /** seal a growing segment at this many rows */
  maxRows: number;
  /** ... or at this many bytes of buffered row data */
  maxBytes: number;
  /** ... or when it got no row for this long (ms) */
  idleMs: number;
}

export interface ChannelWatch {
  collectionId: bigint;
  vchannel: string;
  pchannel: number;
  /** resume after this position */
  checkpoint: bigint;
}

export interface FlushResult {
  collectionId: bigint;
  /** per vchannel: the position every acknowledged write of the request is at or before */
  flushPositions: Record<string, bigint>;
  /**
   * the L1 segments datacoord knew at the flush that it seals (they become Flushed). A datanode opens a
   * segment when it reads the segment's first row, so rows it has not read yet at the flush go to
   * segments this list does not name; `flushPositions` is what covers every acknowledged write.
   */
  segmentIds: bigint[];
  flushTs: bigint;
}

export interface RecoveryInfo {
  collectionId: bigint;
  channels: { vchannel: string; pchannel: number; seekPosition: bigint; checkpointTs: bigint }[];
  /** Flushed L1 and L0 segments (the target's sealed segments) */
  segments: SegmentInfo[];
  /** a page of them (asked with `limit`), and more follow after the last one */
  more?: boolean;
  /**
   * The revision of the collection's Flushed segments when this page was read (a new one whenever one
   * comes, goes or changes); not given by a datacoord that keeps none.
   */
  revision?: string;
  /**
   * The ask named `unlessRevision` and the collection's Flushed segments are still those: `segments` is
   * empty, the asker's are good (`channels` is the current one).
   */
  unchanged?: boolean;
}

/**
 * Who sends a datanode's report: its node id and the session (a fresh id per process start of that
 * node). datacoord refuses (904) a report for a vchannel not assigned to `nodeId`, or from a session older
 * than the one that last asked GetChannelWatches for that node, so a datanode that was replaced (or
 * restarted under the same id) cannot change segments behind its successor's back.
 */
export interface ReporterRef {
  nodeId?: string;
  session?: string;
}

/** What a datanode publishes on the dist feed (`vb.dist.datanode.<nodeId>`) every heartbeat interval. */
export interface DatanodeHeartbeat {
  nodeId: string;
  session: string;
  /** ms since the epoch, the datanode's clock */
  ts: number;
  channels: {
    vchannel: string;
    collectionId: bigint;
    /** position of the last message applied */
    consumed: bigint;
    checkpoint: bigint;
    growing: number;
    bufferedRows: number;
  }[];
  /** index builds the node holds (building, or reporting): datacoord re-tells a build it does not list */
  indexBuilds?: bigint[];
}

export type DatacoordApi = {
  /** idempotent on (vchannel, partitionId, level, startPosition) */
  AllocSegment: [
    { collectionId: bigint; partitionId: bigint; vchannel: string; level: SegmentLevel; startPosition: bigint } & ReporterRef,
    SegmentInfo,
  ];
  /** the datanode sealed a segment at `endPosition` and starts writing it */
  SegmentSealed: [{ segmentId: bigint; endPosition: bigint; endTs: bigint; numRows: number } & ReporterRef, null];
  /** the datanode wrote the segment's objects: it becomes Flushed and the checkpoint may advance */
  SaveBinlogPaths: [
    ReporterRef & {
      segmentId: bigint;
      numRows: number;
      binlogs: BinlogRef[];
      deltalogs: BinlogRef[];
      statslogs: string[];
      memorySize: number;
      /** the vchannel checkpoint after this segment (the datanode computes it) */
      checkpoint: ChannelCheckpoint;
    },
    null,
  ];
  /** seals every growing segment of the collection at the current end of its vchannels */
  Flush: [{ collectionId: bigint }, FlushResult];
  /** true when every segment sealed by a flush is Flushed */
  GetFlushState: [{ collectionId: bigint; flushPositions: Record<string, bigint> }, { flushed: boolean }];
  GetSegmentInfo: [{ segmentIds: bigint[] }, { segments: SegmentInfo[] }];
  ListSegments: [{ collectionId: bigint; states?: SegmentState[] }, { segments: SegmentInfo[] }];
  /**
   * With `limit`, one page of the segments, in segment id order after `afterSegmentId` (and under the
   * payload limit whatever `limit` says); `more` tells that another page follows. The channels are those
   * of the moment each page is read: the first page's are the ones to seek from.
   */
  /**
   * A collection's Flushed segments (by `limit` a page, after `afterSegmentId`) and channels; with
   * `unlessRevision`, a first page answers `unchanged` (no segments) while the segments are still of that revision
   */
  GetRecoveryInfo: [{ collectionId: bigint; partitionIds?: bigint[]; afterSegmentId?: bigint; limit?: number; unlessRevision?: string }, RecoveryInfo];
  GetChannelCheckpoint: [{ vchannel: string }, ChannelCheckpoint];
  /** what a datanode watches (it asks at start and when told); `session` makes it the node's current one */
  GetChannelWatches: [{ nodeId: string; session?: string }, { channels: ChannelWatch[]; sealPolicy: SealPolicy }];
  /**
   * A datanode stopping gracefully (its actors stopped, nothing more from it): its vchannels go to the
   * other live datanodes now, which read on from the channels' checkpoints, instead of after its
   * heartbeats run out. Replies with how many vchannels moved.
   */
  DatanodeLeaving: [{ nodeId: string; session?: string }, { vchannels: number }];
  /**
   * the datanode's checkpoint of a vchannel moved without a segment flushing (nothing buffered, or a flush
   * found nothing to seal); datacoord keeps the highest it was told
   */
  UpdateChannelCheckpoint: [ReporterRef & { checkpoint: ChannelCheckpoint }, null];
} & DatacoordIndexApi;

export type DatanodeApi = {
  WatchDmChannels: [{ channels: ChannelWatch[]; sealPolicy: SealPolicy }, null];
  UnwatchDmChannels: [{ vchannels: string[] }, null];
  /** seal every growing segment of these vchannels once the datanode has consumed `position` */
  FlushChannels: [{ channels: { vchannel: string; position: bigint }[] }, null];
  GetStatus: [
    Record<string, never>,
    {
      nodeId: string;
      channels: { vchannel: string; consumed: bigint; growing: number; bufferedRows: number; checkpoint?: bigint }[];
      /** index builds in progress (building, or reporting to datacoord) */
      indexBuilds?: { buildId: bigint; segmentId: bigint; indexId: bigint; phase: "building" | "reporting" }[];
    },
  ];
} & DatanodeIndexApi;

/** Published on the events stream after datacoord records it. */
export type SegmentEvent =
  | { kind: "segment.flushed"; segment: SegmentInfo }
  | { kind: "segment.dropped"; segmentId: bigint; collectionId: bigint };
