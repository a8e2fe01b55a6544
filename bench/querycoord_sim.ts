/**
 * `npm run bench -- querycoord-sim [--nodes 1000] [--segments 1000000] [--collections N] [--shards 8]
 *   [--workers 4] [--kill 50] [--add 50] [--heartbeat-rate 15000] [--timeout-s 1800] [--memory-target 2g]
 *   [--max-copies-per-round 200000] [--json]`
 * (`VB_SIM_NATS_LOG=<file>` keeps the nats-server's own log there)
 *
 * One real querycoord (in this process) reconciling simulated querynodes through the real feed on a real
 * nats-server: the querynodes are light actors in a few processes of their own
 * (`querycoord_sim_peers.ts`) that obey loads, releases and watches at once and publish their
 * heartbeats and distributions as querynodes do; rootcoord and datacoord are a peer that answers for a
 * made-up catalog of `--segments` sealed segments in `--collections` collections of `--shards` shards,
 * each loaded with 2 replicas. Measured:
 *
 * - converge_s: from the loads to every segment loaded once per replica and every shard led per replica;
 * - recover_50_dead_s: from `--kill` nodes stopped at once to the same again on the nodes left;
 * - balance_50_new_s: from `--add` empty nodes joining to every node holding at least 80 % of the mean
 *   rows (the BalanceChecker moving segments onto them);
 * - heartbeats_per_s: feed messages querycoord takes per second while the nodes beat `--heartbeat-rate`
 *   times a second in all (their content, decoded and applied); `heartbeats_heard_per_s`: the heads the
 *   feed's pulse reads meanwhile (who spoke and when, on its own thread: what liveness is judged from);
 *   `heartbeat_thread_busy`, the share of querycoord's thread busy meanwhile,
 *   `heartbeat_feed_thread_busy`, the feed's thread's, `heartbeat_querycoord_cores`, the cores its
 *   process used (every thread), and `heartbeats_capacity_per_s`, taken ÷ busy; `feed_publish_limit_per_s`, beside them the physical
 *   limit: what the same node processes get the nats-server to store at most, messages of the heads'
 *   mean size in a stream of their own, while querycoord runs;
 * - checker_round_p99_ms: the 99th percentile of querycoord's reconcile rounds over the whole run;
 * - querycoord_rss_mb: the highest RSS of this process (querycoord and the driver, which holds nothing of
 *   the catalog), run as a querycoord pod is: with the heap tuner aiming at `VB_MEMORY_TARGET`, else 80 %
 *   of the container's or machine's memory (`--memory-target 2g` models a pod whose target is 2 GiB, 80 % of a 2.5 GiB limit; 0: no tuner).
 */
import { fork, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createClusterEnv } from "../actors/env.ts";
import { ensureDistStream } from "../actors/querycoord/dist/dist_feed.ts";
import { QuerycoordActor } from "../actors/querycoord/index.ts";
import type { QuerycoordParams, RoundStats } from "../actors/querycoord/params.ts";
import { startNatsServer } from "../ops/nats_server.ts";
import { Feed } from "../runtime/feed.ts";
import { ActorHost } from "../runtime/host.ts";
import { memoryTargetBytes, parseBytes, startHeapTuner } from "../runtime/heap_tuner.ts";
import { FsObjectStore } from "../runtime/object_store_fs.ts";
import { jetstreamOf } from "../runtime/streams.ts";
import { connectNats } from "../runtime/transport.ts";
import { catalogOf, collectionIdOf } from "./querycoord_sim_catalog.ts";
import { option, optionText, report, round } from "./util.ts";

const PEERS = fileURLToPath(new URL("./querycoord_sim_peers.ts", import.meta.url));
const REPLICAS = 2;

export interface SimOptions {
  nodes: number;
  segments: number;
  collections: number;
  shards: number;
  workers: number;
  kill: number;
  add: number;
  /** feed messages per second, all nodes together, while heartbeats are measured */
  heartbeatRate: number;
  timeoutS: number;
  /**
   * the memory target of querycoord's process (the heap tuner, as `VB_MEMORY_TARGET` sets it for a pod;
   * 0: none, V8 sizes the heaps as it likes)
   */
  memoryTargetBytes?: number;
  /** querycoord's `maxCopiesPerRound` (its default when not given; 0: every collection every round) */
  maxCopiesPerRound?: number;
  /** a nats-server to use (a fresh one is started when not given) */
  natsUrl?: string;
  prefix?: string;
  /** progress lines on stderr */
  log?: (line: string) => void;
}

export interface SimResult {
  nodes: number;
  segments: number;
  collections: number;
  shards: number;
  converge_s: number;
  recover_50_dead_s: number;
  balance_50_new_s: number;
  heartbeats_per_s: number;
  heartbeats_heard_per_s: number;
  /**
   * the share of querycoord's thread (this process's event loop) busy while the heartbeats were taken,
   * and what it would take at most at that cost per message: taken ÷ busy
   */
  heartbeat_thread_busy: number;
  /** the share of the feed's thread busy meanwhile, and the cores querycoord's process used (all its threads) */
  heartbeat_feed_thread_busy: number;
  heartbeat_querycoord_cores: number;
  heartbeats_capacity_per_s: number;
  /**
   * the physical limit beside it: messages per second the same node processes get this nats-server to
   * store in a last-value stream of its own (as many publishers, messages of the heads' mean size), while
   * querycoord runs on the same machine
   */
  feed_publish_limit_per_s: number;
  checker_round_p99_ms: number;
  querycoord_rss_mb: number;
  /** the memory target querycoord's process ran with (0: none) */
  querycoord_memory_target_mb: number;
  /** what the peers counted at the end */
  final: {
    copies: number;
    expectedCopies: number;
    delegators: number;
    expectedDelegators: number;
    minRowsOverMean: number;
    /** LoadSegments requests the nodes were sent over the run, and the segments they asked for in all */
    loadRequests: number;
    segmentsAsked: number;
  };
}

interface Peer {
  child: ChildProcess;
  ask(cmd: string, body?: Record<string, unknown>): Promise<any>;
}

function startPeer(args: string[]): Promise<Peer> {
  const child = fork(PEERS, args, { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"], env: { ...process.env, VB_LOG_LEVEL: "error" } });
  let seq = 0;
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  return new Promise((resolve, reject) => {
    child.on("message", (m: any) => {
      if (m.ready) {
        resolve({
          child,
          ask: (cmd, body = {}) =>
            new Promise((res, rej) => {
              const id = ++seq;
              waiting.set(id, { resolve: res, reject: rej });
              child.send({ id, cmd, ...body });
            }),
        });
        return;
      }
      const w = waiting.get(m.id);
      if (!w) return;
      waiting.delete(m.id);
      if (m.ok) w.resolve(m.r);
      else w.reject(new Error(m.error));
    });
    child.on("exit", (code) => reject(new Error(`a sim peer exited (${code})`)));
  });
}

interface NodeStats {
  replicas: Record<string, { collectionId: string; copies: number }>;
  delegators: number;
  perNode: { nodeId: string; rows: number; segments: number; delegators: number }[];
  published: number;
  publishedBytes: number;
  /** publishes the server did not acknowledge, and why (each reason and how often) */
  failed: number;
  failures: Record<string, number>;
  loadRequests: number;
  segmentsAsked: number;
}

/** the most frequent reason publishes failed, with its count */
const topFailure = (failures: Record<string, number>) => {
  const [why, n] = Object.entries(failures).sort((a, b) => b[1] - a[1])[0] ?? ["", 0];
  return `${n} × ${why}`;
};

const p99 = (xs: number[]) => {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(0.99 * s.length))]!;
};

export async function runSim(o: SimOptions): Promise<SimResult> {
  const log = o.log ?? (() => undefined);
  const cat = catalogOf(o.segments, o.collections, o.shards);
  const dir = await mkdtemp(join(tmpdir(), "vbus-qcsim-"));
  const nats = o.natsUrl ? undefined : await startNatsServer(process.env.VB_SIM_NATS_LOG ? { logFile: process.env.VB_SIM_NATS_LOG } : {});
  const url = o.natsUrl ?? nats!.url;
  const prefix = o.prefix ?? "qcsim";
  const heartbeatMs = 1_000;
  const nc = await connectNats(url);
  const env = createClusterEnv(nc, new FsObjectStore(dir), { prefix, config: { heartbeatIntervalMs: heartbeatMs, heartbeatAvailableMs: 10 * heartbeatMs } });
  await ensureDistStream(env);
  const host = new ActorHost(nc);
  const peers: Peer[] = [];
  const rounds: number[] = [];
  let last: RoundStats | undefined;
  /** tasks done since the last progress line, and their total times (ms) */
  let tasks = { rounds: 0, planned: 0, started: 0, done: 0, askMs: 0, confirmMs: 0, kinds: {} as Record<string, number> };
  /** round time by stage since the last progress line (ms), and the slowest round's */
  let stages: Record<string, number> = {};
  let slowest: RoundStats | undefined;
  const topStages = (s: Record<string, number>) =>
    Object.entries(s)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 4)
      .map(([k, v]) => `${k} ${Math.round(v)}`)
      .join(", ");
  let rssMax = 0;
  const rssTimer = setInterval(() => (rssMax = Math.max(rssMax, process.memoryUsage().rss)), 500);
  const tuner = o.memoryTargetBytes ? startHeapTuner({ targetBytes: o.memoryTargetBytes }) : undefined;
  try {
    const peerArgs = (role: string) => [role, url, prefix, String(o.segments), String(o.collections), String(o.shards), String(heartbeatMs)];
    const catalog = await startPeer(peerArgs("catalog"));
    peers.push(catalog);
    const workers = await Promise.all(Array.from({ length: o.workers }, () => startPeer(peerArgs("nodes"))));
    peers.push(...workers);

    const params: Partial<QuerycoordParams> = {
      // tasks in flight per querynode (Milvus's taskExecutionCap is 256), and balance moves bounded per round and replica
      taskExecutionCap: 32,
      balanceIntervalMs: 1_000,
      balanceMaxMovesPerRound: 1_000,
      balanceMaxMovesPerReplica: 200,
      startupGraceMs: 60_000,
      ...(o.maxCopiesPerRound !== undefined ? { maxCopiesPerRound: o.maxCopiesPerRound } : {}),
      onRound: (r) => {
        rounds.push(r.ms);
        last = r;
        tasks.rounds++;
        tasks.planned += r.tasksPlanned;
        tasks.started += r.tasksStarted;
        for (const [k, n] of Object.entries(r.tasksStartedByKind)) tasks.kinds[k] = (tasks.kinds[k] ?? 0) + n;
        for (const [k, v] of Object.entries(r.stagesMs)) stages[k] = (stages[k] ?? 0) + v;
        if (!slowest || r.ms > slowest.ms) slowest = r;
        if (r.tasksDone > 0) {
          tasks.done += r.tasksDone;
          tasks.askMs += r.taskAskMs * r.tasksDone;
          tasks.confirmMs += r.taskConfirmMs * r.tasksDone;
        }
      },
    };
    await host.spawn({ address: env.subjects.querycoord(), create: () => new QuerycoordActor(env, params), logFields: { role: "querycoord" } });

    const nodeName = (i: number) => `qn${String(i).padStart(5, "0")}`;
    const owner = new Map<string, Peer>();
    const startNodes = async (ids: string[]) => {
      const per = new Map<Peer, string[]>();
      ids.forEach((id, i) => {
        const w = workers[i % workers.length]!;
        owner.set(id, w);
        per.set(w, [...(per.get(w) ?? []), id]);
      });
      await Promise.all([...per].map(([w, list]) => w.ask("start", { ids: list })));
    };
    const stats = async () => {
      const all = (await Promise.all(workers.map((w) => w.ask("stats")))) as NodeStats[];
      const copies = new Map<string, { collectionId: string; copies: number }>();
      let delegators = 0;
      const perNode = all.flatMap((s) => s.perNode);
      for (const s of all) {
        delegators += s.delegators;
        for (const [r, v] of Object.entries(s.replicas)) {
          const c = copies.get(r) ?? { collectionId: v.collectionId, copies: 0 };
          c.copies += v.copies;
          copies.set(r, c);
        }
      }
      const sum = (f: (s: NodeStats) => number) => all.reduce((n, s) => n + f(s), 0);
      const failures: Record<string, number> = {};
      for (const s of all) for (const [why, n] of Object.entries(s.failures)) failures[why] = (failures[why] ?? 0) + n;
      return { copies, delegators, perNode, published: sum((s) => s.published), publishedBytes: sum((s) => s.publishedBytes), failed: sum((s) => s.failed), failures, loadRequests: sum((s) => s.loadRequests), segmentsAsked: sum((s) => s.segmentsAsked) };
    };
    const expectedDelegators = REPLICAS * cat.collections * cat.shards;
    const expectedCopies = REPLICAS * o.segments;
    /** every segment once per replica, every shard led per replica */
    const complete = async () => {
      const s = await stats();
      const byColl = new Map<string, number[]>();
      for (const v of s.copies.values()) byColl.set(v.collectionId, [...(byColl.get(v.collectionId) ?? []), v.copies]);
      for (let c = 0; c < cat.collections; c++) {
        const got = byColl.get(String(collectionIdOf(c))) ?? [];
        if (got.length !== REPLICAS || got.some((n) => n !== cat.perCollection[c])) return false;
      }
      return s.delegators === expectedDelegators;
    };
    const until = async (what: string, cond: () => Promise<boolean>) => {
      const t0 = performance.now();
      const deadline = Date.now() + o.timeoutS * 1_000;
      let lastLog = 0;
      let lastSent = { at: performance.now(), n: 0 };
      for (;;) {
        if (await cond()) {
          // held on the next look too (a copy released while another is loaded does not count)
          await new Promise((r) => setTimeout(r, 300));
          if (await cond()) return (performance.now() - t0) / 1_000;
        }
        if (Date.now() > deadline) throw new Error(`querycoord-sim: ${what} not reached within ${o.timeoutS} s`);
        if (Date.now() - lastLog > 10_000) {
          lastLog = Date.now();
          const s = await stats();
          const copies = [...s.copies.values()].reduce((n, v) => n + v.copies, 0);
          const sentPerS = lastSent.n === 0 ? 0 : ((s.published - lastSent.n) * 1_000) / (performance.now() - lastSent.at);
          lastSent = { at: performance.now(), n: s.published };
          log(
            `${what}: ${copies}/${expectedCopies} copies, ${s.delegators}/${expectedDelegators} delegators, round p99 ${round(p99(rounds.slice(-200)))} ms, ` +
              `tasks ${last?.tasksInFlight ?? 0} (per round ${Math.round(tasks.planned / Math.max(1, tasks.rounds))} planned, ${Math.round(tasks.started / Math.max(1, tasks.rounds))} started (${topStages(tasks.kinds)}); ${tasks.done} done, ask ${Math.round(tasks.askMs / Math.max(1, tasks.done))} ms, seen ${Math.round(tasks.confirmMs / Math.max(1, tasks.done))} ms later), moves ${last?.movesInFlight ?? 0}, feed ${Math.round(sentPerS)} msgs/s sent (${s.failed} failed${s.failed > 0 ? `: ${topFailure(s.failures)}` : ""}), lag ${Math.round(last?.feedLagMs ?? 0)} ms (pulse ${Math.round(last?.pulseLagMs ?? 0)} ms), ` +
              `rss ${Math.round(process.memoryUsage().rss / 2 ** 20)} MB (querycoord's thread: heap ${Math.round(process.memoryUsage().heapUsed / 2 ** 20)} MB used of ${Math.round(process.memoryUsage().heapTotal / 2 ** 20)}); round ms by stage: ${topStages(stages)}` +
              (slowest ? `; slowest round ${Math.round(slowest.ms)} ms: ${topStages(slowest.stagesMs)}` : ""),
          );
          tasks = { rounds: 0, planned: 0, started: 0, done: 0, askMs: 0, confirmMs: 0, kinds: {} };
          stages = {};
          slowest = undefined;
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    };

    // the nodes join, querycoord sees them
    await startNodes(Array.from({ length: o.nodes }, (_, i) => nodeName(i)));
    await until("nodes seen", async () => (last?.aliveNodes ?? 0) === o.nodes);
    log(`${o.nodes} nodes seen; loading ${cat.collections} collections, ${o.segments} segments, 2 replicas`);

    // load
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: cat.collections }, (_, c) =>
        host.ask(env.subjects.querycoord(), "querycoord.LoadCollection", { collectionId: collectionIdOf(c), replicaNumber: REPLICAS }, { timeoutMs: 60_000 }),
      ),
    );
    await until("load", complete);
    const converge = (performance.now() - t0) / 1_000;
    log(`loaded in ${round(converge, 1)} s`);

    // heartbeats: the nodes beat faster; what querycoord takes per second
    const fastMs = Math.max(10, Math.round((o.nodes * 1_000) / o.heartbeatRate));
    await Promise.all(workers.map((w) => w.ask("rate", { heartbeatMs: fastMs })));
    await new Promise((r) => setTimeout(r, 2_000));
    const s0 = await stats();
    const h0 = {
      at: performance.now(),
      n: last?.feedMessages ?? 0,
      heard: last?.pulseMessages ?? 0,
      sent: s0.published,
      bytes: s0.publishedBytes,
      elu: performance.eventLoopUtilization(),
      feedActive: last?.feedThreadActiveMs ?? 0,
      cpu: process.cpuUsage(),
    };
    await new Promise((r) => setTimeout(r, 5_000));
    const s1 = await stats();
    const h1 = { at: performance.now(), n: last?.feedMessages ?? 0, heard: last?.pulseMessages ?? 0, sent: s1.published, bytes: s1.publishedBytes, feedActive: last?.feedThreadActiveMs ?? 0 };
    const busy = performance.eventLoopUtilization(h0.elu).utilization;
    // the feed's thread's share busy, and the cores querycoord's process used (every thread: the feed's, the pulse's, the collector's)
    const feedBusy = Math.min(1, (h1.feedActive - h0.feedActive) / (h1.at - h0.at));
    const cpu = process.cpuUsage(h0.cpu);
    const cores = (cpu.user + cpu.system) / 1_000 / (h1.at - h0.at);
    const heartbeats = ((h1.n - h0.n) * 1_000) / (h1.at - h0.at);
    const heard = ((h1.heard - h0.heard) * 1_000) / (h1.at - h0.at);
    const sent = ((h1.sent - h0.sent) * 1_000) / (h1.at - h0.at);
    const headBytes = Math.max(1, Math.round((h1.bytes - h0.bytes) / Math.max(1, h1.sent - h0.sent)));
    await Promise.all(workers.map((w) => w.ask("rate", { heartbeatMs })));
    log(
      `heartbeats: ${round(heartbeats)} per s taken with querycoord's thread ${Math.round(busy * 100)} % busy (the feed's thread ${Math.round(feedBusy * 100)} %, ` +
        `the process ${round(cores, 2)} cores), ${round(heard)} per s heard by the pulse, ` +
        `${round(sent)} per s sent (nodes beating every ${fastMs} ms, ${headBytes} bytes a message)`,
    );
    // the limit beside it: what the same processes get the server to store at most, in a stream of its own
    const floodStream = `${prefix.toUpperCase()}_SIMFLOOD`;
    const floodFeed = new Feed(nc);
    await floodFeed.ensure(floodStream, `${prefix}.simflood.>`);
    const floodMs = 3_000;
    const flooded = (await Promise.all(
      workers.map((w, i) => w.ask("flood", { prefix: `${prefix}.simflood.${i}`, subjects: Math.ceil(o.nodes / workers.length), bytes: headBytes, inflight: Math.ceil(o.nodes / workers.length), ms: floodMs })),
    )) as { stored: number; errors: number }[];
    const publishLimit = (flooded.reduce((n, f) => n + f.stored, 0) * 1_000) / floodMs;
    const { jsm } = await jetstreamOf(nc);
    await jsm.streams.delete(floodStream).catch(() => undefined);
    log(`the server stores at most ${round(publishLimit)} such messages per s from these processes (${flooded.reduce((n, f) => n + f.errors, 0)} failed)`);

    // kill nodes at once
    const victims = Array.from({ length: o.kill }, (_, i) => nodeName(Math.floor((i * o.nodes) / Math.max(1, o.kill))));
    const t1 = performance.now();
    const per = new Map<Peer, string[]>();
    for (const v of victims) per.set(owner.get(v)!, [...(per.get(owner.get(v)!) ?? []), v]);
    await Promise.all([...per].map(([w, ids]) => w.ask("kill", { ids })));
    await until("recovery", complete);
    const recover = (performance.now() - t1) / 1_000;
    log(`recovered from ${o.kill} dead nodes in ${round(recover, 1)} s`);

    // new nodes join: balance gives them their share
    const fresh = Array.from({ length: o.add }, (_, i) => nodeName(o.nodes + i));
    const t2 = performance.now();
    await startNodes(fresh);
    const balanced = async () => {
      const s = await stats();
      if (s.perNode.length !== o.nodes - o.kill + o.add) return false;
      const mean = s.perNode.reduce((n, x) => n + x.rows, 0) / s.perNode.length;
      return s.perNode.every((x) => x.rows >= 0.8 * mean) && (await complete());
    };
    await until("balance", balanced);
    const balance = (performance.now() - t2) / 1_000;
    log(`balanced onto ${o.add} new nodes in ${round(balance, 1)} s`);

    const s = await stats();
    const mean = s.perNode.reduce((n, x) => n + x.rows, 0) / s.perNode.length;
    return {
      nodes: o.nodes,
      segments: o.segments,
      collections: cat.collections,
      shards: cat.shards,
      converge_s: round(converge, 1),
      recover_50_dead_s: round(recover, 1),
      balance_50_new_s: round(balance, 1),
      heartbeats_per_s: round(heartbeats),
      heartbeats_heard_per_s: round(heard),
      heartbeat_thread_busy: round(busy, 2),
      heartbeat_feed_thread_busy: round(feedBusy, 2),
      heartbeat_querycoord_cores: round(cores, 2),
      heartbeats_capacity_per_s: round(heartbeats / Math.max(0.01, busy)),
      feed_publish_limit_per_s: round(publishLimit),
      checker_round_p99_ms: round(p99(rounds)),
      querycoord_rss_mb: Math.round(rssMax / 2 ** 20),
      querycoord_memory_target_mb: Math.round((o.memoryTargetBytes ?? 0) / 2 ** 20),
      final: {
        copies: [...s.copies.values()].reduce((n, v) => n + v.copies, 0),
        expectedCopies,
        delegators: s.delegators,
        expectedDelegators,
        minRowsOverMean: round(Math.min(...s.perNode.map((x) => x.rows)) / mean, 2),
        loadRequests: s.loadRequests,
        segmentsAsked: s.segmentsAsked,
      },
    };
  } finally {
    clearInterval(rssTimer);
    tuner?.stop();
    await host.stopActor(env.subjects.querycoord()).catch(() => undefined);
    await Promise.all(peers.map((p) => p.ask("stop").catch(() => undefined)));
    for (const p of peers) p.child.kill();
    await host[Symbol.asyncDispose]().catch(() => undefined);
    await nc.close().catch(() => undefined);
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

export async function main(args: string[]): Promise<void> {
  const nodes = option(args, "nodes", 1_000);
  const memoryTarget = optionText(args, "memory-target", "");
  const segments = option(args, "segments", 1_000_000);
  const result = await runSim({
    nodes,
    segments,
    collections: option(args, "collections", Math.max(1, Math.round(segments / 50_000))),
    shards: option(args, "shards", 8),
    workers: option(args, "workers", Math.max(1, Math.min(4, Math.ceil(nodes / 250)))),
    kill: option(args, "kill", Math.min(50, Math.floor(nodes / 10))),
    add: option(args, "add", Math.min(50, Math.floor(nodes / 10))),
    heartbeatRate: option(args, "heartbeat-rate", 15_000),
    timeoutS: option(args, "timeout-s", 1_800),
    // (as a pod: VB_MEMORY_TARGET, else 80 % of the container's or this machine's memory)
    memoryTargetBytes: memoryTarget === "" ? memoryTargetBytes() : parseBytes(memoryTarget),
    ...(args.includes("--max-copies-per-round") ? { maxCopiesPerRound: option(args, "max-copies-per-round", 0) } : {}),
    log: (line) => process.stderr.write(`querycoord-sim: ${line}\n`),
  });
  report(args, result as unknown as Record<string, unknown>);
}
