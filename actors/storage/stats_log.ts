/**
 * The stats log of a sealed segment (msgpack): its row count, its primary keys' min, max and bloom
 * filter, and the min/max and null count of each numeric field. A querynode uses the bloom filter to
 * route deletes and the ranges to prune segments.
 */
import { decode, encode } from "../../protocol/codec.ts";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import type { PkColumn } from "../../protocol/dml.ts";
import type { CollectionSchema, Column, FieldSchema } from "../../protocol/schema.ts";
import type { ObjectStore } from "../../runtime/object_store.ts";
import { BloomFilter, type BloomFilterData } from "./bloom_filter.ts";
import { statsLogKey } from "./layout.ts";

export interface FieldStats {
  fieldId: number;
  /** undefined when every row is null (or there are no rows) */
  min?: number | bigint;
  max?: number | bigint;
  nullCount: number;
}

export interface SegmentStats {
  version: 1;
  numRows: number;
  pkFieldId: number;
  pkMin?: bigint | string;
  pkMax?: bigint | string;
  bloom: BloomFilterData;
  fields: FieldStats[];
}

const NUMERIC = new Set(["Int8", "Int16", "Int32", "Int64", "Float", "Double"]);

function numericStats(field: FieldSchema, col: Column, n: number): FieldStats {
  const data = col.data as ArrayLike<number | bigint>;
  const valid = col.valid;
  let min: number | bigint | undefined;
  let max: number | bigint | undefined;
  let nullCount = 0;
  for (let i = 0; i < n; i++) {
    if (valid && !valid[i]) {
      nullCount++;
      continue;
    }
    const v = data[i]!;
    if (typeof v === "number" && Number.isNaN(v)) continue;
    if (min === undefined || v < min) min = v;
    if (max === undefined || v > max) max = v;
  }
  return { fieldId: field.fieldId ?? 0, ...(min === undefined ? {} : { min, max }), nullCount };
}

/** Computes the stats of a segment's rows. `pks` are the rows' primary keys in row order. */
export function computeStats(schema: CollectionSchema, columns: readonly Column[], pks: PkColumn, numRows: number, fpRate?: number): SegmentStats {
  const pkField = schema.fields.find((f) => f.isPrimaryKey);
  if (!pkField) throw VbError.invalid(`schema "${schema.name}" has no primary key`);
  const bloom = BloomFilter.forCapacity(numRows, fpRate);
  let pkMin: bigint | string | undefined;
  let pkMax: bigint | string | undefined;
  for (let i = 0; i < numRows; i++) {
    const pk = pks[i]!;
    bloom.add(pk);
    if (pkMin === undefined || pk < pkMin) pkMin = pk;
    if (pkMax === undefined || pk > pkMax) pkMax = pk;
  }
  const fields: FieldStats[] = [];
  schema.fields.forEach((f, i) => {
    if (NUMERIC.has(f.type)) fields.push(numericStats(f, columns[i]!, numRows));
  });
  return {
    version: 1,
    numRows,
    pkFieldId: pkField.fieldId ?? 0,
    ...(pkMin === undefined ? {} : { pkMin, pkMax }),
    bloom: bloom.toData(),
    fields,
  };
}

export function encodeStats(stats: SegmentStats): Uint8Array {
  return encode(stats);
}

export function decodeStats(bytes: Uint8Array): SegmentStats {
  let s: SegmentStats;
  try {
    s = decode<SegmentStats>(bytes);
  } catch (err) {
    throw new VbError(ErrorCode.SegmentLoadFailed, "stats log unreadable: not msgpack", { cause: err });
  }
  if (typeof s !== "object" || s === null || s.version !== 1 || typeof s.bloom !== "object") {
    throw new VbError(ErrorCode.SegmentLoadFailed, "stats log unreadable: not a version 1 stats record");
  }
  BloomFilter.from(s.bloom); // validates
  return s;
}

/** Reads a segment's stats log (its first statslog key, or the layout's key). */
export async function readStats(
  store: ObjectStore,
  segment: { collectionId: bigint; partitionId: bigint; segmentId: bigint; statslogs: string[] },
): Promise<SegmentStats> {
  const key = segment.statslogs[0] ?? statsLogKey(segment);
  return decodeStats(await store.get(key));
}

/** The pk bloom filter of a stats record. */
export function bloomOf(stats: SegmentStats): BloomFilter {
  return BloomFilter.from(stats.bloom);
}
