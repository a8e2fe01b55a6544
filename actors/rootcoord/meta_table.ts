/**
 * rootcoord's meta: databases, collections (with their partitions) and aliases, in memory for reads and
 * in KV for durability (layout in kv_layout.ts). Every write goes to KV first, with compare-and-set on
 * the revision the table last saw, and changes the memory only once KV took it; a lost compare-and-set
 * (another writer changed the key) reloads the table from KV and fails the request as retriable.
 */
import { decode } from "../../protocol/codec.ts";
import type { CollectionInfo, DatabaseInfo } from "../../protocol/meta.ts";
import { isCasConflict, type KvMeta } from "../../runtime/kv_meta.ts";
import type { Logger } from "../../runtime/logger.ts";
import {
  aliasKey,
  collectionKey,
  COLLECTION_PREFIX,
  databaseKey,
  DATABASE_PREFIX,
  type StoredAlias,
  type StoredCollection,
} from "./kv_layout.ts";

interface Entry<T> {
  value: T;
  revision: number;
}

export interface MetaBuckets {
  databases: KvMeta;
  collections: KvMeta;
  aliases: KvMeta;
}

const nameKey = (dbName: string, name: string): string => `${dbName}.${name}`;
const byName = <T extends { name: string }>(a: T, b: T): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

export class MetaTable {
  private readonly databases = new Map<string, Entry<DatabaseInfo>>();
  /** every collection in KV, those being dropped included */
  private readonly collections = new Map<bigint, Entry<StoredCollection>>();
  /** `<db>.<name>` → id, for collections in state Created */
  private readonly names = new Map<string, bigint>();
  /** `<db>.<alias>` */
  private readonly aliases = new Map<string, Entry<StoredAlias>>();

  private constructor(
    private readonly kv: MetaBuckets,
    private readonly log: Logger,
  ) {}

  static async open(kv: MetaBuckets, log: Logger): Promise<MetaTable> {
    const t = new MetaTable(kv, log);
    await t.load();
    return t;
  }

  async load(): Promise<void> {
    const [dbs, colls, aliases] = await Promise.all([
      this.kv.databases.entries(DATABASE_PREFIX),
      this.kv.collections.entries(COLLECTION_PREFIX),
      this.kv.aliases.entries(),
    ]);
    this.databases.clear();
    this.collections.clear();
    this.names.clear();
    this.aliases.clear();
    for (const e of dbs.values()) {
      const v = decode<DatabaseInfo>(e.value);
      this.databases.set(v.name, { value: v, revision: e.revision });
    }
    for (const e of colls.values()) {
      const v = decode<StoredCollection>(e.value);
      this.collections.set(v.collectionId, { value: v, revision: e.revision });
      if (v.state === "Created") this.names.set(nameKey(v.dbName, v.name), v.collectionId);
    }
    for (const e of aliases.values()) {
      const v = decode<StoredAlias>(e.value);
      if (!this.collections.has(v.collectionId)) {
        this.log.warn({ alias: v.alias, dbName: v.dbName, collectionId: String(v.collectionId) }, "alias of a missing collection ignored");
        continue;
      }
      this.aliases.set(nameKey(v.dbName, v.alias), { value: v, revision: e.revision });
    }
  }

  // ---- reads ----

  database(name: string): DatabaseInfo | undefined {
    return this.databases.get(name)?.value;
  }

  listDatabases(): DatabaseInfo[] {
    return [...this.databases.values()].map((e) => e.value);
  }

  get collectionCount(): number {
    return this.names.size;
  }

  /** A live collection (not being dropped) by id. */
  collectionById(id: bigint): StoredCollection | undefined {
    const c = this.collections.get(id)?.value;
    return c?.state === "Created" ? c : undefined;
  }

  /** A live collection by its own name (not an alias). */
  collectionByName(dbName: string, name: string): StoredCollection | undefined {
    const id = this.names.get(nameKey(dbName, name));
    return id === undefined ? undefined : this.collectionById(id);
  }

  collectionsIn(dbName: string): StoredCollection[] {
    const out: StoredCollection[] = [];
    for (const { value } of this.collections.values()) {
      if (value.state === "Created" && value.dbName === dbName) out.push(value);
    }
    return out.sort(byName);
  }

  /** Collections whose drop is recorded in KV but not finished. */
  dropping(): StoredCollection[] {
    return [...this.collections.values()].map((e) => e.value).filter((c) => c.state === "Dropping");
  }

  alias(dbName: string, alias: string): StoredAlias | undefined {
    return this.aliases.get(nameKey(dbName, alias))?.value;
  }

  aliasesIn(dbName: string): StoredAlias[] {
    return [...this.aliases.values()].map((e) => e.value).filter((a) => a.dbName === dbName);
  }

  aliasesOf(collectionId: bigint): string[] {
    const out: string[] = [];
    for (const { value } of this.aliases.values()) if (value.collectionId === collectionId) out.push(value.alias);
    return out.sort();
  }

  /** The collection as clients see it: with its aliases. */
  describe(c: StoredCollection): CollectionInfo {
    return { ...c, aliases: this.aliasesOf(c.collectionId) };
  }

  // ---- writes: KV first, then memory ----

  async addDatabase(db: DatabaseInfo): Promise<void> {
    const revision = await this.cas(() => this.kv.databases.createValue(databaseKey(db.name), db));
    this.databases.set(db.name, { value: db, revision });
  }

  async removeDatabase(name: string): Promise<void> {
    const e = this.databases.get(name);
    if (!e) return;
    await this.cas(() => this.kv.databases.delete(databaseKey(name), { expectedRevision: e.revision }));
    this.databases.delete(name);
  }

  async addCollection(c: StoredCollection): Promise<void> {
    const revision = await this.cas(() => this.kv.collections.createValue(collectionKey(c.collectionId), c));
    this.collections.set(c.collectionId, { value: c, revision });
    if (c.state === "Created") this.names.set(nameKey(c.dbName, c.name), c.collectionId);
  }

  /** Replaces a collection's record (a rename, a partition change, a state change). */
  async updateCollection(next: StoredCollection): Promise<void> {
    const e = this.collections.get(next.collectionId);
    if (!e) throw new Error(`updateCollection: collection ${next.collectionId} is not in the table`);
    const revision = await this.cas(() =>
      this.kv.collections.updateValue(collectionKey(next.collectionId), next, e.revision),
    );
    const prev = e.value;
    if (prev.state === "Created") this.names.delete(nameKey(prev.dbName, prev.name));
    this.collections.set(next.collectionId, { value: next, revision });
    if (next.state === "Created") this.names.set(nameKey(next.dbName, next.name), next.collectionId);
  }

  async removeCollection(collectionId: bigint): Promise<void> {
    const e = this.collections.get(collectionId);
    if (!e) return;
    await this.cas(() => this.kv.collections.delete(collectionKey(collectionId), { expectedRevision: e.revision }));
    this.collections.delete(collectionId);
    if (e.value.state === "Created") this.names.delete(nameKey(e.value.dbName, e.value.name));
  }

  async addAlias(a: StoredAlias): Promise<void> {
    const revision = await this.cas(() => this.kv.aliases.createValue(aliasKey(a.dbName, a.alias), a));
    this.aliases.set(nameKey(a.dbName, a.alias), { value: a, revision });
  }

  async updateAlias(a: StoredAlias): Promise<void> {
    const key = nameKey(a.dbName, a.alias);
    const e = this.aliases.get(key);
    if (!e) throw new Error(`updateAlias: alias ${key} is not in the table`);
    const revision = await this.cas(() => this.kv.aliases.updateValue(aliasKey(a.dbName, a.alias), a, e.revision));
    this.aliases.set(key, { value: a, revision });
  }

  async removeAlias(dbName: string, alias: string): Promise<void> {
    const key = nameKey(dbName, alias);
    const e = this.aliases.get(key);
    if (!e) return;
    await this.cas(() => this.kv.aliases.delete(aliasKey(dbName, alias), { expectedRevision: e.revision }));
    this.aliases.delete(key);
  }

  /** Runs a KV write; a lost compare-and-set means the memory is stale: reload it, then fail (retriable). */
  private async cas<T>(write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (err) {
      if (isCasConflict(err)) {
        this.log.warn({ err }, "meta changed in KV under rootcoord (another writer?); reloading it");
        await this.load();
      }
      throw err;
    }
  }
}
