/**
 * Garbage collection of a dropped collection's data: its segment records are persisted Dropped, every
 * object under `insert_log/<coll>/`, `delta_log/<coll>/` and `stats_log/<coll>/` is deleted, then the
 * records are removed. Runs off the mailbox; it is idempotent, so a datacoord that restarts in the middle
 * runs it again for the segments it finds Dropped. A second sweep a little later removes objects that a
 * datanode was still writing when the collection was dropped.
 */
import type { SegmentInfo } from "../../protocol/meta.ts";
import type { ObjectStore } from "../../runtime/object_store.ts";
import { collectionPrefixes } from "../storage/layout.ts";

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
  for (const prefix of collectionPrefixes(collectionId)) removed += await store.deletePrefix(prefix);
  return removed;
}
