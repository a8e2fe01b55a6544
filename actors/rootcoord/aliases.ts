/**
 * CreateAlias, DropAlias, AlterAlias, DescribeAlias, ListAliases. An alias names one collection of its
 * database and shares the namespace of collection names. Each change is announced as
 * `collection.altered` of the collections concerned (their `aliases` changed).
 */
import { VbError } from "../../protocol/errors.ts";
import type { RootcoordApi } from "../../protocol/messages/rootcoord.ts";
import { checkName } from "../../protocol/schema.ts";
import { requireDatabase, resolveCollection } from "./collections.ts";
import type { RootcoordCore } from "./core.ts";
import { aliasExists, aliasIsCollectionName, aliasNotFound, collectionNotFound } from "./errors.ts";
import type { StoredAlias, StoredCollection } from "./kv_layout.ts";
import { bodyOf, dbNameOf, optionalString, requiredString } from "../request_fields.ts";

type Res<V extends keyof RootcoordApi> = RootcoordApi[V][1];

/** The collection an alias is to point at: a collection's own name, not another alias. */
function aliasTarget(core: RootcoordCore, verb: string, dbName: string, collectionName: string): StoredCollection {
  const c = core.meta.collectionByName(dbName, collectionName);
  if (c) return c;
  if (core.meta.alias(dbName, collectionName)) {
    throw VbError.invalid(`${verb}: "${collectionName}" is an alias (1100): an alias must point at a collection's own name`);
  }
  throw collectionNotFound(dbName, collectionName);
}

function existingAlias(core: RootcoordCore, dbName: string, alias: string): StoredAlias {
  const a = core.meta.alias(dbName, alias);
  if (!a) throw aliasNotFound(dbName, alias);
  return a;
}

async function announce(core: RootcoordCore, collectionId: bigint): Promise<void> {
  const c = core.meta.collectionById(collectionId);
  if (c) await core.events.publish({ kind: "collection.altered", collection: core.meta.describe(c) });
}

export async function createAlias(core: RootcoordCore, raw: unknown): Promise<Res<"CreateAlias">> {
  const verb = "CreateAlias";
  const b = bodyOf(verb, raw);
  const dbName = dbNameOf(verb, b);
  const alias = checkName("alias", requiredString(verb, b, "alias"));
  const collectionName = requiredString(verb, b, "collectionName");
  requireDatabase(core, dbName);
  if (core.meta.collectionByName(dbName, alias)) throw aliasIsCollectionName(dbName, alias);
  const existing = core.meta.alias(dbName, alias);
  if (existing) {
    throw aliasExists(dbName, alias, core.meta.collectionById(existing.collectionId)?.name ?? String(existing.collectionId));
  }
  const c = aliasTarget(core, verb, dbName, collectionName);
  await core.meta.addAlias({ alias, dbName, collectionId: c.collectionId });
  core.log.info({ collection: c.name, collectionId: String(c.collectionId), alias, dbName }, "created alias");
  await announce(core, c.collectionId);
  return null;
}

export async function dropAlias(core: RootcoordCore, raw: unknown): Promise<Res<"DropAlias">> {
  const verb = "DropAlias";
  const b = bodyOf(verb, raw);
  const dbName = dbNameOf(verb, b);
  const alias = requiredString(verb, b, "alias");
  requireDatabase(core, dbName);
  const a = existingAlias(core, dbName, alias);
  await core.meta.removeAlias(dbName, alias);
  core.log.info({ collectionId: String(a.collectionId), alias, dbName }, "dropped alias");
  await announce(core, a.collectionId);
  return null;
}

export async function alterAlias(core: RootcoordCore, raw: unknown): Promise<Res<"AlterAlias">> {
  const verb = "AlterAlias";
  const b = bodyOf(verb, raw);
  const dbName = dbNameOf(verb, b);
  const alias = requiredString(verb, b, "alias");
  const collectionName = requiredString(verb, b, "collectionName");
  requireDatabase(core, dbName);
  const a = existingAlias(core, dbName, alias);
  const c = aliasTarget(core, verb, dbName, collectionName);
  if (a.collectionId === c.collectionId) return null;
  await core.meta.updateAlias({ ...a, collectionId: c.collectionId });
  core.log.info({ collection: c.name, collectionId: String(c.collectionId), from: String(a.collectionId), alias, dbName }, "altered alias");
  await announce(core, a.collectionId);
  await announce(core, c.collectionId);
  return null;
}

export function describeAlias(core: RootcoordCore, raw: unknown): Res<"DescribeAlias"> {
  const verb = "DescribeAlias";
  const b = bodyOf(verb, raw);
  const dbName = dbNameOf(verb, b);
  const alias = requiredString(verb, b, "alias");
  requireDatabase(core, dbName);
  const a = existingAlias(core, dbName, alias);
  const c = core.meta.collectionById(a.collectionId);
  if (!c) throw aliasNotFound(dbName, alias);
  return { alias, collectionName: c.name, dbName };
}

export function listAliases(core: RootcoordCore, raw: unknown): Res<"ListAliases"> {
  const verb = "ListAliases";
  const b = bodyOf(verb, raw);
  const dbName = dbNameOf(verb, b);
  requireDatabase(core, dbName);
  const collectionName = optionalString(verb, b, "collectionName");
  if (collectionName !== undefined) {
    const c = resolveCollection(core, verb, { dbName, collectionName });
    return { aliases: core.meta.aliasesOf(c.collectionId) };
  }
  return { aliases: core.meta.aliasesIn(dbName).map((a) => a.alias).sort() };
}
