/**
 * Garbage collection of a dropped collection's data: its segment records are persisted Dropped, every
 * object under `insert_log/<coll>/`, `delta_log/<coll>/`, `stats_log/<coll>/` and `index_files/<coll>/`
 * is deleted, then the records are removed. Runs off the mailbox; it is idempotent, so a datacoord that
 * restarts in the middle runs it again for the segments it finds Dropped. A second sweep a little later removes objects that a
 * datanode was still writing when the collection was dropped. Index artifacts and build records go the
 * same way when their index is dropped or their segment is gone (`collectIndexGarbage`).
 */
import type { SegmentInfo } from "../../protocol/meta.ts";
import { listAll, type ObjectStore } from "../../runtime/object_store.ts";
import { collectionPrefixes } from "../storage/layout.ts";
import { collectionIndexPrefix, indexIdOfKey, segmentIndexPrefix, type BuildRecord } from "./index_meta.ts";

export interface GcTarget {
  collectionId: bigint;
  /** records already marked Dropped in memory */
  segments: SegmentInfo[];
}

export interface GcStore {
  persist(s: SegmentInfo): Promise<unknown>;
  deleteKey(s: SegmentInfo): Promise<void>;
}

/** Deletes the collection's objects and its segment records; returns how many objects were removed. */
export async function collectGarbage(store: ObjectStore, meta: GcStore, target: GcTarget): Promise<number> {
  for (const s of target.segments) await meta.persist(s);
  const removed = await deleteObjects(store, target.collectionId);
  for (const s of target.segments) await meta.deleteKey(s);
  return removed;
}

export async function deleteObjects(store: ObjectStore, collectionId: bigint): Promise<number> {
  let removed = 0;
  for (const prefix of [...collectionPrefixes(collectionId), collectionIndexPrefix(collectionId)]) removed += await store.deletePrefix(prefix);
  return removed;
}

export interface IndexGcTarget {
  /** build records whose index or segment is gone */
  builds: BuildRecord[];
  /** indexes dropped: their artifacts are swept from the collection's prefix even without a record */
  dropped: { collectionId: bigint; indexId: bigint }[];
}

/**
 * Deletes index artifacts and build records (off the mailbox; idempotent, so a datacoord that restarts
 * in the middle finds the records again and runs it again). Returns how many objects were removed.
 */
export async function collectIndexGarbage(
  store: ObjectStore,
  meta: { deleteBuildKey(b: BuildRecord): Promise<void> },
  target: IndexGcTarget,
): Promise<number> {
  let removed = 0;
  for (const b of target.builds) removed += await store.deletePrefix(segmentIndexPrefix(b));
  const byCollection = new Map<bigint, Set<bigint>>();
  for (const d of target.dropped) byCollection.set(d.collectionId, (byCollection.get(d.collectionId) ?? new Set()).add(d.indexId));
  for (const [collectionId, indexIds] of byCollection) {
    const stray = (await listAll(store, collectionIndexPrefix(collectionId))).filter((e) => indexIds.has(indexIdOfKey(e.key) ?? -1n));
    for (const e of stray) await store.delete(e.key);
    removed += stray.length;
  }
  for (const b of target.builds) await meta.deleteBuildKey(b);
  return removed;
}
