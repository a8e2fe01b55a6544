/**
 * Segment actors (Milvus's Segment interface, internal/querynodev2/segments/segment_interface.go): one
 * actor per loaded copy of a segment, at `vb.seg.<node>.<segment>`.
 *
 * - A sealed segment lives on the querynode that loaded it (its child): its columns, primary-key
 *   lookup, delete stamps, COSINE norms and vector indexes. It is spawned when the load finishes and
 *   stopped on release.
 * - A growing segment is the rows of one partition that a delegator consumed from its vchannel and no
 *   sealed segment holds yet; it is the delegator's child, in the delegator's process, fed by it.
 *   Its address ends in `g<replica>-<vchannel>-<partition>` instead of a segment id (the datanode
 *   decides which segment a row lands in; the delegator only knows positions).
 *
 * Any process may ask a segment by its address. Reads give the rows visible at `readPosition` (a row
 * inserted at p ≤ r with no delete of its pk at d, p < d ≤ r).
 */
import type { PkColumn } from "../dml.ts";
import type { IndexLoadInfo } from "./indexes.ts";
import type { QueryResult, QuerySpec, SearchResult, SearchSpec } from "./querynode.ts";

export const SEGMENT = "segment";

export type SegmentCopyState = "Sealed" | "Growing";

/** A position range of a partition whose rows a sealed segment answers for (a growing read skips them). */
export interface CoveredRange {
  partitionId: bigint;
  start: bigint;
  end: bigint;
}

export interface SegmentReadReq<S> {
  spec: S;
  readPosition: bigint;
  /** growing segments: rows in these ranges are answered by sealed segments and skipped */
  covered?: CoveredRange[];
}

export interface SegmentIndexDescription {
  indexId: bigint;
  buildId: bigint;
  fieldId: number;
  indexType: string;
  metricType: string;
  memoryBytes: number;
}

export interface SegmentDescription {
  /** the segment id (sealed) or the growing segment's name (`g<replica>-<vchannel>-<partition>`) */
  segment: string;
  state: SegmentCopyState;
  collectionId: bigint;
  partitionId: bigint;
  vchannel: string;
  nodeId: string;
  /** rows not deleted as of the last delete applied */
  rows: number;
  /** rows stored, deleted ones included */
  insertedRows: number;
  deletedRows: number;
  memoryBytes: number;
  /** the vchannel position range of its rows (growing: of the rows held now; 0 when empty) */
  startPosition: bigint;
  endPosition: bigint;
  indexes: SegmentIndexDescription[];
  /** times its actor was restarted after a crash */
  restarts: number;
}

export type SegmentApi = {
  Search: [SegmentReadReq<SearchSpec>, SearchResult];
  /** Milvus's Retrieve */
  Query: [SegmentReadReq<QuerySpec>, QueryResult];
  /** deletes of its pks at `positions` (one per pk); `partitionIds`: -1 or the partition of each delete */
  ApplyDelete: [{ pks: PkColumn; positions: BigInt64Array; partitionIds?: BigInt64Array }, { changed: number }];
  /**
   * Loads a vector index of the segment (sealed only). The querynode accounts its memory: asked from
   * elsewhere, the segment has its querynode load it.
   */
  LoadIndex: [{ info: IndexLoadInfo }, null];
  ReleaseIndex: [{ indexId: bigint }, { memoryBytes: number }];
  Describe: [Record<string, never>, SegmentDescription];
};
