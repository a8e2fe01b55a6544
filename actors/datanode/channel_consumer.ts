/**
 * Reads one vchannel for the datanode actor: a DML consumption from a position, whose messages are
 * posted to the actor's mailbox (where the write buffer applies them) with a window bounded in bytes, so
 * a slow mailbox slows the reader instead of queueing the whole stream in memory: what a reader holds is
 * at most the window plus the log's read-ahead (see runtime/dml_log.ts). `stop()` never waits on the
 * mailbox: it releases whatever the reader waits for, then ends the consumption.
 */
import type { DmlConsumption, DmlLog, DmlMessage } from "../../runtime/dml_log.ts";

/** Bytes of messages posted to the mailbox and not yet handled, at most (one message always goes). */
export const DEFAULT_WINDOW_BYTES = 16 * 1024 * 1024;

/** Posts one message to the actor; the actor calls `applied()` once it has handled it. */
export type Deliver = (msg: DmlMessage, applied: () => void) => void;

export class ChannelConsumer {
  private consumption: DmlConsumption | undefined;
  private inFlightBytes = 0;
  private waiters: Array<() => void> = [];
  private stopped = false;

  constructor(
    private readonly dml: DmlLog,
    readonly stream: string,
    readonly subject: string,
    private readonly deliver: Deliver,
    private readonly windowBytes = DEFAULT_WINDOW_BYTES,
    /** who reads, for the DML consumer lag metrics */
    private readonly reader?: string,
  ) {}

  /** Starts reading after `from`; resolves with `done`, which settles when the consumption ends. */
  async start(from: bigint): Promise<{ done: Promise<void> }> {
    const c = await this.dml.consume(this.stream, this.subject, from, (m) => this.onMessage(m), this.reader === undefined ? {} : { reader: this.reader });
    if (this.stopped) {
      await c.stop();
      return { done: Promise.resolve() };
    }
    this.consumption = c;
    return { done: c.done };
  }

  private onMessage(m: DmlMessage): void | Promise<void> {
    if (this.stopped) return;
    const bytes = m.data.byteLength;
    this.inFlightBytes += bytes;
    let released = false;
    this.deliver(m, () => {
      if (released) return;
      released = true;
      this.release(bytes);
    });
    if (this.inFlightBytes < this.windowBytes) return;
    return new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  private release(bytes: number): void {
    this.inFlightBytes -= bytes;
    if (this.inFlightBytes < this.windowBytes) this.wakeAll();
  }

  private wakeAll(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeAll();
    await this.consumption?.stop();
  }
}
