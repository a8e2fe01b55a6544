/**
 * Unique 64-bit ids: ranges [start, start + count) handed out from memory, from a block reserved in KV.
 * The saved value is the first id not reserved yet; a restarted allocator starts there, so an id is
 * never handed out twice even if the process died with most of its block unused. Blocks are reserved
 * with compare-and-set, so two writers never reserve the same ids.
 */
import { isCasConflict, type KvMeta } from "../../runtime/kv_meta.ts";
import type { Logger } from "../../runtime/logger.ts";
import { ID_KEY, type IdWatermark } from "./kv_layout.ts";

export const ID_BLOCK = 100_000n;
export const FIRST_ID = 1n;
/** The most ids one AllocId may ask for. */
export const MAX_ID_COUNT = 10_000_000;
const MAX_CAS_ATTEMPTS = 5;

export class IdAllocator {
  private next = FIRST_ID;
  /** ids below this are reserved for this allocator (from `next` on) */
  private limit = FIRST_ID;
  private revision = 0;

  private constructor(
    private readonly kv: KvMeta,
    private readonly log: Logger,
    private readonly block: bigint,
  ) {}

  static async open(kv: KvMeta, opts: { log: Logger; block?: bigint }): Promise<IdAllocator> {
    const a = new IdAllocator(kv, opts.log, opts.block ?? ID_BLOCK);
    await a.reload();
    a.limit = a.next;
    return a;
  }

  /** `count` ids, returns the first; synchronous, or undefined when a new block must be reserved first. */
  tryAlloc(count: number): bigint | undefined {
    const n = BigInt(count);
    if (this.next + n > this.limit) return undefined;
    const start = this.next;
    this.next += n;
    return start;
  }

  async alloc(count: number): Promise<bigint> {
    for (;;) {
      const start = this.tryAlloc(count);
      if (start !== undefined) return start;
      await this.reserve(BigInt(count));
    }
  }

  private async reserve(count: bigint): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const target = this.next + count + this.block;
      const value: IdWatermark = { next: target };
      try {
        this.revision =
          this.revision === 0 ? await this.kv.createValue(ID_KEY, value) : await this.kv.updateValue(ID_KEY, value, this.revision);
        this.limit = target;
        return;
      } catch (err) {
        if (!isCasConflict(err) || attempt >= MAX_CAS_ATTEMPTS) throw err;
        // another writer reserved a block: what is left of ours may be theirs now, so start after theirs
        await this.reload();
        this.limit = this.next;
        this.log.warn({ next: String(this.next) }, "the id watermark was moved by another writer; continuing above it");
      }
    }
  }

  private async reload(): Promise<void> {
    const saved = await this.kv.getValue<IdWatermark>(ID_KEY);
    if (saved === undefined) {
      this.revision = 0;
      return;
    }
    const next = saved.value?.next;
    if (typeof next !== "bigint" || next < FIRST_ID) {
      throw new Error(`the saved id watermark is corrupt: ${String(next)}`);
    }
    if (next > this.next) this.next = next;
    this.revision = saved.revision;
  }
}
