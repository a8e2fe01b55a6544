/**
 * The collections datacoord serves, as rootcoord describes them (learned at start from
 * ListDatabases + ListCollections, then from the events stream), and the ones dropped since it started.
 */
import type { CollectionInfo, VChannelInfo } from "../../protocol/meta.ts";
import type { CollectionSchema } from "../../protocol/schema.ts";

export interface KnownCollection {
  collectionId: bigint;
  dbName: string;
  name: string;
  vchannels: VChannelInfo[];
  partitionIds: bigint[];
  /** what index builds read a segment's vectors with */
  schema: CollectionSchema;
}

export class Collections {
  private readonly map = new Map<bigint, KnownCollection>();
  private readonly dropped = new Set<bigint>();

  get(collectionId: bigint): KnownCollection | undefined {
    return this.map.get(collectionId);
  }

  has(collectionId: bigint): boolean {
    return this.map.has(collectionId);
  }

  wasDropped(collectionId: bigint): boolean {
    return this.dropped.has(collectionId);
  }

  /** Adds (or refreshes) a collection; returns false for one dropped since datacoord started. */
  add(info: CollectionInfo): boolean {
    if (this.dropped.has(info.collectionId)) return false;
    this.map.set(info.collectionId, {
      collectionId: info.collectionId,
      dbName: info.dbName,
      name: info.name,
      vchannels: info.vchannels,
      partitionIds: info.partitions.map((p) => p.partitionId),
      schema: info.schema,
    });
    return true;
  }

  drop(collectionId: bigint): void {
    this.map.delete(collectionId);
    this.dropped.add(collectionId);
  }

  all(): IterableIterator<KnownCollection> {
    return this.map.values();
  }

  /** The collection a vchannel belongs to (`<collectionId>v<shard>`). */
  ofVchannel(vchannel: string): KnownCollection | undefined {
    for (const c of this.map.values()) if (c.vchannels.some((v) => v.name === vchannel)) return c;
    return undefined;
  }
}
