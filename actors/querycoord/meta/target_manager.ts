/**
 * TargetManager (Milvus's querycoordv2/meta/target_manager.go): per loaded collection a *current*
 * target, the one delegators serve, and a *next* target, the newest from datacoord, being loaded. The
 * TargetObserver promotes next to current once every replica has it loaded (the handoff). The current
 * target is stored in KV so that a restarted querycoord keeps serving what delegators serve.
 */
import type { SegmentInfo, SegmentLoadInfo } from "../../../protocol/meta.ts";
import { sameTargetContent, targetSegment, withoutPartitions } from "./target.ts";
import type { ChannelTarget, CollectionTarget, PersistedTarget, PersistedTargetPage } from "./types.ts";
import { collectionPrefix, targetKey, targetPageKey, targetSegmentKey } from "../kv_layout.ts";
import { Encoded, type MetaWriter } from "./kv_writer.ts";
import type { KvMeta } from "../../../runtime/kv_meta.ts";
import { decode, encode } from "../../../protocol/codec.ts";

export interface TargetPair {
  current?: CollectionTarget;
  next?: CollectionTarget;
}

/** Bytes a page of a stored target aims at, and the most it may take (KV values stay well under the server's payload limit). */
const PAGE_BYTES = 256 * 1024;
const MAX_PAGE_BYTES = 768 * 1024;

/** What is stored of a collection's current target: its pages, and keys to drop on the next store. */
interface StoredPages {
  count: number;
  versions: number[];
  /** keys of the older layout, or pages no head refers to (a store cut short): dropped once a new head is in */
  stale: string[];
}

/** How many pages the target's segments take at about PAGE_BYTES each (from the size of a few of them). */
function pagesFor(t: CollectionTarget): number {
  const n = t.segments.size + t.l0Segments.size;
  if (n === 0) return 1;
  const sample: SegmentLoadInfo[] = [];
  for (const s of t.segments.values()) if (sample.push(s) >= 32) break;
  for (const s of t.l0Segments.values()) if (sample.length >= 32 || sample.push(s) >= 32) break;
  const per = encode(sample).byteLength / sample.length;
  return Math.max(1, Math.ceil((n * per) / PAGE_BYTES));
}

const pageOf = (segmentId: bigint, count: number): number => Number(segmentId % BigInt(count));

export class TargetManager {
  private readonly targets = new Map<bigint, TargetPair>();
  private lastVersion = 0;
  private readonly stored = new Map<bigint, StoredPages>();

  constructor(private readonly writer: MetaWriter) {}

  /** Reads the stored current targets. */
  static async open(kv: KvMeta, writer: MetaWriter): Promise<TargetManager> {
    const tm = new TargetManager(writer);
    const entries = await kv.entries();
    const heads: PersistedTarget[] = [];
    for (const [key, v] of entries) if (key.endsWith(".target")) heads.push(decode<PersistedTarget>(v.value));
    for (const h of heads) {
      const segments = new Map<bigint, SegmentLoadInfo>();
      const l0Segments = new Map<bigint, SegmentLoadInfo>();
      const used = new Set<string>([targetKey(h.collectionId)]);
      if (h.pages) {
        for (let i = 0; i < h.pages.count; i++) {
          const key = targetPageKey(h.collectionId, h.pages.versions[i]!, i);
          used.add(key);
          const v = entries.get(key);
          if (!v) continue;
          const page = decode<PersistedTargetPage>(v.value);
          for (const s of page.segments) segments.set(s.segmentId, targetSegment(s));
          for (const s of page.l0Segments) l0Segments.set(s.segmentId, targetSegment(s));
        }
      } else {
        const pick = (ids: bigint[], into: Map<bigint, SegmentLoadInfo>) => {
          for (const id of ids) {
            const v = entries.get(targetSegmentKey(h.collectionId, id));
            if (v) into.set(id, targetSegment(decode<SegmentInfo>(v.value)));
          }
        };
        pick(h.segmentIds ?? [], segments);
        pick(h.l0SegmentIds ?? [], l0Segments);
      }
      const prefix = `${collectionPrefix(h.collectionId)}.`;
      const stale = [...entries.keys()].filter((k) => k.startsWith(prefix) && !used.has(k) && /^\d+\.(seg|page)\./.test(k));
      tm.stored.set(h.collectionId, { count: h.pages?.count ?? 0, versions: h.pages?.versions ?? [], stale });
      tm.restore({
        collectionId: h.collectionId,
        version: h.version,
        partitionIds: h.partitionIds,
        channels: new Map(h.channels.map((c) => [c.vchannel, c])),
        segments,
        l0Segments,
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

  /**
   * Newer seek positions of the next target's channels (datacoord said its segments did not change): taken
   * in place, as `offerNext` does for a candidate of the same content.
   */
  takeSeekPositions(collectionId: bigint, channels: readonly ChannelTarget[]): void {
    const next = this.targets.get(collectionId)?.next;
    if (!next) return;
    for (const c of channels) if (next.channels.has(c.vchannel)) next.channels.set(c.vchannel, { ...c });
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
    this.targets.delete(collectionId);
    const st = this.stored.get(collectionId);
    this.stored.delete(collectionId);
    // the pages before the head: a head is what open() finds its pages from
    const writes: Promise<void>[] = [];
    if (st) {
      for (let i = 0; i < st.count; i++) writes.push(this.writer.delete(targetPageKey(collectionId, st.versions[i]!, i)));
      for (const key of st.stale) writes.push(this.writer.delete(key));
    }
    writes.push(this.writer.delete(targetKey(collectionId)));
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

  /**
   * Stores a new current target: the pages whose segments changed since `old` (all of them when there
   * is no old one or the page count no longer fits the size) under keys of the new version, then its
   * head, then drops the pages it replaced. A handoff of a few segments rewrites a few pages, not the
   * collection; a million segments are a few thousand values, not a million.
   */
  private persist(t: CollectionTarget, old: CollectionTarget | undefined): Promise<void> {
    const prev = this.stored.get(t.collectionId);
    const want = pagesFor(t);
    let count = prev && old && prev.count > 0 && prev.count <= 2 * want && 2 * prev.count >= want ? prev.count : want;
    let dirty: Set<number> | undefined; // undefined: every page
    if (prev && old && count === prev.count) {
      dirty = new Set();
      const mark = (a: CollectionTarget, b: CollectionTarget) => {
        for (const id of a.segments.keys()) if (!b.segments.has(id)) dirty!.add(pageOf(id, count));
        for (const id of a.l0Segments.keys()) if (!b.l0Segments.has(id)) dirty!.add(pageOf(id, count));
      };
      mark(t, old);
      mark(old, t);
    }
    let pages: Map<number, PersistedTargetPage>;
    // each page's bytes, encoded once: to check its size, then stored as they are
    let encoded: Map<number, Uint8Array>;
    for (;;) {
      pages = new Map();
      const add = (s: SegmentLoadInfo, l0: boolean) => {
        const i = pageOf(s.segmentId, count);
        if (dirty && !dirty.has(i)) return;
        let page = pages.get(i);
        if (!page) pages.set(i, (page = { segments: [], l0Segments: [] }));
        (l0 ? page.l0Segments : page.segments).push(s);
      };
      for (const s of t.segments.values()) add(s, false);
      for (const s of t.l0Segments.values()) add(s, true);
      for (const i of dirty ?? Array.from({ length: count }, (_, k) => k)) if (!pages.has(i)) pages.set(i, { segments: [], l0Segments: [] });
      // a page past the limit (segments larger than the sample said): twice the pages, all written anew
      encoded = new Map();
      let over = false;
      for (const [i, p] of pages) {
        const bytes = encode(p);
        encoded.set(i, bytes);
        if (p.segments.length + p.l0Segments.length > 1 && bytes.byteLength > MAX_PAGE_BYTES) {
          over = true;
          break;
        }
      }
      if (!over) break;
      count *= 2;
      dirty = undefined;
    }
    const versions = dirty ? [...prev!.versions] : Array.from({ length: count }, () => t.version);
    for (const i of pages.keys()) versions[i] = t.version;
    const writes: Promise<void>[] = [];
    const written = new Set<string>();
    for (const [i, page] of pages) {
      const key = targetPageKey(t.collectionId, t.version, i);
      written.add(key);
      writes.push(this.writer.put(key, new Encoded(encoded.get(i) ?? encode(page))));
    }
    const head: PersistedTarget = {
      collectionId: t.collectionId,
      version: t.version,
      partitionIds: t.partitionIds,
      channels: [...t.channels.values()],
      pages: { count, versions },
    };
    writes.push(this.writer.put(targetKey(t.collectionId), head));
    const drop = [...(prev?.stale ?? [])];
    if (prev) for (let i = 0; i < prev.count; i++) if (prev.versions[i] !== versions[i] || i >= count) drop.push(targetPageKey(t.collectionId, prev.versions[i]!, i));
    for (const key of drop) if (!written.has(key)) writes.push(this.writer.delete(key));
    this.stored.set(t.collectionId, { count, versions, stale: [] });
    return Promise.all(writes).then(() => undefined);
  }
}
