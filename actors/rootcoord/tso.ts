/**
 * The timestamp oracle: hybrid timestamps (physical ms << 18 | logical), strictly increasing, also
 * across restarts. Issuing is in memory; what makes it survive a restart is a physical watermark kept
 * in KV ahead of the clock: no timestamp is ever issued at or above the saved watermark, and a new
 * instance starts at the saved watermark. The watermark is moved `windowMs` ahead before the clock
 * reaches it (by the actor's tick, or at once on the hot path when the tick fell behind).
 */
import { composeTs, LOGICAL_BITS, type Timestamp } from "../../protocol/ids.ts";
import { isCasConflict, type KvMeta } from "../../runtime/kv_meta.ts";
import type { Logger } from "../../runtime/logger.ts";
import { TSO_KEY, type TsoWatermark } from "./kv_layout.ts";

/** Timestamps per physical millisecond; also the most one AllocTimestamp can ask for. */
export const MAX_LOGICAL = 1 << Number(LOGICAL_BITS);
export const DEFAULT_TSO_WINDOW_MS = 3_000;
const MAX_CAS_ATTEMPTS = 5;

export interface TsoOptions {
  /** How far ahead of the clock the saved watermark is kept. */
  windowMs?: number;
  /** The physical clock (ms); Date.now by default. */
  now?: () => number;
  log: Logger;
}

export class TimestampOracle {
  private physical = 0;
  private logical = 0;
  /** Saved in KV: no timestamp has a physical part at or above it. */
  private watermark = 0;
  /** Revision of the watermark key; 0 when it was never written. */
  private revision = 0;
  readonly windowMs: number;
  private readonly now: () => number;
  private readonly log: Logger;

  private constructor(
    private readonly kv: KvMeta,
    opts: TsoOptions,
  ) {
    this.windowMs = opts.windowMs ?? DEFAULT_TSO_WINDOW_MS;
    this.now = opts.now ?? Date.now;
    this.log = opts.log;
  }

  /** Loads the saved watermark, starts at it (every earlier timestamp is below it) and moves it ahead. */
  static async open(kv: KvMeta, opts: TsoOptions): Promise<TimestampOracle> {
    const tso = new TimestampOracle(kv, opts);
    await tso.reload();
    tso.physical = Math.max(tso.now(), tso.watermark);
    tso.logical = 0;
    await tso.extend();
    return tso;
  }

  /** The last physical ms this oracle issued at (or starts from). */
  get lastPhysical(): number {
    return this.physical;
  }

  /**
   * `count` consecutive timestamps; returns the first. Synchronous, or undefined when the watermark must
   * move first (call `alloc`).
   */
  tryAlloc(count: number): Timestamp | undefined {
    const now = this.now();
    if (now > this.physical) {
      this.physical = now;
      this.logical = 0;
    }
    if (this.logical + count > MAX_LOGICAL) {
      // this millisecond is used up: borrow the next one (the clock catches up)
      this.physical++;
      this.logical = 0;
    }
    if (this.physical >= this.watermark) return undefined;
    const ts = composeTs(this.physical, this.logical);
    this.logical += count;
    return ts;
  }

  async alloc(count: number): Promise<Timestamp> {
    for (;;) {
      const ts = this.tryAlloc(count);
      if (ts !== undefined) return ts;
      await this.extend();
    }
  }

  /** true when less than half the window is left before the watermark. */
  needsExtension(): boolean {
    return this.watermark - Math.max(this.now(), this.physical) < this.windowMs / 2;
  }

  /** Saves a watermark `windowMs` ahead of the clock (compare-and-set on the key's revision). */
  async extend(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const target = Math.max(this.now(), this.physical) + this.windowMs;
      const value: TsoWatermark = { physicalMs: target };
      try {
        this.revision =
          this.revision === 0 ? await this.kv.createValue(TSO_KEY, value) : await this.kv.updateValue(TSO_KEY, value, this.revision);
        this.watermark = target;
        return;
      } catch (err) {
        if (!isCasConflict(err) || attempt >= MAX_CAS_ATTEMPTS) throw err;
        // someone else moved the watermark (another rootcoord?): continue above what it may have issued
        const before = this.watermark;
        await this.reload();
        if (this.watermark > this.physical) {
          this.physical = this.watermark;
          this.logical = 0;
        }
        this.log.warn({ before, saved: this.watermark }, "the TSO watermark was moved by another writer; continuing above it");
      }
    }
  }

  private async reload(): Promise<void> {
    const saved = await this.kv.getValue<TsoWatermark>(TSO_KEY);
    if (saved === undefined) {
      this.revision = 0;
      return;
    }
    const ms = saved.value?.physicalMs;
    if (typeof ms !== "number" || !Number.isSafeInteger(ms) || ms < 0) {
      throw new Error(`the saved TSO watermark is corrupt: ${JSON.stringify(saved.value)}`);
    }
    this.watermark = Math.max(this.watermark, ms);
    this.revision = saved.revision;
  }
}
