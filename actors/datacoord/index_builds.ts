/**
 * Index builds, as pure functions of datacoord's records (unit-tested without NATS):
 *
 * - which segments still need a build record (every Flushed L1 segment of a collection, per live index);
 * - which builds are due (Unissued, or Failed with a retry whose time has come);
 * - which live datanode takes each due build: the one with the fewest builds in flight, ties by node id,
 *   never more than `cap` on one node (Milvus's IndexCoord gives a task to the node with the most free
 *   slots the same way);
 * - how a build's state changes when it is given out, reported, or lost with its datanode;
 * - an index's progress (DescribeIndex).
 *
 * A build the datanode reports as failed is retried `MAX_BUILD_ATTEMPTS` times with exponential
 * backoff, then stays Failed (an identical CreateIndex re-arms it). A build lost with its datanode is not
 * the segment's fault: it is retried whenever a datanode is alive, with the same backoff.
 */
import type { SegmentInfo } from "../../protocol/meta.ts";
import type { IndexInfo, IndexProgress } from "../../protocol/messages/indexes.ts";
import type { BuildRecord } from "./index_meta.ts";

/** Builds one datanode runs at a time. */
export const BUILDS_PER_NODE = 2;
/** Failed builds (reported by a datanode) before a segment's build stays Failed. */
export const MAX_BUILD_ATTEMPTS = 3;
const RETRY_BASE_MS = 1_000;
const RETRY_CAP_MS = 30_000;

/** Backoff before the n-th retry (n ≥ 1): 1 s, 2 s, 4 s ... at most 30 s. */
export function retryDelayMs(n: number): number {
  return Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** Math.max(0, Math.min(n - 1, 10)));
}

/** The segments of a build: Flushed L1 segments (L0 segments hold deletes only). */
export function isIndexable(s: SegmentInfo): boolean {
  return s.state === "Flushed" && s.level === "L1";
}

/** The (segment, index) pairs that have no build record yet. */
export function missingBuilds(
  indexes: readonly IndexInfo[],
  segmentsOf: (collectionId: bigint) => readonly SegmentInfo[],
  hasBuild: (segmentId: bigint, index: IndexInfo) => boolean,
): { segment: SegmentInfo; index: IndexInfo }[] {
  const out: { segment: SegmentInfo; index: IndexInfo }[] = [];
  for (const index of indexes) {
    for (const segment of segmentsOf(index.collectionId)) {
      if (isIndexable(segment) && !hasBuild(segment.segmentId, index)) out.push({ segment, index });
    }
  }
  return out;
}

/** Whether a build should be given to a datanode now. */
export function isDue(b: BuildRecord, now: number): boolean {
  return b.state === "Unissued" || (b.state === "Failed" && b.retryAt !== undefined && b.retryAt <= now);
}

/**
 * Which node takes each build in `due` (in that order): the live node with the fewest builds in flight,
 * ties by node id, at most `cap` per node. `inFlight` lists every live node (0 when it builds nothing).
 * Builds that find no free slot wait for the next round.
 */
export function planBuilds(due: readonly bigint[], inFlight: ReadonlyMap<string, number>, cap = BUILDS_PER_NODE): Map<bigint, string> {
  const counts = new Map(inFlight);
  const out = new Map<bigint, string>();
  for (const buildId of due) {
    let best: string | undefined;
    let bestLoad = Infinity;
    for (const [node, n] of counts) {
      if (n >= cap) continue;
      if (n < bestLoad || (n === bestLoad && best !== undefined && node < best)) {
        best = node;
        bestLoad = n;
      }
    }
    if (best === undefined) break;
    out.set(buildId, best);
    counts.set(best, bestLoad + 1);
  }
  return out;
}

/** A record without the keys a state leaves behind. */
function strip(b: BuildRecord, ...keys: (keyof BuildRecord)[]): BuildRecord {
  const out = { ...b };
  for (const k of keys) delete out[k];
  return out;
}

export function assigned(b: BuildRecord, nodeId: string, now: number): BuildRecord {
  return { ...strip(b, "failReason", "retryAt", "fileKey", "serializedSize", "memorySize"), state: "InProgress", nodeId, assignedAt: now };
}

export function finished(b: BuildRecord, r: { fileKey: string; serializedSize: number; memorySize: number }): BuildRecord {
  return { ...strip(b, "failReason", "retryAt"), state: "Finished", fileKey: r.fileKey, serializedSize: r.serializedSize, memorySize: r.memorySize };
}

/** The datanode reported a failure: retried with backoff until MAX_BUILD_ATTEMPTS, then Failed for good. */
export function failed(b: BuildRecord, reason: string, now: number): BuildRecord {
  const attempts = b.attempts + 1;
  const base = { ...strip(b, "retryAt"), state: "Failed" as const, failReason: reason, attempts };
  return attempts >= MAX_BUILD_ATTEMPTS ? base : { ...base, retryAt: now + retryDelayMs(attempts) };
}

/** The datanode went away during the build: retried (on any live node) after a backoff. */
export function lost(b: BuildRecord, reason: string, now: number): BuildRecord {
  const n = b.lost + 1;
  return { ...b, state: "Failed", failReason: reason, lost: n, retryAt: now + retryDelayMs(n) };
}

/** A build that failed for good, given another round (an identical CreateIndex asks for it). */
export function rearmed(b: BuildRecord, now: number): BuildRecord {
  return { ...b, attempts: 0, retryAt: now };
}

export function failedForGood(b: BuildRecord): boolean {
  return b.state === "Failed" && b.retryAt === undefined;
}

/**
 * An index's progress over the collection's Flushed L1 segments: rows indexed, builds pending (not
 * started, running, or waiting for a retry), builds failed for good. Finished once every segment's
 * build is; Failed when nothing is pending and some failed for good.
 */
export function indexProgress(
  index: IndexInfo,
  segments: readonly SegmentInfo[],
  buildOf: (segmentId: bigint) => BuildRecord | undefined,
): IndexProgress {
  let totalRows = 0;
  let indexedRows = 0;
  let pendingBuilds = 0;
  const failedBuilds: { segmentId: bigint; reason: string }[] = [];
  for (const s of segments) {
    if (!isIndexable(s)) continue;
    totalRows += s.numRows;
    const b = buildOf(s.segmentId);
    if (b?.state === "Finished") indexedRows += s.numRows;
    else if (b !== undefined && failedForGood(b)) failedBuilds.push({ segmentId: s.segmentId, reason: b.failReason ?? "unknown" });
    else pendingBuilds++;
  }
  return {
    indexName: index.indexName,
    indexId: index.indexId,
    fieldName: index.fieldName,
    indexType: index.indexType,
    metricType: index.metricType,
    params: index.params,
    totalRows,
    indexedRows,
    pendingBuilds,
    failedBuilds,
    state: pendingBuilds > 0 ? "InProgress" : failedBuilds.length > 0 ? "Failed" : "Finished",
  };
}
