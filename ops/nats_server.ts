/**
 * Starts a nats-server with JetStream as a child process: on a loopback port (a free one unless given),
 * with its own store directory. Used by `vbus up` (standalone) and by the test harness. One server or a cluster of several.
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { connect as tcpConnect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const NATS_NOT_FOUND = "nats-server not found: run bash ops/install";

export function findNatsServer(): string {
  const candidates = [process.env.NATS_SERVER_BIN, "nats-server", "/usr/sbin/nats-server", "/usr/bin/nats-server"];
  for (const c of candidates) {
    if (!c) continue;
    try {
      execFileSync(c, ["--version"], { stdio: "ignore" });
      return c;
    } catch {
      // try the next one
    }
  }
  throw new Error(NATS_NOT_FOUND);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** True when nothing listens on the port (this process can bind it): a port given by a flag is checked first. */
export async function portIsFree(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

async function probe(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tcpConnect({ port, host: "127.0.0.1" });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

export interface NatsServerOptions {
  /** JetStream store directory; a new temporary one when not given (and then removed on stop). */
  storeDir?: string;
  /** client port (default, or 0: a free one) */
  port?: number;
  /** Max payload in bytes (the server default is 1 MiB). */
  maxPayload?: number;
  /**
   * Bytes the server queues for one client before it drops it as a slow consumer (the server default is
   * 64 MiB). Tests lower it to provoke with a small backlog what a large one does by default.
   */
  maxPending?: number;
  /** For clusters: set by startNatsCluster. */
  cluster?: { name: string; serverName: string; port: number; routes: number[] };
  /** Where the server's own log goes; ignored when not given. */
  logFile?: string;
  /**
   * A process group of its own: a Ctrl-C in the terminal then reaches only the process that started it,
   * which stops the server last, after its actors (`vbus up`). Tests leave it in their group.
   */
  detached?: boolean;
}

export class NatsServer implements AsyncDisposable {
  private exited: Promise<void>;
  constructor(
    readonly url: string,
    readonly port: number,
    readonly storeDir: string,
    private readonly child: ChildProcess,
    private readonly ownsStore: boolean,
    readonly options: NatsServerOptions,
  ) {
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once("exit", () => resolve());
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Stops the server. The store directory is kept unless it was a temporary one made for it. */
  async stop(opts: { keepStore?: boolean; signal?: NodeJS.Signals } = {}): Promise<void> {
    if (this.running) {
      this.child.kill(opts.signal ?? "SIGTERM");
      const timer = setTimeout(() => this.child.kill("SIGKILL"), 5000);
      await this.exited;
      clearTimeout(timer);
    }
    if (this.ownsStore && !opts.keepStore) await rm(this.storeDir, { recursive: true, force: true });
  }

  /** Starts a server again on the same port and store (a restart). */
  async restart(): Promise<NatsServer> {
    await this.stop({ keepStore: true });
    return startNatsServer({ ...this.options, port: this.port, storeDir: this.storeDir });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServer> {
  const bin = findNatsServer();
  const port = opts.port || (await freePort());
  // a server already there would answer the probe below in place of this one
  if (opts.port && !(await portIsFree(port))) throw new Error(`port ${port} is taken: nats-server cannot listen on 127.0.0.1:${port}`);
  const ownsStore = opts.storeDir === undefined;
  const storeDir = opts.storeDir ?? (await mkdtemp(join(tmpdir(), "vbus-nats-")));
  await mkdir(storeDir, { recursive: true });
  const confLines = [
    `listen: "127.0.0.1:${port}"`,
    `max_payload: ${opts.maxPayload ?? 1024 * 1024}`,
    ...(opts.maxPending === undefined ? [] : [`max_pending: ${opts.maxPending}`]),
    `jetstream { store_dir: ${JSON.stringify(storeDir)} }`,
  ];
  if (opts.cluster) {
    const c = opts.cluster;
    confLines.push(`server_name: ${c.serverName}`);
    confLines.push(
      `cluster { name: ${c.name}, listen: "127.0.0.1:${c.port}", routes: [${c.routes
        .map((p) => `"nats-route://127.0.0.1:${p}"`)
        .join(", ")}] }`,
    );
  }
  const conf = join(storeDir, "nats-server.conf");
  await writeFile(conf, confLines.join("\n") + "\n");
  const args = ["-c", conf];
  if (opts.logFile) args.push("-l", opts.logFile);
  const child = spawn(bin, args, { stdio: ["ignore", "ignore", "pipe"], ...(opts.detached ? { detached: true } : {}) });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    if (stderr.length < 16_384) stderr += d.toString();
  });
  const deadline = Date.now() + 15_000;
  while (!(await probe(port))) {
    if (child.exitCode !== null) {
      throw new Error(`nats-server exited with ${child.exitCode} before it listened: ${stderr.trim()}`);
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`nats-server did not listen on port ${port} within 15 s: ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return new NatsServer(`nats://127.0.0.1:${port}`, port, storeDir, child, ownsStore, { ...opts, port });
}

export class NatsCluster implements AsyncDisposable {
  constructor(readonly servers: NatsServer[]) {}
  get urls(): string[] {
    return this.servers.map((s) => s.url);
  }
  async stop(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.stop()));
  }
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** A cluster of `size` servers (JetStream clustered), each with its own store. */
export async function startNatsCluster(size = 3, name = "vbus"): Promise<NatsCluster> {
  const clientPorts: number[] = [];
  const routePorts: number[] = [];
  for (let i = 0; i < size; i++) {
    clientPorts.push(await freePort());
    routePorts.push(await freePort());
  }
  const servers = await Promise.all(
    clientPorts.map((port, i) =>
      startNatsServer({
        port,
        cluster: { name, serverName: `${name}-${i}`, port: routePorts[i]!, routes: routePorts.filter((_, j) => j !== i) },
      }),
    ),
  );
  return new NatsCluster(servers);
}
