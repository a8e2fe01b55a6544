/**
 * Pods mode (`vbus up --pods`): the roles of a cluster as processes of their own on one machine, as
 * Kubernetes would run them. A nats-server child (unless a URL is given), then the coordinators
 * (rootcoord, datacoord, querycoord; two of each with `standby`), datanodes, querynodes and proxies,
 * each `vbus serve --role R --node-id ID` on the same NATS, prefix and object store. A child that exits
 * while the launcher is not stopping is started again with exponential backoff (reset after it stayed up
 * a while), unless restarts are off. Each child's stdout and stderr go to `<data>/logs/<role>-<id>.log`.
 *
 * The launcher keeps the runfile (`<data>/vbus.json`) current: the cluster's NATS URL and prefix, its own
 * pid, and each child's role, node, pid and restarts; `vbus status` and `vbus stop` read it.
 *
 * Stop: proxies, querynodes, datanodes, then the coordinators (querycoord, datacoord, rootcoord), then
 * the nats-server; each child gets SIGTERM and, after `stopTimeoutMs`, SIGKILL. `force()` (a second
 * signal) sends SIGKILL to the children still running; the stop goes on to its end either way.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { discover, SERVICE_NAME_PREFIX, type ServiceIdentity } from "../runtime/discovery.ts";
import { connectNats, type NatsConnection } from "../runtime/transport.ts";
import { freePort, startNatsServer, type NatsServer } from "./nats_server.ts";
import type { Role } from "./roles.ts";
import { DEFAULT_DRAIN_TIMEOUT_MS } from "../actors/querynode/drain.ts";
import type { VbConfig } from "./config.ts";
import { runfilePath, writeRunfile, type PodRecord, type Runfile } from "./runfile.ts";

const VBUS = fileURLToPath(new URL("./vbus.mjs", import.meta.url));

export interface PodsOptions {
  config: VbConfig;
  querynodes?: number;
  datanodes?: number;
  proxies?: number;
  /** two processes per coordinator role: one leads, the other waits on the role's lease */
  standby?: boolean;
  /** start a child again when it exits (default true) */
  restart?: boolean;
  /** backoff between restarts of one child (default `DEFAULT_BACKOFF`) */
  backoff?: Backoff;
  /**
   * SIGTERM to SIGKILL, per child, on stop (default 15 s; a querynode gets at least its drain's time,
   * `VB_DRAIN_TIMEOUT_MS`, and 5 s more)
   */
  stopTimeoutMs?: number;
  /** how long the cluster may take to answer (default 180 s) */
  readyTimeoutMs?: number;
  /** the first proxy serves Milvus's gRPC API on this port (0: a free one, chosen at start) */
  milvusPort?: number;
  /** each child serves `/metrics` on a port of its own: this one, the next, ... in the order they start (`--metrics-port`) */
  metricsPort?: number;
  /** a line for the user (the CLI prints it on stdout) */
  say?: (line: string) => void;
}

export interface Backoff {
  initialMs: number;
  maxMs: number;
  /** a child that stayed up this long starts over from `initialMs` */
  resetAfterMs: number;
}

export const DEFAULT_BACKOFF: Backoff = { initialMs: 1_000, maxMs: 30_000, resetAfterMs: 15_000 };

/**
 * The wait before a child that exited starts again, and the wait after that (as Kubernetes's
 * CrashLoopBackOff: doubled at each crash up to a cap, and back to the start after a good run).
 */
export function nextBackoff(policy: Backoff, currentMs: number, upMs: number): { delayMs: number; nextMs: number } {
  const delayMs = upMs >= policy.resetAfterMs ? policy.initialMs : currentMs;
  return { delayMs, nextMs: Math.min(delayMs * 2, policy.maxMs) };
}

/**
 * The pids of the processes of the cluster (`prefix`) that host the role's actor now: for a coordinator
 * role, its leader (a standby hosts nothing until it leads).
 */
export async function hostingPids(nc: NatsConnection, prefix: string, role: Role, opts: { maxMs?: number } = {}): Promise<Set<number>> {
  const answers = await discover<ServiceIdentity>(nc, "PING", { name: SERVICE_NAME_PREFIX + role, quietMs: 150, maxMs: opts.maxMs ?? 1_000 }).catch(() => []);
  return new Set(answers.filter((a) => a.metadata?.prefix === prefix).map((a) => Number(a.metadata?.pid)));
}

const START_GROUPS: Role[] = ["rootcoord", "datacoord", "datanode", "querycoord", "querynode", "proxy"];
const STOP_GROUPS: Role[] = ["proxy", "querynode", "datanode", "querycoord", "datacoord", "rootcoord"];
const COORDINATORS: readonly Role[] = ["rootcoord", "datacoord", "querycoord"];

/** One child process of the launcher: a role and node id, started again after it exits. */
export class Pod {
  child: ChildProcess | undefined;
  restarts = 0;
  private backoffMs: number;
  private startedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private exited: Promise<void> = Promise.resolve();
  private stopping = false;

  constructor(
    readonly role: Role,
    readonly node: string,
    readonly log: string,
    private readonly args: string[],
    private readonly launcher: PodsLauncher,
  ) {
    this.backoffMs = launcher.backoff.initialMs;
  }

  get pid(): number | undefined {
    return this.alive ? this.child?.pid : undefined;
  }

  get alive(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  record(): PodRecord {
    return { role: this.role, node: this.node, ...(this.pid ? { pid: this.pid } : {}), restarts: this.restarts, log: this.log };
  }

  start(): void {
    if (this.stopping) return;
    const fd = openSync(this.log, "a");
    let child: ChildProcess;
    try {
      writeSync(fd, `---- vbus serve --role ${this.role} --node-id ${this.node} (start ${this.restarts + 1}) at ${new Date().toISOString()}\n`);
      // a process group of its own: a Ctrl-C in the terminal reaches the launcher only, which stops the
      // children in order
      child = spawn(process.execPath, [VBUS, "serve", ...this.args], { stdio: ["ignore", fd, fd], detached: true, env: process.env });
    } finally {
      closeSync(fd);
    }
    this.child = child;
    this.startedAt = Date.now();
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        resolve();
        this.onExit(code, signal);
      });
      child.once("error", (err) => {
        this.launcher.say(`${this.role} ${this.node}: ${child.pid === undefined ? "could not start" : "error"}: ${err.message}`);
        if (child.pid === undefined) resolve(); // no process, no exit event
      });
    });
    this.launcher.changed();
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    this.launcher.changed();
    if (this.stopping || this.launcher.stopped) return;
    const how = signal ? `signal ${signal}` : `code ${code}`;
    if (!this.launcher.restart) {
      this.launcher.say(`${this.role} ${this.node} (pid ${this.child?.pid}) exited (${how}); not restarted (--no-restart)`);
      return;
    }
    const { delayMs: delay, nextMs } = nextBackoff(this.launcher.backoff, this.backoffMs, Date.now() - this.startedAt);
    this.backoffMs = nextMs;
    this.launcher.say(`${this.role} ${this.node} (pid ${this.child?.pid}) exited (${how}); restarting in ${(delay / 1000).toFixed(1)} s`);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.launcher.stopped) return;
      this.restarts++;
      this.start();
      if (this.child?.pid) this.launcher.say(`${this.role} ${this.node} restarted: pid ${this.child.pid}`);
    }, delay);
  }

  /** SIGTERM, then SIGKILL after `timeoutMs`; resolves when the process is gone. No restart after it. */
  async stop(timeoutMs: number): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    if (!this.alive) return;
    this.child!.kill("SIGTERM");
    const kill = setTimeout(() => {
      this.launcher.say(`${this.role} ${this.node} (pid ${this.child?.pid}) did not stop within ${timeoutMs / 1000} s: SIGKILL`);
      this.kill();
    }, timeoutMs);
    await this.exited;
    clearTimeout(kill);
  }

  kill(): void {
    this.stopping = true;
    clearTimeout(this.timer);
    if (this.alive) this.child!.kill("SIGKILL");
  }
}

export class PodsLauncher {
  readonly restart: boolean;
  readonly backoff: Backoff;
  readonly pods: Pod[] = [];
  readonly logDir: string;
  natsServer: NatsServer | undefined;
  natsUrl = "";
  /** the launcher's own connection: readiness, and which coordinator process leads */
  private nc: NatsConnection | undefined;
  /** the port of the first proxy's Milvus gRPC API, when it serves one */
  milvusPort: number | undefined;
  private ready = false;
  private stopping: Promise<void> | undefined;
  /** the runfile this launcher wrote, until it removed it */
  private runfileWritten = false;
  private finished = false;
  private readonly config: VbConfig;
  private readonly sayLine: (line: string) => void;

  constructor(private readonly opts: PodsOptions) {
    this.config = opts.config;
    this.restart = opts.restart ?? true;
    this.backoff = opts.backoff ?? DEFAULT_BACKOFF;
    this.logDir = join(this.config.dataDir, "logs");
    this.sayLine = opts.say ?? ((line) => process.stdout.write(line + "\n"));
    // whatever way this process ends, no child outlives it and no runfile says it runs
    process.once("exit", () => this.lastResort());
  }

  say(line: string): void {
    this.sayLine(line);
  }

  get stopped(): boolean {
    return this.stopping !== undefined;
  }

  /** Starts the nats-server and every child, group by group, each group once the one before answers. */
  async start(): Promise<void> {
    const c = this.config;
    mkdirSync(this.logDir, { recursive: true });
    if (c.natsUrl) this.natsUrl = c.natsUrl;
    else {
      this.natsServer = await startNatsServer({
        storeDir: join(c.dataDir, "nats"),
        ...(c.natsPort ? { port: c.natsPort } : {}),
        maxPayload: c.maxPayload,
        logFile: join(c.dataDir, "nats-server.log"),
        detached: true,
      });
      this.natsUrl = this.natsServer.url;
      this.say(`nats-server        pid ${this.natsServer.pid}  ${this.natsUrl}  log ${join(c.dataDir, "nats-server.log")}`);
    }
    if (this.stopped) return;
    // a port fixed before the proxy starts: a restarted proxy serves on the same one
    if (this.opts.milvusPort !== undefined) this.milvusPort = this.opts.milvusPort || (await freePort());
    this.plan();
    this.changed();
    const nc = (this.nc = await connectNats(this.natsUrl, { name: "vbus-pods", maxReconnectAttempts: -1 }));
    {
      const deadline = Date.now() + (this.opts.readyTimeoutMs ?? 180_000);
      for (const role of START_GROUPS) {
        const group = this.pods.filter((p) => p.role === role);
        for (const p of group) {
          p.start();
          this.say(`${p.role.padEnd(10)} ${p.node.padEnd(12)} pid ${p.child?.pid}  log ${p.log}`);
        }
        await this.waitAnswer(nc, role, deadline);
        if (this.stopped) return;
      }
    }
    this.ready = true;
    this.changed();
  }

  /** The children to run, by role. */
  private plan(): void {
    const o = this.opts;
    const c = this.config;
    const common = ["--nats", this.natsUrl, "--prefix", c.prefix, "--data", c.dataDir, ...(c.objectStore ? ["--s3", c.objectStore] : [])];
    let metricsPort = o.metricsPort;
    const add = (role: Role, node: string, extra: string[] = []) => {
      if (metricsPort !== undefined) {
        extra = [...extra, "--metrics-port", String(metricsPort)];
        this.say(`${role} ${node}: metrics at http://localhost:${metricsPort}/metrics`);
        metricsPort++;
      }
      this.pods.push(
        new Pod(role, node, join(this.logDir, node.startsWith(`${role}-`) ? `${node}.log` : `${role}-${node}.log`), ["--role", role, "--node-id", node, ...common, ...extra], this),
      );
    };
    for (const role of COORDINATORS) {
      add(role, `${role}-1`);
      if (o.standby) add(role, `${role}-2`);
    }
    for (let i = 1; i <= (o.datanodes ?? 1); i++) add("datanode", `dn${i}`);
    for (let i = 1; i <= (o.querynodes ?? 1); i++) add("querynode", `qn${i}`);
    for (let i = 1; i <= (o.proxies ?? 1); i++) add("proxy", `proxy-${i}`, i === 1 && this.milvusPort ? ["--milvus-port", String(this.milvusPort)] : []);
  }

  /**
   * Waits until the role's processes answer NATS service discovery: every datanode, querynode and proxy
   * by its pid; for a coordinator role, one of its processes (the others are standbys, which host
   * nothing until they lead).
   */
  private async waitAnswer(nc: NatsConnection, role: Role, deadline: number): Promise<void> {
    const group = this.pods.filter((p) => p.role === role);
    for (;;) {
      if (this.stopped) return;
      const pids = await hostingPids(nc, this.config.prefix, role);
      const ok = COORDINATORS.includes(role) ? group.some((p) => pids.has(p.pid ?? -1)) : group.every((p) => pids.has(p.pid ?? -1));
      if (ok) return;
      if (!this.restart) {
        const dead = group.find((p) => !p.alive);
        if (dead) throw new Error(`${dead.role} ${dead.node} exited before it was ready: see ${dead.log}`);
      }
      if (Date.now() > deadline) {
        const missing = group.filter((p) => !pids.has(p.pid ?? -1)).map((p) => `${p.node} (${p.log})`);
        throw new Error(`the ${role} processes did not answer in time: ${missing.join(", ")}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** The runfile's view of the cluster. */
  runfile(): Runfile {
    return {
      natsUrl: this.natsUrl,
      prefix: this.config.prefix,
      pid: process.pid,
      mode: "pods",
      ...(this.milvusPort ? { milvusPort: this.milvusPort } : {}),
      ...(this.natsServer?.pid ? { natsPid: this.natsServer.pid } : {}),
      ready: this.ready,
      children: this.pods.map((p) => p.record()),
    };
  }

  /** A child started or exited: the runfile follows (until the stop has removed it). */
  changed(): void {
    if (this.finished || !this.natsUrl) return;
    try {
      writeRunfile(this.config.dataDir, this.runfile());
      this.runfileWritten = true;
    } catch (err) {
      this.say(`could not write ${runfilePath(this.config.dataDir)}: ${(err as Error).message}`);
    }
  }

  /**
   * Stops every child in order (proxies, querynodes, datanodes, coordinators), then the nats-server, and
   * removes the runfile. Safe to call again: every call waits for the one stop.
   */
  stop(): Promise<void> {
    return (this.stopping ??= (async () => {
      const timeoutMs = this.opts.stopTimeoutMs ?? 15_000;
      // a querynode drains before it stops (what it holds moves to the others): not cut short
      const drainMs = Number(process.env.VB_DRAIN_TIMEOUT_MS ?? DEFAULT_DRAIN_TIMEOUT_MS);
      try {
        for (const role of STOP_GROUPS) {
          if (role === "querycoord") await this.stopStandbys(timeoutMs); // (the first coordinator group to stop)
          const ms = role === "querynode" ? Math.max(timeoutMs, drainMs + 5_000) : timeoutMs;
          await Promise.all(this.pods.filter((p) => p.role === role).map((p) => p.stop(ms)));
        }
      } finally {
        await this.nc?.close().catch(() => undefined);
        await this.natsServer?.stop({ keepStore: true });
        this.removeRunfile();
      }
    })());
  }

  /**
   * The coordinator processes that do not lead, before any leader: a leader that stopped first would
   * hand its role to a standby that is about to stop too.
   */
  private async stopStandbys(timeoutMs: number): Promise<void> {
    const coordinators = this.pods.filter((p) => COORDINATORS.includes(p.role) && p.alive);
    if (!this.nc || coordinators.length <= COORDINATORS.length) return;
    const leaders = new Set<number>();
    for (const pids of await Promise.all(COORDINATORS.map((role) => hostingPids(this.nc!, this.config.prefix, role)))) for (const pid of pids) leaders.add(pid);
    await Promise.all(coordinators.filter((p) => !leaders.has(p.pid ?? -1)).map((p) => p.stop(timeoutMs)));
  }

  /** A second signal: the children still running get SIGKILL now; the stop goes on (nats-server, runfile). */
  force(): void {
    for (const p of this.pods) p.kill();
  }

  /** On process exit, whatever the cause: SIGKILL what still runs, remove the runfile. */
  private lastResort(): void {
    for (const p of this.pods) p.kill();
    if (this.natsServer?.running && this.natsServer.pid) {
      try {
        process.kill(this.natsServer.pid, "SIGKILL");
      } catch {
        // gone already
      }
    }
    this.removeRunfile();
  }

  private removeRunfile(): void {
    this.finished = true;
    if (this.runfileWritten) rmSync(runfilePath(this.config.dataDir), { force: true });
    this.runfileWritten = false;
  }
}
