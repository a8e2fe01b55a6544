/**
 * Progress of long CLI work on stderr: a cli-progress bar on a terminal; elsewhere (a pipe, a log
 * file, CI) a plain line on the first update, then at most one every few seconds, and one at the end,
 * each with the value, the percent of the total when there is one, and the time elapsed.
 */
import cliProgress from "cli-progress";

export interface ProgressOptions {
  /** the bar's cli-progress format (a terminal) */
  barFormat: string;
  /** one plain line (not a terminal): `value`, `total` (0: not known yet), `percent` (undefined without a total), the payload */
  line: (p: { value: number; total: number; percent: number | undefined; payload: Record<string, unknown> }) => string;
  /** seconds between two plain lines (default: VB_PROGRESS_INTERVAL_S, else 3) */
  intervalS?: number;
  /** where it goes (default: process.stderr) */
  stream?: NodeJS.WriteStream;
}

export interface Progress {
  start(total: number, value: number, payload?: Record<string, unknown>): void;
  setTotal(total: number): void;
  update(value: number, payload?: Record<string, unknown>): void;
  stop(): void;
}

export function progress(opts: ProgressOptions): Progress {
  const stream = opts.stream ?? process.stderr;
  if (stream.isTTY) {
    return new cliProgress.SingleBar({ format: opts.barFormat, stream, hideCursor: true }, cliProgress.Presets.shades_classic);
  }
  return new ProgressLines(opts, stream);
}

class ProgressLines implements Progress {
  private total = 0;
  private value = 0;
  private payload: Record<string, unknown> = {};
  private t0 = performance.now();
  /** when the last line was written (0: none yet) */
  private lastAt = 0;
  private lastLine = "";
  private running = false;
  private readonly intervalMs: number;

  constructor(
    private readonly opts: ProgressOptions,
    private readonly stream: NodeJS.WritableStream,
  ) {
    const s = opts.intervalS ?? Number(process.env.VB_PROGRESS_INTERVAL_S ?? 3);
    this.intervalMs = Number.isFinite(s) && s >= 0 ? s * 1000 : 3000;
  }

  start(total: number, value: number, payload: Record<string, unknown> = {}): void {
    this.total = total;
    this.value = value;
    this.payload = { ...payload };
    this.t0 = performance.now();
    this.lastAt = 0;
    this.running = true;
  }

  setTotal(total: number): void {
    this.total = total;
  }

  update(value: number, payload: Record<string, unknown> = {}): void {
    if (!this.running) return;
    this.value = value;
    this.payload = { ...this.payload, ...payload };
    const now = performance.now();
    if (this.lastAt === 0 || now - this.lastAt >= this.intervalMs) this.write(now);
  }

  stop(): void {
    if (!this.running) return;
    this.running = false;
    if (this.line() !== this.lastLine) this.write(performance.now());
  }

  private line(): string {
    const percent = this.total > 0 ? Math.min(100, Math.floor((this.value / this.total) * 100)) : undefined;
    return this.opts.line({ value: this.value, total: this.total, percent, payload: this.payload });
  }

  private write(now: number): void {
    const line = this.line();
    this.lastAt = now;
    this.lastLine = line;
    this.stream.write(`${line}, ${((now - this.t0) / 1000).toFixed(1)} s elapsed\n`);
  }
}
