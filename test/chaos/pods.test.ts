/**
 * `vbus up --pods` and `vbus up` as a user runs them: the CLI in a process of its own on a temporary data
 * directory, with a nats-server of its own on loopback. A killed querynode is restarted by the launcher;
 * signals (two in a row) and `vbus stop` leave no process and no runfile behind.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { connect } from "../../actors/control/client.ts";
import { rng } from "../../ops/random_rows.ts";
import { isAlive, readRunfile, runfilePath, type Runfile } from "../../ops/runfile.ts";
import { uniquePrefix, waitFor } from "../harness/index.ts";

const VBUS = fileURLToPath(new URL("../../ops/vbus.mjs", import.meta.url));

interface Vbus extends AsyncDisposable {
  child: ChildProcess;
  dataDir: string;
  /** what it printed on stdout so far */
  out(): string;
  exited: Promise<number | null>;
}

/** Runs `vbus <args>` on a temporary data directory; disposing kills whatever is left and removes the directory. */
async function vbus(args: string[], opts: { dataDir?: string; readyMs?: number } = {}): Promise<Vbus> {
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), "vbus-pods-")));
  // `vbus up` serves NATS on 4222 unless told: a free port here, as every test's
  const port = args[0] === "up" ? ["--port", "0"] : [];
  const child = spawn(process.execPath, [VBUS, ...args, ...port, "--data", dataDir], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, VB_LOG_LEVEL: "warn" },
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const exited = once(child, "exit").then(([code]) => code as number | null);
  const pids = new Set<number>();
  const v: Vbus = {
    child,
    dataDir,
    out: () => out,
    exited,
    async [Symbol.asyncDispose]() {
      // a failed test must not leave its cluster running
      const run = readRunfile(dataDir);
      for (const pid of [run?.natsPid, ...(run?.children ?? []).map((c) => c.pid), ...pids]) if (pid && isAlive(pid)) process.kill(pid, "SIGKILL");
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  await waitFor(() => out.includes("vectorbus ready nats="), {
    timeoutMs: opts.readyMs ?? 75_000,
    intervalMs: 100,
    what: `"vectorbus ready" from vbus ${args.join(" ")} (stdout: ${out}; stderr: ${err})`,
  }).catch(async (e: unknown) => {
    await v[Symbol.asyncDispose]();
    throw e;
  });
  return v;
}

function runfileOf(v: Vbus): Runfile {
  const run = readRunfile(v.dataDir);
  if (!run) throw new Error(`no runfile in ${v.dataDir}`);
  return run;
}

describe("vbus up --pods", () => {
  it(
    "runs each role in a process, serves a collection, restarts a killed querynode, and two SIGTERMs stop everything",
    async () => {
      const prefix = uniquePrefix("p");
      await using up = await vbus(["up", "--pods", "--querynodes", "2", "--prefix", prefix, "--milvus-port", "0"], { readyMs: 150_000 });
      const run = runfileOf(up);
      expect(run.mode).toBe("pods");
      expect(run.pid).toBe(up.child.pid);
      expect(run.ready).toBe(true);
      const children = run.children!;
      expect(children.map((c) => `${c.role}:${c.node}`).sort()).toEqual(
        ["datacoord:datacoord-1", "datanode:dn1", "proxy:proxy-1", "querycoord:querycoord-1", "querynode:qn1", "querynode:qn2", "rootcoord:rootcoord-1"].sort(),
      );
      const pids = new Set<number>([run.natsPid!, ...children.map((c) => c.pid!)]);
      expect(pids.size).toBe(children.length + 1);
      for (const pid of pids) expect(isAlive(pid)).toBe(true);
      for (const c of children) expect(existsSync(c.log)).toBe(true);
      for (const c of children) expect(up.out()).toContain(`pid ${c.pid}`);
      // the first proxy serves the Milvus API on the port the launcher chose
      expect(run.milvusPort).toBeGreaterThan(0);
      expect(up.out()).toContain(`vectorbus ready nats=${run.natsUrl} milvus=localhost:${run.milvusPort}`);

      // the cluster works through the client, as any program would use it
      await using vb = await connect({ servers: run.natsUrl, prefix });
      const dim = 8;
      const r = rng(7);
      const rows = Array.from({ length: 600 }, (_, i) => ({ id: BigInt(i), vector: Array.from({ length: dim }, () => r() * 2 - 1) }));
      await vb.createCollection({
        schema: {
          name: "pods",
          fields: [
            { name: "id", type: "Int64", isPrimaryKey: true },
            { name: "vector", type: "FloatVector", dim },
          ],
        },
        shardsNum: 2,
      });
      await vb.insert({ collectionName: "pods", rows });
      const flushed = await vb.flush({ collectionNames: ["pods"] });
      expect(flushed.collections.pods!.flushed).toBe(true);
      await vb.loadCollection({ collectionName: "pods", wait: true });
      const res = await vb.search({ collectionName: "pods", data: [rows[123]!.vector], limit: 3, metricType: "L2", consistencyLevel: "Strong" });
      expect(BigInt(res.results[0]!.ids[0]!)).toBe(123n);
      expect(res.results[0]!.scores[0]).toBeCloseTo(0, 5);
      const counted = await vb.query({ collectionName: "pods", outputFields: ["count(*)"], consistencyLevel: "Strong" });
      expect(Number(counted.rows[0]!["count(*)"])).toBe(600);
      await vb.close();

      // SIGKILL of a querynode: the launcher starts it again under the same node id
      const qn1 = children.find((c) => c.node === "qn1")!;
      process.kill(qn1.pid!, "SIGKILL");
      const again = await waitFor(
        () => {
          const c = readRunfile(up.dataDir)?.children?.find((x) => x.node === "qn1");
          return c?.pid !== undefined && c.pid !== qn1.pid && isAlive(c.pid) ? c : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 100, what: "qn1 restarted" },
      );
      expect(again.restarts).toBe(1);
      pids.add(again.pid!);
      expect(up.out()).toContain(`querynode qn1 restarted: pid ${again.pid}`);

      // vbus status lists the processes: the restarted one up with its new pid and one restart
      const { stdout } = await promisify(execFile)(process.execPath, [VBUS, "status", "--json", "--data", up.dataDir], { timeout: 60_000 });
      const status = JSON.parse(stdout) as { processes: { launcherPid: number; children: { node: string; pid: number; alive: boolean; restarts: number; leader?: boolean }[] } };
      expect(status.processes.launcherPid).toBe(up.child.pid);
      const listed = new Map(status.processes.children.map((c) => [c.node, c]));
      expect(listed.get("qn1")).toMatchObject({ pid: again.pid, alive: true, restarts: 1 });
      expect(listed.get("qn2")).toMatchObject({ alive: true, restarts: 0 });
      expect(listed.get("rootcoord-1")).toMatchObject({ alive: true, leader: true });

      // two SIGTERMs in a row: the second hurries the stop, and the stop still ends clean
      up.child.kill("SIGTERM");
      await waitFor(() => up.out().includes("vectorbus stopping"), { timeoutMs: 10_000, what: "the stop to begin" });
      up.child.kill("SIGTERM");
      const code = await up.exited;
      expect(code).toBe(0);
      expect(up.out()).toContain("stopping already");
      expect(up.out()).toContain("vectorbus stopped");
      for (const pid of pids) expect(isAlive(pid), `pid ${pid} still runs`).toBe(false);
      expect(existsSync(runfilePath(up.dataDir))).toBe(false);
    },
    180_000,
  );
});

// (a standalone starts in seconds; the bound leaves room for a loaded machine)
describe("vbus up (standalone)", { timeout: 90_000 }, () => {
  it("two SIGTERMs during the stop leave no nats-server and no runfile", async () => {
    await using up = await vbus(["up", "--milvus-port", "off"]);
    const run = runfileOf(up);
    expect(run.mode).toBe("standalone");
    expect(isAlive(run.natsPid)).toBe(true);
    up.child.kill("SIGTERM");
    await waitFor(() => up.out().includes("vectorbus stopping"), { timeoutMs: 10_000, what: "the stop to begin" });
    up.child.kill("SIGTERM");
    const code = await up.exited;
    expect(code).toBe(0);
    expect(up.out()).toContain("vectorbus stopped");
    expect(isAlive(run.natsPid)).toBe(false);
    expect(existsSync(runfilePath(up.dataDir))).toBe(false);
  });

  it("vbus stop stops it through its runfile", async () => {
    await using up = await vbus(["up", "--milvus-port", "off"]);
    const run = runfileOf(up);
    const stop = spawn(process.execPath, [VBUS, "stop", "--data", up.dataDir, "--timeout", "50"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    stop.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    const [code] = await once(stop, "exit");
    expect(code).toBe(0);
    expect(out).toContain(`stopped vectorbus standalone (pid ${run.pid})`);
    expect(await up.exited).toBe(0);
    expect(isAlive(run.natsPid)).toBe(false);
    expect(existsSync(runfilePath(up.dataDir))).toBe(false);
  });

  it("vbus stop after the launcher was killed stops the nats-server it left and removes the runfile", async () => {
    await using up = await vbus(["up", "--milvus-port", "off"]);
    const run = runfileOf(up);
    up.child.kill("SIGKILL");
    await up.exited;
    expect(isAlive(run.natsPid)).toBe(true);
    const stop = spawn(process.execPath, [VBUS, "stop", "--data", up.dataDir], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    stop.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    const [code] = await once(stop, "exit");
    expect(code).toBe(0);
    expect(out).toContain(`vectorbus (pid ${run.pid}) is not running`);
    expect(out).toContain(`nats-server (pid ${run.natsPid})`);
    expect(isAlive(run.natsPid)).toBe(false);
    expect(existsSync(runfilePath(up.dataDir))).toBe(false);
  });

  it("vbus up after a killed one stops the nats-server it left on the same store, then starts", async () => {
    await using first = await vbus(["up", "--milvus-port", "off"]);
    const old = runfileOf(first);
    first.child.kill("SIGKILL");
    await first.exited;
    await using second = await vbus(["up", "--milvus-port", "off"], { dataDir: first.dataDir });
    expect(second.out()).toContain(`stopped what the last vbus up (pid ${old.pid}) left running: nats-server (pid ${old.natsPid})`);
    expect(isAlive(old.natsPid)).toBe(false);
    const run = runfileOf(second);
    expect(run.pid).toBe(second.child.pid);
    expect(isAlive(run.natsPid)).toBe(true);
    second.child.kill("SIGTERM");
    expect(await second.exited).toBe(0);
    expect(isAlive(run.natsPid)).toBe(false);
  });
});
