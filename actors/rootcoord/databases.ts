/** CreateDatabase, DropDatabase, ListDatabases; the `default` database exists from the first start. */
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import { DEFAULT_DB, type DatabaseInfo } from "../../protocol/meta.ts";
import type { RootcoordApi } from "../../protocol/messages/rootcoord.ts";
import { checkName } from "../../protocol/schema.ts";
import type { RootcoordCore } from "./core.ts";
import { databaseNotFound } from "./errors.ts";
import { bodyOf, requiredString } from "../request_fields.ts";

/** Milvus's default `maxDatabaseNum`. */
export const MAX_DATABASES = 64;

type Res<V extends keyof RootcoordApi> = RootcoordApi[V][1];

async function newDatabase(core: RootcoordCore, name: string): Promise<DatabaseInfo> {
  const dbId = await core.ids.alloc(1);
  const createdTs = await core.tso.alloc(1);
  const db: DatabaseInfo = { name, dbId, createdTs };
  await core.meta.addDatabase(db);
  core.log.info({ dbName: name, dbId: String(dbId) }, "created database");
  return db;
}

export async function ensureDefaultDatabase(core: RootcoordCore): Promise<void> {
  if (!core.meta.database(DEFAULT_DB)) await newDatabase(core, DEFAULT_DB);
}

export async function createDatabase(core: RootcoordCore, raw: unknown): Promise<Res<"CreateDatabase">> {
  const verb = "CreateDatabase";
  const name = checkName("database", requiredString(verb, bodyOf(verb, raw), "dbName"));
  if (core.meta.database(name)) {
    throw VbError.invalid(`database "${name}" already exists (1100): choose another name`);
  }
  if (core.meta.listDatabases().length >= MAX_DATABASES) {
    throw new VbError(
      ErrorCode.DatabaseNumLimitExceeded,
      `there are already ${MAX_DATABASES} databases, the most allowed (801): drop one with DropDatabase first`,
    );
  }
  return newDatabase(core, name);
}

export async function dropDatabase(core: RootcoordCore, raw: unknown): Promise<Res<"DropDatabase">> {
  const verb = "DropDatabase";
  const name = requiredString(verb, bodyOf(verb, raw), "dbName");
  if (name === DEFAULT_DB) throw VbError.invalid(`the "${DEFAULT_DB}" database cannot be dropped (1100)`);
  if (!core.meta.database(name)) throw databaseNotFound(name);
  const colls = core.meta.collectionsIn(name);
  if (colls.length > 0) {
    const some = colls.slice(0, 5).map((c) => `"${c.name}"`).join(", ");
    throw VbError.invalid(
      `database "${name}" still has ${colls.length} collection(s) (${some}${colls.length > 5 ? ", ..." : ""}) (1100): drop them with DropCollection first`,
    );
  }
  await core.meta.removeDatabase(name);
  core.log.info({ dbName: name }, "dropped database");
  await core.events.publish({ kind: "database.dropped", dbName: name });
  return null;
}

export function listDatabases(core: RootcoordCore, raw: unknown): Res<"ListDatabases"> {
  bodyOf("ListDatabases", raw);
  const names = core.meta
    .listDatabases()
    .map((d) => d.name)
    .filter((n) => n !== DEFAULT_DB)
    .sort();
  return { databases: [DEFAULT_DB, ...names] };
}
