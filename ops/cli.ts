/**
 * `vbus`, the control actor's command line. Output meant for people goes to stdout; logs (pino JSON)
 * go to stderr. An error prints one line and exits non-zero.
 */
import { createReadStream, rmSync } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import { hostname } from "node:os";
import { createInterface } from "node:readline";
import { Command, Option } from "commander";
import { VbError, ErrorCode } from "../protocol/errors.ts";
import type { CollectionSchema, FieldSchema } from "../protocol/schema.ts";
import { connect, type VectorbusClient } from "../actors/control/client.ts";
import { defaultConfig, VB_VERSION, type VbConfig } from "./config.ts";
import { locateCluster } from "../actors/control/locate.ts";
import { DEFAULT_NATS_PORT, checkUpPorts, portOf } from "./ports.ts";
import { startStandalone, type Standalone } from "./standalone.ts";
import { DEFAULT_MILVUS_PORT } from "../actors/front/server.ts";
import { PodsLauncher, hostingPids } from "./pods.ts";
import { RUNFILE, isAlive, isOurProcess, readRunfile, runfilePath, stopLeftovers, writeRunfile, type Runfile } from "./runfile.ts";
import { randomRows } from "./random_rows.ts";
import { progress } from "./progress.ts";
import { formatActors, listActors } from "./actors.ts";
import { CHAOS_SCENARIOS, runChaos, type ChaosScenario } from "./chaos.ts";
import { ROLES, type Role, type RoleSet } from "./roles.ts";
import { ask } from "../runtime/ask.ts";
import { memoryTargetBytes, startHeapTuner } from "../runtime/heap_tuner.ts";
import { createLogger } from "../runtime/logger.ts";
import { Subjects } from "../protocol/subjects.ts";
import type { NatsConnection } from "../runtime/transport.ts";
import { DATACOORD_GET_STATUS, type DatacoordStatus } from "../actors/datacoord/status.ts";
import { parseRgOption, registerResourceGroupCommands } from "./cli_resource_groups.ts";

const program = new Command();
program.name("vbus").description("Vectorbus: a distributed vector database on NATS").version(VB_VERSION).showHelpAfterError();

interface ConnOpts {
  nats?: string;
  data?: string;
  prefix?: string;
}

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

/** The cluster named by --nats, VB_NATS_URL, or the runfile a local `vbus up` wrote: its NATS and prefix. */
async function cluster(opts: ConnOpts): Promise<{ url: string; prefix: string }> {
  const config = configFrom(opts);
  // as the typed client's connect() finds it, but no guess at the default port
  const where = locateCluster({ servers: config.natsUrl, prefix: opts.prefix, dataDir: config.dataDir });
  if (!where.found) {
    throw new VbError(ErrorCode.ServiceUnavailable, `no running Vectorbus found in ${config.dataDir}: start one with "npx vbus up", or pass --nats URL`);
  }
  return { url: String(where.servers), prefix: where.prefix };
}

/** Connects to the cluster (see `cluster`). */
async function client(opts: ConnOpts): Promise<VectorbusClient> {
  const { url, prefix } = await cluster(opts);
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

/**
 * Resolves at the first SIGINT or SIGTERM, or when this process is orphaned: wrappers such as `npx` die
 * on SIGTERM without passing it on, and a Vectorbus left running behind them would hold its ports. The
 * handlers stay registered for the rest of the process's life: a later signal calls `again` (which may
 * hurry the stop) and never ends the process before its cleanup has run.
 */
function until(again: (signal: NodeJS.Signals) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    const parent = process.ppid;
    let stopping = false;
    const watch = setInterval(() => {
      if (process.ppid !== parent) first();
    }, 500);
    watch.unref();
    function first() {
      stopping = true;
      clearInterval(watch);
      resolve();
    }
    const onSignal = (signal: NodeJS.Signals) => (stopping ? again(signal) : first());
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
}

/**
 * Refuses to start a second `vbus up` on a data directory whose runfile names a live one; stops what
 * a `vbus up` that was killed left there (a nats-server of its own on the same JetStream store).
 */
async function refuseRunning(dataDir: string): Promise<void> {
  let run: Runfile | undefined;
  try {
    run = readRunfile(dataDir);
  } catch {
    return; // unreadable: overwritten below
  }
  if (!run || run.pid === process.pid) return;
  if (isOurProcess(run.pid)) {
    throw VbError.invalid(
      `Vectorbus already runs on ${dataDir} (pid ${run.pid}, nats ${run.natsUrl}): stop it with "npx vbus stop${dataDir === defaultConfig().dataDir ? "" : ` --data ${dataDir}`}", or use another --data`,
    );
  }
  const left = await stopLeftovers(run);
  if (left.length) process.stdout.write(`stopped what the last vbus up (pid ${run.pid}) left running: ${left.join(", ")}\n`);
}

/** How long a standalone's actors may take to stop before its nats-server is stopped anyway. */
const STOP_BOUND_MS = 60_000;
/** After a second signal, how long they have left. */
const HURRIED_STOP_MS = 5_000;

// ---- up / serve ----

connOptions(program.command("up"))
  .description("start Vectorbus: a nats-server of its own (or --nats URL) and every actor in this process, or with --pods each role in a process of its own")
  .option("--s3 <url>", "object store on S3/MinIO: s3://KEY:SECRET@host:port/bucket?ssl=false (default: files under --data)")
  .addOption(new Option("--datanodes <n>", "datanodes to run").argParser(Number))
  .addOption(new Option("--querynodes <n>", "querynodes to run").argParser(Number))
  .addOption(new Option("--max-payload <bytes>", "max NATS payload of the nats-server it starts").argParser(Number))
  .option("--pods", "one process per role (vbus serve), restarted when they crash; logs in <data>/logs")
  .addOption(new Option("--proxies <n>", "proxies to run (--pods)").argParser(Number))
  .option("--standby", "two processes of each coordinator role, one leading and one waiting (--pods)")
  .option("--no-restart", "do not restart a crashed process (--pods)")
  .option("--port <port>", "client port of the nats-server it starts (0: a free one; ignored with --nats)", String(DEFAULT_NATS_PORT))
  .option("--milvus-port <port>", "port of the Milvus gRPC API (0: a free one; off: none)", String(DEFAULT_MILVUS_PORT))
  .option("--metrics-port <port>", "Prometheus /metrics on a port of its own (the Milvus port serves /metrics too); with --pods, the first of one port per process")
  .action(
    async (
      opts: ConnOpts & {
        s3?: string;
        datanodes?: number;
        querynodes?: number;
        maxPayload?: number;
        pods?: boolean;
        proxies?: number;
        standby?: boolean;
        restart: boolean;
        port: string;
        milvusPort: string;
        metricsPort?: string;
      },
    ) => {
      const config = configFrom(opts);
      if (opts.querynodes) config.querynodes = opts.querynodes;
      if (opts.maxPayload) config.maxPayload = opts.maxPayload;
      if (!config.natsUrl) config.natsPort = portOf("--port", opts.port);
      await refuseRunning(config.dataDir);
      await checkUpPorts({ nats: config.natsPort, milvus: milvusPortOf(opts.milvusPort)?.port });
      const metrics = opts.metricsPort === undefined ? undefined : { port: portOf("--metrics-port", opts.metricsPort) };
      if (opts.pods) {
        const { metricsPort: _, ...rest } = opts;
        return upPods(config, { ...rest, milvus: milvusPortOf(opts.milvusPort), ...(metrics ? { metricsPort: metrics.port } : {}) });
      }
      if (opts.proxies || opts.standby || !opts.restart) throw VbError.invalid("--proxies, --standby and --no-restart go with --pods");
      await upStandalone(config, milvusPortOf(opts.milvusPort), metrics);
    },
  );

/** `--milvus-port`: a port, 0 for a free one, or `off`. */
function milvusPortOf(v: string | undefined): { port: number } | undefined {
  if (v === undefined || v === "off") return undefined;
  const port = Number(v);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw VbError.invalid(`--milvus-port ${v}: give a port number, 0 for a free one, or off`);
  return { port };
}

/** ` milvus=host:port` for the ready line (localhost when it listens on every interface) */
const milvusReady = (sa: Standalone): string => {
  if (!sa.milvus) return "";
  const h = sa.milvus.host;
  return ` milvus=${h === "::" || h === "0.0.0.0" ? "localhost" : h.includes(":") ? `[${h}]` : h}:${sa.milvus.port}`;
};

/** This process's heaps kept near its memory target (`VB_MEMORY_TARGET`, else 80 % of the container's or machine's memory; 0: none). */
function tuneHeaps(): void {
  const targetBytes = memoryTargetBytes();
  if (targetBytes > 0) startHeapTuner({ targetBytes, log: createLogger({ module: "heap-tuner" }) });
}

async function upStandalone(config: VbConfig, milvus?: { port: number }, metrics?: { port: number }): Promise<void> {
  // the handlers are in place before anything starts: a signal during the start stops what started
  let hurry = (_ms: number): void => undefined;
  const signalled = until(() => {
    process.stdout.write(`stopping already; the actors get ${HURRIED_STOP_MS / 1000} s more, then the nats-server is stopped anyway\n`);
    hurry(HURRIED_STOP_MS);
  });
  tuneHeaps();
  const sa = await startStandalone(config, { ...(milvus ? { milvus } : {}), ...(metrics ? { metrics } : {}) });
  let runfileWritten = false;
  // whatever ends this process: no nats-server outlives it, no runfile says it runs
  process.once("exit", () => {
    if (sa.natsServer?.running && sa.natsServer.pid) process.kill(sa.natsServer.pid, "SIGKILL");
    if (runfileWritten) rmSyncQuiet(runfilePath(config.dataDir));
  });
  writeRunfile(config.dataDir, {
    natsUrl: sa.natsUrl,
    prefix: config.prefix,
    pid: process.pid,
    mode: "standalone",
    ...(sa.natsServer?.pid ? { natsPid: sa.natsServer.pid } : {}),
  });
  runfileWritten = true;
  process.stdout.write(`vectorbus ready nats=${sa.natsUrl}${milvusReady(sa)}\n`);
  await signalled;
  process.stdout.write("vectorbus stopping\n");
  const stopped = await new Promise<boolean>((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    hurry = (ms) => {
      clearTimeout(timer);
      timer = setTimeout(() => resolve(false), ms);
    };
    hurry(STOP_BOUND_MS);
    sa.stop()
      .then(
        () => resolve(true),
        (err: unknown) => {
          process.stderr.write(`error while stopping: ${VbError.from(err).message}\n`);
          resolve(false);
        },
      )
      .finally(() => {
        hurry = () => undefined;
        clearTimeout(timer);
      });
  });
  if (!stopped) {
    process.stderr.write("the actors did not stop in time: stopping the nats-server\n");
    await sa.natsServer?.stop({ keepStore: true });
  }
  await rm(runfilePath(config.dataDir), { force: true });
  runfileWritten = false;
  process.stdout.write("vectorbus stopped\n");
  // actors that did not stop may hold timers: end here
  if (!stopped) process.exit(1);
}

async function upPods(
  config: VbConfig,
  opts: { datanodes?: number; querynodes?: number; proxies?: number; standby?: boolean; restart: boolean; milvus: { port: number } | undefined; metricsPort?: number },
): Promise<void> {
  const launcher = new PodsLauncher({
    config,
    ...(opts.milvus ? { milvusPort: opts.milvus.port } : {}),
    ...(opts.metricsPort !== undefined ? { metricsPort: opts.metricsPort } : {}),
    querynodes: opts.querynodes ?? 1,
    datanodes: opts.datanodes ?? 1,
    proxies: opts.proxies ?? 1,
    standby: opts.standby ?? false,
    restart: opts.restart,
  });
  const signalled = until(() => {
    process.stdout.write("stopping already; SIGKILL to the processes still running, then the nats-server stops and the runfile goes\n");
    launcher.force();
  });
  process.stdout.write(`vectorbus pods: data ${config.dataDir}, logs in ${launcher.logDir}\n`);
  const started = launcher.start();
  let failure: unknown;
  try {
    const first = await Promise.race([started.then(() => "ready" as const), signalled.then(() => "signal" as const)]);
    if (first === "ready") {
      process.stdout.write(`vectorbus ready nats=${launcher.natsUrl}${launcher.milvusPort ? ` milvus=localhost:${launcher.milvusPort}` : ""}\n`);
      await signalled;
    }
    process.stdout.write("vectorbus stopping\n");
  } catch (err) {
    failure = err;
  } finally {
    await launcher.stop();
    await started.catch((err: unknown) => (failure ??= err));
  }
  if (failure) throw failure;
  process.stdout.write("vectorbus stopped\n");
}

function rmSyncQuiet(file: string): void {
  try {
    rmSync(file, { force: true });
  } catch {
    // nothing to remove
  }
}

connOptions(program.command("serve"))
  .description("run one role in this process (a pod): rootcoord, datacoord, datanode, querycoord, querynode or proxy, on an existing NATS")
  .requiredOption("--role <role>", `one of ${ROLES.join(", ")}`)
  .option("--node-id <id>", "node id (datanodes, querynodes; for the other roles only a name in logs and discovery)")
  .option("--s3 <url>", "object store on S3/MinIO (default: files under --data)")
  .option("--milvus-port <port>", `role proxy: serve the Milvus gRPC API on this port (e.g. ${DEFAULT_MILVUS_PORT}; 0: a free one; default: none)`)
  .option("--metrics-port <port>", "serve Prometheus metrics at /metrics on this port (0: a free one; default: none)")
  .action(async (opts: ConnOpts & { role: string; nodeId?: string; s3?: string; milvusPort?: string; metricsPort?: string }) => {
    if (!(ROLES as readonly string[]).includes(opts.role)) throw VbError.invalid(`unknown role "${opts.role}": use one of ${ROLES.join(", ")}`);
    const config = configFrom(opts);
    if (!config.natsUrl) throw VbError.invalid("serve needs --nats URL (or VB_NATS_URL): a pod joins an existing cluster");
    const role = opts.role as Role;
    // a node's id names the process in logs and discovery; a coordinator or proxy pod goes by its role
    // unless given a name
    const nodeId = role === "datanode" ? (opts.nodeId ?? "dn1") : role === "querynode" ? (opts.nodeId ?? "qn1") : (opts.nodeId ?? role);
    const roles: RoleSet = role === "datanode" ? { datanodes: [nodeId] } : role === "querynode" ? { querynodes: [nodeId] } : { [role]: true };
    const signalled = until(() => process.stderr.write(`${role} ${nodeId}: stopping already; the stop goes on to its end\n`));
    tuneHeaps();
    // a pod's lease identity is its process: a restarted coordinator pod waits for its old lease to
    // expire (or to be resigned), so two pods on one host can never take each other's lease
    const starting = startStandalone(config, {
      roles,
      holderId: `${hostname()}:${process.pid}:${role}`,
      nodeId,
      ...(role === "proxy" && opts.milvusPort !== undefined && opts.milvusPort !== "off" ? { milvus: milvusPortOf(opts.milvusPort)! } : {}),
      ...(opts.metricsPort !== undefined ? { metrics: { port: portOf("--metrics-port", opts.metricsPort) } } : {}),
    });
    const first = await Promise.race([starting.then(() => "started" as const), signalled.then(() => "signal" as const)]);
    if (first === "signal") {
      // a standby waits on its lease and may never finish starting: a little time, then it goes (it holds nothing)
      const late = await Promise.race([starting.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), SERVE_START_GRACE_MS).unref())]);
      if (!late) {
        process.stderr.write(`${role} ${nodeId}: stopped before it was ready (a standby, or still starting)\n`);
        process.exit(0);
      }
    }
    const sa = await starting;
    if (first === "started") {
      process.stdout.write(`vectorbus ${role} ready nats=${sa.natsUrl}${milvusReady(sa)}\n`);
      await signalled;
    }
    await sa.stop();
  });

/** How long a `vbus serve` stopped during its start may take to finish starting (then to stop gracefully). */
const SERVE_START_GRACE_MS = 3_000;

// ---- stop ----

program
  .command("stop")
  .description("stop the `vbus up` (standalone or pods) of a data directory, found through its vbus.json")
  .option("--data <dir>", "data directory of the local `vbus up`")
  .option("--timeout <s>", "how long to wait for it to stop", "120")
  .action(async (opts: { data?: string; timeout: string }) => {
    const { dataDir } = configFrom(opts);
    const run = readRunfile(dataDir);
    if (!run) throw new VbError(ErrorCode.ServiceUnavailable, `no running Vectorbus found in ${dataDir} (no ${RUNFILE})`);
    const t0 = performance.now();
    const secs = () => ((performance.now() - t0) / 1000).toFixed(1);
    const mode = run.mode ?? "standalone";
    if (isOurProcess(run.pid)) {
      process.stdout.write(`stopping vectorbus ${mode} (pid ${run.pid})\n`);
      process.kill(run.pid, "SIGTERM");
      const deadline = Date.now() + Number(opts.timeout) * 1000;
      while (isAlive(run.pid)) {
        if (Date.now() > deadline) {
          throw new VbError(
            ErrorCode.Timeout,
            `vectorbus (pid ${run.pid}) is still stopping after ${opts.timeout} s: wait and run "vbus stop" again, or kill -9 ${run.pid} and then run "vbus stop" to clear what it left`,
          );
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      if (readRunfile(dataDir)?.pid !== run.pid) {
        process.stdout.write(`stopped vectorbus ${mode} (pid ${run.pid}) in ${secs()} s\n`);
        return;
      }
      process.stdout.write(`vectorbus (pid ${run.pid}) exited but left its runfile\n`);
    } else {
      process.stdout.write(`vectorbus (pid ${run.pid}) is not running\n`);
    }
    // what a launcher that died without its cleanup left: its children and its nats-server
    const left = await stopLeftovers(run);
    await rm(runfilePath(dataDir), { force: true });
    process.stdout.write(`removed ${runfilePath(dataDir)}${left.length ? `; stopped what it left: ${left.join(", ")}` : ""}\n`);
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
  .description("insert rows from a JSON-lines file (--file) or n random rows (--random), showing progress")
  .option("--file <rows.jsonl>", "one JSON object per line")
  .option("--random <n>", "insert n random rows that fit the schema")
  .option("--batch <n>", "rows per request", "2000")
  .option("--partition <name>", "the partition to insert into (default: the collection's default partition)")
  .action(async (name: string, opts: ConnOpts & { file?: string; random?: string; batch: string; partition?: string }) => {
    if (!opts.file === !opts.random) throw VbError.invalid("give --file rows.jsonl or --random N");
    await using vb = await client(opts);
    const batchSize = Math.max(1, Number(opts.batch));
    const bar = progress({
      barFormat: "inserting [{bar}] {value}/{total} rows | {rate} rows/s",
      line: (p) => `inserting into "${name}": ${p.value}${opts.random ? `/${p.total}` : ""} rows sent${p.percent !== undefined ? ` (${p.percent}%)` : ""}, ${String(p.payload.rate)} rows/s`,
    });
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
  .description("seal every growing segment of the collection and wait until they are written to the object store, showing progress")
  .option("--no-wait", "seal the segments and return; the writes go on")
  .option("--timeout <s>", "how long to wait for the writes", "600")
  .action(async (name: string, opts: ConnOpts & { wait: boolean; timeout: string }) => {
    await using vb = await client(opts);
    const t0 = performance.now();
    const timeoutMs = Number(opts.timeout) * 1000;
    const bar = progress({
      barFormat: `flushing "${name}": sealing and writing the growing segments | {duration_formatted}`,
      line: () => `flushing "${name}": sealing and writing the growing segments`,
    });
    // the proxy answers once the segments are written: a line every few seconds meanwhile
    bar.start(0, 0);
    const tick = opts.wait ? setInterval(() => bar.update(0), 250) : undefined;
    let res;
    try {
      res = await vb.flush({ collectionNames: [name], wait: opts.wait, timeoutMs }, { timeoutMs: timeoutMs + 10_000 });
    } finally {
      clearInterval(tick);
      bar.stop();
    }
    const r = res.collections[name]!;
    const took = ((performance.now() - t0) / 1000).toFixed(2);
    process.stdout.write(`flushed "${name}": ${r.segmentIds.length} segment(s) sealed${r.flushed ? " and written" : "; writing"} in ${took} s\n`);
  });

// ---- indexes ----

const index = program.command("index").description("create, describe and drop vector indexes");

function parseParams(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw VbError.invalid(`--params must be a JSON object such as '{"M":16}': ${(err as Error).message}`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw VbError.invalid(`--params must be a JSON object such as '{"M":16}'`);
  return v as Record<string, unknown>;
}

connOptions(index.command("create <collection>"))
  .description("index a vector field (FLAT, HNSW, HNSW_SQ8, HNSW_FP16, IVF_FLAT or AUTOINDEX) and show the build progress")
  .requiredOption("--field <name>", "the vector field")
  .option("--type <type>", "index type", "AUTOINDEX")
  .option("--metric <metric>", "L2, IP or COSINE", "COSINE")
  .option("--params <json>", `build parameters, e.g. '{"M":16,"efConstruction":128}' (HNSW) or '{"nlist":128}' (IVF_FLAT)`)
  .option("--name <name>", "index name (default: the field's name)")
  .option("--no-wait", "create the index and return; the builds go on")
  .action(async (name: string, opts: ConnOpts & { field: string; type: string; metric: string; params?: string; name?: string; wait: boolean }) => {
    const params = parseParams(opts.params);
    await using vb = await client(opts);
    await vb.createIndex({
      collectionName: name,
      fieldName: opts.field,
      indexType: opts.type,
      metricType: opts.metric,
      ...(params ? { params } : {}),
      ...(opts.name ? { indexName: opts.name } : {}),
    });
    if (!opts.wait) {
      process.stdout.write(`created index on "${name}".${opts.field}; building\n`);
      return;
    }
    const bar = progress({
      barFormat: "building [{bar}] {value}/{total} rows | {pending} build(s) pending",
      line: (p) =>
        `building the index on "${name}".${opts.field}: ${p.value}/${p.total} rows indexed${p.percent !== undefined ? ` (${p.percent}%)` : ""}, ${String(p.payload.pending)} build(s) pending`,
    });
    bar.start(0, 0, { pending: "?" });
    let lastChange = Date.now();
    let last = -1;
    let rows = 0;
    for (;;) {
      const { indexes } = await vb.describeIndex({ collectionName: name });
      const p = indexes.find((i) => i.fieldName === opts.field);
      if (!p) {
        bar.stop();
        throw new VbError(ErrorCode.IndexNotFound, `the index on "${name}".${opts.field} is gone: was it dropped?`);
      }
      bar.setTotal(p.totalRows);
      bar.update(p.indexedRows, { pending: p.pendingBuilds });
      rows = p.indexedRows;
      if (p.state === "Finished") break;
      if (p.state === "Failed") {
        bar.stop();
        const why = p.failedBuilds.map((f) => `segment ${f.segmentId}: ${f.reason}`).join("; ");
        throw new VbError(ErrorCode.IndexNotSupported, `index builds of "${name}".${opts.field} failed: ${why}; create the index again to retry them`);
      }
      if (p.indexedRows !== last) {
        last = p.indexedRows;
        lastChange = Date.now();
      } else if (Date.now() - lastChange > 600_000) {
        bar.stop();
        throw new VbError(ErrorCode.Timeout, `index build on "${name}".${opts.field} made no progress for 10 minutes: are datanodes up? (vbus index describe ${name})`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    bar.stop();
    process.stdout.write(`indexed "${name}".${opts.field}: ${rows} rows\n`);
  });

connOptions(index.command("describe <collection>"))
  .description("the collection's indexes: type, metric, params, rows indexed, builds pending or failed")
  .option("--name <name>", "one index")
  .action(async (name: string, opts: ConnOpts & { name?: string }) => {
    await using vb = await client(opts);
    const { indexes } = await vb.describeIndex({ collectionName: name, ...(opts.name ? { indexName: opts.name } : {}) });
    print(indexes);
  });

connOptions(index.command("drop <collection>"))
  .description("drop an index and remove its files")
  .option("--name <name>", "the index (needed when the collection has several)")
  .action(async (name: string, opts: ConnOpts & { name?: string }) => {
    await using vb = await client(opts);
    await vb.dropIndex({ collectionName: name, ...(opts.name ? { indexName: opts.name } : {}) });
    process.stdout.write(`dropped the index${opts.name ? ` "${opts.name}"` : ""} of "${name}"\n`);
  });

// ---- reads ----

connOptions(program.command("load <collection>"))
  .description("load a collection into the querynodes, showing progress and what the load waits on")
  .option("--replicas <n>", "replicas (each on its own querynodes)", "1")
  .option("--rg <groups>", "resource groups of the replicas: rg_a:1,rg_b:1 (one replica in each), or rg_a (every replica there)")
  .option("--no-wait", "start the load and return")
  .action(async (name: string, opts: ConnOpts & { replicas: string; rg?: string; wait: boolean }) => {
    await using vb = await client(opts);
    const rg = opts.rg ? parseRgOption(opts.rg) : undefined;
    await vb.loadCollection({
      collectionName: name,
      replicaNumber: rg?.replicaNumber ?? Number(opts.replicas),
      ...(rg ? { resourceGroups: rg.resourceGroups } : {}),
    });
    if (!opts.wait) {
      process.stdout.write(`loading "${name}"\n`);
      return;
    }
    const bar = progress({
      barFormat: "loading [{bar}] {value}% {blocker}",
      line: (p) => `loading "${name}": ${p.value}%${p.payload.blocker ? `, ${String(p.payload.blocker)}` : ""}`,
    });
    bar.start(100, 0, { blocker: "" });
    let lastChange = Date.now();
    let last = -1;
    for (;;) {
      const p = await vb.getLoadingProgress({ collectionName: name });
      const blocker = p.blockers[0] ? `waiting on ${p.blockers[0].kind} ${p.blockers[0].subject}: ${p.blockers[0].reason}` : "";
      bar.update(p.progress, { blocker });
      if (p.state === "Loaded") break;
      if (p.progress !== last) {
        last = p.progress;
        lastChange = Date.now();
      } else if (Date.now() - lastChange > 120_000) {
        bar.stop();
        throw new VbError(ErrorCode.CollectionNotFullyLoaded, `load of "${name}" made no progress for 2 minutes: ${blocker || "see vbus status"}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    bar.stop();
    process.stdout.write(`loaded "${name}"\n`);
  });

connOptions(program.command("release <collection>"))
  .description("release a collection from the querynodes")
  .action(async (name: string, opts: ConnOpts) => {
    await using vb = await client(opts);
    await vb.releaseCollection({ collectionName: name });
    process.stdout.write(`released "${name}"\n`);
  });

function parseVector(text: string): number[] {
  const v = JSON.parse(text) as unknown;
  if (!Array.isArray(v) || v.some((x) => typeof x !== "number")) throw VbError.invalid(`--vector must be a JSON list of numbers`);
  return v as number[];
}

connOptions(program.command("search <collection>"))
  .description("top-k search with a query vector (--vector JSON list), a random one (--random), or a stored row's vector (--id)")
  .option("--vector <json>", "the query vector, e.g. [0.1, 0.2, ...]")
  .option("--random", "a random query vector")
  .option("--id <pk>", "the vector of the stored row with this primary key")
  .option("--field <name>", "the vector field to search (default: the first one)")
  .option("--limit <n>", "top k", "10")
  .option("--offset <n>", "skip this many", "0")
  .option("--filter <expr>", "boolean filter expression")
  .option("--output <fields>", "comma-separated output fields")
  .option("--metric <m>", "L2, IP or COSINE (default: the index's, or COSINE)")
  .option("--params <json>", `search params, e.g. '{"ef":64}' (HNSW) or '{"nprobe":16}' (IVF_FLAT)`)
  .option("--consistency <level>", "Strong, Session, Bounded or Eventually")
  .action(async (name: string, opts: ConnOpts & { vector?: string; random?: boolean; id?: string; field?: string; limit: string; offset: string; filter?: string; output?: string; metric?: string; params?: string; consistency?: string }) => {
    const searchParams = parseParams(opts.params);
    await using vb = await client(opts);
    if ([opts.vector, opts.random, opts.id].filter((x) => x !== undefined).length !== 1) {
      throw VbError.invalid("give one of --vector [..], --random or --id <pk>");
    }
    const vectorField = async (): Promise<{ f: FieldSchema; schema: CollectionSchema }> => {
      const { schema } = await vb.describeCollection({ collectionName: name });
      const vectors = schema.fields.filter((x) => x.type === "FloatVector");
      const f = opts.field ? vectors.find((x) => x.name === opts.field) : vectors[0];
      if (!f) {
        throw VbError.invalid(`--field: collection "${name}" has no vector field ${opts.field ? `"${opts.field}"` : ""}; its vector fields are ${vectors.map((x) => `"${x.name}"`).join(", ")}`);
      }
      return { f, schema };
    };
    let vector: number[];
    let annsField = opts.field;
    if (opts.vector) vector = parseVector(opts.vector);
    else if (opts.random) {
      const { f } = await vectorField();
      vector = Array.from({ length: f.dim! }, () => Math.random() * 2 - 1);
    } else {
      const { f, schema } = await vectorField();
      annsField = f.name;
      const pk = schema.fields.find((x) => x.isPrimaryKey)!;
      let id: bigint | string = opts.id!;
      if (pk.type === "Int64") {
        if (!/^-?\d+$/.test(opts.id!)) throw VbError.invalid(`--id: the primary key "${pk.name}" of "${name}" is an Int64, got ${JSON.stringify(opts.id)}`);
        id = BigInt(opts.id!);
      }
      const { rows } = await vb.query({
        collectionName: name,
        ids: (pk.type === "Int64" ? [id as bigint] : [id as string]) as bigint[] | string[],
        outputFields: [f.name],
        ...(opts.consistency ? { consistencyLevel: opts.consistency as "Strong" } : {}),
      });
      if (rows.length === 0) throw new VbError(ErrorCode.ParameterInvalid, `--id: no row of "${name}" has ${pk.name} ${opts.id}`);
      vector = Array.from(rows[0]![f.name] as ArrayLike<number>);
    }
    const res = await vb.search({
      collectionName: name,
      data: [vector],
      ...(annsField ? { annsField } : {}),
      limit: Number(opts.limit),
      offset: Number(opts.offset),
      ...(opts.filter ? { filter: opts.filter } : {}),
      ...(opts.output ? { outputFields: opts.output.split(",").map((x) => x.trim()) } : {}),
      ...(opts.metric ? { metricType: opts.metric as "L2" } : {}),
      ...(searchParams ? { searchParams } : {}),
      ...(opts.consistency ? { consistencyLevel: opts.consistency as "Strong" } : {}),
    });
    const hits = res.results[0]!;
    print(Array.from(hits.ids as ArrayLike<bigint | string>, (id, i) => ({ id, score: hits.scores[i], ...hits.entities[i] })));
  });

connOptions(program.command("query <collection>"))
  .description("rows that match a filter (or count(*))")
  .option("--filter <expr>", "boolean filter expression")
  .option("--output <fields>", 'comma-separated output fields, or "count(*)"')
  .option("--limit <n>", "at most this many rows")
  .option("--offset <n>", "skip this many", "0")
  .option("--consistency <level>", "Strong, Session, Bounded or Eventually")
  .action(async (name: string, opts: ConnOpts & { filter?: string; output?: string; limit?: string; offset: string; consistency?: string }) => {
    await using vb = await client(opts);
    const res = await vb.query({
      collectionName: name,
      ...(opts.filter ? { filter: opts.filter } : {}),
      ...(opts.output ? { outputFields: opts.output.split(",").map((x) => x.trim()) } : {}),
      ...(opts.limit ? { limit: Number(opts.limit) } : {}),
      offset: Number(opts.offset),
      ...(opts.consistency ? { consistencyLevel: opts.consistency as "Strong" } : {}),
    });
    print(res.rows);
  });

connOptions(program.command("status"))
  .description("pods' processes, querynodes, replicas, per-node delegators/segments/rows/memory, load progress and what it waits on")
  .option("--json", "as JSON")
  .action(async (opts: ConnOpts & { json?: boolean }) => {
    const { prefix } = await cluster(opts);
    await using vb = await client(opts);
    // pods mode: the processes of a local `vbus up --pods`, from its runfile, shown first (they tell
    // why the cluster may not answer)
    const processes = opts.nats ? undefined : await podProcesses(configFrom(opts).dataDir, vb.nc, prefix);
    if (processes && !opts.json) process.stdout.write(formatProcesses(processes));
    const st = await vb.getStatus({});
    // records datacoord could not read (a lost checkpoint would read as position 0): said, never hidden
    const dc = await ask<DatacoordStatus>(vb.nc, new Subjects(prefix).datacoord(), DATACOORD_GET_STATUS, {}, { timeoutMs: 10_000 }).catch(
      (err: unknown) => ({ error: VbError.from(err).message }) as const,
    );
    const unreadable = "error" in dc ? undefined : dc.undecodableRecords;
    if (opts.json) return print({ ...st, datacoord: dc, ...(processes ? { processes } : {}) });
    const names = new Map<string, string>();
    for (const db of (await vb.listDatabases({})).databases) {
      for (const name of (await vb.listCollections({ dbName: db })).collections) {
        const info = await vb.describeCollection({ dbName: db, collectionName: name });
        names.set(String(info.collectionId), db === "default" ? name : `${db}.${name}`);
      }
    }
    const mb = (b: number) => `${(b / 1048576).toFixed(1)} MB`;
    const feed = st.feed;
    process.stdout.write(
      `querynodes:${feed ? ` (querycoord reads their distributions ${feed.lagMs} ms behind the feed; ${feed.pulse ? `their heartbeats ${feed.pulseLagMs} ms behind` : "no pulse: heartbeats from the distributions alone"})` : ""}\n`,
    );
    for (const n of st.nodes) {
      process.stdout.write(
        `  ${n.nodeId.padEnd(12)} ${(n.state === "stopping" ? "stopping" : n.alive ? "up" : "DOWN").padEnd(8)} rows ${String(n.rows).padStart(9)}  segments ${String(n.segments).padStart(4)}  delegators ${String(n.delegators).padStart(3)}  memory ${mb(n.memoryBytes)} / ${mb(n.memoryLimitBytes)}${n.score !== undefined ? `  score ${n.score}` : ""}\n`,
      );
    }
    if ((st.moves && st.moves.length > 0) || (st.channelMoves && st.channelMoves.length > 0)) {
      process.stdout.write("balance moves in flight:\n");
      const since = (at: number) => `${((Date.now() - at) / 1000).toFixed(1)} s`;
      for (const m of st.moves ?? []) {
        const coll = names.get(String(m.collectionId)) ?? String(m.collectionId);
        process.stdout.write(`  ${coll} segment ${m.segmentId} (${m.rows} rows) ${m.from} → ${m.to}, ${since(m.startedAt)}\n`);
      }
      for (const m of st.channelMoves ?? []) {
        const coll = names.get(String(m.collectionId)) ?? String(m.collectionId);
        process.stdout.write(`  ${coll} delegator of ${m.vchannel} ${m.from} → ${m.to}, ${since(m.startedAt)}\n`);
      }
    }
    if (st.resourceGroups && (st.resourceGroups.length > 1 || (st.resourceGroupEvents ?? []).length > 0)) {
      process.stdout.write("resource groups:\n");
      for (const g of st.resourceGroups) {
        process.stdout.write(`  ${g.name.padEnd(26)} requests ${String(g.requests).padStart(3)}  limits ${String(g.limits).padStart(7)}  nodes [${g.nodes.join(", ")}]\n`);
      }
      for (const e of (st.resourceGroupEvents ?? []).slice(-5)) {
        process.stdout.write(`    ${new Date(e.at).toISOString().slice(11, 19)} ${e.nodeId} ${e.from ? `${e.from} → ` : ""}${e.to}: ${e.reason}\n`);
      }
    }
    process.stdout.write("collections:\n");
    const rgOf = (g: string | undefined) => (g && g !== "__default_resource_group" ? `${g}` : "");
    for (const c of st.collections) {
      process.stdout.write(
        `  ${(names.get(String(c.collectionId)) ?? String(c.collectionId)).padEnd(20)} ${c.state.padEnd(8)} ${c.progress}%  replicas ${c.replicas.map((r) => `${r.replicaId}:${rgOf(r.resourceGroup)}[${r.nodes.join(",")}]`).join(" ")}\n`,
      );
      for (const b of c.blockers) process.stdout.write(`    waiting on ${b.kind} ${b.subject}: ${b.reason}\n`);
    }
    if ("error" in dc) process.stdout.write(`datacoord: no answer (${dc.error})\n`);
    else if (unreadable && unreadable.length > 0) {
      process.stdout.write(`unreadable meta records (${unreadable.length}; ignored until rewritten):\n`);
      for (const r of unreadable) process.stdout.write(`  ${r.bucket} ${r.key}: ${r.error}\n`);
    }
  });

/** The processes of a pods launcher, as `vbus status` shows them (--json: the same fields). */
interface PodProcesses {
  launcherPid: number;
  natsPid?: number;
  ready: boolean;
  /** `leader` for a coordinator: whether it leads its role now (false: a standby) */
  children: { role: string; node: string; pid: number | null; alive: boolean; restarts: number; log: string; leader?: boolean }[];
}

async function podProcesses(dataDir: string, nc: NatsConnection, prefix: string): Promise<PodProcesses | undefined> {
  const run = readRunfile(dataDir);
  if (run?.mode !== "pods") return undefined;
  const coordinators = ["rootcoord", "datacoord", "querycoord"] as const;
  const leaders = new Set((await Promise.all(coordinators.map((r) => hostingPids(nc, prefix, r)))).flatMap((pids) => [...pids]));
  return {
    launcherPid: run.pid,
    ...(run.natsPid ? { natsPid: run.natsPid } : {}),
    ready: run.ready ?? false,
    children: (run.children ?? []).map((c) => ({
      role: c.role,
      node: c.node,
      pid: c.pid ?? null,
      alive: isAlive(c.pid),
      restarts: c.restarts,
      log: c.log,
      ...((coordinators as readonly string[]).includes(c.role) ? { leader: c.pid !== undefined && leaders.has(c.pid) } : {}),
    })),
  };
}

function formatProcesses(p: PodProcesses): string {
  const head = `processes (pods; launcher pid ${p.launcherPid}${isAlive(p.launcherPid) ? "" : " NOT RUNNING"}${p.natsPid ? `, nats-server pid ${p.natsPid}${isAlive(p.natsPid) ? "" : " DOWN"}` : ""}${p.ready ? "" : ", starting"}):\n`;
  return (
    head +
    p.children
      .map(
        (c) =>
          `  ${c.role.padEnd(10)} ${c.node.padEnd(12)} pid ${String(c.pid ?? "-").padStart(7)}  ${c.alive ? "up  " : "DOWN"}  restarts ${c.restarts}${c.leader === undefined ? "" : c.leader ? "  leader" : "  standby"}\n`,
      )
      .join("")
  );
}

connOptions(program.command("actors"))
  .description("every actor of the cluster, by kind: address, process, node (segments: collection, rows, indexes), from NATS service discovery")
  .option("--kind <kind>", "only this kind: rootcoord, datacoord, datanode, querycoord, querynode, proxy, delegator, segment")
  .option("--json", "as a JSON array")
  .action(async (opts: ConnOpts & { kind?: string; json?: boolean }) => {
    const { url, prefix } = await cluster(opts);
    await using vb = await connect({ servers: url, prefix });
    const actors = await listActors(vb.nc, { prefix, ...(opts.kind ? { kind: opts.kind } : {}) });
    if (opts.json) return print(actors);
    process.stdout.write(formatActors(actors));
  });

// ---- demos ----

// (ops/vbus.mjs quiets the actors' logs for demos: they print their result)
program
  .command("chaos <scenario>")
  .description(`run a pods cluster of its own on loopback under a failure, with Strong searches and inserts, and print what the clients saw: ${CHAOS_SCENARIOS.join(", ")}`)
  .option("--duration <s>", "seconds of load and faults", "120")
  .option("--interval <s>", "seconds between two faults", "20")
  .option("--querynodes <n>", "querynodes", "3")
  .option("--replicas <n>", "replicas of the collection", "2")
  .option("--rows <n>", "rows loaded before the faults start", "10000")
  .option("--json", "one JSON object on stdout (progress on stderr)")
  .action(async (scenario: string, opts: { duration: string; interval: string; querynodes: string; replicas: string; rows: string; json?: boolean }) => {
    if (!(CHAOS_SCENARIOS as readonly string[]).includes(scenario)) {
      throw VbError.invalid(`unknown chaos scenario "${scenario}": use one of ${CHAOS_SCENARIOS.join(", ")}`);
    }
    process.env.VB_LOG_LEVEL ??= "warn";
    const report = await runChaos({
      scenario: scenario as ChaosScenario,
      durationS: Number(opts.duration),
      intervalS: Number(opts.interval),
      querynodes: Number(opts.querynodes),
      replicas: Number(opts.replicas),
      rows: Number(opts.rows),
      say: (line) => process.stderr.write(line + "\n"),
    });
    if (opts.json) process.stdout.write(JSON.stringify(report) + "\n");
    else print(report);
  });

registerResourceGroupCommands<ConnOpts>(program, { connOptions, client, print });

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

demo
  .command("e2e")
  .description("2 querynodes, 2 shards, 2 replicas: exact search, filters, read-your-writes, handoff under flushes")
  .option("--rows <n>", "rows", "20000")
  .option("--flushes <n>", "flushes during the handoff run", "12")
  .option("--json", "one JSON line")
  .action(async (opts: { rows: string; flushes: string; json?: boolean }) => {
    const { demoE2e } = await import("./demo_e2e.ts");
    const result = await demoE2e({ rows: Number(opts.rows), flushes: Number(opts.flushes) });
    if (opts.json) process.stdout.write(JSON.stringify(result) + "\n");
    else print(result);
  });

demo
  .command("milvus-sdk")
  .description("the Milvus Node SDK unchanged against the Milvus front door: MilvusClient (gRPC) and HttpClient (REST v2) flows, results against brute force")
  .option("--rows <n>", "rows", "5000")
  .option("--json", "one JSON line")
  .action(async (opts: { rows: string; json?: boolean }) => {
    const { demoMilvus } = await import("./demo_milvus.ts");
    const result = await demoMilvus({ rows: Number(opts.rows) });
    if (opts.json) process.stdout.write(JSON.stringify(result) + "\n");
    else print(result);
    if (!result.grpc_ok || !result.rest_ok) process.exitCode = 1;
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  const msg =
    err instanceof VbError ? `error ${err.code}: ${err.message}` : `error: ${err instanceof Error ? err.message : String(err)}`;
  process.stderr.write(msg + "\n");
  process.exitCode = 1;
}
