/**
 * The insert log of a sealed segment: ONE Arrow IPC file per segment, one record batch, a column per
 * field (every field of the schema, the dynamic `$meta` included) plus two system columns, `$position`
 * (the stream sequence of the message that carried the row: its version) and `$ts` (the message's hybrid
 * timestamp).
 *
 * Why one file per segment and not one per field (Milvus's choice): a segment is written once and a
 * querynode loads it whole (it filters on scalars, returns output fields and searches the vector), so
 * one object means one PUT and one GET per segment (on S3 every request costs a round trip), no
 * half-written segment visible as a subset of its fields, the system columns stored once, and one
 * footer that describes every column. A reader that wants a single column can still take it with range
 * reads: the file's footer gives each buffer's offset. One record batch keeps every column contiguous,
 * so a vector column comes back as one Float32Array view over the bytes read, with no copy.
 *
 * Columns are matched to schema fields by the field id in each Arrow field's metadata (`fieldId`), so a
 * renamed field still reads; a field the file lacks (added to the schema later) reads as nulls, or its
 * default value.
 */
import { Field, Int64, RecordBatch, Schema, Struct, Table, makeData, tableFromIPC, tableToIPC, type Data } from "apache-arrow";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import type { BinlogRef } from "../../protocol/meta.ts";
import type { CollectionSchema, Column, FieldSchema } from "../../protocol/schema.ts";
import type { ObjectStore } from "../../runtime/object_store.ts";
import { arrowTypeOf, decodeColumn, encodeColumn } from "./arrow_codec.ts";
import { checkColumn, concatBigInt64, concatColumns, placeholderColumn } from "./columns.ts";
import { insertLogKey } from "./layout.ts";

export const FORMAT_VERSION = "1";
export const POSITION_COLUMN = "$position";
export const TS_COLUMN = "$ts";
/** The `fieldId` of a BinlogRef that holds every field of a segment (one file per segment). */
export const ALL_FIELDS = -1;

/** The rows of a segment, column by column, with each row's position and timestamp. */
export interface SegmentData {
  numRows: number;
  /** one column per schema field, in schema order */
  columns: Column[];
  positions: BigInt64Array;
  timestamps: BigInt64Array;
}

export interface InsertLogHeader {
  collectionId: bigint;
  partitionId: bigint;
  segmentId: bigint;
}

function fieldMeta(field: FieldSchema): Map<string, string> {
  return new Map([
    ["fieldId", String(field.fieldId)],
    ["type", field.type],
  ]);
}

function bigintColumn(name: string, values: BigInt64Array, n: number): { field: Field; data: Data } {
  if (values.length !== n) throw VbError.invalid(`${name}: ${values.length} values for ${n} rows`);
  return {
    field: new Field(name, new Int64(), false, new Map([["system", name]])),
    data: makeData({ type: new Int64(), length: n, data: values }),
  };
}

/** Encodes a segment's rows as one Arrow IPC file. Columns must follow the schema's field order. */
export function encodeInsertLog(header: InsertLogHeader, schema: CollectionSchema, seg: SegmentData): Uint8Array {
  const n = seg.numRows;
  if (!Number.isSafeInteger(n) || n < 0) throw VbError.invalid(`numRows must be an integer ≥ 0, got ${String(n)}`);
  if (seg.columns.length !== schema.fields.length) {
    throw VbError.invalid(`columns: ${seg.columns.length} columns for ${schema.fields.length} fields`);
  }
  const fields: Field[] = [];
  const children: Data[] = [];
  schema.fields.forEach((f, i) => {
    const col = checkColumn(f, seg.columns[i], n);
    if (col.fieldId !== f.fieldId) {
      throw VbError.invalid(`columns[${i}]: field id ${col.fieldId} where the schema has "${f.name}" (${f.fieldId})`);
    }
    fields.push(new Field(f.name, arrowTypeOf(f), f.nullable === true, fieldMeta(f)));
    children.push(encodeColumn(f, col, n));
  });
  for (const [name, values] of [
    [POSITION_COLUMN, seg.positions],
    [TS_COLUMN, seg.timestamps],
  ] as const) {
    const c = bigintColumn(name, values, n);
    fields.push(c.field);
    children.push(c.data);
  }
  const meta = new Map([
    ["vectorbus.format", "insert_log"],
    ["vectorbus.version", FORMAT_VERSION],
    ["collectionId", String(header.collectionId)],
    ["partitionId", String(header.partitionId)],
    ["segmentId", String(header.segmentId)],
  ]);
  const arrowSchema = new Schema(fields, meta);
  const batch = new RecordBatch(arrowSchema, makeData({ type: new Struct(fields), length: n, children }));
  return tableToIPC(new Table([batch]), "file");
}

function corrupt(what: string, cause?: unknown): VbError {
  return new VbError(ErrorCode.SegmentLoadFailed, `insert log unreadable: ${what}`, cause === undefined ? {} : { cause });
}

const MAGIC = Buffer.from("ARROW1");

/** Parses an Arrow IPC file written by Vectorbus as `format`; anything else is a VbError from `corrupt`. */
export function openArrowFile(bytes: Uint8Array, format: string, corrupt: (what: string, cause?: unknown) => VbError): Table {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 2 * MAGIC.length + 4 || !buf.subarray(0, 6).equals(MAGIC) || !buf.subarray(buf.length - 6).equals(MAGIC)) {
    throw corrupt(`not an Arrow IPC file (${bytes.byteLength} bytes without the ARROW1 magic at both ends)`);
  }
  let table: Table;
  try {
    table = tableFromIPC(bytes);
  } catch (err) {
    throw corrupt(`not an Arrow IPC file (${err instanceof Error ? err.message : String(err)})`, err);
  }
  const found = table.schema.metadata.get("vectorbus.format");
  if (found !== format) throw corrupt(`the file is ${found === undefined ? "not a Vectorbus binlog" : `a ${found}`}, not a ${format}`);
  return table;
}

/** Decodes an insert log written by `encodeInsertLog` into the columns of `schema`. */
export function decodeInsertLog(bytes: Uint8Array, schema: CollectionSchema): SegmentData {
  const table = openArrowFile(bytes, "insert_log", corrupt);
  const parts = table.batches.map((b) => decodeBatch(table.schema.fields, b.data.children as Data[], b.numRows, schema));
  if (parts.length === 1) return parts[0]!;
  // no batch (an empty file), or several (written by another tool): concatenate them (this copies)
  return {
    numRows: table.numRows,
    columns: schema.fields.map((f, i) => concatColumns(f, parts.map((p) => ({ col: p.columns[i]!, numRows: p.numRows })))),
    positions: concatBigInt64(parts.map((p) => p.positions)),
    timestamps: concatBigInt64(parts.map((p) => p.timestamps)),
  };
}

function decodeBatch(arrowFields: Field[], datas: Data[], n: number, schema: CollectionSchema): SegmentData {
  const byFieldId = new Map<number, Data>();
  const system = new Map<string, Data>();
  arrowFields.forEach((f, i) => {
    const d = datas[i];
    if (d === undefined) return;
    const sys = f.metadata.get("system");
    if (sys) system.set(sys, d);
    const id = f.metadata.get("fieldId");
    if (id !== undefined) byFieldId.set(Number(id), d);
  });
  const columns = schema.fields.map((f) => {
    const d = byFieldId.get(f.fieldId ?? -1);
    if (d === undefined) return missingField(f, n);
    const expected = String(arrowTypeOf(f));
    if (String(d.type) !== expected) throw corrupt(`field "${f.name}" is stored as ${String(d.type)}, the schema wants ${expected}`);
    return decodeColumn(f, d);
  });
  const pos = system.get(POSITION_COLUMN);
  const ts = system.get(TS_COLUMN);
  if (!pos || !ts) throw corrupt(`the system columns ${POSITION_COLUMN} and ${TS_COLUMN} are missing`);
  return {
    numRows: n,
    columns,
    positions: (pos.values as BigInt64Array).subarray(pos.offset, pos.offset + n),
    timestamps: (ts.values as BigInt64Array).subarray(ts.offset, ts.offset + n),
  };
}

function missingField(f: FieldSchema, n: number): Column {
  const col = placeholderColumn(f, n);
  if (f.defaultValue !== undefined) {
    const v = f.defaultValue;
    const data = col.data as unknown[];
    for (let i = 0; i < n; i++) data[i] = f.type === "Int64" ? BigInt(v as bigint) : f.type === "Bool" ? (v ? 1 : 0) : v;
    if (col.valid) col.valid.fill(1);
    return col;
  }
  if (f.nullable) return col;
  throw corrupt(`field "${f.name}" (id ${f.fieldId}) is not in the file and is neither nullable nor has a default`);
}

/** What `readSegment` needs of a segment record. */
export interface SegmentRef {
  collectionId: bigint;
  partitionId: bigint;
  segmentId: bigint;
  numRows: number;
  binlogs: BinlogRef[];
}

/** Reads a Flushed segment's rows from the object store. A segment without rows has no insert log. */
export async function readSegment(store: ObjectStore, segment: SegmentRef, schema: CollectionSchema): Promise<SegmentData> {
  const ref = segment.binlogs.find((b) => b.fieldId === ALL_FIELDS);
  if (ref === undefined && segment.numRows === 0) {
    return {
      numRows: 0,
      columns: schema.fields.map((f) => placeholderColumn(f, 0)),
      positions: new BigInt64Array(0),
      timestamps: new BigInt64Array(0),
    };
  }
  const key = ref?.key ?? insertLogKey(segment);
  const data = decodeInsertLog(await store.get(key), schema);
  if (data.numRows !== segment.numRows) {
    throw corrupt(`segment ${segment.segmentId} should hold ${segment.numRows} rows, its insert log ${key} holds ${data.numRows}`);
  }
  return data;
}
