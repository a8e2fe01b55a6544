/**
 * `vbus`, the control actor's command line. Output meant for people goes to stdout; logs (pino JSON)
 * go to stderr. An error prints one line and exits non-zero.
 */
import { createReadStream } from "node:fs";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Command, Option } from "commander";
import cliProgress from "cli-progress";
import { VbError, ErrorCode } from "../protocol/errors.ts";
import type { CollectionSchema, FieldSchema } from "../protocol/schema.ts";
import { connect, type VectorbusClient } from "../actors/control/client.ts";
import { defaultConfig, type VbConfig } from "./config.ts";
import { startStandalone } from "./standalone.ts";
import { randomRows } from "./random_rows.ts";
import { ROLES, type Role, type RoleSet } from "./roles.ts";

const program = new Command();
program.name("vbus").description("Vectorbus: a distributed vector database on NATS").showHelpAfterError();

interface ConnOpts {
  nats?: string;
  data?: string;
  prefix?: string;
}

const RUNFILE = "vbus.json";

function configFrom(opts: ConnOpts & { s3?: string; datanodes?: number }): VbConfig {
  const base = defaultConfig();
  return {
    ...base,
    ...(opts.nats ? { natsUrl: opts.nats } : {}),
    ...(opts.data ? { dataDir: opts.data } : {}),
    ...(opts.prefix ? { prefix: opts.prefix } : {}),
    ...(opts.s3 ? { objectStore: opts.s3 } : {}),
    ...(opts.datanodes ? { datanodes: opts.datanodes } : {}),
  };
}

/** Connects to the cluster named by --nats, VB_NATS_URL, or the runfile a local `vbus up` wrote. */
async function client(opts: ConnOpts): Promise<VectorbusClient> {
  const config = configFrom(opts);
  let url = config.natsUrl;
  let prefix = config.prefix;
  if (!url) {
    try {
      const run = JSON.parse(await readFile(join(config.dataDir, RUNFILE), "utf8")) as { natsUrl: string; prefix: string };
      url = run.natsUrl;
      if (!opts.prefix) prefix = run.prefix;
    } catch {
      throw new VbError(
        ErrorCode.ServiceUnavailable,
        `no running Vectorbus found in ${config.dataDir}: start one with "npx vbus up", or pass --nats URL`,
      );
    }
  }
  return connect({ servers: url, prefix });
}

function connOptions(cmd: Command): Command {
  return cmd
    .option("--nats <url>", "NATS server of the cluster (default: the one a local `vbus up` started)")
    .option("--data <dir>", "data directory of a local `vbus up`")
    .option("--prefix <prefix>", "subject prefix of the cluster");
}

function print(value: unknown): void {
  process.stdout.write(
    JSON.stringify(
      value,
      (_k, v: unknown) => {
        if (typeof v === "bigint") return v.toString();
        if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<number | bigint>, (x) => (typeof x === "bigint" ? x.toString() : x));
        return v;
      },
      2,
    ) + "\n",
  );
}

function until(): Promise<void> {
  // SIGINT, SIGTERM, or orphaned: wrappers such as `npx` die on SIGTERM without passing it on, and a
  // Vectorbus left running behind them would hold its ports.
  return new Promise<void>((resolve) => {
    const parent = process.ppid;
    const watch = setInterval(() => {
      if (process.ppid !== parent) done();
    }, 500);
    watch.unref();
    function done() {
      clearInterval(watch);
      process.off("SIGINT", done);
      process.off("SIGTERM", done);
      resolve();
    }
    process.once("SIGINT", done);
    process.once("SIGTERM", done);
  });
}

// ---- up / serve ----

connOptions(program.command("up"))
  .description("start Vectorbus standalone: a nats-server of its own (or --nats URL) and every actor in this process")
  .option("--s3 <url>", "object store on S3/MinIO: s3://KEY:SECRET@host:port/bucket?ssl=false (default: files under --data)")
  .addOption(new Option("--datanodes <n>", "datanodes to host").argParser(Number))
  .addOption(new Option("--max-payload <bytes>", "max NATS payload of the nats-server it starts").argParser(Number))
  .action(async (opts: ConnOpts & { s3?: string; datanodes?: number; maxPayload?: number }) => {
    const config = configFrom(opts);
    if (opts.maxPayload) config.maxPayload = opts.maxPayload;
    const sa = await startStandalone(config);
    const runfile = join(config.dataDir, RUNFILE);
    await writeFile(runfile, JSON.stringify({ natsUrl: sa.natsUrl, prefix: config.prefix, pid: process.pid }) + "\n");
    process.stdout.write(`vectorbus ready nats=${sa.natsUrl}\n`);
    await until();
    await sa.stop();
    await rm(runfile, { force: true });
    process.stdout.write("vectorbus stopped\n");
  });

connOptions(program.command("serve"))
  .description("run one role in this process (a pod): rootcoord, datacoord, datanode or proxy, on an existing NATS")
  .requiredOption("--role <role>", `one of ${ROLES.join(", ")}`)
  .option("--node-id <id>", "node id (datanodes)", "dn1")
  .option("--s3 <url>", "object store on S3/MinIO (default: files under --data)")
  .action(async (opts: ConnOpts & { role: string; nodeId: string; s3?: string }) => {
    if (!(ROLES as readonly string[]).includes(opts.role)) throw VbError.invalid(`unknown role "${opts.role}": use one of ${ROLES.join(", ")}`);
    const config = configFrom(opts);
    if (!config.natsUrl) throw VbError.invalid("serve needs --nats URL (or VB_NATS_URL): a pod joins an existing cluster");
    const role = opts.role as Role;
    const roles: RoleSet = role === "datanode" ? { datanodes: [opts.nodeId] } : { [role]: true };
    const sa = await startStandalone(config, { roles });
    process.stdout.write(`vectorbus ${role} ready nats=${sa.natsUrl}\n`);
    await until();
    await sa.stop();
  });

// ---- collections ----

const collection = program.command("collection").description("create, describe, list and drop collections");

connOptions(collection.command("create <name>"))
  .description("create a collection: an Int64 pk `id` and a FloatVector `vector` of --dim, or the fields of --schema")
  .option("--dim <n>", "vector dimension", "128")
  .option("--schema <file>", "a JSON file with the schema's fields (and enableDynamicField)")
  .option("--shards <n>", "shards (vchannels)")
  .option("--auto-id", "the pk is allocated by Vectorbus")
  .option("--dynamic", "keys that are not fields go into the dynamic field")
  .action(async (name: string, opts: ConnOpts & { dim: string; schema?: string; shards?: string; autoId?: boolean; dynamic?: boolean }) => {
    let schema: CollectionSchema;
    if (opts.schema) {
      const parsed = JSON.parse(await readFile(opts.schema, "utf8")) as Partial<CollectionSchema>;
      schema = { ...parsed, name, fields: parsed.fields as FieldSchema[] };
    } else {
      schema = {
        name,
        fields: [
          { name: "id", type: "Int64", isPrimaryKey: true, ...(opts.autoId ? { autoId: true } : {}) },
          { name: "vector", type: "FloatVector", dim: Number(opts.dim) },
        ],
      };
    }
    if (opts.dynamic) schema.enableDynamicField = true;
    await using vb = await client(opts);
    const info = await vb.createCollection({ schema, ...(opts.shards ? { shardsNum: Number(opts.shards) } : {}) });
    process.stdout.write(`created collection "${info.name}" (id ${info.collectionId}, ${info.shardsNum} shard(s))\n`);
  });

connOptions(collection.command("describe <name>"))
  .description("print a collection's schema, channels, partitions and row counts")
  .action(async (name: string, opts: ConnOpts) => {
    await using vb = await client(opts);
    const info = await vb.describeCollection({ collectionName: name });
    const stats = await vb.getCollectionStatistics({ collectionName: name });
    print({ ...info, statistics: stats });
  });

connOptions(collection.command("list"))
  .description("list the collections of a database")
  .option("--db <name>", "database", "default")
  .action(async (opts: ConnOpts & { db: string }) => {
    await using vb = await client(opts);
    const { collections } = await vb.listCollections({ dbName: opts.db });
    for (const c of collections) process.stdout.write(c + "\n");
  });

connOptions(collection.command("drop <name>"))
  .description("drop a collection and its data")
  .action(async (name: string, opts: ConnOpts) => {
    await using vb = await client(opts);
    await vb.dropCollection({ collectionName: name });
    process.stdout.write(`dropped collection "${name}"\n`);
  });

// ---- writes ----

async function* jsonlBatches(file: string, size: number): AsyncGenerator<Record<string, unknown>[]> {
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  let batch: Record<string, unknown>[] = [];
  let n = 0;
  for await (const line of lines) {
    n++;
    if (!line.trim()) continue;
    try {
      batch.push(JSON.parse(line) as Record<string, unknown>);
    } catch (err) {
      throw VbError.invalid(`${file}:${n}: not a JSON object: ${(err as Error).message}`);
    }
    if (batch.length >= size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length) yield batch;
}

connOptions(program.command("insert <collection>"))
  .description("insert rows from a JSON-lines file, or N random rows")
  .option("--file <rows.jsonl>", "one JSON object per line")
  .option("--random <n>", "insert n random rows that fit the schema")
  .option("--batch <n>", "rows per request", "2000")
  .option("--partition <name>", "partition")
  .action(async (name: string, opts: ConnOpts & { file?: string; random?: string; batch: string; partition?: string }) => {
    if (!opts.file === !opts.random) throw VbError.invalid("give --file rows.jsonl or --random N");
    await using vb = await client(opts);
    const batchSize = Math.max(1, Number(opts.batch));
    const bar = new cliProgress.SingleBar(
      { format: "inserting [{bar}] {value}/{total} rows | {rate} rows/s", stream: process.stderr, hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    const t0 = performance.now();
    let done = 0;
    const send = async (rows: Record<string, unknown>[]) => {
      await vb.insert({ collectionName: name, rows, ...(opts.partition ? { partitionName: opts.partition } : {}) });
      done += rows.length;
      bar.update(done, { rate: Math.round(done / ((performance.now() - t0) / 1000)) });
    };
    if (opts.random) {
      const total = Number(opts.random);
      const info = await vb.describeCollection({ collectionName: name });
      bar.start(total, 0, { rate: 0 });
      for (let off = 0; off < total; off += batchSize) await send(randomRows(info.schema, off, Math.min(batchSize, total - off), Date.now() % 1e6));
    } else {
      bar.start(0, 0, { rate: 0 });
      for await (const rows of jsonlBatches(opts.file!, batchSize)) {
        bar.setTotal(done + rows.length);
        await send(rows);
      }
    }
    bar.stop();
    process.stdout.write(`inserted ${done} rows into "${name}" (${Math.round(done / ((performance.now() - t0) / 1000))} rows/s)\n`);
  });

connOptions(program.command("flush <collection>"))
  .description("seal and write every growing segment of the collection to the object store")
  .action(async (name: string, opts: ConnOpts) => {
    await using vb = await client(opts);
    const t0 = performance.now();
    const res = await vb.flush({ collectionNames: [name] });
    const r = res.collections[name]!;
    process.stdout.write(`flushed "${name}": ${r.segmentIds.length} segment(s) sealed in ${((performance.now() - t0) / 1000).toFixed(2)} s\n`);
  });

// ---- demos ----

const demo = program.command("demo").description("self-contained demonstrations on a standalone of their own");
demo
  .command("write")
  .description("create a collection, insert rows, flush; print what was written")
  .option("--rows <n>", "rows", "100000")
  .option("--dim <n>", "vector dimension", "128")
  .option("--json", "one JSON line")
  .action(async (opts: { rows: string; dim: string; json?: boolean }) => {
    const { demoWrite } = await import("./demo_write.ts");
    const result = await demoWrite({ rows: Number(opts.rows), dim: Number(opts.dim) });
    if (opts.json) process.stdout.write(JSON.stringify(result) + "\n");
    else print(result);
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  const msg =
    err instanceof VbError ? `error ${err.code}: ${err.message}` : `error: ${err instanceof Error ? err.message : String(err)}`;
  process.stderr.write(msg + "\n");
  process.exitCode = 1;
}
