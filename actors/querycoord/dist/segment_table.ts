/**
 * A node's segment records held as columns sorted by id: what the feed's thread keeps of each node's base
 * (`DistAssembler`). About 28 bytes a record (id, rows, memory, a shape number) instead of an object of
 * about 130 bytes with a map entry: for 1,000,000 segments in 2 replicas, a few hundred megabytes fewer
 * on that thread. A record is made again (`record`) only when it is handed on.
 */
import type { DistSegment } from "../../../protocol/messages/querynode.ts";

/** What many records repeat: their collection, partition, channel and loaded indexes. */
type Shape = Pick<DistSegment, "collectionId" | "partitionId" | "vchannel" | "indexIds">;

/**
 * Numbers for the shapes the records of one reader show (a few per collection, partition, channel and
 * set of loaded indexes): a table holds a shape's number, and a record made again shares its values.
 */
export class SegmentShapes {
  private readonly byKey = new Map<string, number>();
  private readonly list: Shape[] = [];

  of(s: DistSegment): number {
    const indexIds = s.indexIds ?? [];
    const key = `${s.collectionId}\u0000${s.partitionId}\u0000${s.vchannel}\u0000${indexIds.join(",")}`;
    let n = this.byKey.get(key);
    if (n === undefined) {
      n = this.list.length;
      this.list.push({ collectionId: s.collectionId, partitionId: s.partitionId, vchannel: s.vchannel, indexIds: indexIds.length === 0 ? [] : [...indexIds] });
      this.byKey.set(key, n);
    }
    return n;
  }

  get(n: number): Shape {
    return this.list[n]!;
  }

  /** How many shapes were seen. */
  get size(): number {
    return this.list.length;
  }
}

/** Records as columns, sorted by segment id; a segment listed twice is held once (the later record). */
export class SegmentTable {
  private constructor(
    private readonly shapes: SegmentShapes,
    private readonly ids: BigInt64Array,
    private readonly rows: Float64Array,
    private readonly memory: Float64Array,
    private readonly shape: Uint32Array,
  ) {}

  static readonly empty = (shapes: SegmentShapes) => new SegmentTable(shapes, new BigInt64Array(0), new Float64Array(0), new Float64Array(0), new Uint32Array(0));

  /** The records of `lists`, in order (a later record of a segment in place of an earlier one). */
  static of(shapes: SegmentShapes, lists: readonly (readonly DistSegment[])[]): SegmentTable {
    const all: DistSegment[] = [];
    for (const l of lists) for (const s of l) all.push(s);
    // stable: of two records of one segment the later stays later, and the walk below keeps the last
    const order = all.map((_, i) => i).sort((a, b) => {
      const x = all[a]!.segmentId;
      const y = all[b]!.segmentId;
      return x < y ? -1 : x > y ? 1 : a - b;
    });
    let n = 0;
    for (let k = 0; k < order.length; k++) if (k + 1 === order.length || all[order[k]!]!.segmentId !== all[order[k + 1]!]!.segmentId) n++;
    const t = new SegmentTable(shapes, new BigInt64Array(n), new Float64Array(n), new Float64Array(n), new Uint32Array(n));
    let at = 0;
    for (let k = 0; k < order.length; k++) {
      const s = all[order[k]!]!;
      if (k + 1 < order.length && s.segmentId === all[order[k + 1]!]!.segmentId) continue;
      t.ids[at] = BigInt.asIntN(64, BigInt(s.segmentId));
      t.rows[at] = Number(s.rows);
      t.memory[at] = Number(s.memoryBytes);
      t.shape[at] = shapes.of(s);
      at++;
    }
    return t;
  }

  get length(): number {
    return this.ids.length;
  }

  idAt(i: number): bigint {
    return this.ids[i]!;
  }

  /** The place of a segment, or -1. */
  indexOf(id: bigint): number {
    let lo = 0;
    let hi = this.ids.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = this.ids[mid]!;
      if (v < id) lo = mid + 1;
      else if (v > id) hi = mid - 1;
      else return mid;
    }
    return -1;
  }

  /** The record at a place, made anew (its repeated values shared). */
  record(i: number): DistSegment {
    const sh = this.shapes.get(this.shape[i]!);
    return {
      segmentId: this.ids[i]!,
      collectionId: sh.collectionId,
      partitionId: sh.partitionId,
      vchannel: sh.vchannel,
      rows: this.rows[i]!,
      memoryBytes: this.memory[i]!,
      indexIds: sh.indexIds,
    };
  }

  /** Whether the record at a place says what `s` says (as `sameDistSegment`). */
  same(i: number, s: DistSegment): boolean {
    if (this.rows[i] !== s.rows || this.memory[i] !== s.memoryBytes) return false;
    const sh = this.shapes.get(this.shape[i]!);
    if (sh.collectionId !== s.collectionId || sh.partitionId !== s.partitionId || sh.vchannel !== s.vchannel) return false;
    const a = sh.indexIds;
    const b = s.indexIds ?? [];
    if (a.length !== b.length) return false;
    for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return false;
    return true;
  }

  /** Whether the record at place `i` says what the record at place `j` of `other` (of the same shapes) says. */
  sameAs(i: number, other: SegmentTable, j: number): boolean {
    return this.rows[i] === other.rows[j] && this.memory[i] === other.memory[j] && this.shape[i] === other.shape[j];
  }
}
