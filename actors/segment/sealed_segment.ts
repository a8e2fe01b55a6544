/**
 * A sealed segment loaded on a querynode: the rows of one partition of one vchannel over a position
 * range, column by column, each row with its position, and `deletedAt` per row: the position of the
 * first delete of its pk after the row (0n: none known). Deletes reach it from the L0 segments given at
 * load and from the delegator (ApplyDelete), in any order: a stamp only ever moves to an earlier delete.
 *
 * Data never changes after load but for those stamps, and a stamp is a fact (that delete exists), so a
 * read can run off the mailbox on a segment object while deletes arrive or the segment is released.
 * The segment's actor (sealed_segment_actor.ts) is the only one that changes it.
 *
 * Vector columns live in shared memory (the insert log is read into a SharedArrayBuffer, which Arrow
 * views without copying), so search threads read them in place. Loaded vector indexes hang off the
 * segment by index id; they change only in the segment actor's mailbox.
 */
import { ALL_PARTITIONS, type PkColumn } from "../../protocol/dml.ts";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import type { SegmentInfo } from "../../protocol/meta.ts";
import type { IndexLoadInfo } from "../../protocol/messages/indexes.ts";
import type { CollectionSchema, Column } from "../../protocol/schema.ts";
import type { ObjectStore } from "../../runtime/object_store.ts";
import { readDeltaLog, type DeltaData } from "../storage/delta_log.ts";
import { readSegment } from "../storage/insert_log.ts";
import type { RowSource } from "./read_kernel.ts";
import type { IndexHandle } from "./search_threads.ts";

/** A vector index loaded for one field of a segment. */
export interface AttachedIndex {
  info: IndexLoadInfo;
  handle: IndexHandle;
  /** bytes accounted for it in the node's memory budget */
  memoryBytes: number;
}

export class SealedSegment implements RowSource {
  readonly segmentId: bigint;
  readonly collectionId: bigint;
  readonly partitionId: bigint;
  readonly vchannel: string;
  readonly startPosition: bigint;
  readonly endPosition: bigint;
  /** rows with a delete stamp: while 0, every row is visible to a read at or after endPosition */
  deletedRows = 0;
  readonly numRows: number;
  readonly columns: Column[];
  readonly pks: PkColumn;
  readonly positions: BigInt64Array;
  readonly deletedAt: BigInt64Array;
  readonly memoryBytes: number;
  /** COSINE norms by field id: set by the segment's actor */
  readonly norms = new Map<number, Float64Array>();
  /** loaded vector indexes, by index id */
  readonly indexes = new Map<bigint, AttachedIndex>();
  /** pk → row (rows when a pk occurs more than once) */
  private readonly pkRows = new Map<bigint | string, number | number[]>();

  constructor(
    readonly info: SegmentInfo,
    readonly schema: CollectionSchema,
    data: { numRows: number; columns: Column[]; positions: BigInt64Array },
  ) {
    this.segmentId = info.segmentId;
    this.collectionId = info.collectionId;
    this.partitionId = info.partitionId;
    this.vchannel = info.vchannel;
    this.startPosition = info.startPosition;
    this.endPosition = info.endPosition ?? info.startPosition;
    this.numRows = data.numRows;
    this.positions = data.positions;
    this.columns = data.columns.map((c, i) => (schema.fields[i]?.type === "FloatVector" ? sharedColumn(c) : c));
    this.deletedAt = new BigInt64Array(data.numRows);
    const pkIdx = schema.fields.findIndex((f) => f.isPrimaryKey);
    this.pks = data.columns[pkIdx]!.data as PkColumn;
    for (let i = 0; i < this.numRows; i++) {
      const pk = this.pks[i]!;
      const cur = this.pkRows.get(pk);
      if (cur === undefined) this.pkRows.set(pk, i);
      else if (typeof cur === "number") this.pkRows.set(pk, [cur, i]);
      else cur.push(i);
    }
    this.memoryBytes = columnsBytes(data.columns) + 16 * this.numRows;
  }

  /**
   * Deletes of this segment's pks at `positions` (one per pk). A delete of `partitionIds[i]` other than
   * this segment's partition (and not -1) is ignored. Returns the rows whose stamp moved.
   */
  applyDeletes(pks: PkColumn, positions: BigInt64Array, partitionIds?: BigInt64Array): number {
    let changed = 0;
    for (let k = 0; k < pks.length; k++) {
      if (partitionIds) {
        const p = partitionIds[k]!;
        if (p !== ALL_PARTITIONS && p !== this.partitionId) continue;
      }
      const cur = this.pkRows.get(pks[k]!);
      if (cur === undefined) continue;
      const d = positions[k]!;
      if (typeof cur === "number") changed += this.stamp(cur, d);
      else for (const row of cur) changed += this.stamp(row, d);
    }
    return changed;
  }

  /** The loaded index to search `fieldId` by `metric` with: the newest one of that field and metric. */
  indexFor(fieldId: number, metric: string): AttachedIndex | undefined {
    let best: AttachedIndex | undefined;
    for (const a of this.indexes.values()) {
      if (a.info.fieldId !== fieldId || a.handle.info.metric !== metric) continue;
      if (!best || a.info.indexId > best.info.indexId) best = a;
    }
    return best;
  }

  private stamp(row: number, d: bigint): number {
    if (this.positions[row]! >= d) return 0;
    const cur = this.deletedAt[row]!;
    if (cur !== 0n && cur <= d) return 0;
    if (cur === 0n) this.deletedRows++;
    this.deletedAt[row] = d;
    return 1;
  }
}

/** The column with its values in shared memory (as it is when it is already there). */
function sharedColumn(c: Column): Column {
  const d = c.data as unknown;
  if (!(d instanceof Float32Array) || d.buffer instanceof SharedArrayBuffer) return c;
  const shared = new Float32Array(new SharedArrayBuffer(d.byteLength));
  shared.set(d);
  return { ...c, data: shared };
}

/**
 * The store as a segment load reads it: whole objects come back in shared memory, so the columns Arrow
 * views over them (vectors above all) can be read by search threads in place.
 */
export function sharedReads(store: ObjectStore): ObjectStore {
  return {
    put: (k, d) => store.put(k, d),
    get: async (k) => {
      const bytes = await store.get(k);
      const out = new Uint8Array(new SharedArrayBuffer(bytes.byteLength));
      out.set(bytes);
      return out;
    },
    getRange: (k, o, l) => store.getRange(k, o, l),
    stat: (k) => store.stat(k),
    list: (p) => store.list(p),
    delete: (k) => store.delete(k),
    deletePrefix: (p) => store.deletePrefix(p),
    exists: (k) => store.exists(k),
  };
}

/** Bytes the columns take in memory (strings counted as UTF-16 plus a header). */
export function columnsBytes(columns: readonly Column[]): number {
  let total = 0;
  for (const c of columns) {
    const d = c.data as unknown;
    if (ArrayBuffer.isView(d)) total += d.byteLength;
    else if (Array.isArray(d)) {
      for (const v of d) total += typeof v === "string" ? 16 + 2 * v.length : Array.isArray(v) ? 16 + 8 * v.length : 8;
    }
    if (c.valid) total += c.valid.byteLength;
  }
  return total;
}

/** The bytes a segment will take once loaded, before it is read: for the memory check of a load. */
export function estimateSegmentBytes(info: SegmentInfo, schema: CollectionSchema): number {
  if (info.memorySize > 0) return info.memorySize;
  let perRow = 16;
  for (const f of schema.fields) {
    switch (f.type) {
      case "Bool":
      case "Int8":
        perRow += 1;
        break;
      case "Int16":
        perRow += 2;
        break;
      case "Int32":
      case "Float":
        perRow += 4;
        break;
      case "FloatVector":
        perRow += 4 * (f.dim ?? 0);
        break;
      case "VarChar":
      case "JSON":
      case "Array":
        perRow += 48;
        break;
      default:
        perRow += 8;
    }
  }
  const fromRows = perRow * info.numRows;
  const fromLogs = info.binlogs.reduce((a, b) => a + b.bytes, 0);
  return Math.max(fromRows, fromLogs);
}

/** Reads an L0 segment's deletes (cache them per load: several segments share them). */
export function readL0(store: ObjectStore, l0: SegmentInfo): Promise<DeltaData> {
  return readDeltaLog(store, l0);
}

/** Reads a Flushed L1 segment and applies the deletes of the L0 segments of its vchannel. */
export async function loadSealedSegment(
  store: ObjectStore,
  info: SegmentInfo,
  schema: CollectionSchema,
  l0: readonly { info: SegmentInfo; data: Promise<DeltaData> }[],
): Promise<SealedSegment> {
  let data;
  try {
    data = await readSegment(sharedReads(store), info, schema);
  } catch (err) {
    const e = VbError.from(err);
    throw new VbError(
      e.code === ErrorCode.Unexpected ? ErrorCode.SegmentLoadFailed : e.code,
      `loading segment ${info.segmentId} failed: ${e.message}`,
      { cause: err, retriable: e.retriable },
    );
  }
  const seg = new SealedSegment(info, schema, data);
  for (const d of l0) {
    if (d.info.vchannel !== info.vchannel) continue;
    const deltas = await d.data;
    seg.applyDeletes(deltas.pks, deltas.positions, deltas.partitionIds);
  }
  return seg;
}
