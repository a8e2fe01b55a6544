/**
 * querynode and its shard delegators (QueryNode v2). A querynode hosts sealed segments and the
 * delegators of the shards querycoord puts on it; it publishes its distribution on the feed.
 * A delegator (one per collection × vchannel × replica) consumes its vchannel into growing rows,
 * keeps the deletes and tSafe, and serves Search/Query for its shard by fanning out to the sealed
 * segments of its readable distribution (grouped by node) and its growing rows.
 */
import type { CollectionSchema, ConsistencyLevel } from "../schema.ts";
import type { SegmentLoadInfo } from "../meta.ts";
import type { PkColumn } from "../dml.ts";
import type { IndexLoadInfo, QuerynodeIndexApi } from "./indexes.ts";

export const QUERYNODE = "querynode";
export const DELEGATOR = "delegator";

export type MetricType = "L2" | "IP" | "COSINE";

/** A sealed segment as a delegator's distribution holds it. */
export interface SealedEntry {
  segmentId: bigint;
  partitionId: bigint;
  nodeId: string;
  /** the vchannel position range whose rows of `partitionId` it holds */
  startPosition: bigint;
  endPosition: bigint;
  numRows: number;
}

/**
 * What changed in a delegator's sealed view (Milvus's SyncDistribution actions Set and Remove), against
 * the view named `base`: `remove` entries go, `set` entries come (an entry is a segment on a node). A
 * delegator holding another view refuses it, retriably: the sender then sends the whole view.
 */
export interface ViewDelta {
  base: string;
  set: SealedEntry[];
  remove: { segmentId: bigint; nodeId: string }[];
}

/** A SyncDistribution's reply: the name of the view it made readable (a delta's `base` to come). */
export interface SyncReply {
  view: string;
}

export interface WatchChannelReq {
  collectionId: bigint;
  vchannel: string;
  pchannel: number;
  replicaId: bigint;
  schema: CollectionSchema;
  /** consume after this position (the channel checkpoint of the target) */
  seekPosition: bigint;
  /** empty: every partition */
  partitionIds: bigint[];
  /** L0 delete logs of the channel, older than the seek position */
  l0Segments: SegmentLoadInfo[];
  /**
   * refuse reads (503, retriable) until the first SyncDistribution: querycoord sets it, since it offers a
   * leader only once synced, and a read sent before (by a client's stale list of leaders, to a node back
   * under the same id) would see none of the sealed segments
   */
  syncedReadsOnly?: boolean;
}

export interface LoadSegmentsReq {
  collectionId: bigint;
  replicaId: bigint;
  schema: CollectionSchema;
  segments: SegmentLoadInfo[];
  /** L0 delete logs to apply to them */
  l0Segments: SegmentLoadInfo[];
  /**
   * Finished index builds of these segments, loaded with them (best effort: a segment loads without an
   * index that fails or does not fit, and the dist's loading list says why)
   */
  indexes?: IndexLoadInfo[];
}

/** One search of a request: what proxy → delegator → querynode carry. */
export interface SearchSpec {
  collectionId: bigint;
  annsFieldId: number;
  metric: MetricType;
  /** nq × dim */
  queries: Float32Array;
  nq: number;
  /** limit + offset: each shard returns this many */
  topk: number;
  /** a compiled filter plan (actors/expr), or undefined */
  filter?: unknown;
  partitionIds: bigint[];
  outputFieldIds: number[];
  radius?: number;
  rangeFilter?: number;
  searchParams?: Record<string, unknown>;
}

export interface QuerySpec {
  collectionId: bigint;
  filter?: unknown;
  partitionIds: bigint[];
  outputFieldIds: number[];
  /** limit + offset (undefined: all) */
  limit?: number;
  countOnly: boolean;
}

/**
 * Per query: hits best first. `fields` holds the output fields' values of the hits (by field id), one
 * value per hit: Bool → boolean, Int8..Int32/Float/Double → number, Int64 → bigint, VarChar/JSON →
 * string (JSON text), Array → array, FloatVector → Float32Array, null for a null.
 */
export interface SearchResult {
  nq: number;
  /** per query */
  hits: { ids: PkColumn; scores: Float32Array; fields: Record<number, unknown[]> }[];
}

export interface QueryResult {
  count: number;
  /** rows: pk and the output fields, by field id (absent with countOnly) */
  pks: PkColumn;
  fields: Record<number, unknown[]>;
}

export interface Guarantee {
  consistency: ConsistencyLevel;
  /** Strong/Session: the delegator must have applied this position of its vchannel */
  position: bigint;
  /** Bounded: the delegator's tSafe timestamp may lag the request time by at most this (ms) */
  gracefulMs?: number;
  /** how long the delegator may wait for its tSafe before failing with 503 */
  waitMs?: number;
}

export type QuerynodeApi = {
  WatchDmChannels: [WatchChannelReq, null];
  UnsubDmChannel: [{ collectionId: bigint; vchannel: string; replicaId: bigint }, null];
  LoadSegments: [LoadSegmentsReq, null];
  ReleaseSegments: [{ collectionId: bigint; segmentIds: bigint[] }, null];
  ReleaseCollection: [{ collectionId: bigint }, null];
  /** search these local sealed segments, reading rows visible at `readPosition` */
  SearchSegments: [{ segmentIds: bigint[]; spec: SearchSpec; readPosition: bigint }, SearchResult];
  QuerySegments: [{ segmentIds: bigint[]; spec: QuerySpec; readPosition: bigint }, QueryResult];
  /** deletes a delegator forwards to the sealed segments it reads here */
  ApplyDelete: [{ collectionId: bigint; segmentIds: bigint[]; pks: PkColumn; positions: BigInt64Array }, null];
  /** the node's distribution as it would publish it now (for querycoord's first look and for tests) */
  GetDist: [Record<string, never>, QueryNodeDist];
  /** a hosted delegator tells its querynode its state (on change and every heartbeat interval) */
  DelegatorReport: [DelegatorReport, null];
  /**
   * The node drains before it stops: it shows `stopping` in its distribution at once, takes no new
   * channel or segment, and serves what it holds until querycoord has placed it elsewhere and released
   * it here. Replies with what it still holds (ask again to follow the drain).
   */
  Drain: [Record<string, never>, { segments: number; delegators: number }];
} & QuerynodeIndexApi;

/** What a delegator tells the querynode that hosts it (the querynode's dist carries it on). */
export interface DelegatorReport {
  address: string;
  collectionId: bigint;
  vchannel: string;
  replicaId: bigint;
  /** consuming its channel */
  started: boolean;
  serviceable: boolean;
  targetVersion: number;
  tSafe: bigint;
  sealedSegmentIds: bigint[];
  /** rows consumed from the channel that no sealed segment of the distribution holds yet */
  growingRows: number;
  /** an estimate of their memory */
  growingBytes: number;
}

export type DelegatorApi = {
  Search: [{ spec: SearchSpec; guarantee: Guarantee }, SearchResult];
  Query: [{ spec: QuerySpec; guarantee: Guarantee }, QueryResult];
  /**
   * querycoord sets the sealed part of the distribution (the LeaderChecker's action): the whole view
   * (`sealed`), or what changed against a view the delegator named in an earlier reply (`delta`). The
   * reply names the view now readable.
   */
  SyncDistribution: [{ targetVersion: number; sealed?: SealedEntry[]; delta?: ViewDelta }, SyncReply];
  GetStatus: [
    Record<string, never>,
    { tSafe: bigint; tSafeTs: bigint; growingRows: number; sealed: SealedEntry[]; serviceable: boolean; targetVersion: number },
  ];
  /** replies once the delegator consumes its channel (the querynode's WatchDmChannels waits on it) */
  WaitStarted: [Record<string, never>, null];
};

/** What a querynode publishes on `VB_DIST` (subject `vb.dist.querynode.<node>`). */
export interface QueryNodeDist {
  nodeId: string;
  /** ms since the epoch, the node's clock */
  at: number;
  /** loaded segments and indexes, plus the growing rows its delegators hold (an estimate) */
  memoryBytes: number;
  memoryLimitBytes: number;
  /**
   * The node is draining before it stops (SIGTERM): querycoord places what it holds elsewhere, switches
   * the shard leaders away from it and releases it there; the node exits once it holds nothing.
   */
  stopping?: boolean;
  /** rows of its sealed segments plus its delegators' growing rows */
  rows: number;
  segments: {
    segmentId: bigint;
    collectionId: bigint;
    partitionId: bigint;
    vchannel: string;
    rows: number;
    /** the segment's own bytes (its indexes' are in the node's total only) */
    memoryBytes: number;
    /** the indexes loaded for it (searches on their field and metric go through them) */
    indexIds: bigint[];
  }[];
  delegators: {
    collectionId: bigint;
    vchannel: string;
    replicaId: bigint;
    address: string;
    serviceable: boolean;
    targetVersion: number;
    tSafe: bigint;
    /**
     * the segments of its view (querycoord's side of the feed holds them as read: int64s in one buffer,
     * 8 bytes an id rather than 32 for an array of bigints)
     */
    sealedSegmentIds: SegmentIds;
  }[];
  /** loads in progress and why a load was refused: of a segment, or of one of its indexes (`indexId`) */
  loading: { segmentId: bigint; indexId?: bigint; state: "loading" | "failed"; reason?: string }[];
  /**
   * A large node's segments as a numbered base plus a delta: `segments` is then empty, the base was sent
   * in `base.chunks` messages (`QueryNodeDistChunk`, subjects `vb.dist.querynode.<node>.base.<i>`) before
   * this one, and the node holds base − `delta.removed` + `delta.added` (an added segment replaces the
   * base's record of the same id). `from`: the base's segments are what the node held as of that
   * (epoch, seq), so a reader that holds that makes the base itself instead of reading its chunks.
   */
  base?: { epoch: number; chunks: number; segments: number; from?: { epoch: number; seq: number } };
  /** `seq` grows whenever the delta changes: an unchanged (epoch, seq) means unchanged segments */
  delta?: { seq: number; added: QueryNodeDist["segments"]; removed: bigint[] };
}

export type DistSegment = QueryNodeDist["segments"][number];

/** A list of segment ids: an array, or int64s in one buffer. */
export type SegmentIds = readonly bigint[] | BigInt64Array;

/**
 * Packed ids (`packIds`) as int64s in a buffer of their own (a copy: `bytes` may be a view into a
 * message, which a kept list would keep whole).
 */
export function packedIds(bytes: Uint8Array): BigInt64Array {
  if (bytes.byteLength % 8 !== 0) throw new RangeError(`packed segment ids take a multiple of 8 bytes, not ${bytes.byteLength}`);
  if (!LITTLE_ENDIAN) return BigInt64Array.from(unpackIds(bytes));
  const out = new BigInt64Array(bytes.byteLength / 8);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Segment ids packed as int64 little-endian bytes: how a delegator's `sealedSegmentIds` travel on the
 * feed. A delegator of a large channel lists thousands of them in every heartbeat; as bytes, reading
 * them costs a copy, and a list equal to the one before is recognised without decoding it.
 */
export function packIds(ids: SegmentIds): Uint8Array {
  const out = new Uint8Array(ids.length * 8);
  const view = new DataView(out.buffer);
  for (let i = 0; i < ids.length; i++) view.setBigInt64(i * 8, ids[i]!, true);
  return out;
}

export function unpackIds(bytes: Uint8Array): bigint[] {
  if (bytes.byteLength % 8 !== 0) throw new RangeError(`packed segment ids take a multiple of 8 bytes, not ${bytes.byteLength}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Array<bigint>(bytes.byteLength / 8);
  for (let i = 0; i < out.length; i++) out[i] = view.getBigInt64(i * 8, true);
  return out;
}

/** Whether two records of a node's segment say the same (its id aside): rows, memory, channel, partition, indexes. */
export function sameDistSegment(a: DistSegment, b: DistSegment): boolean {
  if (a.collectionId !== b.collectionId || a.rows !== b.rows || a.memoryBytes !== b.memoryBytes || a.vchannel !== b.vchannel || a.partitionId !== b.partitionId) return false;
  const ai = a.indexIds ?? [];
  const bi = b.indexIds ?? [];
  if (ai.length !== bi.length) return false;
  for (let i = 0; i < ai.length; i++) if (ai[i] !== bi[i]) return false;
  return true;
}

/** One chunk of a node's numbered base distribution. */
export interface QueryNodeDistChunk {
  nodeId: string;
  epoch: number;
  index: number;
  count: number;
  segments: QueryNodeDist["segments"];
}
