/**
 * The rootcoord actor (Milvus's RootCoord): databases, collections, partitions, aliases and schemas in
 * KV; the TSO and the id allocator; the DML streams and the events stream exist once it has started.
 * It loads everything from KV when it starts, so a restarted process sees what the last one left.
 */
import { VbError } from "../../protocol/errors.ts";
import { messageType } from "../../protocol/messages/api.ts";
import { ROOTCOORD, type RootcoordApi } from "../../protocol/messages/rootcoord.ts";
import { Actor, type Message } from "../../runtime/actor.ts";
import type { ClusterEnv } from "../env.ts";
import { ensureEventsStream } from "../events.ts";
import { allocId, allocTimestamp } from "./allocation.ts";
import { alterAlias, createAlias, describeAlias, dropAlias, listAliases } from "./aliases.ts";
import {
  alterCollection,
  createCollection,
  describeCollection,
  dropCollection,
  finishPendingDrops,
  hasCollection,
  listCollections,
  renameCollection,
} from "./collections.ts";
import type { RootcoordCore } from "./core.ts";
import { createDatabase, dropDatabase, ensureDefaultDatabase, listDatabases } from "./databases.ts";
import { EventOutbox } from "./event_outbox.ts";
import { IdAllocator } from "./id_allocator.ts";
import { BUCKET } from "./kv_layout.ts";
import { MetaTable } from "./meta_table.ts";
import { createPartition, dropPartition, hasPartition, listPartitions } from "./partitions.ts";
import { TimestampOracle } from "./tso.ts";

type Handler<V extends keyof RootcoordApi> = (
  core: RootcoordCore,
  body: unknown,
) => RootcoordApi[V][1] | Promise<RootcoordApi[V][1]>;

/** Every verb of RootcoordApi and its handler: the compiler checks that none is missing. */
const VERBS: { [V in keyof RootcoordApi]: Handler<V> } = {
  CreateDatabase: createDatabase,
  DropDatabase: dropDatabase,
  ListDatabases: listDatabases,
  CreateCollection: createCollection,
  DropCollection: dropCollection,
  DescribeCollection: describeCollection,
  HasCollection: hasCollection,
  ListCollections: listCollections,
  RenameCollection: renameCollection,
  AlterCollection: alterCollection,
  CreatePartition: createPartition,
  DropPartition: dropPartition,
  HasPartition: hasPartition,
  ListPartitions: listPartitions,
  CreateAlias: createAlias,
  DropAlias: dropAlias,
  AlterAlias: alterAlias,
  DescribeAlias: describeAlias,
  ListAliases: listAliases,
  AllocTimestamp: allocTimestamp,
  AllocId: allocId,
};

const HANDLERS = new Map<string, (core: RootcoordCore, body: unknown) => unknown>(
  Object.entries(VERBS).map(([verb, h]) => [messageType(ROOTCOORD, verb), h as (core: RootcoordCore, body: unknown) => unknown]),
);

/** Messages the actor sends itself. */
const TSO_TICK = messageType(ROOTCOORD, "internal.TsoTick");
const RETRY = messageType(ROOTCOORD, "internal.Retry");
const RETRY_MS = 1_000;

export class RootcoordActor extends Actor {
  private core: RootcoordCore | undefined;

  constructor(private readonly env: ClusterEnv) {
    super();
  }

  override async preStart(): Promise<void> {
    const { env } = this;
    const log = this.ctx.log;
    await Promise.all([
      ensureEventsStream(env),
      ...Array.from({ length: env.config.dmlChannelNum }, (_, n) =>
        env.dml.ensureChannel(env.subjects.dmlStream(n), env.subjects.dmlStreamSubjects(n)),
      ),
    ]);
    const [databases, collections, aliases, tsoKv, idKv] = await Promise.all([
      env.meta(BUCKET.databases),
      env.meta(BUCKET.collections),
      env.meta(BUCKET.aliases),
      env.meta(BUCKET.tso),
      env.meta(BUCKET.ids),
    ]);
    const [tso, ids, meta] = await Promise.all([
      TimestampOracle.open(tsoKv, { log }),
      IdAllocator.open(idKv, { log }),
      MetaTable.open({ databases, collections, aliases }, log),
    ]);
    const retryLater = (): void => {
      if (!this.ctx.timers.isActive("retry")) this.ctx.timers.startSingle("retry", RETRY_MS, RETRY);
    };
    const core: RootcoordCore = { env, meta, ids, tso, log, events: new EventOutbox(env, log, retryLater), retryLater };
    await ensureDefaultDatabase(core);
    // drops that a previous run recorded but did not finish: announce them (again) and delete them
    for (const c of meta.dropping()) {
      await core.events.publish({ kind: "collection.dropped", collectionId: c.collectionId, dbName: c.dbName, name: c.name });
    }
    await finishPendingDrops(core);
    this.core = core;
    this.ctx.timers.startPeriodic("tso", Math.max(10, Math.floor(tso.windowMs / 6)), TSO_TICK);
    log.info(
      { databases: meta.listDatabases().length, collections: meta.collectionCount, tsPhysical: tso.lastPhysical },
      "rootcoord started",
    );
  }

  override receive(msg: Message): unknown {
    const core = this.core!;
    const handler = HANDLERS.get(msg.type);
    if (handler) return handler(core, msg.body);
    if (msg.type === TSO_TICK) return core.tso.needsExtension() ? core.tso.extend() : undefined;
    if (msg.type === RETRY) return finishPendingDrops(core);
    throw VbError.invalid(
      `unknown message type "${msg.type}" for rootcoord (1100): it takes ${Object.keys(VERBS).map((v) => messageType(ROOTCOORD, v)).join(", ")}`,
    );
  }
}
