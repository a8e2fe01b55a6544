/**
 * The sealed part of a delegator's distribution, versioned (Milvus's `distribution` with
 * PinReadableSegments). A read pins the current version and uses it to the end: the sealed entries it
 * fans out to, and which growing rows they cover (a growing row of partition P at position p is left to
 * the sealed copy when the version holds an entry of P with start ≤ p ≤ end). A new version becomes
 * current only once its new entries are loaded and have every delete they need, so a read sees each row
 * exactly once whichever version it pinned.
 *
 * Entries being added by a SyncDistribution in progress are `pending`: deletes consumed meanwhile are
 * forwarded to them too. Entries whose node failed to take a forwarded delete are `offline`: a read of a
 * version holding one fails (retriable) until a SyncDistribution lists the entry again, which forwards
 * its deletes anew.
 */
import { randomBytes } from "node:crypto";
import { ALL_PARTITIONS } from "../../protocol/dml.ts";
import type { SealedEntry, ViewDelta } from "../../protocol/messages/querynode.ts";

export function entryKey(e: { segmentId: bigint; nodeId: string }): string {
  return `${e.segmentId}@${e.nodeId}`;
}

interface Range {
  start: bigint;
  end: bigint;
}

export class Version {
  /** per partition, the position ranges its sealed entries cover, sorted by start */
  private readonly ranges = new Map<bigint, Range[]>();

  constructor(
    readonly id: number,
    readonly targetVersion: number,
    readonly sealed: readonly SealedEntry[],
  ) {
    for (const e of sealed) {
      let list = this.ranges.get(e.partitionId);
      if (!list) this.ranges.set(e.partitionId, (list = []));
      list.push({ start: e.startPosition, end: e.endPosition });
    }
    for (const list of this.ranges.values()) list.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  }

  /** Whether a sealed entry of `partitionId` covers `position` (its row is answered by the sealed copy). */
  covers(partitionId: bigint, position: bigint): boolean {
    const list = this.ranges.get(partitionId);
    if (!list) return false;
    // ranges may overlap (a segment and its compacted successor); scan those starting at or before p
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (list[mid]!.start <= position) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo - 1; i >= 0; i--) if (list[i]!.end >= position) return true;
    return false;
  }
}

export class Distribution {
  private cur: Version;
  private nextId = 1;
  /** versions pinned by reads in flight: id → (version, pins) */
  private readonly pinned = new Map<number, { v: Version; n: number }>();
  private pendingEntries: SealedEntry[] = [];
  private readonly offlineKeys = new Set<string>();
  /** names this distribution's versions apart from those of an earlier delegator of the channel */
  private readonly incarnation = randomBytes(6).toString("hex");

  constructor() {
    this.cur = new Version(0, 0, []);
  }

  get current(): Version {
    return this.cur;
  }

  get pending(): readonly SealedEntry[] {
    return this.pendingEntries;
  }

  pin(): Version {
    const v = this.cur;
    const p = this.pinned.get(v.id);
    if (p) p.n++;
    else this.pinned.set(v.id, { v, n: 1 });
    return v;
  }

  unpin(id: number): void {
    const p = this.pinned.get(id);
    if (!p) return;
    if (--p.n <= 0) this.pinned.delete(id);
  }

  /** The versions a read may still use: the current one and every pinned one. */
  liveVersions(): Version[] {
    const out = [this.cur];
    for (const { v } of this.pinned.values()) if (v !== this.cur) out.push(v);
    return out;
  }

  get pinnedCount(): number {
    let n = 0;
    for (const p of this.pinned.values()) n += p.n;
    return n;
  }

  /** The current version's name, as a SyncDistribution's reply gives it and a delta names its base. */
  get viewName(): string {
    return `${this.incarnation}.${this.cur.id}`;
  }

  /**
   * The sealed list a delta makes of the current version (removed entries gone, set entries put in place
   * or added), or why it does not apply: its base is another view, or it removes what the view lacks.
   * A segment moved to another node (removed on one, set on the other) keeps its place, as querycoord
   * keeps it in the view it sends: the delegator's report then lists the ids in querycoord's order.
   */
  applyDelta(delta: ViewDelta): { sealed: SealedEntry[] } | { refused: string } {
    if (delta.base !== this.viewName) return { refused: `it is against view ${delta.base}, but the view is ${this.viewName}` };
    const gone = new Set(delta.remove.map(entryKey));
    const coming = new Map(delta.set.map((e) => [entryKey(e), e]));
    const movedHere = new Map<bigint, SealedEntry>();
    for (const e of delta.set) if (!movedHere.has(e.segmentId)) movedHere.set(e.segmentId, e);
    const sealed: SealedEntry[] = [];
    for (const e of this.cur.sealed) {
      const k = entryKey(e);
      if (gone.delete(k)) {
        const moved = movedHere.get(e.segmentId);
        if (moved && coming.delete(entryKey(moved))) {
          movedHere.delete(e.segmentId);
          sealed.push(moved);
        }
        continue;
      }
      const replaced = coming.get(k);
      if (replaced) coming.delete(k);
      sealed.push(replaced ?? e);
    }
    if (gone.size > 0) return { refused: `it removes ${[...gone].slice(0, 3).join(", ")}, which view ${this.viewName} does not hold` };
    for (const e of coming.values()) sealed.push(e);
    return { sealed };
  }

  /** Makes a new version current. Entries it lists are no longer pending nor offline. */
  publish(targetVersion: number, sealed: readonly SealedEntry[]): Version {
    this.cur = new Version(this.nextId++, targetVersion, sealed.slice());
    for (const e of sealed) this.offlineKeys.delete(entryKey(e));
    this.pendingEntries = [];
    return this.cur;
  }

  setPending(entries: readonly SealedEntry[]): void {
    this.pendingEntries = entries.slice();
  }

  clearPending(): void {
    this.pendingEntries = [];
  }

  markOffline(entries: readonly SealedEntry[]): void {
    for (const e of entries) this.offlineKeys.add(entryKey(e));
  }

  isOffline(e: SealedEntry): boolean {
    return this.offlineKeys.has(entryKey(e));
  }

  /** The offline entries of a version. */
  offlineIn(v: Version): SealedEntry[] {
    if (this.offlineKeys.size === 0) return [];
    return v.sealed.filter((e) => this.offlineKeys.has(entryKey(e)));
  }

  /**
   * Where a delete of `partitionId` (-1: every partition) consumed now must go: the matching entries of
   * the current version and of a SyncDistribution in progress.
   */
  forwardTargets(partitionId: bigint): SealedEntry[] {
    const out: SealedEntry[] = [];
    const seen = new Set<string>();
    for (const list of [this.cur.sealed, this.pendingEntries]) {
      for (const e of list) {
        if (partitionId !== ALL_PARTITIONS && e.partitionId !== partitionId) continue;
        const k = entryKey(e);
        if (seen.has(k)) continue;
        seen.add(k);
        out.push(e);
      }
    }
    return out;
  }
}
