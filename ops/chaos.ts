/**
 * `vbus chaos <scenario>`: a pods cluster of its own on loopback (ops/pods.ts, in a temporary data
 * directory), a collection loaded with replicas, clients running Strong searches and inserts, and one
 * kind of failure injected at an interval, for a bounded time. It prints what the clients saw:
 *
 *   {scenario, duration_s, faults, searches, search_failures, search_success_ratio, search_p99_ms,
 *    search_max_ms, inserts_acked, final_count, rows_lost, rows_extra, errors}
 *
 * Scenarios: querynode-kill (SIGKILL of a querynode; the launcher restarts it), querynode-drain
 * (SIGTERM: the querynode drains, exits, is restarted), datanode-kill (SIGKILL of the datanode while
 * flushes run), nats-restart (the nats-server stops and starts again on its port and store),
 * coordinator-kill (SIGKILL of the leader of rootcoord, datacoord and querycoord in turn; standbys run).
 * Every run stops by itself: the workload ends at `durationS`, the cluster is stopped, the directory
 * removed.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type VectorbusClient } from "../actors/control/client.ts";
import { VbError } from "../protocol/errors.ts";
import { discover, SERVICE_NAME_PREFIX, type ServiceIdentity } from "../runtime/discovery.ts";
import { defaultConfig } from "./config.ts";
import { PodsLauncher } from "./pods.ts";

export const CHAOS_SCENARIOS = ["querynode-kill", "querynode-drain", "datanode-kill", "nats-restart", "coordinator-kill"] as const;
export type ChaosScenario = (typeof CHAOS_SCENARIOS)[number];

export interface ChaosOptions {
  scenario: ChaosScenario;
  durationS: number;
  /** seconds between two faults (default 20) */
  intervalS?: number;
  querynodes?: number;
  replicas?: number;
  dim?: number;
  /** rows loaded before the faults start */
  rows?: number;
  searchClients?: number;
  /** progress lines (stderr in the CLI) */
  say?: (line: string) => void;
}

export interface ChaosReport {
  scenario: ChaosScenario;
  duration_s: number;
  faults: number;
  searches: number;
  search_failures: number;
  search_success_ratio: number;
  search_p99_ms: number;
  search_max_ms: number;
  inserts_acked: number;
  final_count: number;
  rows_lost: number;
  rows_extra: number;
  /** the distinct errors the clients saw, with counts */
  errors: Record<string, number>;
  /** the collection's load state at the end (Loaded throughout a run that went well) */
  load_state: string;
  /** the slowest searches over 1 s: when they started (s into the run), how long they took */
  slow_searches: { at_s: number; ms: number; error?: string }[];
}

const COLLECTION = "chaos";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  const say = o.say ?? (() => undefined);
  const dim = o.dim ?? 32;
  const intervalMs = (o.intervalS ?? 20) * 1000;
  const dir = await mkdtemp(join(tmpdir(), `vbus-chaos-${o.scenario}-`));
  const config = { ...defaultConfig({}), dataDir: dir };
  const launcher = new PodsLauncher({
    config,
    querynodes: o.querynodes ?? 3,
    datanodes: 1,
    standby: o.scenario === "coordinator-kill",
    restart: true,
    backoff: { initialMs: 300, maxMs: 2_000, resetAfterMs: 5_000 },
    stopTimeoutMs: 20_000,
    say,
  });
  let vb: VectorbusClient | undefined;
  try {
    await launcher.start();
    vb = await connect({ servers: launcher.natsUrl, prefix: config.prefix, timeoutMs: 60_000 });
    const setup = await prepare(vb, dim, o.rows ?? 10_000, o.replicas ?? 2);
    say(`collection "${COLLECTION}" loaded with ${o.replicas ?? 2} replicas, ${setup} rows; faults every ${intervalMs / 1000} s for ${o.durationS} s`);
    return await workload(vb, launcher, o, dim, setup, intervalMs, say);
  } finally {
    await vb?.close().catch(() => undefined);
    await launcher.stop();
    if (!process.env.VB_CHAOS_KEEP) await rm(dir, { recursive: true, force: true });
    else say(`kept ${dir}`);
  }
}

async function prepare(vb: VectorbusClient, dim: number, rows: number, replicas: number): Promise<number> {
  await vb.createCollection({
    schema: { name: COLLECTION, fields: [{ name: "id", type: "Int64", isPrimaryKey: true }, { name: "vector", type: "FloatVector", dim }] },
    shardsNum: 2,
  });
  for (let b = 0; b < rows; b += 2_000) {
    const n = Math.min(2_000, rows - b);
    await vb.insert({ collectionName: COLLECTION, rows: Array.from({ length: n }, (_, i) => ({ id: b + i, vector: randomVector(dim) })) });
  }
  await vb.flush({ collectionNames: [COLLECTION] });
  await vb.loadCollection({ collectionName: COLLECTION, replicaNumber: replicas, wait: true, timeoutMs: 120_000 });
  return rows;
}

function randomVector(dim: number): number[] {
  return Array.from({ length: dim }, () => Math.random() * 2 - 1);
}

async function workload(
  vb: VectorbusClient,
  launcher: PodsLauncher,
  o: ChaosOptions,
  dim: number,
  preloaded: number,
  intervalMs: number,
  say: (line: string) => void,
): Promise<ChaosReport> {
  const end = Date.now() + o.durationS * 1000;
  const latencies: number[] = [];
  const errors: Record<string, number> = {};
  let failures = 0;
  let acked = preloaded;
  let uncertain = 0;
  let faults = 0;
  const note = (err: unknown) => {
    const key = VbError.from(err).message.replace(/\d{3,}/g, "N").slice(0, 200);
    errors[key] = (errors[key] ?? 0) + 1;
  };

  const started = Date.now();
  const slow: { at_s: number; ms: number; error?: string }[] = [];
  const searcher = async () => {
    while (Date.now() < end) {
      const t = Date.now();
      let error: string | undefined;
      try {
        await vb.search({ collectionName: COLLECTION, data: [randomVector(dim)], limit: 10, consistencyLevel: "Strong" }, { timeoutMs: 30_000 });
      } catch (err) {
        failures++;
        error = VbError.from(err).message;
        note(err);
      }
      const ms = Date.now() - t;
      latencies.push(ms);
      if (ms >= 1_000) slow.push({ at_s: Number(((t - started) / 1000).toFixed(1)), ms, ...(error ? { error } : {}) });
    }
  };
  let nextId = preloaded;
  const inserter = async () => {
    while (Date.now() < end) {
      const rows = Array.from({ length: 50 }, () => ({ id: nextId++, vector: randomVector(dim) }));
      try {
        await vb.insert({ collectionName: COLLECTION, rows }, { timeoutMs: 30_000 });
        acked += rows.length;
      } catch (err) {
        uncertain += rows.length; // the write may or may not have landed
        note(err);
      }
      await sleep(100);
    }
  };
  const flusher = async () => {
    while (Date.now() < end) {
      await sleep(3_000);
      await vb.flush({ collectionNames: [COLLECTION], timeoutMs: 60_000 }, { timeoutMs: 65_000 }).catch(note);
    }
  };
  const injector = async () => {
    let turn = 0;
    await sleep(Math.min(intervalMs, 5_000));
    while (Date.now() < end - 2_000) {
      const what = await inject(o.scenario, launcher, turn++);
      faults++;
      say(`fault ${faults} at ${((Date.now() - started) / 1000).toFixed(1)} s: ${what}`);
      await sleep(intervalMs);
    }
  };

  const clients = o.searchClients ?? 2;
  await Promise.all([
    ...Array.from({ length: clients }, searcher),
    inserter(),
    ...(o.scenario === "datanode-kill" ? [flusher()] : []),
    injector(),
  ]);

  // the final count, once the cluster answers again (a restarted process may still be rejoining)
  let finalCount = -1;
  for (let i = 0; i < 60 && finalCount < 0; i++) {
    try {
      const r = await vb.query({ collectionName: COLLECTION, outputFields: ["count(*)"], consistencyLevel: "Strong" }, { timeoutMs: 30_000 });
      finalCount = Number(r.rows[0]?.["count(*)"] ?? 0);
    } catch (err) {
      note(err);
      await sleep(1_000);
    }
  }
  const loadState = await vb.getLoadState({ collectionName: COLLECTION }).then(
    (r) => String(r.state),
    (err: unknown) => `unknown: ${VbError.from(err).message}`,
  );
  latencies.sort((a, b) => a - b);
  const searches = latencies.length;
  return {
    scenario: o.scenario,
    duration_s: o.durationS,
    faults,
    searches,
    search_failures: failures,
    search_success_ratio: searches === 0 ? 0 : Number(((searches - failures) / searches).toFixed(5)),
    search_p99_ms: latencies[Math.min(searches - 1, Math.floor(searches * 0.99))] ?? 0,
    search_max_ms: latencies[searches - 1] ?? 0,
    inserts_acked: acked - preloaded,
    final_count: finalCount,
    rows_lost: Math.max(0, acked - finalCount),
    rows_extra: Math.max(0, finalCount - acked - uncertain),
    errors,
    load_state: loadState,
    slow_searches: slow.sort((a, b) => b.ms - a.ms).slice(0, 10),
  };
}

/** Injects the scenario's fault (the `turn`-th); returns what it did. */
async function inject(scenario: ChaosScenario, launcher: PodsLauncher, turn: number): Promise<string> {
  const pick = (role: string) => {
    const pods = launcher.pods.filter((p) => p.role === role && p.pid !== undefined);
    return pods[turn % Math.max(1, pods.length)];
  };
  switch (scenario) {
    case "querynode-kill":
    case "querynode-drain": {
      const p = pick("querynode");
      if (!p?.pid) return "no querynode running";
      const signal = scenario === "querynode-kill" ? "SIGKILL" : "SIGTERM";
      process.kill(p.pid, signal);
      return `${signal} ${p.node} (pid ${p.pid})`;
    }
    case "datanode-kill": {
      const p = pick("datanode");
      if (!p?.pid) return "no datanode running";
      process.kill(p.pid, "SIGKILL");
      return `SIGKILL ${p.node} (pid ${p.pid})`;
    }
    case "nats-restart": {
      const s = launcher.natsServer;
      if (!s) return "the nats-server is not the launcher's";
      launcher.natsServer = await s.restart();
      return `nats-server restarted on port ${s.port}`;
    }
    case "coordinator-kill": {
      const role = (["querycoord", "datacoord", "rootcoord"] as const)[turn % 3]!;
      const leader = await leaderPid(launcher, role);
      if (!leader) return `no ${role} leader found`;
      process.kill(leader, "SIGKILL");
      return `SIGKILL the ${role} leader (pid ${leader})`;
    }
  }
}

/** The pid of the process hosting the role's coordinator (the standby hosts nothing until it leads). */
async function leaderPid(launcher: PodsLauncher, role: string): Promise<number | undefined> {
  const { connectNats } = await import("../runtime/transport.ts");
  const nc = await connectNats(launcher.natsUrl, { name: "vbus-chaos" });
  try {
    const answers = await discover<ServiceIdentity>(nc, "PING", { name: SERVICE_NAME_PREFIX + role, quietMs: 150, maxMs: 1_000 });
    const pids = answers.map((a) => Number(a.metadata?.pid)).filter((p) => launcher.pods.some((x) => x.role === role && x.pid === p));
    return pids[0];
  } finally {
    await nc.close().catch(() => undefined);
  }
}
