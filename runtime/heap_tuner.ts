/**
 * Keeps a process's memory near a target by how far V8 lets its heaps grow before it collects them, as
 * Milvus's gcTuner does with Go's GOGC. On a machine with plenty of memory V8 lets a heap grow to up to
 * 4 × what survived its last full collection, so a process holding 1 GB of live objects can sit at
 * 3–4 GB of RSS. Well under the target the tuner leaves V8 to choose; from half the target on it lets a
 * heap grow by less and less (100 % at half the target, `minPercent` near it): collections come more
 * often, and the memory stays near what is live. It never refuses an allocation: a process whose live
 * objects pass the target goes past it (it is a target, not a limit).
 *
 * V8's setting is process-wide (every isolate: the main thread and the worker threads alike).
 */
import { readFileSync } from "node:fs";
import { totalmem } from "node:os";
import { setFlagsFromString } from "node:v8";
import type { Logger } from "./logger.ts";
import { gauge } from "./metrics.ts";

/** How far a heap may grow past what survived its last collection (percent; 0: V8 chooses), at `rss` of `target`. */
export function growingPercent(rss: number, target: number, minPercent = 10): number {
  const pressure = rss / target;
  if (!(pressure >= 0.5)) return 0;
  return Math.max(minPercent, Math.min(100, Math.round(200 * (1 - pressure))));
}

/** Sizes such as `2147483648`, `2048m`, `2g` (binary units). */
export function parseBytes(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$/i.exec(text);
  if (!m) throw new Error(`not a size: "${text}" (bytes, or a number with k, m, g or t)`);
  const unit = { "": 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[m[2]!.toLowerCase() as "" | "k" | "m" | "g" | "t"];
  return Math.round(Number(m[1]) * unit);
}

/** The container's memory limit (cgroup v2, then v1), when there is one. */
function cgroupLimit(): number | undefined {
  for (const f of ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]) {
    try {
      const v = readFileSync(f, "utf8").trim();
      const n = Number(v);
      // ("max", or v1's "no limit": a number near 2^63)
      if (Number.isFinite(n) && n > 0 && n < 2 ** 50) return n;
    } catch {
      // not there: the next one
    }
  }
  return undefined;
}

/**
 * The memory a process aims to stay under: `VB_MEMORY_TARGET` (`2g`, `1536m`, bytes; 0: none, V8 sizes
 * its heaps as it likes), else 80 % of the container's limit or, without one, of the machine's memory
 * (Milvus's gcTuner aims at 80 % too).
 */
export function memoryTargetBytes(env: NodeJS.ProcessEnv = process.env): number {
  if (env.VB_MEMORY_TARGET) {
    try {
      return parseBytes(env.VB_MEMORY_TARGET);
    } catch (err) {
      throw new Error(`VB_MEMORY_TARGET: ${(err as Error).message}`);
    }
  }
  return Math.floor(0.8 * Math.min(cgroupLimit() ?? Infinity, totalmem()));
}

export interface HeapTunerOptions {
  targetBytes: number;
  /** the least growth allowed near the target (percent) */
  minPercent?: number;
  /** how often it looks at the process's memory (ms) */
  intervalMs?: number;
  log?: Logger;
  /** (tests) the process's memory, and where the growth goes */
  rss?: () => number;
  apply?: (percent: number) => void;
}

export interface HeapTuner {
  readonly targetBytes: number;
  /** the growth in force (percent; 0: V8 chooses) */
  readonly percent: number;
  /** looks at the memory now (the timer does this every `intervalMs`) */
  tune(): number;
  stop(): void;
}

let running: HeapTuner | undefined;
const growth = gauge("vectorbus_process_heap_growing_percent", "how far the heap tuner lets V8's heaps grow past what survived a collection (0: V8 chooses)", []);
const target = gauge("vectorbus_process_memory_target_bytes", "the memory the heap tuner aims to keep this process under", []);

/**
 * Starts tuning this process's heaps toward `targetBytes` (one tuner a process: a second start returns
 * the one running). `stop` hands the choice back to V8.
 */
export function startHeapTuner(opts: HeapTunerOptions): HeapTuner {
  if (running && !opts.apply) return running;
  const rss = opts.rss ?? (() => process.memoryUsage.rss());
  const apply = opts.apply ?? ((p: number) => setFlagsFromString(`--heap-growing-percent=${p}`));
  let percent = 0;
  const tune = (): number => {
    const now = rss();
    const next = growingPercent(now, opts.targetBytes, opts.minPercent);
    if (next !== percent) {
      if ((next === 0) !== (percent === 0)) {
        opts.log?.info({ rssMb: Math.round(now / 2 ** 20), targetMb: Math.round(opts.targetBytes / 2 ** 20), growingPercent: next }, next === 0 ? "memory well under its target: V8 sizes its heaps again" : "memory past half its target: heaps grow by less before they are collected");
      }
      percent = next;
      apply(percent);
      if (!opts.apply) growth.set(percent);
    }
    return percent;
  };
  const timer = setInterval(tune, opts.intervalMs ?? 1_000);
  timer.unref();
  const tuner: HeapTuner = {
    targetBytes: opts.targetBytes,
    get percent() {
      return percent;
    },
    tune,
    stop() {
      clearInterval(timer);
      if (percent !== 0) apply(0);
      percent = 0;
      if (running === tuner) running = undefined;
    },
  };
  if (!opts.apply) {
    running = tuner;
    target.set(opts.targetBytes);
  }
  tune();
  return tuner;
}
