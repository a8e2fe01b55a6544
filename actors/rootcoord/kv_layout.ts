/**
 * Where rootcoord keeps its state: JetStream KV buckets opened with `env.meta(<bucket>)` (so the stream
 * is `KV_<PREFIX>_<bucket>`), values encoded with protocol/codec.ts. Names in keys have passed
 * `checkName` (letters, digits, `_`), so they are single KV tokens.
 *
 * | bucket        | key                      | value                                   |
 * |---------------|--------------------------|-----------------------------------------|
 * | `databases`   | `db.<dbName>`            | `DatabaseInfo`                          |
 * | `collections` | `coll.<collectionId>`    | `StoredCollection` (partitions inside)  |
 * | `aliases`     | `<dbName>.<alias>`       | `StoredAlias` (points at a collection id) |
 * | `tso`         | `timestamp`              | `{ physicalMs }`: no timestamp was issued at or above it |
 * | `ids`         | `id`                     | `{ next }`: every id below it may have been handed out |
 */
import type { CollectionInfo } from "../../protocol/meta.ts";

export const BUCKET = {
  databases: "databases",
  collections: "collections",
  aliases: "aliases",
  tso: "tso",
  ids: "ids",
} as const;

export const DATABASE_PREFIX = "db";
export const COLLECTION_PREFIX = "coll";
export const TSO_KEY = "timestamp";
export const ID_KEY = "id";

export const databaseKey = (dbName: string): string => `${DATABASE_PREFIX}.${dbName}`;
export const collectionKey = (collectionId: bigint): string => `${COLLECTION_PREFIX}.${collectionId}`;
export const aliasKey = (dbName: string, alias: string): string => `${dbName}.${alias}`;

/**
 * A collection as stored: everything but its aliases, which live in the `aliases` bucket (one source of
 * truth) and are filled in when the collection is described.
 */
export type StoredCollection = Omit<CollectionInfo, "aliases">;

export interface StoredAlias {
  alias: string;
  dbName: string;
  /** by id, so a rename of the collection keeps its aliases */
  collectionId: bigint;
}

export interface TsoWatermark {
  physicalMs: number;
}

export interface IdWatermark {
  next: bigint;
}
