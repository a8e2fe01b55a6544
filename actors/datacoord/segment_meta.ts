/**
 * Segment meta: every segment's record, in memory and in the KV bucket `segments` (key
 * `<collectionId>/<segmentId>`, value the msgpack SegmentInfo), and the state machine
 *
 *   Growing → Sealed → Flushing → Flushed → Dropped   (and any live state → Dropped)
 *
 * A record changes in memory only after KV took it, so what the actor answers is what a restarted
 * datacoord will load. One datacoord writes this bucket.
 */
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import type { SegmentInfo, SegmentLevel, SegmentState } from "../../protocol/meta.ts";
import type { KvMeta } from "../../runtime/kv_meta.ts";

export const SEGMENTS_BUCKET = "segments";

export const SEGMENT_STATES: readonly SegmentState[] = ["Growing", "Sealed", "Flushing", "Flushed", "Dropped"];

const NEXT: Record<SegmentState, readonly SegmentState[]> = {
  Growing: ["Sealed", "Dropped"],
  Sealed: ["Flushing", "Dropped"],
  Flushing: ["Flushed", "Dropped"],
  Flushed: ["Dropped"],
  Dropped: [],
};

export function canTransition(from: SegmentState, to: SegmentState): boolean {
  return NEXT[from].includes(to);
}

/** Applies a chain of transitions to a record; an illegal step is a VbError 1100 that names it. */
export function transition(seg: SegmentInfo, ...path: SegmentState[]): SegmentInfo {
  let state = seg.state;
  for (const to of path) {
    if (!canTransition(state, to)) {
      throw new VbError(
        ErrorCode.ParameterInvalid,
        `segment ${seg.segmentId} is ${state}: it cannot become ${to} (the lifecycle is Growing → Sealed → Flushing → Flushed → Dropped)`,
      );
    }
    state = to;
  }
  return { ...seg, state, updatedAt: Date.now() };
}

export function segmentKey(s: { collectionId: bigint; segmentId: bigint }): string {
  return `${s.collectionId}/${s.segmentId}`;
}

function allocKey(vchannel: string, partitionId: bigint, level: SegmentLevel, start: bigint): string {
  return `${vchannel}|${partitionId}|${level}|${start}`;
}

export class SegmentMeta {
  private readonly byId = new Map<bigint, SegmentInfo>();
  private readonly byAlloc = new Map<string, bigint>();
  /**
   * Per collection, a revision of its Flushed segments: a new one whenever a Flushed segment comes, goes
   * or changes (GetRecoveryInfo names it, and answers "unchanged" to an ask that names it still). Revisions
   * of this process start afresh: `epoch` tells them from another's.
   */
  private readonly flushedRevisions = new Map<bigint, number>();
  private revisions = 0;
  private readonly epoch = `${Date.now().toString(36)}${Math.floor(Math.random() * 36 ** 4).toString(36)}`;

  private constructor(private readonly kv: KvMeta) {}

  static async open(kv: KvMeta): Promise<SegmentMeta> {
    const meta = new SegmentMeta(kv);
    for (const { value } of (await kv.records<SegmentInfo>((v) => typeof (v as SegmentInfo).segmentId === "bigint")).values()) meta.index(value);
    return meta;
  }

  private index(s: SegmentInfo): void {
    this.changed(this.byId.get(s.segmentId), s);
    this.byId.set(s.segmentId, s);
    this.byAlloc.set(allocKey(s.vchannel, s.partitionId, s.level, s.startPosition), s.segmentId);
  }

  get(segmentId: bigint): SegmentInfo | undefined {
    return this.byId.get(segmentId);
  }

  /** The revision of the collection's Flushed segments (see `flushedRevisions`). */
  flushedRevision(collectionId: bigint): string {
    return `${this.epoch}.${this.flushedRevisions.get(collectionId) ?? 0}`;
  }

  /** A record replaced (`before` → `after`): a Flushed one on either side makes a new revision of its collection. */
  private changed(before: SegmentInfo | undefined, after: SegmentInfo | undefined): void {
    const s = after ?? before;
    if (s && (before?.state === "Flushed" || after?.state === "Flushed")) this.flushedRevisions.set(s.collectionId, ++this.revisions);
  }

  /** The segment allocated before for this (vchannel, partition, level, start), if any. */
  findAlloc(vchannel: string, partitionId: bigint, level: SegmentLevel, start: bigint): SegmentInfo | undefined {
    const id = this.byAlloc.get(allocKey(vchannel, partitionId, level, start));
    return id === undefined ? undefined : this.byId.get(id);
  }

  all(): IterableIterator<SegmentInfo> {
    return this.byId.values();
  }

  ofCollection(collectionId: bigint): SegmentInfo[] {
    const out: SegmentInfo[] = [];
    for (const s of this.byId.values()) if (s.collectionId === collectionId) out.push(s);
    return out.sort((a, b) => (a.segmentId < b.segmentId ? -1 : a.segmentId > b.segmentId ? 1 : 0));
  }

  collectionIds(): Set<bigint> {
    return new Set([...this.byId.values()].map((s) => s.collectionId));
  }

  /** Stores a new or changed record (KV first, then memory). */
  async save(s: SegmentInfo): Promise<void> {
    await this.kv.putValue(segmentKey(s), s);
    this.index(s);
  }

  /** Marks a record Dropped in memory only (the garbage collector persists and removes it). */
  markDropped(segmentId: bigint): SegmentInfo | undefined {
    const s = this.byId.get(segmentId);
    if (!s || s.state === "Dropped") return s;
    const d = transition(s, "Dropped");
    this.index(d);
    return d;
  }

  /** Forgets a record (KV first, then memory). */
  async remove(s: SegmentInfo): Promise<void> {
    await this.kv.delete(segmentKey(s));
    this.changed(this.byId.get(s.segmentId), undefined);
    this.byId.delete(s.segmentId);
    const k = allocKey(s.vchannel, s.partitionId, s.level, s.startPosition);
    if (this.byAlloc.get(k) === s.segmentId) this.byAlloc.delete(k);
  }

  /** Persists a record as it is in memory (used by the garbage collector, off the mailbox). */
  persist(s: SegmentInfo): Promise<number> {
    return this.kv.putValue(segmentKey(s), s);
  }

  /** Deletes a record's key (used by the garbage collector, off the mailbox). */
  deleteKey(s: SegmentInfo): Promise<void> {
    return this.kv.delete(segmentKey(s));
  }

  /** Forgets a record in memory after the garbage collector deleted its key. */
  forget(segmentId: bigint): void {
    const s = this.byId.get(segmentId);
    if (!s) return;
    this.changed(s, undefined);
    this.byId.delete(segmentId);
    const k = allocKey(s.vchannel, s.partitionId, s.level, s.startPosition);
    if (this.byAlloc.get(k) === segmentId) this.byAlloc.delete(k);
  }
}
