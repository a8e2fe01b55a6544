/**
 * The backlog benchmark: a standalone (with a nats-server of its own, as `vbus up` runs it) gets `rows`
 * rows inserted and not flushed, is stopped, and is started again on the same data, so its datanode and
 * querynode start by reading the whole DML backlog. Measured after the restart: how long until a control
 * ask answers (`vbus status`'s GetStatus), how long load and flush take, whether count(*) is exact, the
 * nats-server's "Slow Consumer" log lines, the process's peak RSS, and the slowest of the control asks
 * (GetStatus every 200 ms) made while load and flush read the backlog.
 *
 * The physical reference, in the same run: the DML bytes on disk and how fast a bare JetStream consumer
 * (its own connection, nothing done with the messages) reads all of them from the same store.
 *
 * `npm run bench -- backlog --rows 1000000 --dim 128 --json` prints
 * `{rows, dim, restart_ready_s, load_s, flush_s, count, slow_consumer_events, peak_rss_mb, dml_mb, raw_read_s, ...}`.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DeliverPolicy } from "@nats-io/jetstream";
import { connect, type VectorbusClient } from "../actors/control/client.ts";
import { Subjects } from "../protocol/subjects.ts";
import { defaultConfig, type VbConfig } from "../ops/config.ts";
import { startNatsServer } from "../ops/nats_server.ts";
import { startStandalone } from "../ops/standalone.ts";
import { jetstreamOf } from "../runtime/streams.ts";
import { connectNats } from "../runtime/transport.ts";
import { option, report, round } from "./util.ts";

const PREFIX = "bench";
const NAME = "backlog";

export async function main(args: string[]): Promise<void> {
  const rows = option(args, "rows", 200_000);
  const dim = option(args, "dim", 128);
  const batch = option(args, "batch", 4_096);
  const shards = option(args, "shards", 1);
  const dir = await mkdtemp(join(tmpdir(), "vbus-bench-backlog-"));
  const config: VbConfig = { ...defaultConfig({}), dataDir: dir, prefix: PREFIX };
  const logFile = join(dir, "nats-server.log");
  try {
    // 1. the backlog: rows inserted, never flushed
    const tIns = performance.now();
    let sa = await startStandalone(config);
    let vb = await connect({ servers: sa.natsUrl, prefix: PREFIX, name: "bench-backlog-client" });
    await vb.createCollection({
      schema: {
        name: NAME,
        fields: [
          { name: "id", type: "Int64", isPrimaryKey: true },
          { name: "vector", type: "FloatVector", dim },
        ],
      },
      shardsNum: shards,
    });
    await insertRows(vb, rows, dim, batch);
    const insertS = (performance.now() - tIns) / 1000;
    await vb.close();
    await sa.stop();
    const slowBefore = await slowConsumerLines(logFile);

    // 2. the physical reference: a bare consumer reads every DML message from the same store
    const raw = await rawRead(config, dir);

    // 3. the restart on the same data
    const rssBefore = process.memoryUsage().rss;
    let peakRss = rssBefore;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
    const errors: string[] = [];
    const t0 = performance.now();
    const since = (t: number) => round((performance.now() - t) / 1000, 2);
    sa = await startStandalone(config);
    const startS = since(t0);
    vb = await connect({ servers: sa.natsUrl, prefix: PREFIX, name: "bench-backlog-client" });
    const readyS = await timed(errors, "status", 120_000, async (deadline) => {
      for (;;) {
        try {
          await vb.getStatus({}, { timeoutMs: 2_000 });
          return;
        } catch (err) {
          if (Date.now() > deadline) throw err;
        }
      }
    }).then((s) => (s === null ? null : round(startS + s, 2)));
    // while the backlog is read (load, flush), a control ask every 200 ms: how long it waits behind the data
    const probe = { max: 0, count: 0, failures: 0, on: true };
    const probing = (async () => {
      while (probe.on) {
        const t = performance.now();
        try {
          await vb.getStatus({}, { timeoutMs: 5_000 });
          probe.max = Math.max(probe.max, performance.now() - t);
          probe.count++;
        } catch {
          probe.failures++;
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    const loadS = await timed(errors, "load", 600_000, async (deadline) => {
      await vb.loadCollection({ collectionName: NAME, replicaNumber: 1 });
      for (;;) {
        const p = await vb.getLoadingProgress({ collectionName: NAME }, { timeoutMs: 10_000 });
        if (p.state === "Loaded") return;
        if (Date.now() > deadline) throw new Error(`still ${p.progress}% loaded: ${JSON.stringify(p.blockers[0] ?? null)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    });
    const flushS = await timed(errors, "flush", 600_000, () => vb.flush({ collectionNames: [NAME] }, { timeoutMs: 600_000 }));
    probe.on = false;
    await probing;
    let count: number | null = null;
    await timed(errors, "count", 120_000, async () => {
      const r = await vb.query({ collectionName: NAME, outputFields: ["count(*)"], consistencyLevel: "Strong" }, { timeoutMs: 120_000 });
      count = Number(r.rows[0]!["count(*)"]);
    });
    const totalS = since(t0);
    clearInterval(sampler);
    await vb.close();
    await sa.stop();
    const slowAfter = await slowConsumerLines(logFile);

    report(args, {
      rows,
      dim,
      shards,
      restart_ready_s: readyS,
      start_s: startS,
      load_s: loadS,
      flush_s: flushS,
      total_s: totalS,
      count,
      count_ok: count === rows,
      slow_consumer_events: slowAfter - slowBefore,
      slow_consumer_events_while_inserting: slowBefore,
      peak_rss_mb: round(peakRss / 1048576),
      rss_before_restart_mb: round(rssBefore / 1048576),
      status_asks_during_catch_up: probe.count,
      status_max_ms_during_catch_up: round(probe.max),
      status_failures_during_catch_up: probe.failures,
      dml_mb: round(raw.bytes / 1048576, 1),
      dml_messages: raw.messages,
      raw_read_s: round(raw.seconds, 2),
      raw_read_mb_per_s: round(raw.bytes / 1048576 / raw.seconds),
      insert_s: round(insertS, 1),
      ...(errors.length ? { errors } : {}),
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Random rows as columns, `inFlight` requests at once. */
async function insertRows(vb: VectorbusClient, rows: number, dim: number, batch: number, inFlight = 2): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < rows) {
      const off = next;
      const n = Math.min(batch, rows - off);
      next += n;
      const id = new BigInt64Array(n);
      const vector = new Float32Array(n * dim);
      for (let i = 0; i < n; i++) id[i] = BigInt(off + i);
      for (let i = 0; i < vector.length; i++) vector[i] = Math.random() * 2 - 1;
      await vb.insert({ collectionName: NAME, columns: { id, vector } }, { timeoutMs: 120_000 });
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
}

/** Runs `op` with a deadline; returns its seconds, or null (and the error in `errors`) when it failed. */
async function timed(errors: string[], what: string, ms: number, op: (deadline: number) => Promise<unknown>): Promise<number | null> {
  const t = performance.now();
  const deadline = Date.now() + ms;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      op(deadline),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s`)), ms + 5_000))),
    ]);
    return round((performance.now() - t) / 1000, 2);
  } catch (err) {
    errors.push(`${what}: ${(err as Error).message}`);
    return null;
  } finally {
    clearTimeout(timer);
  }
}

async function slowConsumerLines(file: string): Promise<number> {
  const text = await readFile(file, "utf8").catch(() => "");
  return text.split("\n").filter((l) => l.includes("Slow Consumer")).length;
}

/** Every message of the DML streams, read by a bare consumer on a nats-server of its own over the same store. */
async function rawRead(config: VbConfig, dir: string): Promise<{ bytes: number; messages: number; seconds: number }> {
  const server = await startNatsServer({ storeDir: join(dir, "nats"), maxPayload: config.maxPayload });
  try {
    const nc = await connectNats(server.url, { name: "bench-backlog-raw" });
    try {
      const { js, jsm } = await jetstreamOf(nc);
      const subjects = new Subjects(PREFIX);
      const streams: { name: string; messages: number; bytes: number }[] = [];
      for await (const si of jsm.streams.list()) {
        if (si.config.name.startsWith(subjects.dmlStream(0).replace(/0$/, "")) && si.state.messages > 0) {
          streams.push({ name: si.config.name, messages: si.state.messages, bytes: si.state.bytes });
        }
      }
      const t = performance.now();
      await Promise.all(
        streams.map(async (s) => {
          const consumer = await js.consumers.get(s.name, { deliver_policy: DeliverPolicy.All });
          const messages = await consumer.consume({ max_bytes: 16 << 20 });
          let n = 0;
          for await (const _m of messages) if (++n >= s.messages) break;
          messages.stop();
        }),
      );
      const seconds = (performance.now() - t) / 1000;
      return {
        bytes: streams.reduce((a, s) => a + s.bytes, 0),
        messages: streams.reduce((a, s) => a + s.messages, 0),
        seconds,
      };
    } finally {
      await nc.close();
    }
  } finally {
    await server.stop({ keepStore: true });
  }
}
