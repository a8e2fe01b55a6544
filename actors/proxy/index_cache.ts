/**
 * The proxy's cache of each collection's indexes (what a search needs: the anns field's index, its
 * metric and type), filled from datacoord's GetIndexInfos on a miss, dropped on `index.created`,
 * `index.dropped` and `collection.dropped` events, at once after the proxy's own CreateIndex/DropIndex,
 * and after `ttlMs` in case an event was lost.
 *
 * Fetches run off the mailbox; their answers are put in the mailbox, and only if nothing invalidated the
 * collection since the fetch started (its generation is unchanged), so a stale answer never outlives the
 * event that made it stale.
 */
import type { IndexInfo } from "../../protocol/messages/indexes.ts";

export const INDEX_CACHE_TTL_MS = 30_000;

export class IndexCache {
  private readonly entries = new Map<bigint, { indexes: IndexInfo[]; at: number }>();
  private readonly generations = new Map<bigint, number>();
  /** bumped by `clear`: fetches started before it are stale for every collection */
  private epoch = 0;

  constructor(private readonly ttlMs = INDEX_CACHE_TTL_MS) {}

  get(collectionId: bigint, now = Date.now()): IndexInfo[] | undefined {
    const e = this.entries.get(collectionId);
    return e && now - e.at < this.ttlMs ? e.indexes : undefined;
  }

  /** What a fetch notes before it starts, to hand back to `put`. */
  generation(collectionId: bigint): string {
    return `${this.epoch}:${this.generations.get(collectionId) ?? 0}`;
  }

  /** Keeps a fetched answer unless the collection was invalidated since `generation`. */
  put(collectionId: bigint, indexes: IndexInfo[], generation: string, now = Date.now()): void {
    if (this.generation(collectionId) !== generation) return;
    this.entries.set(collectionId, { indexes, at: now });
  }

  invalidate(collectionId: bigint): void {
    this.entries.delete(collectionId);
    this.generations.set(collectionId, (this.generations.get(collectionId) ?? 0) + 1);
  }

  clear(): void {
    this.entries.clear();
    this.generations.clear();
    this.epoch++;
  }
}
