/**
 * The delete buffer of a delegator: every delete of its vchannel it knows, as (pk, position, partition),
 * in position order. The L0 deletes given at WatchDmChannels (older than the seek position) come first,
 * then the deletes consumed from the channel (a DeleteMsg, or the delete half of an UpsertMsg).
 *
 * It is what the delegator forwards to a sealed segment when a SyncDistribution adds it: every delete
 * whose position is after the segment's start (an earlier delete cannot hide any of its rows, since a
 * delete at d hides rows at p < d).
 */
import { ALL_PARTITIONS, type PkColumn } from "../../protocol/dml.ts";

export interface DeleteSlice {
  pks: PkColumn;
  positions: BigInt64Array;
}

/** A BigInt64Array that grows by doubling. */
class BigIntList {
  private data = new BigInt64Array(64);
  length = 0;
  push(v: bigint): void {
    if (this.length === this.data.length) {
      const next = new BigInt64Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }
  at(i: number): bigint {
    return this.data[i]!;
  }
}

export class DeleteBuffer {
  private readonly intPks: BigIntList | undefined;
  private readonly strPks: string[] | undefined;
  private readonly positions = new BigIntList();
  private readonly partitions = new BigIntList();

  /** `int64`: the collection's primary key is Int64 (else VarChar) */
  constructor(readonly int64: boolean) {
    if (int64) this.intPks = new BigIntList();
    else this.strPks = [];
  }

  get size(): number {
    return this.positions.length;
  }

  /** The position of the last delete buffered (0n when none). */
  get lastPosition(): bigint {
    return this.positions.length === 0 ? 0n : this.positions.at(this.positions.length - 1);
  }

  /**
   * Appends the deletes of one message (all at `position`). Positions must not go backwards: the
   * delegator adds them in channel order.
   */
  add(pks: PkColumn, position: bigint, partitionId: bigint): void {
    if (position < this.lastPosition) {
      throw new Error(`delete buffer: position ${position} is before the last buffered ${this.lastPosition}`);
    }
    for (let i = 0; i < pks.length; i++) {
      if (this.intPks) this.intPks.push(pks[i] as bigint);
      else this.strPks!.push(pks[i] as string);
      this.positions.push(position);
      this.partitions.push(partitionId);
    }
  }

  /** Index of the first delete whose position is > `after` (binary search; positions are sorted). */
  private firstAfter(after: bigint): number {
    let lo = 0;
    let hi = this.positions.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.positions.at(mid) > after) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /**
   * The deletes with `after < position <= upTo` that apply to `partitionId` (a delete of every partition
   * applies to all), in position order.
   */
  collect(after: bigint, partitionId: bigint, upTo?: bigint): DeleteSlice {
    const idx: number[] = [];
    for (let i = this.firstAfter(after); i < this.positions.length; i++) {
      if (upTo !== undefined && this.positions.at(i) > upTo) break;
      const p = this.partitions.at(i);
      if (p === ALL_PARTITIONS || partitionId === ALL_PARTITIONS || p === partitionId) idx.push(i);
    }
    const positions = BigInt64Array.from(idx, (i) => this.positions.at(i));
    const pks: PkColumn = this.intPks ? BigInt64Array.from(idx, (i) => this.intPks!.at(i)) : idx.map((i) => this.strPks![i]!);
    return { pks, positions };
  }
}

/** Splits a slice of deletes into parts of at most `maxBytes` (estimated), for messages under the payload limit. */
export function chunkDeletes(slice: DeleteSlice, maxBytes: number): DeleteSlice[] {
  const n = slice.positions.length;
  if (n === 0) return [];
  const out: DeleteSlice[] = [];
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const pk = slice.pks[i]!;
    const b = 8 + (typeof pk === "string" ? Buffer.byteLength(pk, "utf8") + 5 : 8);
    if (bytes + b > maxBytes && i > start) {
      out.push(sliceOf(slice, start, i));
      start = i;
      bytes = 0;
    }
    bytes += b;
  }
  out.push(sliceOf(slice, start, n));
  return out;
}

function sliceOf(s: DeleteSlice, a: number, b: number): DeleteSlice {
  return {
    pks: s.pks instanceof BigInt64Array ? s.pks.slice(a, b) : s.pks.slice(a, b),
    positions: s.positions.slice(a, b),
  };
}
