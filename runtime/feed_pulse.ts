/**
 * A feed's pulse: when the server last stored a message on each subject, read apart from the feed's
 * content, in a worker thread of its own with its own connection, headers only.
 *
 * Why: a last-value feed keeps one message per subject, so a follower that reads `L` ms behind never
 * comes to a subject whose value is replaced more often than every `L` ms (each value is gone before it
 * gets there). A busy process (seconds of work on its event loop) reads its feed seconds behind and would
 * hear nothing from exactly its liveliest publishers. The pulse costs a few bytes per message on a
 * thread that does nothing else, so it stays at the feed's end; the process reads it from shared memory
 * when it judges who is silent, however long its own event loop was busy.
 */
import { Worker } from "node:worker_threads";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "./logger.ts";

const BOOT = new URL("./ts_worker.mjs", import.meta.url);
const MODULE = new URL("./feed_pulse_worker.ts", import.meta.url).href;

/**
 * Slots 0–2 of the shared times: where the pulse reads (server time of the newest message), when it read
 * it (local time), and how many live messages it read.
 */
export const PULSE_HEADER = 3;

export interface FeedPulseOptions {
  /** the server(s) the worker connects to (default: the one `nc` is connected to) */
  servers?: string[];
  stream: string;
  /** one filter subject (wildcards allowed): the subjects whose pulse is kept */
  filter: string;
  /** at most this many subjects are kept (default 65,536) */
  capacity?: number;
  log?: Logger;
}

/** What the worker posts: a subject's slot in the shared times, or that following failed. */
export type PulseWorkerMsg = { type: "slot"; subject: string; slot: number } | { type: "ready" } | { type: "failed"; error: string };

export class FeedPulse {
  private readonly slots = new Map<string, number>();
  private readonly times: Float64Array;
  private failed: string | undefined;

  private constructor(
    private readonly worker: Worker,
    shared: SharedArrayBuffer,
  ) {
    this.times = new Float64Array(shared);
  }

  /** Starts the worker; resolves once it follows the feed (rejects if it cannot). */
  static async start(nc: NatsConnection, opts: FeedPulseOptions): Promise<FeedPulse> {
    const capacity = opts.capacity ?? 65_536;
    const shared = new SharedArrayBuffer((PULSE_HEADER + capacity) * Float64Array.BYTES_PER_ELEMENT);
    const servers = opts.servers ?? [nc.getServer()];
    const worker = new Worker(BOOT, {
      workerData: { module: MODULE, servers, stream: opts.stream, filter: opts.filter, capacity, shared },
      name: "vb-feed-pulse",
    });
    worker.unref();
    const pulse = new FeedPulse(worker, shared);
    await new Promise<void>((resolve, reject) => {
      worker.on("message", (m: PulseWorkerMsg) => {
        if (m.type === "slot") pulse.slots.set(m.subject, m.slot);
        else if (m.type === "ready") resolve();
        else {
          pulse.failed = m.error;
          opts.log?.warn({ stream: opts.stream, filter: opts.filter, err: m.error }, "the feed's pulse stopped");
          reject(new Error(m.error));
        }
      });
      worker.on("error", (err) => {
        pulse.failed = err.message;
        opts.log?.warn({ stream: opts.stream, err: err.message }, "the feed's pulse worker failed");
        reject(err);
      });
      worker.on("exit", (code) => {
        pulse.failed ??= `the pulse worker exited (${code})`;
        reject(new Error(pulse.failed));
      });
    });
    return pulse;
  }

  /** Whether the pulse still beats (its worker follows the feed). */
  get alive(): boolean {
    return this.failed === undefined;
  }

  /** When the server stored the newest message on `subject` that the pulse read (ms, server clock); 0 when none. */
  lastStored(subject: string): number {
    const slot = this.slots.get(subject);
    return slot === undefined ? 0 : this.times[PULSE_HEADER + slot]!;
  }

  /**
   * How far behind the feed the pulse reads: the local time it read its newest live message less the
   * time the server stored it (0 before it read any).
   */
  get lagMs(): number {
    const storedAt = this.times[0]!;
    return storedAt === 0 ? 0 : Math.max(0, this.times[1]! - storedAt);
  }

  /** Live messages the pulse read since it started (each a heartbeat heard). */
  get messages(): number {
    return this.times[2]!;
  }

  async stop(): Promise<void> {
    this.failed ??= "stopped";
    await this.worker.terminate();
  }
}
