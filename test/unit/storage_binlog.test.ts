/**
 * Binlogs: every data type round-trips exactly through an Arrow insert log (nulls, bigint extremes,
 * unicode, JSON, arrays, vectors), vectors come back without a copy, delta logs and stats logs
 * round-trip, the bloom filter has no false negatives and about the false-positive rate it was sized for,
 * and bad bytes are an error, never a crash.
 */
import fc from "fast-check";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import type { CollectionSchema, Column, FieldSchema } from "../../protocol/schema.ts";
import { FsObjectStore } from "../../runtime/object_store_fs.ts";
import {
  ALL_FIELDS,
  BloomFilter,
  computeStats,
  concatColumns,
  decodeDeltaLog,
  decodeInsertLog,
  decodeStats,
  deltaLogKey,
  encodeDeltaLog,
  encodeInsertLog,
  encodeStats,
  insertLogKey,
  murmur3,
  readDeltaLog,
  readSegment,
  readStats,
  statsLogKey,
  type SegmentData,
} from "../../actors/storage/index.ts";

const MIN64 = -(2n ** 63n);
const MAX64 = 2n ** 63n - 1n;

const FIELDS: FieldSchema[] = [
  { fieldId: 100, name: "id", type: "Int64", isPrimaryKey: true },
  { fieldId: 101, name: "flag", type: "Bool" },
  { fieldId: 102, name: "i8", type: "Int8" },
  { fieldId: 103, name: "i16", type: "Int16" },
  { fieldId: 104, name: "i32", type: "Int32" },
  { fieldId: 105, name: "f32", type: "Float" },
  { fieldId: 106, name: "f64", type: "Double" },
  { fieldId: 107, name: "title", type: "VarChar", maxLength: 100 },
  { fieldId: 108, name: "doc", type: "JSON" },
  { fieldId: 109, name: "tags", type: "Array", elementType: "VarChar", maxLength: 20, maxCapacity: 8 },
  { fieldId: 110, name: "nums", type: "Array", elementType: "Int64", maxCapacity: 8 },
  { fieldId: 111, name: "bits", type: "Array", elementType: "Bool", maxCapacity: 8 },
  { fieldId: 112, name: "reals", type: "Array", elementType: "Double", maxCapacity: 8 },
  { fieldId: 113, name: "small", type: "Array", elementType: "Int16", maxCapacity: 8 },
  { fieldId: 114, name: "vec", type: "FloatVector", dim: 4 },
  { fieldId: 115, name: "n_i64", type: "Int64", nullable: true },
  { fieldId: 116, name: "n_str", type: "VarChar", maxLength: 50, nullable: true },
  { fieldId: 117, name: "n_bool", type: "Bool", nullable: true },
  { fieldId: 118, name: "n_f32", type: "Float", nullable: true },
  { fieldId: 119, name: "n_json", type: "JSON", nullable: true },
  { fieldId: 120, name: "n_arr", type: "Array", elementType: "Int32", maxCapacity: 4, nullable: true },
  { fieldId: 121, name: "$meta", type: "JSON", isDynamic: true },
];
const SCHEMA: CollectionSchema = { name: "all_types", fields: FIELDS, enableDynamicField: true };

function sample(): SegmentData {
  const n = 6;
  const cols: Record<string, Column["data"]> = {
    id: new BigInt64Array([MIN64, MAX64, 0n, -1n, 1n, 42n]),
    flag: new Uint8Array([1, 0, 1, 1, 0, 0]),
    i8: new Int8Array([-128, 127, 0, -1, 1, 5]),
    i16: new Int16Array([-32768, 32767, 0, -1, 1, 5]),
    i32: new Int32Array([-2147483648, 2147483647, 0, -1, 1, 5]),
    f32: new Float32Array([Number.NaN, -0, Infinity, -Infinity, 3.4028234663852886e38, 1.5]),
    f64: new Float64Array([Number.MIN_VALUE, -0, Number.MAX_VALUE, Number.NaN, -1e-300, Math.PI]),
    title: ["", "héllo wörld", "日本語テキスト", "🙂🚀 emoji", "a\u0000b", "x".repeat(100)],
    doc: ['{"a":1}', "[]", '{"nested":{"k":[1,2,3]},"s":"ü"}', "null", '"str"', "3.5"],
    tags: [[], ["a"], ["ü", "日本", "🙂"], [""], ["x", "y"], []],
    nums: [[MIN64, MAX64], [], [0n], [-1n, 1n, 2n], [], [123456789012345678n]],
    bits: [[true, false], [], [false], [true, true, true], [], [false]],
    reals: [[1.5, -0.25], [], [Number.MAX_VALUE], [], [Math.E], [0]],
    small: [[-32768, 32767], [], [0], [1, 2, 3], [], [7]],
    vec: Float32Array.from({ length: n * 4 }, (_, i) => (i % 7 === 0 ? -i : i / 3)),
    n_i64: new BigInt64Array([MIN64, 0n, MAX64, 0n, 7n, 0n]),
    n_str: ["a", "", "ünï", "", "z", ""],
    n_bool: new Uint8Array([1, 0, 0, 0, 1, 0]),
    n_f32: new Float32Array([1, 0, 2.5, 0, -3, 0]),
    n_json: ['{"x":1}', "", "[1]", "", "{}", ""],
    n_arr: [[1, 2], [], [3], [], [], []],
    $meta: ['{"extra":"ü"}', "{}", "{}", '{"k":[1]}', "{}", "{}"],
  };
  const nulls = new Uint8Array([1, 0, 1, 0, 1, 0]);
  const columns: Column[] = FIELDS.map((f) => ({
    fieldId: f.fieldId!,
    data: cols[f.name]!,
    ...(f.nullable ? { valid: nulls.slice() } : {}),
  }));
  return {
    numRows: n,
    columns,
    positions: new BigInt64Array([1n, 2n, 2n, 9n, 10n, MAX64]),
    timestamps: new BigInt64Array([0n, MAX64, 5n, 6n, 7n, 8n]),
  };
}

const HEADER = { collectionId: 7n, partitionId: 8n, segmentId: 9n };

async function tempStore() {
  const dir = await mkdtemp(join(tmpdir(), "vb-binlog-"));
  return Object.assign(new FsObjectStore(dir, { fsync: false }), {
    [Symbol.asyncDispose]: () => rm(dir, { recursive: true, force: true }),
  });
}

function errOf(fn: () => unknown): VbError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(VbError);
    return err as VbError;
  }
  throw new Error("expected an error");
}

describe("insert log (Arrow IPC)", () => {
  it("round-trips every data type exactly: nulls, bigint extremes, NaN and -0, unicode, JSON, arrays, vectors", () => {
    const seg = sample();
    const bytes = encodeInsertLog(HEADER, SCHEMA, seg);
    const back = decodeInsertLog(bytes, SCHEMA);
    expect(back.numRows).toBe(seg.numRows);
    expect(back.positions).toEqual(seg.positions);
    expect(back.timestamps).toEqual(seg.timestamps);
    expect(back.columns.length).toBe(FIELDS.length);
    FIELDS.forEach((f, i) => {
      const want = seg.columns[i]!;
      const got = back.columns[i]!;
      expect(got.fieldId, f.name).toBe(f.fieldId);
      expect(got.data.constructor, f.name).toBe(want.data.constructor);
      if (ArrayBuffer.isView(want.data)) {
        // byte-exact: NaN payloads and -0 included
        const w = want.data as Uint8Array;
        const g = got.data as Uint8Array;
        expect(Buffer.from(g.buffer, g.byteOffset, g.byteLength).equals(Buffer.from(w.buffer, w.byteOffset, w.byteLength)), f.name).toBe(true);
      } else {
        expect(got.data, f.name).toEqual(want.data);
      }
      expect(got.valid, f.name).toEqual(want.valid);
    });
    // element types inside arrays: bigint stays bigint, bool stays boolean
    expect(typeof (back.columns[10]!.data as unknown[][])[0]![0]).toBe("bigint");
    expect(typeof (back.columns[11]!.data as unknown[][])[0]![0]).toBe("boolean");
  });

  it("reads vectors, int64 columns and system columns as views over the file's bytes (no copy)", () => {
    const bytes = encodeInsertLog(HEADER, SCHEMA, sample());
    const back = decodeInsertLog(bytes, SCHEMA);
    const vec = back.columns[14]!.data as Float32Array;
    expect(vec).toBeInstanceOf(Float32Array);
    expect(vec.buffer).toBe(bytes.buffer);
    expect((back.columns[0]!.data as BigInt64Array).buffer).toBe(bytes.buffer);
    expect(back.positions.buffer).toBe(bytes.buffer);
  });

  it("replaces whatever a null row holds with the placeholder, and reads a nullable field without nulls as all valid", () => {
    const f: FieldSchema = { fieldId: 100, name: "v", type: "Int32", nullable: true };
    const s: FieldSchema = { fieldId: 101, name: "s", type: "VarChar", maxLength: 5, nullable: true };
    const pk: FieldSchema = { fieldId: 102, name: "pk", type: "Int64", isPrimaryKey: true };
    const schema: CollectionSchema = { name: "n", fields: [f, s, pk] };
    const seg: SegmentData = {
      numRows: 3,
      columns: [
        { fieldId: 100, data: new Int32Array([5, 6, 7]), valid: new Uint8Array([1, 0, 1]) },
        { fieldId: 101, data: ["a", "junk", "c"] },
        { fieldId: 102, data: new BigInt64Array([1n, 2n, 3n]) },
      ],
      positions: new BigInt64Array([1n, 1n, 1n]),
      timestamps: new BigInt64Array([1n, 1n, 1n]),
    };
    const back = decodeInsertLog(encodeInsertLog(HEADER, schema, seg), schema);
    expect(back.columns[0]).toEqual({ fieldId: 100, data: new Int32Array([5, 0, 7]), valid: new Uint8Array([1, 0, 1]) });
    expect(back.columns[1]).toEqual({ fieldId: 101, data: ["a", "junk", "c"], valid: new Uint8Array([1, 1, 1]) });
  });

  it("round-trips an empty segment and a VarChar primary key", () => {
    const schema: CollectionSchema = {
      name: "e",
      fields: [
        { fieldId: 100, name: "pk", type: "VarChar", maxLength: 10, isPrimaryKey: true },
        { fieldId: 101, name: "vec", type: "FloatVector", dim: 3 },
      ],
    };
    const empty: SegmentData = {
      numRows: 0,
      columns: [
        { fieldId: 100, data: [] },
        { fieldId: 101, data: new Float32Array(0) },
      ],
      positions: new BigInt64Array(0),
      timestamps: new BigInt64Array(0),
    };
    expect(decodeInsertLog(encodeInsertLog(HEADER, schema, empty), schema)).toEqual(empty);
  });

  it("matches columns by field id: a renamed field still reads; a field added later reads as nulls or its default", () => {
    const seg = sample();
    const bytes = encodeInsertLog(HEADER, SCHEMA, seg);
    const renamed: CollectionSchema = {
      name: "x",
      fields: [
        { ...FIELDS[7]!, name: "headline" },
        { fieldId: 200, name: "added", type: "Int32", nullable: true },
        { fieldId: 201, name: "withDefault", type: "Int64", defaultValue: 9n },
      ],
    };
    const back = decodeInsertLog(bytes, renamed);
    expect(back.columns[0]!.data).toEqual(seg.columns[7]!.data);
    expect(back.columns[1]).toEqual({ fieldId: 200, data: new Int32Array(6), valid: new Uint8Array(6) });
    expect(back.columns[2]!.data).toEqual(new BigInt64Array(6).fill(9n));
    const missing = errOf(() => decodeInsertLog(bytes, { name: "y", fields: [{ fieldId: 300, name: "req", type: "Int64" }] }));
    expect(missing.code).toBe(ErrorCode.SegmentLoadFailed);
    expect(missing.message).toMatch(/"req"/);
  });

  it("refuses malformed columns with 1100 naming the field, and garbage bytes with 604", () => {
    const seg = sample();
    const wrongType = { ...seg, columns: seg.columns.map((c, i) => (i === 2 ? { ...c, data: new Int32Array(6) } : c)) };
    const e1 = errOf(() => encodeInsertLog(HEADER, SCHEMA, wrongType));
    expect(e1.code).toBe(ErrorCode.ParameterInvalid);
    expect(e1.message).toMatch(/"i8"/);
    const shortVec = { ...seg, columns: seg.columns.map((c, i) => (i === 14 ? { ...c, data: new Float32Array(5) } : c)) };
    expect(errOf(() => encodeInsertLog(HEADER, SCHEMA, shortVec)).message).toMatch(/"vec".*dim 4/);
    const nullInRequired = { ...seg, columns: seg.columns.map((c, i) => (i === 1 ? { ...c, valid: new Uint8Array([1, 1, 0, 1, 1, 1]) } : c)) };
    expect(errOf(() => encodeInsertLog(HEADER, SCHEMA, nullInRequired)).message).toMatch(/"flag" of row 2/);
    expect(errOf(() => encodeInsertLog(HEADER, SCHEMA, { ...seg, columns: seg.columns.slice(1) })).code).toBe(ErrorCode.ParameterInvalid);
    for (const junk of [new Uint8Array([1, 2, 3]), new Uint8Array(100).fill(7), new TextEncoder().encode("ARROW1 not really")]) {
      expect(errOf(() => decodeInsertLog(junk, SCHEMA)).code).toBe(ErrorCode.SegmentLoadFailed);
    }
    // a valid file of another schema: a type mismatch is named
    const other: CollectionSchema = { name: "o", fields: [{ ...FIELDS[0]!, fieldId: 104 }] };
    expect(errOf(() => decodeInsertLog(encodeInsertLog(HEADER, SCHEMA, seg), other)).message).toMatch(/stored as Int32/);
  });

  it("round-trips random columns of every scalar type (property)", () => {
    const fields: FieldSchema[] = [
      { fieldId: 100, name: "pk", type: "Int64", isPrimaryKey: true },
      { fieldId: 101, name: "s", type: "VarChar", maxLength: 64, nullable: true },
      { fieldId: 102, name: "d", type: "Double" },
      { fieldId: 103, name: "a", type: "Array", elementType: "Int64", maxCapacity: 5 },
      { fieldId: 104, name: "v", type: "FloatVector", dim: 3 },
    ];
    const schema: CollectionSchema = { name: "p", fields };
    const row = fc.record({
      pk: fc.bigInt({ min: MIN64, max: MAX64 }),
      s: fc.option(fc.string({ unit: "grapheme", maxLength: 20 }), { nil: null }),
      d: fc.double(),
      a: fc.array(fc.bigInt({ min: MIN64, max: MAX64 }), { maxLength: 5 }),
      v: fc.tuple(fc.float(), fc.float(), fc.float()),
      pos: fc.bigInt({ min: 0n, max: MAX64 }),
    });
    fc.assert(
      fc.property(fc.array(row, { maxLength: 40 }), (rows) => {
        const n = rows.length;
        const seg: SegmentData = {
          numRows: n,
          columns: [
            { fieldId: 100, data: BigInt64Array.from(rows.map((r) => r.pk)) },
            { fieldId: 101, data: rows.map((r) => r.s ?? ""), valid: Uint8Array.from(rows.map((r) => (r.s === null ? 0 : 1))) },
            { fieldId: 102, data: Float64Array.from(rows.map((r) => r.d)) },
            { fieldId: 103, data: rows.map((r) => r.a) },
            { fieldId: 104, data: Float32Array.from(rows.flatMap((r) => r.v)) },
          ],
          positions: BigInt64Array.from(rows.map((r) => r.pos)),
          timestamps: BigInt64Array.from(rows.map((r) => r.pos)),
        };
        const back = decodeInsertLog(encodeInsertLog(HEADER, schema, seg), schema);
        expect(back.columns.map((c) => c.data)).toEqual(seg.columns.map((c) => c.data));
        expect(back.columns[1]!.valid).toEqual(seg.columns[1]!.valid);
        expect(back.positions).toEqual(seg.positions);
      }),
      { numRuns: 60 },
    );
  });

  it("readSegment reads a segment back from the object store by its binlog ref; a segment without rows has none", async () => {
    await using store = await tempStore();
    const seg = sample();
    const key = insertLogKey(HEADER);
    expect(key).toBe("insert_log/7/8/9/segment.arrow");
    const bytes = encodeInsertLog(HEADER, SCHEMA, seg);
    await store.put(key, bytes);
    const ref = { ...HEADER, numRows: 6, binlogs: [{ fieldId: ALL_FIELDS, key, rows: 6, bytes: bytes.byteLength }] };
    const back = await readSegment(store, ref, SCHEMA);
    expect(back.columns[0]!.data).toEqual(seg.columns[0]!.data);
    expect(back.columns[14]!.data).toEqual(seg.columns[14]!.data);
    const empty = await readSegment(store, { ...HEADER, segmentId: 10n, numRows: 0, binlogs: [] }, SCHEMA);
    expect(empty.numRows).toBe(0);
    expect(empty.columns.length).toBe(FIELDS.length);
    await expect(readSegment(store, { ...ref, numRows: 5 }, SCHEMA)).rejects.toMatchObject({ code: ErrorCode.SegmentLoadFailed });
    await expect(readSegment(store, { ...ref, segmentId: 11n, binlogs: [] }, SCHEMA)).rejects.toMatchObject({ code: ErrorCode.IoKeyNotFound });
  });
});

describe("column helpers", () => {
  it("concatenates selected rows of several parts, vectors and validity included", () => {
    const vec: FieldSchema = { fieldId: 1, name: "v", type: "FloatVector", dim: 2 };
    const out = concatColumns(vec, [
      { col: { fieldId: 1, data: new Float32Array([1, 2, 3, 4, 5, 6]) }, rows: [2, 0], numRows: 3 },
      { col: { fieldId: 1, data: new Float32Array([7, 8]) }, numRows: 1 },
    ]);
    expect(out.data).toEqual(new Float32Array([5, 6, 1, 2, 7, 8]));
    const ns: FieldSchema = { fieldId: 2, name: "s", type: "VarChar", maxLength: 3, nullable: true };
    const out2 = concatColumns(ns, [
      { col: { fieldId: 2, data: ["a", "", "c"], valid: new Uint8Array([1, 0, 1]) }, rows: [1, 2], numRows: 3 },
      { col: { fieldId: 2, data: ["d"] }, numRows: 1 },
    ]);
    expect(out2).toEqual({ fieldId: 2, data: ["", "c", "d"], valid: new Uint8Array([0, 1, 1]) });
  });
});

describe("delta log", () => {
  it("round-trips Int64 and VarChar primary keys with positions, timestamps and partitions", async () => {
    const d1 = {
      numRows: 3,
      pks: new BigInt64Array([MIN64, 5n, MAX64]),
      positions: new BigInt64Array([10n, 11n, 12n]),
      timestamps: new BigInt64Array([100n, 101n, MAX64]),
      partitionIds: new BigInt64Array([-1n, 3n, 4n]),
    };
    expect(decodeDeltaLog(encodeDeltaLog({ collectionId: 1n, segmentId: 2n }, d1))).toEqual(d1);
    const d2 = { ...d1, pks: ["ü", "", "🙂"] };
    expect(decodeDeltaLog(encodeDeltaLog({ collectionId: 1n, segmentId: 2n }, d2))).toEqual(d2);
    const empty = { numRows: 0, pks: [] as string[], positions: new BigInt64Array(0), timestamps: new BigInt64Array(0), partitionIds: new BigInt64Array(0) };
    expect(decodeDeltaLog(encodeDeltaLog({ collectionId: 1n, segmentId: 2n }, empty))).toEqual(empty);
    expect(errOf(() => encodeDeltaLog({ collectionId: 1n, segmentId: 2n }, { ...d1, numRows: 4 })).code).toBe(ErrorCode.ParameterInvalid);
    expect(errOf(() => decodeDeltaLog(new Uint8Array([9, 9, 9]))).code).toBe(ErrorCode.SegmentLoadFailed);

    await using store = await tempStore();
    const seg = { collectionId: 1n, partitionId: -1n, segmentId: 2n };
    const key = deltaLogKey(seg);
    expect(key).toBe("delta_log/1/-1/2/delta.arrow");
    await store.put(key, encodeDeltaLog(seg, d1));
    expect(await readDeltaLog(store, { ...seg, deltalogs: [{ fieldId: 0, key, rows: 3, bytes: 1 }] })).toEqual(d1);
  });
});

describe("stats log and bloom filter", () => {
  it("has no false negatives and about the false-positive rate it was sized for", () => {
    const n = 20_000;
    const bf = BloomFilter.forCapacity(n, 0.01);
    for (let i = 0; i < n; i++) bf.add(BigInt(i) * 7919n);
    for (let i = 0; i < n; i++) expect(bf.mayContain(BigInt(i) * 7919n)).toBe(true);
    let fp = 0;
    const probes = 50_000;
    for (let i = 0; i < probes; i++) if (bf.mayContain(BigInt(i) * 7919n + 1n)) fp++;
    expect(fp / probes).toBeLessThan(0.02);
    expect(bf.bits.length).toBeLessThan(n * 1.3); // ≈ 9.6 bits per key at 1%
    const sbf = BloomFilter.forCapacity(100);
    for (const s of ["a", "ü", "🙂", ""]) sbf.add(s);
    for (const s of ["a", "ü", "🙂", ""]) expect(sbf.mayContain(s)).toBe(true);
  });

  it("hashes with murmur3_x86_32 (reference vectors)", () => {
    const enc = new TextEncoder();
    expect(murmur3(new Uint8Array(0), 0)).toBe(0);
    expect(murmur3(new Uint8Array(0), 1)).toBe(0x514e28b7);
    expect(murmur3(enc.encode("hello"), 0)).toBe(0x248bfa47);
    expect(murmur3(enc.encode("Hello, world!"), 1234)).toBe(0xfaf6cdb3);
    expect(murmur3(enc.encode("The quick brown fox jumps over the lazy dog"), 0)).toBe(0x2e4ff723);
  });

  it("computes pk min/max, a bloom filter and numeric min/max, and round-trips through the store", async () => {
    const seg = sample();
    const stats = computeStats(SCHEMA, seg.columns, seg.columns[0]!.data as BigInt64Array, seg.numRows);
    expect(stats.pkMin).toBe(MIN64);
    expect(stats.pkMax).toBe(MAX64);
    const byId = new Map(stats.fields.map((f) => [f.fieldId, f]));
    expect(byId.get(102)).toEqual({ fieldId: 102, min: -128, max: 127, nullCount: 0 });
    expect(byId.get(115)).toEqual({ fieldId: 115, min: MIN64, max: MAX64, nullCount: 3 });
    expect(byId.has(107)).toBe(false); // VarChar: no numeric range
    const back = decodeStats(encodeStats(stats));
    expect(back).toEqual(stats);
    const bf = BloomFilter.from(back.bloom);
    for (const pk of seg.columns[0]!.data as BigInt64Array) expect(bf.mayContain(pk)).toBe(true);

    await using store = await tempStore();
    const key = statsLogKey(HEADER);
    await store.put(key, encodeStats(stats));
    expect(await readStats(store, { ...HEADER, statslogs: [key] })).toEqual(stats);
    expect(errOf(() => decodeStats(new Uint8Array([0xc1]))).code).toBe(ErrorCode.SegmentLoadFailed);
  });
});
