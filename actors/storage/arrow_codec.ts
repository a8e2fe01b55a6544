/**
 * One field's column ↔ an Arrow array. The Arrow types:
 *   Bool → Bool (bit-packed), Int8/16/32/64 → Int8/16/32/64, Float → Float32, Double → Float64,
 *   VarChar and JSON → Utf8, Array → List<element type> (Int64 elements as bigint, Bool as boolean),
 *   FloatVector → FixedSizeList<Float32>[dim].
 * A nullable field carries Arrow's validity bitmap; its null rows hold placeholders (0, "", []).
 * Decoding is zero-copy for numeric columns and vectors when the IPC buffer is aligned (Arrow aligns
 * every buffer at 8 bytes in the file): the typed array is a view over the bytes read.
 */
import {
  Bool,
  Field,
  FixedSizeList,
  Float32,
  Float64,
  Int16,
  Int32,
  Int64,
  Int8,
  List,
  Utf8,
  makeData,
  type Data,
  type DataType as ArrowType,
} from "apache-arrow";
import { VbError } from "../../protocol/errors.ts";
import type { Column, ColumnData, DataTypeName, FieldSchema } from "../../protocol/schema.ts";
import { typedArrayOf } from "./columns.ts";

/** The Arrow type a field is stored as. */
export function arrowTypeOf(field: FieldSchema): ArrowType {
  switch (field.type) {
    case "FloatVector":
      return new FixedSizeList(field.dim ?? 0, new Field("item", new Float32(), false));
    case "Array":
      return new List(new Field("item", scalarArrowType(field.elementType ?? "Int64", field.name), false));
    default:
      return scalarArrowType(field.type, field.name);
  }
}

function scalarArrowType(type: DataTypeName, name: string): ArrowType {
  switch (type) {
    case "Bool":
      return new Bool();
    case "Int8":
      return new Int8();
    case "Int16":
      return new Int16();
    case "Int32":
      return new Int32();
    case "Int64":
      return new Int64();
    case "Float":
      return new Float32();
    case "Double":
      return new Float64();
    case "VarChar":
    case "JSON":
      return new Utf8();
    default:
      throw VbError.invalid(`field "${name}": type ${type} has no scalar Arrow form`);
  }
}

// ---- bitmaps ----

/** LSB-first bit packing of 0/1 bytes (Arrow's bitmap layout). */
export function packBits(flags: Uint8Array, n = flags.length): Uint8Array {
  const out = new Uint8Array(Math.ceil(n / 8));
  for (let i = 0; i < n; i++) if (flags[i]) out[i >>> 3]! |= 1 << (i & 7);
  return out;
}

/** Unpacks `n` bits starting at bit `offset` into 0/1 bytes. */
export function unpackBits(bits: Uint8Array, offset: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const b = offset + i;
    out[i] = (bits[b >>> 3]! >>> (b & 7)) & 1;
  }
  return out;
}

function countZeros(flags: Uint8Array): number {
  let z = 0;
  for (let i = 0; i < flags.length; i++) if (!flags[i]) z++;
  return z;
}

// ---- strings ----

function utf8Data(values: readonly string[]): { offsets: Int32Array; bytes: Uint8Array } {
  const offsets = new Int32Array(values.length + 1);
  let total = 0;
  for (let i = 0; i < values.length; i++) {
    total += Buffer.byteLength(values[i]!, "utf8");
    if (total > 0x7fffffff) throw VbError.invalid("a string column exceeds 2 GiB in one segment; seal segments smaller");
    offsets[i + 1] = total;
  }
  const bytes = Buffer.allocUnsafe(total);
  for (let i = 0; i < values.length; i++) bytes.write(values[i]!, offsets[i]!, "utf8");
  return { offsets, bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
}

function readUtf8(data: Data): string[] {
  const offs = data.valueOffsets as Int32Array;
  const values = data.values as Uint8Array;
  const buf = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  const out = new Array<string>(data.length);
  for (let i = 0; i < data.length; i++) {
    const a = offs[data.offset + i]!;
    const b = offs[data.offset + i + 1]!;
    out[i] = a === b ? "" : buf.toString("utf8", a, b);
  }
  return out;
}

// ---- encode ----

/** The placeholder of a null row of a field (what `data` holds there). */
function normalizeNulls(field: FieldSchema, col: Column, n: number): ColumnData {
  const valid = col.valid;
  if (!field.nullable || valid === undefined || countZeros(valid.subarray(0, n)) === 0) return col.data;
  const ctor = typedArrayOf(field.type);
  if (ctor) {
    const copy = (col.data as Float64Array).slice() as unknown as ColumnData;
    const zero = field.type === "Int64" ? 0n : 0;
    for (let i = 0; i < n; i++) if (!valid[i]) (copy as unknown as unknown[])[i] = zero;
    return copy;
  }
  const copy = (col.data as unknown[]).slice();
  const empty = field.type === "Array" ? () => [] : () => "";
  for (let i = 0; i < n; i++) if (!valid[i]) copy[i] = empty();
  return copy as ColumnData;
}

/** A column of `n` rows as an Arrow array of the field's Arrow type. */
export function encodeColumn(field: FieldSchema, col: Column, n: number): Data {
  const type = arrowTypeOf(field);
  const nullable = field.nullable === true && col.valid !== undefined;
  const nullBitmap = nullable ? packBits(col.valid!, n) : undefined;
  const nullCount = nullable ? countZeros(col.valid!.subarray(0, n)) : 0;
  const nulls = nullBitmap && nullCount > 0 ? { nullBitmap, nullCount } : {};
  const data = normalizeNulls(field, col, n);
  switch (field.type) {
    case "Bool":
      return makeData({ type: type as Bool, length: n, data: packBits(data as Uint8Array, n), ...nulls });
    case "Int8":
    case "Int16":
    case "Int32":
    case "Int64":
    case "Float":
    case "Double":
      return makeData({ type: type as Int32, length: n, data: data as Int32Array, ...nulls });
    case "VarChar":
    case "JSON": {
      const { offsets, bytes } = utf8Data(data as string[]);
      return makeData({ type: type as Utf8, length: n, valueOffsets: offsets, data: bytes, ...nulls });
    }
    case "FloatVector": {
      const dim = field.dim ?? 0;
      const child = makeData({ type: new Float32(), length: n * dim, data: data as Float32Array });
      return makeData({ type: type as FixedSizeList, length: n, child });
    }
    case "Array": {
      const rows = data as unknown[][];
      const offsets = new Int32Array(n + 1);
      const flat: unknown[] = [];
      for (let i = 0; i < n; i++) {
        const r = rows[i]!;
        for (let j = 0; j < r.length; j++) flat.push(r[j]);
        offsets[i + 1] = flat.length;
      }
      const child = encodeElements(field, flat);
      return makeData({ type: type as List, length: n, valueOffsets: offsets, child, ...nulls });
    }
    default:
      throw VbError.invalid(`field "${field.name}": cannot store type ${String(field.type)}`);
  }
}

function encodeElements(field: FieldSchema, values: unknown[]): Data {
  const et = field.elementType ?? "Int64";
  const type = scalarArrowType(et, field.name);
  const n = values.length;
  const bad = (i: number): never => {
    throw VbError.invalid(`field "${field.name}": element ${i} (${String(values[i])}) is not a valid ${et}`);
  };
  switch (et) {
    case "Bool": {
      const flags = new Uint8Array(n);
      for (let i = 0; i < n; i++) flags[i] = values[i] ? 1 : 0;
      return makeData({ type: type as Bool, length: n, data: packBits(flags) });
    }
    case "Int64": {
      const out = new BigInt64Array(n);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (typeof v === "bigint") out[i] = v;
        else if (typeof v === "number" && Number.isSafeInteger(v)) out[i] = BigInt(v);
        else bad(i);
      }
      return makeData({ type: type as Int64, length: n, data: out });
    }
    case "Int8":
    case "Int16":
    case "Int32":
    case "Float":
    case "Double": {
      const ctor = typedArrayOf(et) as Float64ArrayConstructor;
      const out = new ctor(n);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (typeof v === "number") out[i] = v;
        else if (typeof v === "bigint") out[i] = Number(v);
        else bad(i);
      }
      return makeData({ type: type as Float64, length: n, data: out });
    }
    case "VarChar": {
      for (let i = 0; i < n; i++) if (typeof values[i] !== "string") bad(i);
      const { offsets, bytes } = utf8Data(values as string[]);
      return makeData({ type: type as Utf8, length: n, valueOffsets: offsets, data: bytes });
    }
    default:
      throw VbError.invalid(`field "${field.name}": arrays of ${et} are not supported`);
  }
}

// ---- decode ----

function primitiveView(data: Data, width = 1): ColumnData {
  const values = data.values as Float32Array;
  return values.subarray(data.offset * width, (data.offset + data.length) * width) as ColumnData;
}

/** An Arrow array back to the column of `field` (a zero-copy view where the layout allows it). */
export function decodeColumn(field: FieldSchema, data: Data): Column {
  const fieldId = field.fieldId ?? 0;
  const n = data.length;
  let out: ColumnData;
  switch (field.type) {
    case "Bool":
      out = unpackBits(data.values as Uint8Array, data.offset, n);
      break;
    case "Int8":
    case "Int16":
    case "Int32":
    case "Int64":
    case "Float":
    case "Double":
      out = primitiveView(data);
      break;
    case "VarChar":
    case "JSON":
      out = readUtf8(data);
      break;
    case "FloatVector": {
      const dim = field.dim ?? 0;
      const child = data.children[0]!;
      const values = child.values as Float32Array;
      const start = (child.offset + data.offset * dim) as number;
      out = values.subarray(start, start + n * dim);
      break;
    }
    case "Array": {
      const offs = data.valueOffsets as Int32Array;
      const elems = decodeElements(field, data.children[0]!);
      const rows: unknown[][] = new Array(n);
      for (let i = 0; i < n; i++) rows[i] = elems.slice(offs[data.offset + i]!, offs[data.offset + i + 1]!);
      out = rows;
      break;
    }
    default:
      throw VbError.invalid(`field "${field.name}": cannot read type ${String(field.type)}`);
  }
  if (!field.nullable) return { fieldId, data: out };
  const valid = data.nullBitmap && data.nullCount > 0 ? unpackBits(data.nullBitmap, data.offset, n) : new Uint8Array(n).fill(1);
  return { fieldId, data: out, valid };
}

function decodeElements(field: FieldSchema, child: Data): unknown[] {
  const et = field.elementType ?? "Int64";
  switch (et) {
    case "Bool":
      return Array.from(unpackBits(child.values as Uint8Array, child.offset, child.length), (b) => b === 1);
    case "VarChar":
      return readUtf8(child);
    default:
      return Array.from(primitiveView(child) as Float64Array);
  }
}
