/**
 * Rows → vchannels (by the hash of their primary key) → messages that fit the NATS payload limit.
 */
import { shardOfPk } from "../../protocol/hash.ts";
import type { PkColumn } from "../../protocol/dml.ts";
import type { CollectionSchema, Column, ColumnData } from "../../protocol/schema.ts";

type Typed = Exclude<ColumnData, string[] | unknown[][]>;

/** The rows at `idx` of one column (vectors take `dim` values a row). */
export function gatherColumn(col: Column, idx: Int32Array | number[], dim = 1): Column {
  const n = idx.length;
  let data: ColumnData;
  if (Array.isArray(col.data)) {
    const src = col.data as unknown[];
    const out = new Array<unknown>(n);
    for (let i = 0; i < n; i++) out[i] = src[idx[i]!];
    data = out as string[] | unknown[][];
  } else {
    const src = col.data as Typed;
    const Ctor = src.constructor as new (n: number) => Typed;
    const out = new Ctor(n * dim);
    if (dim === 1) {
      for (let i = 0; i < n; i++) (out as unknown as Array<number | bigint>)[i] = (src as unknown as Array<number | bigint>)[idx[i]!]!;
    } else {
      const f32 = src as Float32Array;
      const o32 = out as Float32Array;
      for (let i = 0; i < n; i++) o32.set(f32.subarray(idx[i]! * dim, idx[i]! * dim + dim), i * dim);
    }
    data = out;
  }
  const result: Column = { fieldId: col.fieldId, data };
  if (col.valid) {
    const v = new Uint8Array(n);
    for (let i = 0; i < n; i++) v[i] = col.valid[idx[i]!]!;
    result.valid = v;
  }
  return result;
}

/** A rough encoded size of each row, to cut messages under the payload limit. */
export function estimateRowBytes(columns: Column[], numRows: number): number {
  let total = 0;
  for (const c of columns) {
    if (Array.isArray(c.data)) {
      const sample = Math.min(numRows, 64);
      let bytes = 0;
      for (let i = 0; i < sample; i++) {
        const v = c.data[i];
        bytes += typeof v === "string" ? v.length * 3 + 5 : JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? x.toString() : x)).length * 2 + 9;
      }
      total += sample ? bytes / sample : 0;
    } else {
      total += (c.data as Typed).byteLength / Math.max(1, numRows);
    }
    if (c.valid) total += 1;
  }
  return Math.ceil(total) + 16;
}

export interface ShardPart {
  shard: number;
  numRows: number;
  pks: PkColumn;
  columns: Column[];
}

/**
 * Splits a batch by shard and then into parts of at most `maxRows` rows and about `maxBytes` bytes.
 * The rows of a shard keep their order.
 */
export function splitByShard(
  schema: CollectionSchema,
  columns: Column[],
  pkIndex: number,
  numRows: number,
  shardsNum: number,
  limits: { maxRows: number; maxBytes: number },
): ShardPart[] {
  const pkCol = columns[pkIndex]!.data as PkColumn;
  const byShard: number[][] = Array.from({ length: shardsNum }, () => []);
  for (let r = 0; r < numRows; r++) byShard[shardOfPk(pkCol[r]!, shardsNum)]!.push(r);
  const dims = schema.fields.map((f) => (f.type === "FloatVector" ? f.dim! : 1));
  const rowBytes = estimateRowBytes(columns, numRows);
  const perPart = Math.max(1, Math.min(limits.maxRows, Math.floor(limits.maxBytes / rowBytes)));
  const parts: ShardPart[] = [];
  byShard.forEach((rows, shard) => {
    for (let off = 0; off < rows.length; off += perPart) {
      const idx = rows.slice(off, off + perPart);
      const cols = columns.map((c, k) => gatherColumn(c, idx, dims[k]));
      parts.push({ shard, numRows: idx.length, pks: cols[pkIndex]!.data as PkColumn, columns: cols });
    }
  });
  return parts;
}
