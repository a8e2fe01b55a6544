/**
 * CreateCollection, DropCollection, DescribeCollection, HasCollection, ListCollections,
 * RenameCollection, and how a request names its collection (by name, alias or id).
 *
 * A drop is recorded first (state Dropping: the name is free and the collection is gone for clients),
 * then its event is published, then the key is deleted; a drop interrupted in between is finished at
 * the next start or retry.
 */
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import { DEFAULT_PARTITION } from "../../protocol/meta.ts";
import type { RootcoordApi } from "../../protocol/messages/rootcoord.ts";
import { checkName, CONSISTENCY_LEVELS, MAX_SHARDS, normalizeSchema } from "../../protocol/schema.ts";
import { assignVChannels } from "./channels.ts";
import type { RootcoordCore } from "./core.ts";
import {
  collectionExists,
  collectionIdNotFound,
  collectionNotFound,
  databaseNotFound,
  nameIsAlias,
} from "./errors.ts";
import type { StoredCollection } from "./kv_layout.ts";
import {
  bodyOf,
  dbNameOf,
  optionalEnum,
  optionalId,
  optionalInt,
  optionalString,
  optionalStringMap,
  requiredList,
  requiredString,
  type Body,
} from "../request_fields.ts";

/** Milvus's default `maxCollectionNum`. */
export const MAX_COLLECTIONS = 65_536;

type Res<V extends keyof RootcoordApi> = RootcoordApi[V][1];

export function requireDatabase(core: RootcoordCore, dbName: string): void {
  if (!core.meta.database(dbName)) throw databaseNotFound(dbName);
}

/**
 * The collection a request names: `collectionId`, or `collectionName` (a name or, unless `byNameOnly`,
 * an alias) in `dbName`.
 */
export function resolveCollection(
  core: RootcoordCore,
  verb: string,
  b: Body,
  opts: { byNameOnly?: boolean } = {},
): StoredCollection {
  const id = optionalId(verb, b, "collectionId");
  if (id !== undefined) {
    const c = core.meta.collectionById(id);
    if (!c) throw collectionIdNotFound(id);
    return c;
  }
  const dbName = dbNameOf(verb, b);
  const name = optionalString(verb, b, "collectionName");
  if (name === undefined) {
    throw VbError.invalid(`${verb}: field "collectionName" is missing; name the collection by collectionName (or collectionId)`);
  }
  requireDatabase(core, dbName);
  const c = core.meta.collectionByName(dbName, name);
  if (c) return c;
  const alias = core.meta.alias(dbName, name);
  const target = alias && core.meta.collectionById(alias.collectionId);
  if (target) {
    if (opts.byNameOnly) {
      throw VbError.invalid(
        `${verb}: "${name}" is an alias of collection "${target.name}" (1100): name the collection itself, or use DropAlias / AlterAlias for the alias`,
      );
    }
    return target;
  }
  throw collectionNotFound(dbName, name);
}

export async function createCollection(core: RootcoordCore, raw: unknown): Promise<Res<"CreateCollection">> {
  const verb = "CreateCollection";
  const b = bodyOf(verb, raw);
  const dbName = dbNameOf(verb, b);
  const schema = normalizeSchema(b.schema);
  const shardsNum = optionalInt(verb, b, "shardsNum", 1, MAX_SHARDS) ?? core.env.config.defaultShardsNum;
  const consistencyLevel = optionalEnum(verb, b, "consistencyLevel", CONSISTENCY_LEVELS) ?? "Bounded";
  const properties = optionalStringMap(verb, b, "properties") ?? {};
  requireDatabase(core, dbName);
  if (core.meta.collectionByName(dbName, schema.name)) throw collectionExists(dbName, schema.name);
  if (core.meta.alias(dbName, schema.name)) throw nameIsAlias(dbName, schema.name);
  if (core.meta.collectionCount >= MAX_COLLECTIONS) {
    throw new VbError(
      ErrorCode.CollectionNumLimitExceeded,
      `there are already ${MAX_COLLECTIONS} collections, the most allowed (102): drop some with DropCollection first`,
    );
  }
  const collectionId = await core.ids.alloc(2);
  const partitionId = collectionId + 1n;
  const createdTs = await core.tso.alloc(1);
  const coll: StoredCollection = {
    collectionId,
    dbName,
    name: schema.name,
    schema,
    shardsNum,
    vchannels: assignVChannels(collectionId, shardsNum, core.env.config.dmlChannelNum),
    partitions: [{ partitionId, name: DEFAULT_PARTITION, createdTs }],
    consistencyLevel,
    properties,
    createdTs,
    state: "Created",
  };
  await core.meta.addCollection(coll);
  core.log.info(
    { collection: coll.name, collectionId: String(collectionId), dbName, shardsNum, vchannels: coll.vchannels.map((v) => v.name) },
    "created collection",
  );
  const info = core.meta.describe(coll);
  await core.events.publish({ kind: "collection.created", collection: info });
  return info;
}

export async function dropCollection(core: RootcoordCore, raw: unknown): Promise<Res<"DropCollection">> {
  const verb = "DropCollection";
  const c = resolveCollection(core, verb, bodyOf(verb, raw), { byNameOnly: true });
  const aliases = core.meta.aliasesOf(c.collectionId);
  if (aliases.length > 0) {
    throw VbError.invalid(
      `collection "${c.name}" still has alias(es) ${aliases.map((a) => `"${a}"`).join(", ")} (1100): drop them with DropAlias, or move them with AlterAlias, first`,
    );
  }
  const dropping: StoredCollection = { ...c, state: "Dropping" };
  await core.meta.updateCollection(dropping);
  core.log.info({ collection: c.name, collectionId: String(c.collectionId), dbName: c.dbName }, "dropped collection");
  await finishDrop(core, dropping);
  return null;
}

/** Publishes the drop event of a collection in state Dropping, then deletes its key. Never throws. */
export async function finishDrop(core: RootcoordCore, c: StoredCollection): Promise<void> {
  const published = await core.events.publish({
    kind: "collection.dropped",
    collectionId: c.collectionId,
    dbName: c.dbName,
    name: c.name,
  });
  if (published) await removeDropped(core, c);
}

/** Deletes the keys of collections in state Dropping whose event is out (nothing waits in the outbox). */
export async function finishPendingDrops(core: RootcoordCore): Promise<void> {
  if (!(await core.events.flush())) return;
  for (const c of core.meta.dropping()) await removeDropped(core, c);
}

async function removeDropped(core: RootcoordCore, c: StoredCollection): Promise<void> {
  try {
    await core.meta.removeCollection(c.collectionId);
  } catch (err) {
    core.log.warn({ err, collection: c.name, collectionId: String(c.collectionId) }, "could not delete a dropped collection's key; will retry");
    core.retryLater();
  }
}

export function describeCollection(core: RootcoordCore, raw: unknown): Res<"DescribeCollection"> {
  const verb = "DescribeCollection";
  return core.meta.describe(resolveCollection(core, verb, bodyOf(verb, raw)));
}

export function hasCollection(core: RootcoordCore, raw: unknown): Res<"HasCollection"> {
  const verb = "HasCollection";
  try {
    resolveCollection(core, verb, bodyOf(verb, raw));
    return { has: true };
  } catch (err) {
    if (err instanceof VbError && err.code === ErrorCode.CollectionNotFound) return { has: false };
    throw err;
  }
}

export function listCollections(core: RootcoordCore, raw: unknown): Res<"ListCollections"> {
  const verb = "ListCollections";
  const dbName = dbNameOf(verb, bodyOf(verb, raw));
  requireDatabase(core, dbName);
  return { collections: core.meta.collectionsIn(dbName).map((c) => core.meta.describe(c)) };
}

export async function renameCollection(core: RootcoordCore, raw: unknown): Promise<Res<"RenameCollection">> {
  const verb = "RenameCollection";
  const b = bodyOf(verb, raw);
  const dbName = dbNameOf(verb, b);
  const oldName = requiredString(verb, b, "oldName");
  const newName = checkName("collection", requiredString(verb, b, "newName"));
  const newDbName = optionalString(verb, b, "newDbName") ?? dbName;
  requireDatabase(core, dbName);
  requireDatabase(core, newDbName);
  const c = resolveCollection(core, verb, { dbName, collectionName: oldName }, { byNameOnly: true });
  if (newDbName === dbName && newName === oldName) {
    throw VbError.invalid(`${verb}: the new name is the collection's current name "${oldName}" (1100): pass another newName or newDbName`);
  }
  if (core.meta.collectionByName(newDbName, newName)) throw collectionExists(newDbName, newName);
  if (core.meta.alias(newDbName, newName)) throw nameIsAlias(newDbName, newName);
  const aliases = core.meta.aliasesOf(c.collectionId);
  if (newDbName !== dbName && aliases.length > 0) {
    throw VbError.invalid(
      `collection "${oldName}" has alias(es) ${aliases.map((a) => `"${a}"`).join(", ")} (1100): drop them with DropAlias before moving it to database "${newDbName}"`,
    );
  }
  const next: StoredCollection = { ...c, dbName: newDbName, name: newName, schema: { ...c.schema, name: newName } };
  await core.meta.updateCollection(next);
  core.log.info(
    { collection: newName, collectionId: String(c.collectionId), oldName, dbName: newDbName, oldDbName: dbName },
    "renamed collection",
  );
  await core.events.publish({ kind: "collection.altered", collection: core.meta.describe(next) });
  return null;
}

/**
 * Collection properties Milvus gives a meaning to, and the values each takes; any other key is kept as
 * given (Milvus keeps unknown keys too).
 */
const PROPERTY_CHECKS: Record<string, { test: (v: string) => boolean; expect: string }> = {
  "collection.ttl.seconds": { test: (v) => /^\d+$/.test(v), expect: "a whole number of seconds" },
  "mmap.enabled": { test: (v) => /^(true|false)$/i.test(v), expect: "true or false" },
  "collection.autocompaction.enabled": { test: (v) => /^(true|false)$/i.test(v), expect: "true or false" },
  "collection.replica.number": { test: (v) => /^\d+$/.test(v), expect: "a whole number" },
};

export async function alterCollection(core: RootcoordCore, raw: unknown): Promise<Res<"AlterCollection">> {
  const verb = "AlterCollection";
  const b = bodyOf(verb, raw);
  const c = resolveCollection(core, verb, b);
  const set = optionalStringMap(verb, b, "properties") ?? {};
  const deleteKeys =
    b.deleteKeys === undefined || b.deleteKeys === null
      ? []
      : requiredList(verb, b, "deleteKeys", "property names").map((k, i) => {
          if (typeof k !== "string" || k === "") throw VbError.invalid(`${verb}: deleteKeys[${i}] must be a property name (a non-empty string), got ${JSON.stringify(k)}`);
          return k;
        });
  if (Object.keys(set).length === 0 && deleteKeys.length === 0) {
    throw VbError.invalid(`${verb} on collection "${c.name}": nothing to change (1100): pass properties to set or deleteKeys to remove`);
  }
  for (const [key, value] of Object.entries(set)) {
    const check = PROPERTY_CHECKS[key];
    if (check && !check.test(value)) {
      throw VbError.invalid(`${verb} on collection "${c.name}": property "${key}" takes ${check.expect}, got ${JSON.stringify(value)} (1100)`);
    }
    if (deleteKeys.includes(key)) throw VbError.invalid(`${verb} on collection "${c.name}": property "${key}" is both set and deleted (1100)`);
  }
  const properties = { ...c.properties };
  for (const k of deleteKeys) delete properties[k];
  Object.assign(properties, set);
  const next: StoredCollection = { ...c, properties };
  await core.meta.updateCollection(next);
  core.log.info({ collection: c.name, collectionId: String(c.collectionId), set, deleted: deleteKeys }, "altered collection properties");
  await core.events.publish({ kind: "collection.altered", collection: core.meta.describe(next) });
  return null;
}
