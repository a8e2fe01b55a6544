/**
 * TargetManager (Milvus's querycoordv2/meta/target_manager.go): per loaded collection a *current*
 * target, the one delegators serve, and a *next* target, the newest from datacoord, being loaded. The
 * TargetObserver promotes next to current once every replica has it loaded (the handoff). The current
 * target is stored in KV so that a restarted querycoord keeps serving what delegators serve.
 */
import type { SegmentInfo } from "../../../protocol/meta.ts";
import { sameTargetContent, withoutPartitions } from "./target.ts";
import type { CollectionTarget, PersistedTarget } from "./types.ts";
import { targetKey, targetSegmentKey } from "../kv_layout.ts";
import type { MetaWriter } from "./kv_writer.ts";
import type { KvMeta } from "../../../runtime/kv_meta.ts";
import { decode } from "../../../protocol/codec.ts";

export interface TargetPair {
  current?: CollectionTarget;
  next?: CollectionTarget;
}

export class TargetManager {
  private readonly targets = new Map<bigint, TargetPair>();
  private lastVersion = 0;

  constructor(private readonly writer: MetaWriter) {}

  /** Reads the stored current targets. */
  static async open(kv: KvMeta, writer: MetaWriter): Promise<TargetManager> {
    const tm = new TargetManager(writer);
    const entries = await kv.entries();
    const segs = new Map<string, SegmentInfo>();
    const heads: PersistedTarget[] = [];
    for (const [key, v] of entries) {
      if (key.endsWith(".target")) heads.push(decode<PersistedTarget>(v.value));
      else segs.set(key, decode<SegmentInfo>(v.value));
    }
    for (const h of heads) {
      const pick = (ids: bigint[]) =>
        new Map(ids.flatMap((id) => {
          const s = segs.get(targetSegmentKey(h.collectionId, id));
          return s ? [[id, s] as const] : [];
        }));
      tm.restore({
        collectionId: h.collectionId,
        version: h.version,
        partitionIds: h.partitionIds,
        channels: new Map(h.channels.map((c) => [c.vchannel, c])),
        segments: pick(h.segmentIds),
        l0Segments: pick(h.l0SegmentIds),
      });
    }
    return tm;
  }

  /** Installs a current target read back from KV. */
  restore(current: CollectionTarget): void {
    this.pair(current.collectionId).current = current;
    this.lastVersion = Math.max(this.lastVersion, current.version);
  }

  current(collectionId: bigint): CollectionTarget | undefined {
    return this.targets.get(collectionId)?.current;
  }

  next(collectionId: bigint): CollectionTarget | undefined {
    return this.targets.get(collectionId)?.next;
  }

  get(collectionId: bigint): TargetPair {
    return this.targets.get(collectionId) ?? {};
  }

  /** A version above every one handed out (ms since the epoch when the clock allows). */
  newVersion(): number {
    this.lastVersion = Math.max(Date.now(), this.lastVersion + 1);
    return this.lastVersion;
  }

  /**
   * Offers a fresh target from datacoord. It becomes the next target unless it holds what the current
   * target holds (then there is nothing to load: the next target goes away) or what the next target
   * already holds. Returns the next target after the call.
   */
  offerNext(candidate: Omit<CollectionTarget, "version">): CollectionTarget | undefined {
    const p = this.pair(candidate.collectionId);
    const asTarget = { ...candidate, version: 0 };
    if (p.current && sameTargetContent(p.current, asTarget)) {
      p.next = undefined;
      return undefined;
    }
    if (p.next && sameTargetContent(p.next, asTarget)) {
      // same content: the same target (what checkers derived from its segments stays good), with the
      // newer seek positions taken in place (only WatchDmChannels reads them)
      for (const [name, ch] of asTarget.channels) p.next.channels.set(name, ch);
      return p.next;
    }
    p.next = { ...asTarget, version: this.newVersion() };
    return p.next;
  }

  /** next → current (the handoff). Returns the new current target and the stores' promise. */
  promote(collectionId: bigint): { target: CollectionTarget; stored: Promise<void> } | undefined {
    const p = this.targets.get(collectionId);
    if (!p?.next) return undefined;
    const old = p.current;
    p.current = p.next;
    p.next = undefined;
    return { target: p.current, stored: this.persist(p.current, old) };
  }

  /** Drops the segments of released partitions from both targets at once (ReleasePartitions). */
  removePartitions(collectionId: bigint, partitionIds: bigint[]): Promise<void> {
    const p = this.targets.get(collectionId);
    if (!p) return Promise.resolve();
    if (p.next) p.next = withoutPartitions(p.next, partitionIds, this.newVersion());
    if (!p.current) return Promise.resolve();
    const old = p.current;
    p.current = withoutPartitions(old, partitionIds, this.newVersion());
    return this.persist(p.current, old);
  }

  /** Forgets the collection's targets (release). */
  remove(collectionId: bigint): Promise<void> {
    const p = this.targets.get(collectionId);
    this.targets.delete(collectionId);
    if (!p?.current) return this.writer.delete(targetKey(collectionId));
    const writes = [this.writer.delete(targetKey(collectionId))];
    for (const id of [...p.current.segments.keys(), ...p.current.l0Segments.keys()]) {
      writes.push(this.writer.delete(targetSegmentKey(collectionId, id)));
    }
    return Promise.all(writes).then(() => undefined);
  }

  collections(): bigint[] {
    return [...this.targets.keys()];
  }

  private pair(collectionId: bigint): TargetPair {
    let p = this.targets.get(collectionId);
    if (!p) this.targets.set(collectionId, (p = {}));
    return p;
  }

  /** Stores a new current target: its new segments first, then its head, then drops the old segments. */
  private persist(t: CollectionTarget, old: CollectionTarget | undefined): Promise<void> {
    const writes: Promise<void>[] = [];
    const had = new Set<bigint>(old ? [...old.segments.keys(), ...old.l0Segments.keys()] : []);
    const has = new Set<bigint>();
    for (const s of [...t.segments.values(), ...t.l0Segments.values()]) {
      has.add(s.segmentId);
      if (!had.has(s.segmentId)) writes.push(this.writer.put(targetSegmentKey(t.collectionId, s.segmentId), s));
    }
    const head: PersistedTarget = {
      collectionId: t.collectionId,
      version: t.version,
      partitionIds: t.partitionIds,
      channels: [...t.channels.values()],
      segmentIds: [...t.segments.keys()],
      l0SegmentIds: [...t.l0Segments.keys()],
    };
    writes.push(this.writer.put(targetKey(t.collectionId), head));
    for (const id of had) if (!has.has(id)) writes.push(this.writer.delete(targetSegmentKey(t.collectionId, id)));
    return Promise.all(writes).then(() => undefined);
  }
}
