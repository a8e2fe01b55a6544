/**
 * The proxy's collection cache (Milvus's globalMetaCache): collection infos by name and by id, filled
 * from rootcoord on a miss and invalidated by DDL events (and at once by the proxy's own DDL calls).
 */
import type { CollectionInfo } from "../../protocol/meta.ts";
import { DEFAULT_DB } from "../../protocol/meta.ts";

export class MetaCache {
  private readonly byName = new Map<string, CollectionInfo>();
  private readonly byId = new Map<bigint, CollectionInfo>();
  /** names (and aliases) that resolved to each collection id, to invalidate them together */
  private readonly namesOf = new Map<bigint, Set<string>>();

  private static key(dbName: string | undefined, name: string): string {
    return `${dbName ?? DEFAULT_DB}/${name}`;
  }

  get(dbName: string | undefined, name: string): CollectionInfo | undefined {
    return this.byName.get(MetaCache.key(dbName, name));
  }

  getById(id: bigint): CollectionInfo | undefined {
    return this.byId.get(id);
  }

  /** Remembers `info` under the name (or alias) it was asked by. */
  put(askedDb: string | undefined, askedName: string, info: CollectionInfo): void {
    const key = MetaCache.key(askedDb, askedName);
    this.byName.set(key, info);
    this.byId.set(info.collectionId, info);
    let names = this.namesOf.get(info.collectionId);
    if (!names) this.namesOf.set(info.collectionId, (names = new Set()));
    names.add(key);
  }

  invalidate(collectionId: bigint): void {
    for (const key of this.namesOf.get(collectionId) ?? []) this.byName.delete(key);
    this.namesOf.delete(collectionId);
    this.byId.delete(collectionId);
  }

  /** Aliases and renames move names between collections: forget every entry of a database. */
  invalidateName(dbName: string | undefined, name: string): void {
    const info = this.byName.get(MetaCache.key(dbName, name));
    if (info) this.invalidate(info.collectionId);
    this.byName.delete(MetaCache.key(dbName, name));
  }

  clear(): void {
    this.byName.clear();
    this.byId.clear();
    this.namesOf.clear();
  }
}
