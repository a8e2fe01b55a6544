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

export function report(args: string[], result: Record<string, unknown>): void {
  if (flag(args, "json")) {
    process.stdout.write(JSON.stringify(result) + "\n");
  } else {
    for (const [k, v] of Object.entries(result)) process.stdout.write(`${k.padEnd(32)} ${String(v)}\n`);
  }
}

export const round = (v: number, digits = 0) => Number(v.toFixed(digits));
