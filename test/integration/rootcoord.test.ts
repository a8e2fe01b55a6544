import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createClusterEnv, type ClusterEnv } from "../../actors/env.ts";
import { followEvents, type VbEvent } from "../../actors/events.ts";
import { ROOTCOORD_BUCKETS, spawnRootcoord } from "../../actors/rootcoord/index.ts";
import { MAX_LOGICAL } from "../../actors/rootcoord/tso.ts";
import { decode, encode } from "../../protocol/codec.ts";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import { parseTs } from "../../protocol/ids.ts";
import { messageType } from "../../protocol/messages/api.ts";
import { ROOTCOORD, type RootcoordApi } from "../../protocol/messages/rootcoord.ts";
import type { CollectionInfo } from "../../protocol/meta.ts";
import type { FieldSchema } from "../../protocol/schema.ts";
import type { AskOptions } from "../../runtime/ask.ts";
import { ActorHost } from "../../runtime/host.ts";
import { FsObjectStore } from "../../runtime/object_store_fs.ts";
import { jetstreamOf } from "../../runtime/streams.ts";
import { connectTest, uniquePrefix, waitFor } from "../harness/index.ts";

type Verb = keyof RootcoordApi;

/** One process hosting rootcoord: its own connection, host and env under the test's prefix. */
interface Process {
  env: ClusterEnv;
  host: ActorHost;
  rc<V extends Verb>(verb: V, body: RootcoordApi[V][0], opts?: AskOptions): Promise<RootcoordApi[V][1]>;
  /** an ask with any body, for bad input */
  raw(verb: string, body: unknown): Promise<unknown>;
  stop(): Promise<void>;
}

async function startProcess(prefix: string, dir: string): Promise<Process> {
  const nc = await connectTest();
  const env = createClusterEnv(nc, new FsObjectStore(dir), { prefix });
  const host = new ActorHost(nc);
  const address = await spawnRootcoord(host, env);
  expect(address).toBe(env.subjects.rootcoord());
  return {
    env,
    host,
    rc: (verb, body, opts) => host.ask(address, messageType(ROOTCOORD, verb), body, opts),
    raw: (verb, body) => host.ask(address, messageType(ROOTCOORD, verb), body),
    async stop() {
      await host.stop();
      await nc[Symbol.asyncDispose]();
    },
  };
}

/** A rootcoord under a fresh prefix; `restart` stops the whole process and starts a new one on the same state. */
async function cluster() {
  const prefix = uniquePrefix();
  const dir = await mkdtemp(join(tmpdir(), "vbus-rootcoord-"));
  let proc = await startProcess(prefix, dir);
  return {
    prefix,
    get p() {
      return proc;
    },
    get env() {
      return proc.env;
    },
    rc<V extends Verb>(verb: V, body: RootcoordApi[V][0], opts?: AskOptions) {
      return proc.rc(verb, body, opts);
    },
    raw(verb: string, body: unknown) {
      return proc.raw(verb, body);
    },
    async restart() {
      await proc.stop();
      proc = await startProcess(prefix, dir);
    },
    async [Symbol.asyncDispose]() {
      const streamPrefix = proc.env.subjects.streamPrefix;
      const { jsm } = await jetstreamOf(proc.env.nc);
      for await (const name of jsm.streams.names()) {
        if (name.startsWith(`${streamPrefix}_`) || name.startsWith(`KV_${streamPrefix}_`)) await jsm.streams.delete(name);
      }
      await proc.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function refusal(p: Promise<unknown>): Promise<VbError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(VbError);
    return err as VbError;
  }
  throw new Error("expected the ask to be refused");
}

async function expectCode(p: Promise<unknown>, code: number, message?: RegExp): Promise<VbError> {
  const err = await refusal(p);
  expect({ code: err.code, message: err.message }).toMatchObject({ code, ...(message ? { message: expect.stringMatching(message) } : {}) });
  return err;
}

function schema(name: string, extra: FieldSchema[] = []) {
  return {
    name,
    fields: [
      { name: "id", type: "Int64", isPrimaryKey: true },
      { name: "vec", type: "FloatVector", dim: 8 },
      ...extra,
    ] as FieldSchema[],
  };
}

const names = (xs: { name: string }[]) => xs.map((x) => x.name);

describe("rootcoord", () => {
  it("creates the DML and events streams and the default database when it starts", async () => {
    await using c = await cluster();
    const { jsm } = await jetstreamOf(c.env.nc);
    for (let n = 0; n < c.env.config.dmlChannelNum; n++) {
      const si = await jsm.streams.info(c.env.subjects.dmlStream(n));
      expect(si.config.subjects).toEqual([c.env.subjects.dmlStreamSubjects(n)]);
    }
    expect((await jsm.streams.info(c.env.subjects.eventsStream())).config.subjects).toEqual([c.env.subjects.eventsStreamSubjects()]);
    expect(await c.rc("ListDatabases", {})).toEqual({ databases: ["default"] });
    expect(await c.rc("ListCollections", {})).toEqual({ collections: [] });
  });

  it("runs the whole DDL cycle through asks", async () => {
    await using c = await cluster();
    const db = await c.rc("CreateDatabase", { dbName: "shop" });
    expect(db).toMatchObject({ name: "shop" });
    expect(typeof db.dbId).toBe("bigint");
    expect(typeof db.createdTs).toBe("bigint");
    expect(await c.rc("ListDatabases", {})).toEqual({ databases: ["default", "shop"] });

    const books = await c.rc("CreateCollection", {
      dbName: "shop",
      schema: schema("books", [{ name: "title", type: "VarChar", maxLength: 64 }]),
      shardsNum: 3,
      properties: { owner: "ops" },
    });
    const id = books.collectionId;
    expect(typeof id).toBe("bigint");
    expect(books).toMatchObject({
      dbName: "shop",
      name: "books",
      shardsNum: 3,
      consistencyLevel: "Bounded",
      properties: { owner: "ops" },
      state: "Created",
      aliases: [],
    });
    expect(books.schema.fields.map((f) => [f.fieldId, f.name, f.type])).toEqual([
      [100, "id", "Int64"],
      [101, "vec", "FloatVector"],
      [102, "title", "VarChar"],
    ]);
    const n = c.env.config.dmlChannelNum;
    expect(books.vchannels).toEqual(
      [0, 1, 2].map((shard) => ({ name: `${id}v${shard}`, shard, pchannel: Number((id + BigInt(shard)) % BigInt(n)) })),
    );
    // the vchannels are valid subject tokens: the DML subjects can be built from them
    for (const v of books.vchannels) expect(c.env.subjects.dmlSubject(v.pchannel, v.name)).toContain(v.name);
    expect(names(books.partitions)).toEqual(["_default"]);
    expect(books.partitions[0]!.createdTs).toBe(books.createdTs);

    const movies = await c.rc("CreateCollection", { schema: schema("movies"), consistencyLevel: "Strong" });
    expect(movies).toMatchObject({ dbName: "default", shardsNum: c.env.config.defaultShardsNum, consistencyLevel: "Strong" });
    expect(movies.collectionId).not.toBe(id);
    expect(movies.createdTs > books.createdTs).toBe(true);

    expect(await c.rc("DescribeCollection", { dbName: "shop", collectionName: "books" })).toEqual(books);
    expect(await c.rc("DescribeCollection", { collectionId: id })).toEqual(books);
    expect(await c.rc("HasCollection", { dbName: "shop", collectionName: "books" })).toEqual({ has: true });
    expect(await c.rc("HasCollection", { collectionName: "books" })).toEqual({ has: false });
    expect(names((await c.rc("ListCollections", { dbName: "shop" })).collections)).toEqual(["books"]);
    expect(names((await c.rc("ListCollections", {})).collections)).toEqual(["movies"]);

    const ref = { dbName: "shop", collectionName: "books" };
    const p = await c.rc("CreatePartition", { ...ref, partitionName: "y2024" });
    expect(p.name).toBe("y2024");
    expect(p.partitionId).not.toBe(books.partitions[0]!.partitionId);
    expect(names((await c.rc("ListPartitions", ref)).partitions)).toEqual(["_default", "y2024"]);
    expect(await c.rc("HasPartition", { ...ref, partitionName: "y2024" })).toEqual({ has: true });
    expect(names((await c.rc("DescribeCollection", ref)).partitions)).toEqual(["_default", "y2024"]);
    await c.rc("DropPartition", { ...ref, partitionName: "y2024" });
    expect(await c.rc("HasPartition", { ...ref, partitionName: "y2024" })).toEqual({ has: false });

    await expectCode(c.rc("DropDatabase", { dbName: "shop" }), ErrorCode.ParameterInvalid, /still has 1 collection.*"books".*DropCollection/);
    await c.rc("DropCollection", ref);
    expect(await c.rc("HasCollection", ref)).toEqual({ has: false });
    await expectCode(c.rc("DescribeCollection", { collectionId: id }), ErrorCode.CollectionNotFound);
    await c.rc("DropDatabase", { dbName: "shop" });
    expect(await c.rc("ListDatabases", {})).toEqual({ databases: ["default"] });
    await expectCode(c.rc("DropDatabase", { dbName: "default" }), ErrorCode.ParameterInvalid, /cannot be dropped/);

    // the name is free again, under a new id
    const again = await c.rc("CreateCollection", { schema: schema("books") });
    expect(again.collectionId).not.toBe(id);
  });

  it("refuses bad schemas and bad options with 1100 naming the field, and creates nothing", async () => {
    await using c = await cluster();
    const bad = async (body: unknown, message: RegExp) => expectCode(c.raw("CreateCollection", body), ErrorCode.ParameterInvalid, message);
    await bad({ schema: { name: "c", fields: [{ name: "vec", type: "FloatVector", dim: 8 }] } }, /primary key.*found 0/);
    await bad(
      {
        schema: {
          name: "c",
          fields: [
            { name: "a", type: "Int64", isPrimaryKey: true },
            { name: "b", type: "VarChar", maxLength: 8, isPrimaryKey: true },
            { name: "vec", type: "FloatVector", dim: 8 },
          ],
        },
      },
      /primary key.*found 2/,
    );
    await bad({ schema: { name: "c", fields: [{ name: "id", type: "Int64", isPrimaryKey: true }, { name: "vec", type: "FloatVector", dim: 0 }] } }, /field "vec".*dim/);
    await bad({ schema: { name: "c", fields: [{ name: "id", type: "Int64", isPrimaryKey: true }, { name: "vec", type: "FloatVector" }] } }, /field "vec".*dim/);
    await bad({ schema: schema("c", [{ name: "title", type: "VarChar" }]) }, /field "title".*maxLength/);
    await bad({ schema: schema("c", [{ name: "x", type: "Float16" as never }]) }, /field "x".*unknown type/);
    await bad({ schema: schema("c", [{ name: "x", type: "toString" as never }]) }, /field "x".*unknown type/);
    await bad({ schema: schema("c", [{ name: "tags", type: "Array", elementType: "Int64" }]) }, /field "tags".*maxCapacity/);
    await bad({}, /schema/);
    await bad({ schema: { name: "c", fields: "id,vec" } }, /fields/);
    await bad({ schema: schema("1books") }, /collection name "1books"/);
    await bad({ schema: schema("c"), shardsNum: 17 }, /"shardsNum".*\[1, 16\]/);
    await bad({ schema: schema("c"), shardsNum: "2" }, /"shardsNum"/);
    await bad({ schema: schema("c"), consistencyLevel: "Sometimes" }, /"consistencyLevel".*Strong/);
    await bad({ schema: schema("c"), properties: { a: 1 } }, /"properties\.a"/);
    await bad({ schema: schema("c"), dbName: 7 }, /"dbName"/);
    expect(await c.rc("ListCollections", {})).toEqual({ collections: [] });
  });

  it("answers 100, 200, 800, 1600 and 1100 with messages that say what to do", async () => {
    await using c = await cluster();
    await c.rc("CreateCollection", { schema: schema("books") });

    await expectCode(c.rc("DescribeCollection", { collectionName: "nope" }), ErrorCode.CollectionNotFound, /"nope" not found.*CreateCollection/);
    await expectCode(c.rc("DescribeCollection", { collectionId: 987_654_321n }), ErrorCode.CollectionNotFound, /987654321/);
    await expectCode(c.rc("DropCollection", { collectionName: "nope" }), ErrorCode.CollectionNotFound);
    await expectCode(c.rc("CreatePartition", { collectionName: "nope", partitionName: "p" }), ErrorCode.CollectionNotFound);
    await expectCode(c.rc("ListPartitions", { collectionName: "nope" }), ErrorCode.CollectionNotFound);

    await expectCode(c.rc("DropPartition", { collectionName: "books", partitionName: "p9" }), ErrorCode.PartitionNotFound, /"p9" not found.*ListPartitions/);
    await expectCode(c.rc("DropPartition", { collectionName: "books", partitionName: "_default" }), ErrorCode.ParameterInvalid, /cannot be dropped/);
    await c.rc("CreatePartition", { collectionName: "books", partitionName: "p1" });
    await expectCode(c.rc("CreatePartition", { collectionName: "books", partitionName: "p1" }), ErrorCode.ParameterInvalid, /already exists/);
    await expectCode(c.rc("CreatePartition", { collectionName: "books", partitionName: "bad-name" }), ErrorCode.ParameterInvalid, /partition name/);

    await expectCode(c.rc("ListCollections", { dbName: "nope" }), ErrorCode.DatabaseNotFound, /database "nope" not found.*CreateDatabase/);
    await expectCode(c.rc("CreateCollection", { dbName: "nope", schema: schema("x") }), ErrorCode.DatabaseNotFound);
    await expectCode(c.rc("DescribeCollection", { dbName: "nope", collectionName: "books" }), ErrorCode.DatabaseNotFound);
    await expectCode(c.rc("DropDatabase", { dbName: "nope" }), ErrorCode.DatabaseNotFound);
    await c.rc("CreateDatabase", { dbName: "d1" });
    await expectCode(c.rc("CreateDatabase", { dbName: "d1" }), ErrorCode.ParameterInvalid, /already exists/);
    await expectCode(c.rc("CreateDatabase", { dbName: "d.1" }), ErrorCode.ParameterInvalid, /database name/);

    await expectCode(c.rc("DescribeAlias", { alias: "nope" }), ErrorCode.AliasNotFound, /alias "nope" not found.*CreateAlias/);
    await expectCode(c.rc("DropAlias", { alias: "nope" }), ErrorCode.AliasNotFound);
    await expectCode(c.rc("AlterAlias", { alias: "nope", collectionName: "books" }), ErrorCode.AliasNotFound);

    await expectCode(c.rc("CreateCollection", { schema: schema("books") }), ErrorCode.ParameterInvalid, /collection "books" already exists/);

    // bodies of the wrong shape name the field at fault
    await expectCode(c.raw("DescribeCollection", { collectionName: 5 }), ErrorCode.ParameterInvalid, /"collectionName" must be a string/);
    await expectCode(c.raw("DescribeCollection", {}), ErrorCode.ParameterInvalid, /"collectionName" is missing/);
    await expectCode(c.raw("DescribeCollection", { collectionId: "abc" }), ErrorCode.ParameterInvalid, /"collectionId"/);
    await expectCode(c.raw("DescribeCollection", "books"), ErrorCode.ParameterInvalid, /body must be a map/);
    await expectCode(c.raw("CreatePartition", { collectionName: "books" }), ErrorCode.ParameterInvalid, /"partitionName" is missing/);
    await expectCode(c.raw("RenameCollection", { oldName: "books", newName: ["x"] }), ErrorCode.ParameterInvalid, /"newName"/);
    await expectCode(c.raw("CreateAlias", { alias: "a" }), ErrorCode.ParameterInvalid, /"collectionName" is missing/);
    await expectCode(c.raw("CreateDatabase", { dbName: null }), ErrorCode.ParameterInvalid, /"dbName" is missing/);
    await expectCode(c.raw("AllocTimestamp", { count: "x" }), ErrorCode.ParameterInvalid, /"count"/);
    await expectCode(c.raw("AllocTimestamp", { count: 0 }), ErrorCode.ParameterInvalid, /"count"/);
    await expectCode(c.raw("AllocId", {}), ErrorCode.ParameterInvalid, /"count" is missing/);
    await expectCode(c.raw("AllocId", { count: -3 }), ErrorCode.ParameterInvalid, /"count"/);
    await expectCode(c.raw("Frobnicate", {}), ErrorCode.ParameterInvalid, /unknown message type "rootcoord.Frobnicate"/);
  });

  it("resolves aliases, keeps them apart from collection names, and moves them", async () => {
    await using c = await cluster();
    const movies = await c.rc("CreateCollection", { schema: schema("movies") });
    const films = await c.rc("CreateCollection", { schema: schema("films") });

    await c.rc("CreateAlias", { alias: "cinema", collectionName: "movies" });
    const viaAlias = await c.rc("DescribeCollection", { collectionName: "cinema" });
    expect(viaAlias.collectionId).toBe(movies.collectionId);
    expect(viaAlias.name).toBe("movies");
    expect(viaAlias.aliases).toEqual(["cinema"]);
    expect(await c.rc("HasCollection", { collectionName: "cinema" })).toEqual({ has: true });
    expect(await c.rc("DescribeAlias", { alias: "cinema" })).toEqual({ alias: "cinema", collectionName: "movies", dbName: "default" });
    expect(await c.rc("ListAliases", {})).toEqual({ aliases: ["cinema"] });
    expect(await c.rc("ListAliases", { collectionName: "movies" })).toEqual({ aliases: ["cinema"] });
    expect(await c.rc("ListAliases", { collectionName: "films" })).toEqual({ aliases: [] });
    // partitions through the alias
    await c.rc("CreatePartition", { collectionName: "cinema", partitionName: "p1" });
    expect(names((await c.rc("ListPartitions", { collectionName: "movies" })).partitions)).toEqual(["_default", "p1"]);

    await expectCode(c.rc("CreateAlias", { alias: "films", collectionName: "movies" }), ErrorCode.AliasCollectionNameConflict, /"films" is the name of a collection/);
    await expectCode(c.rc("CreateAlias", { alias: "cinema", collectionName: "films" }), ErrorCode.AliasAlreadyExist, /"cinema" already exists.*AlterAlias/);
    await expectCode(c.rc("CreateCollection", { schema: schema("cinema") }), ErrorCode.AliasCollectionNameConflict, /"cinema" is an alias/);
    await expectCode(c.rc("CreateAlias", { alias: "theater", collectionName: "cinema" }), ErrorCode.ParameterInvalid, /is an alias/);
    await expectCode(c.rc("CreateAlias", { alias: "theater", collectionName: "nope" }), ErrorCode.CollectionNotFound);
    await expectCode(c.rc("CreateAlias", { alias: "the ater", collectionName: "movies" }), ErrorCode.ParameterInvalid, /alias name/);
    await expectCode(c.rc("DropCollection", { collectionName: "movies" }), ErrorCode.ParameterInvalid, /alias.*"cinema".*DropAlias/);
    await expectCode(c.rc("DropCollection", { collectionName: "cinema" }), ErrorCode.ParameterInvalid, /is an alias of collection "movies"/);

    await c.rc("AlterAlias", { alias: "cinema", collectionName: "films" });
    expect((await c.rc("DescribeCollection", { collectionName: "cinema" })).collectionId).toBe(films.collectionId);
    expect((await c.rc("DescribeCollection", { collectionName: "movies" })).aliases).toEqual([]);
    expect((await c.rc("DescribeCollection", { collectionName: "films" })).aliases).toEqual(["cinema"]);
    await expectCode(c.rc("AlterAlias", { alias: "cinema", collectionName: "nope" }), ErrorCode.CollectionNotFound);

    // aliases belong to a database
    await c.rc("CreateDatabase", { dbName: "other" });
    await c.rc("CreateCollection", { dbName: "other", schema: schema("movies") });
    await c.rc("CreateAlias", { dbName: "other", alias: "cinema", collectionName: "movies" });
    expect(await c.rc("DescribeAlias", { dbName: "other", alias: "cinema" })).toEqual({ alias: "cinema", collectionName: "movies", dbName: "other" });
    expect(await c.rc("DescribeAlias", { alias: "cinema" })).toEqual({ alias: "cinema", collectionName: "films", dbName: "default" });

    await c.rc("DropAlias", { alias: "cinema" });
    await expectCode(c.rc("DescribeCollection", { collectionName: "cinema" }), ErrorCode.CollectionNotFound);
    await expectCode(c.rc("DescribeAlias", { alias: "cinema" }), ErrorCode.AliasNotFound);
    expect(await c.rc("ListAliases", {})).toEqual({ aliases: [] });
    await c.rc("DropCollection", { collectionName: "movies" });
    expect(await c.rc("HasCollection", { dbName: "other", collectionName: "cinema" })).toEqual({ has: true });
  });

  it("renames a collection, keeping its id, partitions and aliases, and moves it to another database", async () => {
    await using c = await cluster();
    const orig = await c.rc("CreateCollection", { schema: schema("drafts") });
    await c.rc("CreatePartition", { collectionName: "drafts", partitionName: "p1" });
    await c.rc("CreateAlias", { alias: "latest", collectionName: "drafts" });
    await c.rc("CreateCollection", { schema: schema("taken") });

    await c.rc("RenameCollection", { oldName: "drafts", newName: "papers" });
    await expectCode(c.rc("DescribeCollection", { collectionName: "drafts" }), ErrorCode.CollectionNotFound);
    const renamed = await c.rc("DescribeCollection", { collectionName: "papers" });
    expect(renamed).toMatchObject({ collectionId: orig.collectionId, name: "papers", aliases: ["latest"], vchannels: orig.vchannels });
    expect(renamed.schema.name).toBe("papers");
    expect(names(renamed.partitions)).toEqual(["_default", "p1"]);
    expect(await c.rc("DescribeAlias", { alias: "latest" })).toMatchObject({ collectionName: "papers" });
    expect((await c.rc("DescribeCollection", { collectionName: "latest" })).collectionId).toBe(orig.collectionId);

    await expectCode(c.rc("RenameCollection", { oldName: "papers", newName: "taken" }), ErrorCode.ParameterInvalid, /"taken" already exists/);
    await expectCode(c.rc("RenameCollection", { oldName: "papers", newName: "latest" }), ErrorCode.AliasCollectionNameConflict);
    await expectCode(c.rc("RenameCollection", { oldName: "nope", newName: "x" }), ErrorCode.CollectionNotFound);
    await expectCode(c.rc("RenameCollection", { oldName: "latest", newName: "x" }), ErrorCode.ParameterInvalid, /is an alias/);
    await expectCode(c.rc("RenameCollection", { oldName: "papers", newName: "9x" }), ErrorCode.ParameterInvalid, /collection name "9x"/);
    await expectCode(c.rc("RenameCollection", { oldName: "papers", newName: "x", newDbName: "nope" }), ErrorCode.DatabaseNotFound);

    await c.rc("CreateDatabase", { dbName: "archive" });
    await expectCode(
      c.rc("RenameCollection", { oldName: "papers", newName: "papers", newDbName: "archive" }),
      ErrorCode.ParameterInvalid,
      /alias.*"latest".*DropAlias/,
    );
    await c.rc("DropAlias", { alias: "latest" });
    await c.rc("RenameCollection", { oldName: "papers", newName: "papers", newDbName: "archive" });
    expect(names((await c.rc("ListCollections", {})).collections)).toEqual(["taken"]);
    const moved = await c.rc("DescribeCollection", { dbName: "archive", collectionName: "papers" });
    expect(moved).toMatchObject({ collectionId: orig.collectionId, dbName: "archive" });
    expect(await c.rc("DescribeCollection", { collectionId: orig.collectionId })).toEqual(moved);
  });

  it("publishes a DDL event after each change", async () => {
    await using c = await cluster();
    const seen: VbEvent[] = [];
    await using _follow = await followEvents(c.env, (ev) => void seen.push(ev));
    const coll = await c.rc("CreateCollection", { schema: schema("news") });
    const id = coll.collectionId;
    const part = await c.rc("CreatePartition", { collectionName: "news", partitionName: "today" });
    await c.rc("DropPartition", { collectionName: "news", partitionName: "today" });
    await c.rc("RenameCollection", { oldName: "news", newName: "daily" });
    await c.rc("CreateAlias", { alias: "paper", collectionName: "daily" });
    await c.rc("DropAlias", { alias: "paper" });
    await c.rc("DropCollection", { collectionName: "daily" });
    await c.rc("CreateDatabase", { dbName: "tmp" });
    await c.rc("DropDatabase", { dbName: "tmp" });

    await waitFor(() => seen.length >= 8, { what: "8 DDL events" });
    expect(seen.map((e) => e.kind)).toEqual([
      "collection.created",
      "partition.created",
      "partition.dropped",
      "collection.altered",
      "collection.altered",
      "collection.altered",
      "collection.dropped",
      "database.dropped",
    ]);
    expect(seen[0]).toEqual({ kind: "collection.created", collection: coll });
    expect(seen[1]).toEqual({ kind: "partition.created", collectionId: id, partition: part });
    expect(seen[2]).toEqual({ kind: "partition.dropped", collectionId: id, partitionId: part.partitionId });
    const altered = seen.slice(3, 6).map((e) => (e as { collection: CollectionInfo }).collection);
    expect(altered.map((x) => [x.collectionId, x.name, x.aliases])).toEqual([
      [id, "daily", []],
      [id, "daily", ["paper"]],
      [id, "daily", []],
    ]);
    expect(seen[6]).toEqual({ kind: "collection.dropped", collectionId: id, dbName: "default", name: "daily" });
    expect(seen[7]).toEqual({ kind: "database.dropped", dbName: "tmp" });
  });

  it("finishes at start a drop that the previous run recorded but did not announce", async () => {
    await using c = await cluster();
    const coll = await c.rc("CreateCollection", { schema: schema("half") });
    await c.p.host.stopActor(c.env.subjects.rootcoord());
    // an observer on a connection of its own, which outlives the restart
    await using nc = await connectTest();
    const observer = createClusterEnv(nc, c.env.objectStore, { prefix: c.prefix });
    // what a crash between "state Dropping is in KV" and "event published" leaves behind
    const kv = await observer.meta(ROOTCOORD_BUCKETS.collections);
    const key = `coll.${coll.collectionId}`;
    const stored = await kv.getValue<Record<string, unknown>>(key);
    await kv.updateValue(key, { ...stored!.value, state: "Dropping" }, stored!.revision);

    const seen: VbEvent[] = [];
    await using _follow = await followEvents(observer, (ev) => void seen.push(ev));
    await c.restart();
    await waitFor(() => seen.length >= 1, { what: "the dropped event" });
    expect(seen).toEqual([{ kind: "collection.dropped", collectionId: coll.collectionId, dbName: "default", name: "half" }]);
    expect(await c.rc("HasCollection", { collectionName: "half" })).toEqual({ has: false });
    await waitFor(async () => (await kv.get(key)) === undefined, { what: "the dropped collection's key deleted" });
  });

  it("keeps its state, its timestamps increasing and its ids unique across restarts", async () => {
    await using c = await cluster();
    await c.rc("CreateDatabase", { dbName: "lib" });
    await c.rc("CreateCollection", { dbName: "lib", schema: schema("books"), shardsNum: 2 });
    await c.rc("CreatePartition", { dbName: "lib", collectionName: "books", partitionName: "fiction" });
    await c.rc("CreateAlias", { dbName: "lib", alias: "shelf", collectionName: "books" });
    await c.rc("CreateCollection", { schema: schema("mags") });
    await c.rc("CreateCollection", { schema: schema("gone") });
    await c.rc("DropCollection", { collectionName: "gone" });
    const books = await c.rc("DescribeCollection", { dbName: "lib", collectionName: "books" });
    const mags = await c.rc("DescribeCollection", { collectionName: "mags" });

    const timestamps: bigint[] = [];
    const idRanges: [bigint, bigint][] = [];
    const collect = async () => {
      for (let i = 0; i < 20; i++) timestamps.push((await c.rc("AllocTimestamp", {})).ts);
      // whole milliseconds at a time: the TSO runs ~1.5 s ahead of the wall clock, so a restarted one that
      // began at the clock instead of the saved watermark would go back in time
      const big = await Promise.all(
        Array.from({ length: 1_500 }, () => c.rc("AllocTimestamp", { count: MAX_LOGICAL }, { timeoutMs: 30_000 })),
      );
      for (const r of big) timestamps.push(r.ts, r.ts + BigInt(r.count) - 1n);
      for (const count of [1, 1_000, 150_000]) {
        const r = await c.rc("AllocId", { count });
        expect(r.count).toBe(count);
        idRanges.push([r.start, r.start + BigInt(count)]);
      }
    };
    for (const x of [books, mags]) {
      idRanges.push([x.collectionId, x.collectionId + 1n]);
      for (const p of x.partitions) idRanges.push([p.partitionId, p.partitionId + 1n]);
    }
    const checkState = async () => {
      expect(await c.rc("ListDatabases", {})).toEqual({ databases: ["default", "lib"] });
      expect(await c.rc("DescribeCollection", { dbName: "lib", collectionName: "books" })).toEqual(books);
      expect(await c.rc("DescribeCollection", { dbName: "lib", collectionName: "shelf" })).toEqual(books);
      expect(await c.rc("DescribeCollection", { collectionId: mags.collectionId })).toEqual(mags);
      expect(names(books.partitions)).toEqual(["_default", "fiction"]);
      expect(books.aliases).toEqual(["shelf"]);
      expect(await c.rc("HasCollection", { collectionName: "gone" })).toEqual({ has: false });
      expect(await c.rc("DescribeAlias", { dbName: "lib", alias: "shelf" })).toEqual({ alias: "shelf", collectionName: "books", dbName: "lib" });
    };
    await collect();

    // the actor alone restarts in the same process
    await c.p.host.stopActor(c.env.subjects.rootcoord());
    await spawnRootcoord(c.p.host, c.env);
    await checkState();
    await collect();

    // the whole process restarts: new connection, new env, new host, same prefix
    await c.restart();
    await checkState();
    await collect();
    const fresh = await c.rc("CreateCollection", { schema: schema("fresh") });
    idRanges.push([fresh.collectionId, fresh.collectionId + 2n]);

    for (let i = 1; i < timestamps.length; i++) expect(timestamps[i]! > timestamps[i - 1]!).toBe(true);
    expect(fresh.createdTs > timestamps[timestamps.length - 1]!).toBe(true);
    const sorted = [...idRanges].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    for (let i = 1; i < sorted.length; i++) expect(sorted[i]![0] >= sorted[i - 1]![1]).toBe(true);
  });

  it("answers 10,000 concurrent AllocTimestamp asks with strictly increasing, non-overlapping timestamps", async () => {
    await using c = await cluster();
    const before = Date.now();
    const replies = await Promise.all(
      Array.from({ length: 10_000 }, (_, i) => c.rc("AllocTimestamp", { count: 1 + (i % 3) }, { timeoutMs: 60_000 })),
    );
    for (let i = 0; i < replies.length; i++) expect(replies[i]!.count).toBe(1 + (i % 3));
    // asks from one connection reach the mailbox in the order they were sent
    for (let i = 1; i < replies.length; i++) {
      expect(replies[i]!.ts >= replies[i - 1]!.ts + BigInt(replies[i - 1]!.count)).toBe(true);
    }
    expect(new Set(replies.map((r) => r.ts)).size).toBe(replies.length);
    expect(parseTs(replies[0]!.ts).physicalMs).toBeGreaterThanOrEqual(before);

    const ids = await Promise.all(Array.from({ length: 2_000 }, (_, i) => c.rc("AllocId", { count: 1 + (i % 50) }, { timeoutMs: 60_000 })));
    const ranges = ids.map((r) => [r.start, r.start + BigInt(r.count)] as const).sort((a, b) => (a[0] < b[0] ? -1 : 1));
    for (let i = 1; i < ranges.length; i++) expect(ranges[i]![0] >= ranges[i - 1]![1]).toBe(true);
  });

  it("answers malformed msgpack and malformed bodies with 1100 and keeps serving", async () => {
    await using c = await cluster();
    const created = await c.rc("CreateCollection", { schema: schema("keep") });
    const address = c.env.subjects.rootcoord();
    const rawReply = async (bytes: Uint8Array) =>
      decode<{ ok: boolean; error?: { code: number; message: string } }>((await c.env.nc.request(address, bytes, { timeout: 5_000 })).data);

    const garbage = [
      new Uint8Array([0xc1]),
      new Uint8Array([0x92, 0x01]),
      new Uint8Array([0xde, 0xad, 0xbe, 0xef]),
      encode({ hello: "world" }),
      encode([1, 2, 3]),
      encode({ t: 5, d: "soon", b: {} }),
    ];
    for (const bytes of garbage) {
      const reply = await rawReply(bytes);
      expect(reply.ok).toBe(false);
      expect(reply.error?.code).toBe(ErrorCode.ParameterInvalid);
    }
    // well-formed envelopes whose bodies do not match the message type
    const deadline = () => Date.now() + 5_000;
    for (const [verb, b] of [
      ["CreateCollection", 42],
      ["CreateCollection", { schema: { name: "x", fields: [null, 3] } }],
      ["CreateCollection", { schema: { name: "x", fields: [{ name: "id", type: ["Int64"], isPrimaryKey: true }] } }],
      ["DescribeCollection", new Uint8Array([1, 2])],
      ["DropPartition", { collectionName: "keep", partitionName: { x: 1 } }],
      ["AllocId", { count: 2n ** 62n }],
      ["AllocTimestamp", [1]],
      ["RenameCollection", null],
    ] as const) {
      const reply = await rawReply(encode({ t: messageType(ROOTCOORD, verb), d: deadline(), b }));
      expect({ verb, ok: reply.ok, code: reply.error?.code }).toEqual({ verb, ok: false, code: ErrorCode.ParameterInvalid });
    }
    expect(await c.rc("DescribeCollection", { collectionName: "keep" })).toEqual(created);
    const t1 = await c.rc("AllocTimestamp", {});
    const t2 = await c.rc("AllocTimestamp", { count: 5 });
    expect(t2.ts > t1.ts).toBe(true);
    expect((await c.rc("CreateCollection", { schema: schema("after") })).name).toBe("after");
  });
});
