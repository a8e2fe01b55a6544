import { fork, type Serializable } from "node:child_process";
import { fileURLToPath } from "node:url";
/** Small helpers the benchmarks share: argument parsing, timing loops, output. */
export function flag(args: string[], name: string): boolean {
  return args.includes(`--${name}`);
}

export function option(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  if (i < 0 || i + 1 >= args.length) return fallback;
  const v = Number(args[i + 1]);
  if (!Number.isFinite(v)) throw new Error(`--${name} takes a number, got "${args[i + 1]}"`);
  return v;
}

/** `--name value` as text, or `fallback` when absent. */
export function optionText(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  if (i < 0 || i + 1 >= args.length) return fallback;
  return args[i + 1]!;
}

/** Runs `op` `total` times, sequentially; returns operations per second. */
export async function rateSequential(total: number, op: (i: number) => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < total; i++) await op(i);
  return total / ((performance.now() - t0) / 1000);
}

/** Runs `op` `total` times with `inFlight` outstanding at once; returns operations per second. */
export async function rateConcurrent(
  total: number,
  inFlight: number,
  op: (i: number) => Promise<unknown>,
): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (next < total) await op(next++);
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, total) }, worker));
  return total / ((performance.now() - t0) / 1000);
}

/**
 * Calls `op` (each call answers `perCall` queries) for at least `seconds` after `warmup` calls; returns
 * queries per second of wall time and per second of this process's CPU time (steadier on a shared
 * machine; only meaningful for work on one thread).
 */
export function rateFor(seconds: number, perCall: number, op: (i: number) => unknown, warmup = 1): { wall: number; cpu: number } {
  for (let i = 0; i < warmup; i++) op(i);
  let calls = 0;
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  let elapsed = 0;
  while (elapsed < seconds * 1000) {
    op(++calls);
    elapsed = performance.now() - t0;
  }
  const c = process.cpuUsage(c0);
  return { wall: (calls * perCall) / (elapsed / 1000), cpu: (calls * perCall) / ((c.user + c.system) / 1e6) };
}

export function report(args: string[], result: Record<string, unknown>): void {
  if (flag(args, "json")) {
    process.stdout.write(JSON.stringify(result) + "\n");
  } else {
    for (const [k, v] of Object.entries(result)) process.stdout.write(`${k.padEnd(32)} ${String(v)}\n`);
  }
}

export const round = (v: number, digits = 0) => Number(v.toFixed(digits));

/**
 * Runs a benchmark's client module (`module`, a .ts file beside this one) in a child process of its own
 * (node with tsx), hands it `job` and resolves with what it sends back. Clients in their own process
 * spend CPU that `process.cpuUsage()` of the benchmark does not count (garbage collection included),
 * as the clients of a real deployment do.
 */
export function runClientProcess<R>(module: URL, job: unknown): Promise<R> {
  return new Promise<R>((resolve, reject) => {
    const child = fork(fileURLToPath(module), [], { execArgv: ["--import", "tsx"], serialization: "advanced", stdio: ["ignore", "inherit", "inherit", "ipc"] });
    let result: { value: R } | undefined;
    child.once("message", (m) => (result = { value: m as R }));
    child.once("error", reject);
    child.once("exit", (code, signal) =>
      result ? resolve(result.value) : reject(new Error(`the benchmark client ${module.pathname} exited (${signal ?? code}) without a result`)),
    );
    child.send(job as Serializable);
  });
}

/** In a client module run by runClientProcess: the job it was given. */
export function clientJob<T>(): Promise<T> {
  return new Promise<T>((resolve) => process.once("message", (m) => resolve(m as T)));
}

/** In a client module run by runClientProcess: sends the result and lets the process end. */
export function clientDone(result: unknown): void {
  process.send!(result as Serializable, () => process.disconnect());
}
