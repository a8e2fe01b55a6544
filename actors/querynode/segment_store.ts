/**
 * The sealed segments of a querynode: those loaded (by id), those being loaded, and the loads that
 * failed with their reason (shown in the node's dist until the segment is loaded or released, so that
 * querycoord can report them as load blockers). The same for the loads of segments' vector indexes,
 * by (segment, index).
 */
import type { QueryNodeDist } from "../../protocol/messages/querynode.ts";
import type { SealedSegment } from "../segment/sealed_segment.ts";

interface LoadState {
  state: "loading" | "failed";
  reason?: string;
  at: number;
}

/** Failed loads kept in the dist at most (the oldest go first). */
const MAX_FAILED = 256;

export class SegmentStore {
  private readonly loaded = new Map<bigint, SealedSegment>();
  private readonly loads = new Map<bigint, LoadState>();
  /** loads in progress that a release cancelled: their result is dropped */
  private readonly cancelled = new Set<bigint>();
  /** index loads in progress or failed, by `indexKey` */
  private readonly indexLoads = new Map<string, LoadState & { segmentId: bigint; indexId: bigint }>();
  /** index loads in progress that a release cancelled */
  private readonly indexCancelled = new Set<string>();
  private rows = 0;

  get numRows(): number {
    return this.rows;
  }

  get size(): number {
    return this.loaded.size;
  }

  get(id: bigint): SealedSegment | undefined {
    return this.loaded.get(id);
  }

  isLoading(id: bigint): boolean {
    return this.loads.get(id)?.state === "loading";
  }

  all(): IterableIterator<SealedSegment> {
    return this.loaded.values();
  }

  ofCollection(collectionId: bigint): SealedSegment[] {
    return [...this.loaded.values()].filter((s) => s.collectionId === collectionId);
  }

  startLoad(id: bigint): void {
    this.cancelled.delete(id);
    this.loads.set(id, { state: "loading", at: Date.now() });
  }

  /** A load finished well: keeps the segment unless a release cancelled it (then returns false). */
  finishLoad(seg: SealedSegment): boolean {
    this.loads.delete(seg.segmentId);
    if (this.cancelled.delete(seg.segmentId)) return false;
    const old = this.loaded.get(seg.segmentId);
    if (old) this.rows -= old.numRows;
    this.loaded.set(seg.segmentId, seg);
    this.rows += seg.numRows;
    return true;
  }

  failLoad(id: bigint, reason: string): void {
    this.loads.delete(id);
    if (this.cancelled.delete(id)) return;
    this.loads.set(id, { state: "failed", reason, at: Date.now() });
    let failed = 0;
    for (const s of this.loads.values()) if (s.state === "failed") failed++;
    for (const [k, s] of this.loads) {
      if (failed <= MAX_FAILED) break;
      if (s.state === "failed") {
        this.loads.delete(k);
        failed--;
      }
    }
  }

  /** Removes a segment (and cancels its load or forgets its failure); returns it when it was loaded. */
  remove(id: bigint): SealedSegment | undefined {
    const l = this.loads.get(id);
    if (l?.state === "loading") this.cancelled.add(id);
    else if (l) this.loads.delete(id);
    const seg = this.loaded.get(id);
    if (seg) {
      this.loaded.delete(id);
      this.rows -= seg.numRows;
    }
    return seg;
  }

  // ---- index loads ----

  isIndexLoading(segmentId: bigint, indexId: bigint): boolean {
    return this.indexLoads.get(indexKey(segmentId, indexId))?.state === "loading";
  }

  startIndexLoad(segmentId: bigint, indexId: bigint): void {
    const key = indexKey(segmentId, indexId);
    this.indexCancelled.delete(key);
    this.indexLoads.set(key, { segmentId, indexId, state: "loading", at: Date.now() });
  }

  /** An index load finished well: false when a release cancelled it meanwhile (drop the index then). */
  finishIndexLoad(segmentId: bigint, indexId: bigint): boolean {
    const key = indexKey(segmentId, indexId);
    this.indexLoads.delete(key);
    return !this.indexCancelled.delete(key);
  }

  failIndexLoad(segmentId: bigint, indexId: bigint, reason: string): void {
    const key = indexKey(segmentId, indexId);
    this.indexLoads.delete(key);
    if (this.indexCancelled.delete(key)) return;
    this.indexLoads.set(key, { segmentId, indexId, state: "failed", reason, at: Date.now() });
    let failed = 0;
    for (const s of this.indexLoads.values()) if (s.state === "failed") failed++;
    for (const [k, s] of this.indexLoads) {
      if (failed <= MAX_FAILED) break;
      if (s.state === "failed") {
        this.indexLoads.delete(k);
        failed--;
      }
    }
  }

  /** Forgets an index's failure, or cancels its load in progress. */
  forgetIndex(segmentId: bigint, indexId: bigint): void {
    const key = indexKey(segmentId, indexId);
    const l = this.indexLoads.get(key);
    if (l?.state === "loading") this.indexCancelled.add(key);
    else if (l) this.indexLoads.delete(key);
  }

  /** `forgetIndex` for every index of a segment (it is released). */
  forgetIndexesOf(segmentId: bigint): void {
    for (const l of [...this.indexLoads.values()]) if (l.segmentId === segmentId) this.forgetIndex(segmentId, l.indexId);
  }

  distSegments(): QueryNodeDist["segments"] {
    return [...this.loaded.values()].map((s) => ({
      segmentId: s.segmentId,
      collectionId: s.collectionId,
      partitionId: s.partitionId,
      vchannel: s.vchannel,
      rows: s.numRows,
      memoryBytes: s.memoryBytes,
      indexIds: [...s.indexes.keys()],
    }));
  }

  distLoading(): QueryNodeDist["loading"] {
    const out: QueryNodeDist["loading"] = [...this.loads].map(([segmentId, s]) => ({
      segmentId,
      state: s.state,
      ...(s.reason === undefined ? {} : { reason: s.reason }),
    }));
    for (const l of this.indexLoads.values()) {
      out.push({ segmentId: l.segmentId, indexId: l.indexId, state: l.state, ...(l.reason === undefined ? {} : { reason: l.reason }) });
    }
    return out;
  }
}

function indexKey(segmentId: bigint, indexId: bigint): string {
  return `${segmentId}/${indexId}`;
}
