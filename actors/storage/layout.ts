/**
 * Object keys, following Milvus's layout (DESIGN §3):
 *
 *   insert_log/<collectionId>/<partitionId>/<segmentId>/segment.arrow   every field + position + ts
 *   delta_log/<collectionId>/<partitionId>/<segmentId>/delta.arrow      pk, position, ts, partition
 *   stats_log/<collectionId>/<partitionId>/<segmentId>/stats.msgpack    pk bloom filter, min/max
 *
 * An L0 segment's partition is -1. A segment's keys are a function of its ids alone, so a datanode that
 * replays a segment after a crash overwrites the same objects instead of leaving orphans.
 */

export const INSERT_LOG = "insert_log";
export const DELTA_LOG = "delta_log";
export const STATS_LOG = "stats_log";

export const INSERT_LOG_FILE = "segment.arrow";
export const DELTA_LOG_FILE = "delta.arrow";
export const STATS_LOG_FILE = "stats.msgpack";

export interface SegmentKeyParts {
  collectionId: bigint;
  partitionId: bigint;
  segmentId: bigint;
}

function dir(root: string, s: SegmentKeyParts): string {
  return `${root}/${s.collectionId}/${s.partitionId}/${s.segmentId}`;
}

export function insertLogKey(s: SegmentKeyParts): string {
  return `${dir(INSERT_LOG, s)}/${INSERT_LOG_FILE}`;
}

export function deltaLogKey(s: SegmentKeyParts): string {
  return `${dir(DELTA_LOG, s)}/${DELTA_LOG_FILE}`;
}

export function statsLogKey(s: SegmentKeyParts): string {
  return `${dir(STATS_LOG, s)}/${STATS_LOG_FILE}`;
}

/** The prefixes under which every object of a collection lives (for garbage collection). */
export function collectionPrefixes(collectionId: bigint): string[] {
  return [INSERT_LOG, DELTA_LOG, STATS_LOG].map((root) => `${root}/${collectionId}/`);
}

/** The prefixes of one segment's objects. */
export function segmentPrefixes(s: SegmentKeyParts): string[] {
  return [INSERT_LOG, DELTA_LOG, STATS_LOG].map((root) => `${dir(root, s)}/`);
}
