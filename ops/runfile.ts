/**
 * The runfile, `<data>/vbus.json`: how the other `vbus` commands find a cluster that `vbus up` started
 * (its NATS URL and subject prefix), and how `vbus stop` and `vbus status` find its processes. Written
 * atomically when the cluster starts (and, in pods mode, whenever a child starts or exits); removed when
 * it has stopped.
 */
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Role } from "./roles.ts";
import { RUNFILE } from "../actors/control/locate.ts";

export { RUNFILE };

/** One child of a pods launcher. */
export interface PodRecord {
  role: Role;
  /** its node id (`qn1`, `dn1`, `rootcoord-1`, `proxy-1`) */
  node: string;
  /** absent while it is down (waiting to be restarted, or stopped) */
  pid?: number;
  restarts: number;
  /** where its stdout and stderr go */
  log: string;
}

export interface Runfile {
  natsUrl: string;
  prefix: string;
  /** the `vbus up` process (`vbus stop` sends it SIGTERM) */
  pid: number;
  /** absent in runfiles written before pods mode: a standalone */
  mode?: "standalone" | "pods";
  /** the nats-server child, when `vbus up` started one */
  natsPid?: number;
  /** pods mode: the port of the first proxy's Milvus gRPC API, when it serves one */
  milvusPort?: number;
  /** pods mode: false while the children start */
  ready?: boolean;
  /** pods mode: every child */
  children?: PodRecord[];
}

export function runfilePath(dataDir: string): string {
  return join(dataDir, RUNFILE);
}

/** Writes the runfile atomically: a reader never sees half of it. */
export function writeRunfile(dataDir: string, run: Runfile): void {
  const file = runfilePath(dataDir);
  writeFileSync(`${file}.${process.pid}.tmp`, JSON.stringify(run) + "\n");
  renameSync(`${file}.${process.pid}.tmp`, file);
}

/** The runfile of the data directory, or undefined when there is none. */
export function readRunfile(dataDir: string): Runfile | undefined {
  let text: string;
  try {
    text = readFileSync(runfilePath(dataDir), "utf8");
  } catch {
    return undefined;
  }
  return JSON.parse(text) as Runfile;
}

/** True when a process with this pid exists. */
export function isAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * True when the pid is alive and, where /proc tells, still runs nats-server or vbus (a pid of a runfile
 * left behind may have been reused by another program since).
 */
export function isOurProcess(pid: number | undefined): boolean {
  if (!isAlive(pid)) return false;
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    return cmd.includes("nats-server") || cmd.includes("vbus");
  } catch {
    return false;
  }
}

/**
 * Stops what a `vbus up` that ended without its cleanup (SIGKILL) left running: its children and its
 * nats-server, each with SIGTERM and, after `graceMs`, SIGKILL. Returns them, as "what (pid N)".
 */
export async function stopLeftovers(run: Runfile, graceMs = 10_000): Promise<string[]> {
  const left = [...(run.children ?? []).map((c) => ({ what: `${c.role} ${c.node}`, pid: c.pid })), { what: "nats-server", pid: run.natsPid }].filter((x) =>
    isOurProcess(x.pid),
  );
  const signal = (pid: number, sig: NodeJS.Signals) => {
    try {
      process.kill(pid, sig);
    } catch {
      // gone meanwhile
    }
  };
  for (const x of left) signal(x.pid!, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (left.some((x) => isAlive(x.pid)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  for (const x of left) if (isAlive(x.pid)) signal(x.pid!, "SIGKILL");
  return left.map((x) => `${x.what} (pid ${x.pid})`);
}
