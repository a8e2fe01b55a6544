/**
 * Column helpers shared by the write path (datanode buffers) and the read path (querynodes): the typed
 * array each data type lives in, validation of an incoming column against its field, row selection and
 * concatenation, byte estimates, primary-key access. Columns follow protocol/schema.ts: numbers in typed
 * arrays, VarChar/JSON as strings, Array as arrays of elements, FloatVector as rows × dim Float32Array.
 */
import type { PkColumn } from "../../protocol/dml.ts";
import { VbError } from "../../protocol/errors.ts";
import type { Column, ColumnData, DataTypeName, FieldSchema } from "../../protocol/schema.ts";

type TypedCtor =
  | Uint8ArrayConstructor
  | Int8ArrayConstructor
  | Int16ArrayConstructor
  | Int32ArrayConstructor
  | BigInt64ArrayConstructor
  | Float32ArrayConstructor
  | Float64ArrayConstructor;

const TYPED: Partial<Record<DataTypeName, TypedCtor>> = {
  Bool: Uint8Array,
  Int8: Int8Array,
  Int16: Int16Array,
  Int32: Int32Array,
  Int64: BigInt64Array,
  Float: Float32Array,
  Double: Float64Array,
  FloatVector: Float32Array,
};

/** The typed array constructor of a numeric or vector type; undefined for VarChar, JSON and Array. */
export function typedArrayOf(type: DataTypeName): TypedCtor | undefined {
  return TYPED[type];
}

/** Values per row: `dim` for a vector, 1 otherwise. */
export function widthOf(field: FieldSchema): number {
  return field.type === "FloatVector" ? (field.dim ?? 0) : 1;
}

/** An empty column of `n` placeholder rows (zeros, "", []) for a field; valid all 0 when nullable. */
export function placeholderColumn(field: FieldSchema, n: number): Column {
  const ctor = typedArrayOf(field.type);
  const fieldId = field.fieldId ?? 0;
  let data: ColumnData;
  if (ctor) data = new ctor(n * widthOf(field));
  else if (field.type === "Array") data = Array.from({ length: n }, () => []);
  else data = new Array<string>(n).fill("");
  return field.nullable ? { fieldId, data, valid: new Uint8Array(n) } : { fieldId, data };
}

/** Rows in a column, given its field (a vector column holds rows × dim values). */
export function columnRows(field: FieldSchema, col: Column): number {
  return col.data.length / widthOf(field);
}

/**
 * Checks that `col` is a well-formed column of `numRows` rows for `field`; throws 1100 naming the field.
 * Cheap: it checks container types and lengths, not every value (the proxy validated the values).
 */
export function checkColumn(field: FieldSchema, col: Column | undefined, numRows: number): Column {
  const name = field.name;
  if (col === undefined || col === null || typeof col !== "object") {
    throw VbError.invalid(`field "${name}" (id ${field.fieldId}): column missing`);
  }
  const ctor = typedArrayOf(field.type);
  const data = col.data as unknown;
  if (ctor) {
    if (!(data instanceof ctor)) {
      throw VbError.invalid(`field "${name}": a ${field.type} column must be a ${ctor.name}`);
    }
  } else if (!Array.isArray(data)) {
    throw VbError.invalid(`field "${name}": a ${field.type} column must be an array`);
  } else if (field.type === "Array") {
    for (let i = 0; i < data.length; i++) {
      if (!Array.isArray(data[i])) throw VbError.invalid(`field "${name}" of row ${i}: an Array value must be an array`);
    }
  } else {
    for (let i = 0; i < data.length; i++) {
      if (typeof data[i] !== "string") throw VbError.invalid(`field "${name}" of row ${i}: a ${field.type} value must be a string`);
    }
  }
  const width = widthOf(field);
  if (width <= 0) throw VbError.invalid(`field "${name}": a FloatVector field needs a dim`);
  if ((data as { length: number }).length !== numRows * width) {
    throw VbError.invalid(
      `field "${name}": ${(data as { length: number }).length} values for ${numRows} rows` + (width > 1 ? ` of dim ${width}` : ""),
    );
  }
  if (col.valid !== undefined) {
    if (!(col.valid instanceof Uint8Array) || col.valid.length !== numRows) {
      throw VbError.invalid(`field "${name}": valid must be a Uint8Array of ${numRows} flags`);
    }
    if (!field.nullable) {
      for (let i = 0; i < numRows; i++) {
        if (col.valid[i] === 0) throw VbError.invalid(`field "${name}" of row ${i}: null in a field that is not nullable`);
      }
    }
  }
  return col;
}

/** A slice of a column: its rows at `rows` (all when undefined). */
export interface ColumnPart {
  col: Column;
  /** row indices to take, in order; undefined takes every row */
  rows?: ArrayLike<number>;
  /** rows in `col` (needed when `rows` is undefined) */
  numRows: number;
}

/**
 * Concatenates the selected rows of several columns of one field into one new column. A nullable field
 * gets a `valid` array (rows of a part without one count as valid).
 */
export function concatColumns(field: FieldSchema, parts: readonly ColumnPart[]): Column {
  const fieldId = field.fieldId ?? 0;
  let total = 0;
  for (const p of parts) total += p.rows === undefined ? p.numRows : p.rows.length;
  const width = widthOf(field);
  const ctor = typedArrayOf(field.type);
  const valid = field.nullable ? new Uint8Array(total) : undefined;
  let data: ColumnData;
  if (ctor) {
    const out = new ctor(total * width);
    let at = 0;
    for (const p of parts) {
      const src = p.col.data as typeof out;
      if (p.rows === undefined) {
        (out as Float32Array).set(src as Float32Array, at * width);
        if (valid) fillValid(valid, at, p.col.valid, undefined, p.numRows);
        at += p.numRows;
      } else if (width === 1) {
        const rows = p.rows;
        for (let i = 0; i < rows.length; i++) (out as Float32Array)[at + i] = (src as Float32Array)[rows[i]!]!;
        if (valid) fillValid(valid, at, p.col.valid, rows, rows.length);
        at += rows.length;
      } else {
        const rows = p.rows;
        for (let i = 0; i < rows.length; i++) {
          const r = rows[i]!;
          (out as Float32Array).set((src as Float32Array).subarray(r * width, (r + 1) * width), (at + i) * width);
        }
        if (valid) fillValid(valid, at, p.col.valid, rows, rows.length);
        at += rows.length;
      }
    }
    data = out;
  } else {
    const out: unknown[] = new Array(total);
    let at = 0;
    for (const p of parts) {
      const src = p.col.data as unknown[];
      if (p.rows === undefined) {
        for (let i = 0; i < p.numRows; i++) out[at + i] = src[i];
        if (valid) fillValid(valid, at, p.col.valid, undefined, p.numRows);
        at += p.numRows;
      } else {
        const rows = p.rows;
        for (let i = 0; i < rows.length; i++) out[at + i] = src[rows[i]!];
        if (valid) fillValid(valid, at, p.col.valid, rows, rows.length);
        at += rows.length;
      }
    }
    data = out as ColumnData;
  }
  return valid ? { fieldId, data, valid } : { fieldId, data };
}

function fillValid(out: Uint8Array, at: number, src: Uint8Array | undefined, rows: ArrayLike<number> | undefined, n: number): void {
  if (src === undefined) {
    out.fill(1, at, at + n);
  } else if (rows === undefined) {
    out.set(src.subarray(0, n), at);
  } else {
    for (let i = 0; i < n; i++) out[at + i] = src[rows[i]!]!;
  }
}

/** Concatenates bigint arrays. */
export function concatBigInt64(parts: readonly BigInt64Array[]): BigInt64Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new BigInt64Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** An estimate of the bytes one row of `field` takes in memory and in a binlog. */
export function rowBytes(field: FieldSchema, col: Column, row: number): number {
  switch (field.type) {
    case "Bool":
    case "Int8":
      return 1;
    case "Int16":
      return 2;
    case "Int32":
    case "Float":
      return 4;
    case "Int64":
    case "Double":
      return 8;
    case "FloatVector":
      return 4 * (field.dim ?? 0);
    case "VarChar":
    case "JSON":
      return 4 + (col.data as string[])[row]!.length;
    case "Array":
      return 4 + 8 * (col.data as unknown[][])[row]!.length;
    default:
      return 8;
  }
}

/** The estimated bytes of every row of a batch (system columns included: position and ts). */
export function batchRowBytes(fields: readonly FieldSchema[], columns: readonly Column[], numRows: number): Float64Array {
  const out = new Float64Array(numRows).fill(16);
  fields.forEach((f, i) => {
    const col = columns[i]!;
    const fixed = f.type !== "VarChar" && f.type !== "JSON" && f.type !== "Array";
    if (fixed) {
      const b = rowBytes(f, col, 0);
      for (let r = 0; r < numRows; r++) out[r]! += b;
    } else {
      for (let r = 0; r < numRows; r++) out[r]! += rowBytes(f, col, r);
    }
  });
  return out;
}

/** The byte length of a string in UTF-8. */
export function utf8Length(s: string): number {
  return Buffer.byteLength(s, "utf8");
}

/**
 * What an index of primary keys is keyed by: a number for an Int64 key within ±2^53 (so no bigint is
 * made a row, and the map hashes a number), else the key itself. `pkKey(p)` and `pkKeyReader(col)(r)`
 * agree for every key.
 */
export type PkKey = number | bigint | string;

const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

export function pkKey(pk: bigint | string): PkKey {
  return typeof pk === "bigint" && pk <= SAFE && pk >= -SAFE ? Number(pk) : pk;
}

/** A BigInt64Array seen as 32-bit words (little-endian halves), to read values without making bigints. */
export function int64Words(values: BigInt64Array): Int32Array {
  return new Int32Array(values.buffer, values.byteOffset, values.length * 2);
}

/** Value `i` of `int64Words(...)` as a number when it lies within ±(2^53 - 1), else NaN. */
export function int64At(words: Int32Array, i: number): number {
  const hi = words[2 * i + 1]!;
  // within ±2^53 the high word is in [-2^21, 2^21), and hi·2^32 + lo is exact
  if (hi < -0x200000 || hi >= 0x200000) return NaN;
  const v = hi * 4294967296 + (words[2 * i]! >>> 0);
  return v <= Number.MAX_SAFE_INTEGER && v >= -Number.MAX_SAFE_INTEGER ? v : NaN;
}

/** The keys of a pk column, an Int64 column's read from its two 32-bit halves (no bigint made a row). */
export function pkKeyReader(pks: PkColumn): (r: number) => PkKey {
  if (!(pks instanceof BigInt64Array)) return (r) => (pks as string[])[r]!;
  const words = int64Words(pks);
  return (r) => {
    const key = int64At(words, r);
    return key === key ? key : pks[r]!;
  };
}

/** The pk at `row` of a pk column. */
export function pkAt(pks: PkColumn, row: number): bigint | string {
  return pks[row]!;
}

/** Checks a pk column: a BigInt64Array for an Int64 pk, strings for a VarChar pk. */
export function checkPks(pkField: FieldSchema, pks: unknown, numRows?: number): PkColumn {
  if (pkField.type === "Int64") {
    if (!(pks instanceof BigInt64Array)) throw VbError.invalid(`pks: an Int64 primary key "${pkField.name}" travels as a BigInt64Array`);
  } else {
    if (!Array.isArray(pks) || pks.some((p) => typeof p !== "string")) {
      throw VbError.invalid(`pks: a VarChar primary key "${pkField.name}" travels as an array of strings`);
    }
  }
  if (numRows !== undefined && (pks as PkColumn).length !== numRows) {
    throw VbError.invalid(`pks: ${(pks as PkColumn).length} keys for ${numRows} rows`);
  }
  return pks as PkColumn;
}
