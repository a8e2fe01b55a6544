/**
 * Meta (Milvus's querycoordv2/meta: CollectionManager + ReplicaManager): the loaded collections and
 * their replicas, in memory and in KV. Changes happen in the actor's mailbox; each returns the promise
 * of its KV writes.
 */
import { decode } from "../../../protocol/codec.ts";
import type { KvMeta } from "../../../runtime/kv_meta.ts";
import { collectionKey, replicaKey } from "../kv_layout.ts";
import type { MetaWriter } from "./kv_writer.ts";
import type { CollectionLoad, Replica } from "./types.ts";

function byReplicaId(a: Replica, b: Replica): number {
  return a.replicaId < b.replicaId ? -1 : a.replicaId > b.replicaId ? 1 : 0;
}

export class Meta {
  private readonly collections = new Map<bigint, CollectionLoad>();
  private readonly replicas = new Map<bigint, Replica>();

  constructor(private readonly writers: { collections: MetaWriter; replicas: MetaWriter }) {}

  static async open(kv: { collections: KvMeta; replicas: KvMeta }, writers: { collections: MetaWriter; replicas: MetaWriter }): Promise<Meta> {
    const meta = new Meta(writers);
    for (const v of (await kv.collections.entries()).values()) {
      const c = decode<CollectionLoad>(v.value);
      meta.collections.set(c.collectionId, c);
    }
    for (const v of (await kv.replicas.entries()).values()) {
      const r = decode<Replica>(v.value);
      if (meta.collections.has(r.collectionId)) meta.replicas.set(r.replicaId, r);
    }
    return meta;
  }

  // ---- collections ----
  collection(collectionId: bigint): CollectionLoad | undefined {
    return this.collections.get(collectionId);
  }
  allCollections(): CollectionLoad[] {
    return [...this.collections.values()];
  }
  putCollection(c: CollectionLoad): Promise<void> {
    this.collections.set(c.collectionId, c);
    return this.writers.collections.put(collectionKey(c.collectionId), c);
  }
  /** Removes the collection and its replicas. */
  removeCollection(collectionId: bigint): Promise<void> {
    this.collections.delete(collectionId);
    const writes = [this.writers.collections.delete(collectionKey(collectionId))];
    for (const r of this.replicasOf(collectionId)) {
      this.replicas.delete(r.replicaId);
      writes.push(this.writers.replicas.delete(replicaKey(collectionId, r.replicaId)));
    }
    return Promise.all(writes).then(() => undefined);
  }

  // ---- replicas ----
  replica(replicaId: bigint): Replica | undefined {
    return this.replicas.get(replicaId);
  }
  allReplicas(): Replica[] {
    return [...this.replicas.values()].sort(byReplicaId);
  }
  replicasOf(collectionId: bigint): Replica[] {
    return [...this.replicas.values()].filter((r) => r.collectionId === collectionId).sort(byReplicaId);
  }
  putReplica(r: Replica): Promise<void> {
    this.replicas.set(r.replicaId, r);
    return this.writers.replicas.put(replicaKey(r.collectionId, r.replicaId), r);
  }
}
