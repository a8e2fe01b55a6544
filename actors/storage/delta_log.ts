/**
 * The delta log of an L0 segment: the deletes of one vchannel over a position range, one Arrow IPC file
 * with columns `pk` (Int64 or Utf8, as the collection's pk), `position` (the delete's stream sequence:
 * a row inserted at p is deleted when p < position), `ts` and `partition` (-1: every partition).
 */
import { Field, Int64, RecordBatch, Schema, Struct, Table, Utf8, makeData, tableToIPC, type Data } from "apache-arrow";
import type { PkColumn } from "../../protocol/dml.ts";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import type { BinlogRef } from "../../protocol/meta.ts";
import type { ObjectStore } from "../../runtime/object_store.ts";
import { FORMAT_VERSION, openArrowFile } from "./insert_log.ts";
import { deltaLogKey } from "./layout.ts";

export interface DeltaData {
  numRows: number;
  pks: PkColumn;
  positions: BigInt64Array;
  timestamps: BigInt64Array;
  /** -1n: the delete applies to every partition */
  partitionIds: BigInt64Array;
}

function int64(values: BigInt64Array): Data {
  return makeData({ type: new Int64(), length: values.length, data: values });
}

function utf8(values: readonly string[]): Data {
  const offsets = new Int32Array(values.length + 1);
  let total = 0;
  values.forEach((v, i) => {
    total += Buffer.byteLength(v, "utf8");
    offsets[i + 1] = total;
  });
  const bytes = Buffer.allocUnsafe(total);
  values.forEach((v, i) => bytes.write(v, offsets[i]!, "utf8"));
  return makeData({ type: new Utf8(), length: values.length, valueOffsets: offsets, data: new Uint8Array(bytes.buffer, bytes.byteOffset, total) });
}

export function encodeDeltaLog(header: { collectionId: bigint; segmentId: bigint }, d: DeltaData): Uint8Array {
  const n = d.numRows;
  for (const [name, len] of [
    ["pks", d.pks.length],
    ["positions", d.positions.length],
    ["timestamps", d.timestamps.length],
    ["partitionIds", d.partitionIds.length],
  ] as const) {
    if (len !== n) throw VbError.invalid(`${name}: ${len} values for ${n} deletes`);
  }
  const pkData = d.pks instanceof BigInt64Array ? int64(d.pks) : utf8(d.pks);
  const fields = [
    new Field("pk", pkData.type, false),
    new Field("position", new Int64(), false),
    new Field("ts", new Int64(), false),
    new Field("partition", new Int64(), false),
  ];
  const children = [pkData, int64(d.positions), int64(d.timestamps), int64(d.partitionIds)];
  const schema = new Schema(
    fields,
    new Map([
      ["vectorbus.format", "delta_log"],
      ["vectorbus.version", FORMAT_VERSION],
      ["collectionId", String(header.collectionId)],
      ["segmentId", String(header.segmentId)],
    ]),
  );
  const batch = new RecordBatch(schema, makeData({ type: new Struct(fields), length: n, children }));
  return tableToIPC(new Table([batch]), "file");
}

function corrupt(what: string, cause?: unknown): VbError {
  return new VbError(ErrorCode.SegmentLoadFailed, `delta log unreadable: ${what}`, cause === undefined ? {} : { cause });
}

export function decodeDeltaLog(bytes: Uint8Array): DeltaData {
  const table = openArrowFile(bytes, "delta_log", corrupt);
  const names = table.schema.fields.map((f) => f.name);
  const parts = table.batches.map((b) => decodeBatch(names, b.data.children as Data[], b.numRows));
  if (parts.length === 1) return parts[0]!;
  const pkIsString = table.schema.fields.find((f) => f.name === "pk")?.type instanceof Utf8;
  if (parts.length === 0) {
    const empty = new BigInt64Array(0);
    return { numRows: 0, pks: pkIsString ? [] : empty, positions: empty, timestamps: empty, partitionIds: empty };
  }
  return concatDelta(parts);
}

function decodeBatch(names: string[], datas: Data[], n: number): DeltaData {
  const col = (name: string): Data | undefined => {
    const i = names.indexOf(name);
    return i < 0 ? undefined : datas[i];
  };
  const big = (name: string): BigInt64Array => {
    const d = col(name);
    if (!d || !(d.values instanceof BigInt64Array)) throw corrupt(`column "${name}" is missing or not Int64`);
    return d.values.subarray(d.offset, d.offset + n);
  };
  const pk = col("pk");
  let pks: PkColumn;
  if (pk && pk.values instanceof BigInt64Array) {
    pks = pk.values.subarray(pk.offset, pk.offset + n);
  } else if (pk && pk.type instanceof Utf8) {
    const offs = pk.valueOffsets as Int32Array;
    const v = pk.values as Uint8Array;
    const buf = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    pks = Array.from({ length: n }, (_, i) => buf.toString("utf8", offs[pk.offset + i]!, offs[pk.offset + i + 1]!));
  } else {
    throw corrupt(`column "pk" is missing or neither Int64 nor Utf8`);
  }
  return { numRows: n, pks, positions: big("position"), timestamps: big("ts"), partitionIds: big("partition") };
}

/** What `readDeltaLog` needs of a segment record. */
export interface DeltaSegmentRef {
  collectionId: bigint;
  partitionId: bigint;
  segmentId: bigint;
  deltalogs: BinlogRef[];
}

/** Reads every delta log of a segment (an L0 segment has one), concatenated. */
export async function readDeltaLog(store: ObjectStore, segment: DeltaSegmentRef): Promise<DeltaData> {
  const keys = segment.deltalogs.length > 0 ? segment.deltalogs.map((d) => d.key) : [deltaLogKey(segment)];
  const parts = await Promise.all(keys.map(async (k) => decodeDeltaLog(await store.get(k))));
  if (parts.length === 1) return parts[0]!;
  return concatDelta(parts);
}

function concatDelta(parts: DeltaData[]): DeltaData {
  const n = parts.reduce((a, p) => a + p.numRows, 0);
  const cat = (pick: (p: DeltaData) => BigInt64Array) => {
    const out = new BigInt64Array(n);
    let at = 0;
    for (const p of parts) {
      out.set(pick(p), at);
      at += p.numRows;
    }
    return out;
  };
  const isInt = parts.every((p) => p.pks instanceof BigInt64Array);
  const pks: PkColumn = isInt ? cat((p) => p.pks as BigInt64Array) : parts.flatMap((p) => Array.from(p.pks as string[]));
  return { numRows: n, pks, positions: cat((p) => p.positions), timestamps: cat((p) => p.timestamps), partitionIds: cat((p) => p.partitionIds) };
}
