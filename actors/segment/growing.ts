/**
 * The growing rows of a delegator: the rows of its vchannel consumed after the seek position, kept as
 * the message batches they came in (columns in schema order, one position for every row of a batch).
 *
 * A batch never changes once added but for `deletedAt`, the position of the first delete of the row's
 * pk after the row (0n: none yet). Deletes arrive in channel order, so the first stamp is the smallest,
 * and every stamp is at a position the delegator had not yet applied when it was made: a read at a
 * position r that started before it is not affected by it (r < stamp). So a read can scan a snapshot of
 * the batch list off the mailbox while new messages are applied.
 *
 * Batches covered by the sealed segments of every live version of the distribution are dropped
 * (`dropWhere`): the sealed copy answers for those rows. Dropping takes them off the list at once; their
 * keys leave the pk index in chunks (`sweep`), so a handoff of many rows never holds the mailbox long,
 * and until then the index skips rows of dropped batches.
 */
import { ALL_PARTITIONS, type PkColumn } from "../../protocol/dml.ts";
import type { Column } from "../../protocol/schema.ts";
import { int64Words, pkKeyReader, type PkKey } from "../storage/columns.ts";
import type { RowSource } from "./read_kernel.ts";

/** An estimate of the memory of a batch's columns: typed arrays as they are, strings at two bytes a character. */
export function estimateBatchBytes(columns: readonly Column[]): number {
  let bytes = 0;
  for (const c of columns) {
    if (ArrayBuffer.isView(c.data)) {
      bytes += c.data.byteLength;
      continue;
    }
    for (const v of c.data as unknown[]) bytes += typeof v === "string" ? 16 + 2 * v.length : 32;
  }
  return bytes;
}

export interface GrowingBatch extends RowSource {
  /** the message's position: the version of every row of the batch */
  readonly position: bigint;
  /** the same position, as a read source sees it (one for every row) */
  readonly positions: bigint;
  readonly ts: bigint;
  readonly partitionId: bigint;
  readonly numRows: number;
  /** every field of the schema, in schema order */
  readonly columns: Column[];
  readonly pks: PkColumn;
  /** per row: the position of the first delete of its pk after it; 0n = not deleted */
  readonly deletedAt: BigInt64Array;
}

interface RowRef {
  b: GrowingBatch;
  i: number;
}

export class GrowingRows {
  private batches: GrowingBatch[] = [];
  /** key of a pk (`pkKey`) → its rows not yet deleted */
  private readonly alive = new Map<PkKey, RowRef | RowRef[]>();
  private rows = 0;
  private bytes = 0;
  /** dropped batches whose keys may still be in `alive` */
  private readonly gone = new WeakSet<GrowingBatch>();
  private sweepQueue: { b: GrowingBatch; next: number }[] = [];
  private readonly bytesOf = new WeakMap<GrowingBatch, number>();

  get numRows(): number {
    return this.rows;
  }

  /** An estimate of the memory the batches hold (`estimateBatchBytes`, plus the delete stamps). */
  get numBytes(): number {
    return this.bytes;
  }

  get numBatches(): number {
    return this.batches.length;
  }

  /** The batches as they are now (a copy of the list; the batches are shared). */
  snapshot(): GrowingBatch[] {
    return this.batches.slice();
  }

  add(batch: Omit<GrowingBatch, "deletedAt" | "positions">): GrowingBatch {
    const b: GrowingBatch = { ...batch, positions: batch.position, deletedAt: new BigInt64Array(batch.numRows) };
    this.batches.push(b);
    this.rows += b.numRows;
    const bytes = estimateBatchBytes(b.columns) + b.deletedAt.byteLength;
    this.bytesOf.set(b, bytes);
    this.bytes += bytes;
    const keyAt = pkKeyReader(b.pks);
    for (let i = 0; i < b.numRows; i++) {
      const key = keyAt(i);
      const ref = { b, i };
      const cur = this.alive.get(key);
      if (cur === undefined) this.alive.set(key, ref);
      else if (Array.isArray(cur)) cur.push(ref);
      else this.alive.set(key, [cur, ref]);
    }
    return b;
  }

  /**
   * A delete at `position` of `pks` in `partitionId` (-1: every partition): stamps the rows of those
   * keys inserted before it. Returns how many rows it hid.
   */
  applyDelete(pks: PkColumn, position: bigint, partitionId: bigint): number {
    let hidden = 0;
    const keyAt = pkKeyReader(pks);
    for (let k = 0; k < pks.length; k++) {
      const key = keyAt(k);
      const cur = this.alive.get(key);
      if (cur === undefined) continue;
      const refs = Array.isArray(cur) ? cur : [cur];
      const keep: RowRef[] = [];
      for (const r of refs) {
        if (this.gone.has(r.b)) continue; // dropped: leaves the index now
        const hit = r.b.position < position && (partitionId === ALL_PARTITIONS || r.b.partitionId === partitionId);
        if (hit) {
          r.b.deletedAt[r.i] = position;
          hidden++;
        } else {
          keep.push(r);
        }
      }
      if (keep.length === 0) this.alive.delete(key);
      else this.alive.set(key, keep.length === 1 ? keep[0]! : keep);
    }
    return hidden;
  }

  /**
   * Drops the batches `drop` selects; returns the rows dropped. Their keys leave the index through
   * `sweep`.
   */
  dropWhere(drop: (b: GrowingBatch) => boolean): number {
    const kept: GrowingBatch[] = [];
    let dropped = 0;
    for (const b of this.batches) {
      if (!drop(b)) {
        kept.push(b);
        continue;
      }
      dropped += b.numRows;
      this.bytes -= this.bytesOf.get(b) ?? 0;
      this.gone.add(b);
      this.sweepQueue.push({ b, next: 0 });
    }
    if (dropped === 0) return 0;
    this.batches = kept;
    this.rows -= dropped;
    return dropped;
  }

  /** Whether dropped batches still have keys in the index (call `sweep` until false). */
  get sweeping(): boolean {
    return this.sweepQueue.length > 0;
  }

  /** Takes the keys of up to `maxRows` rows of dropped batches out of the index; true while some remain. */
  sweep(maxRows: number): boolean {
    let budget = maxRows;
    while (budget > 0 && this.sweepQueue.length > 0) {
      const job = this.sweepQueue[0]!;
      const b = job.b;
      const keyAt = pkKeyReader(b.pks);
      const stamps = int64Words(b.deletedAt);
      const end = Math.min(b.numRows, job.next + budget);
      for (let i = job.next; i < end; i++) {
        if ((stamps[2 * i]! | stamps[2 * i + 1]!) !== 0) continue; // deleted: not in the index any more
        const key = keyAt(i);
        const cur = this.alive.get(key);
        if (cur === undefined) continue;
        if (Array.isArray(cur)) {
          const keep = cur.filter((r) => r.b !== b);
          if (keep.length === 0) this.alive.delete(key);
          else if (keep.length !== cur.length) this.alive.set(key, keep.length === 1 ? keep[0]! : keep);
        } else if (cur.b === b) {
          this.alive.delete(key);
        }
      }
      budget -= end - job.next;
      job.next = end;
      if (end >= b.numRows) this.sweepQueue.shift();
    }
    return this.sweepQueue.length > 0;
  }

  /** Keys in the index (rows of dropped batches included until swept). For tests. */
  get indexedKeys(): number {
    return this.alive.size;
  }
}
