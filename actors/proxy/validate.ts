/**
 * Insert validation: rows (objects) or columns (by field name) checked against the schema and turned
 * into typed columns in schema order. Every refusal is a 1100 that names the field and the row.
 */
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import {
  DYNAMIC_FIELD_NAME,
  fieldError,
  inIntRange,
  type CollectionSchema,
  type Column,
  type ColumnData,
  type DataTypeName,
  type FieldSchema,
} from "../../protocol/schema.ts";

export interface ValidatedBatch {
  numRows: number;
  /** one per schema field, in schema order; the autoId pk column is left empty (filled after allocation) */
  columns: Column[];
  /** index of the pk field in `columns` */
  pkIndex: number;
  /** true when the pk is autoId and its ids are still to be allocated */
  needsIds: boolean;
}

const utf8 = new TextEncoder();

function utf8Length(s: string): number {
  // fast path: ASCII strings are as long in bytes as in code units
  // eslint-disable-next-line no-control-regex
  return /^[\x00-\x7f]*$/.test(s) ? s.length : utf8.encode(s).length;
}

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (ArrayBuffer.isView(v)) return v.constructor.name;
  return typeof v;
}

/** Checks one scalar value; returns it in its column form (number, bigint, string, 0/1). */
function scalar(type: DataTypeName, v: unknown, field: string, row: number, maxLength?: number): number | bigint | string {
  switch (type) {
    case "Bool":
      if (typeof v !== "boolean") throw fieldError(field, `expected a Bool, got ${typeName(v)}`, row);
      return v ? 1 : 0;
    case "Int8":
    case "Int16":
    case "Int32": {
      const n = typeof v === "bigint" ? Number(v) : v;
      if (typeof n !== "number" || !Number.isInteger(n)) throw fieldError(field, `expected an ${type}, got ${typeName(v)} ${String(v)}`, row);
      if (!inIntRange(type, n)) throw fieldError(field, `${n} is out of the ${type} range`, row);
      return n;
    }
    case "Int64":
      if (typeof v === "bigint") {
        if (v < -(2n ** 63n) || v >= 2n ** 63n) throw fieldError(field, `${v} is out of the Int64 range`, row);
        return v;
      }
      if (typeof v === "number" && Number.isSafeInteger(v)) return BigInt(v);
      throw fieldError(field, `expected an Int64 (bigint or safe integer), got ${typeName(v)} ${String(v)}`, row);
    case "Float":
    case "Double":
      if (typeof v !== "number" || !Number.isFinite(v)) throw fieldError(field, `expected a finite ${type}, got ${typeName(v)} ${String(v)}`, row);
      return v;
    case "VarChar": {
      if (typeof v !== "string") throw fieldError(field, `expected a VarChar string, got ${typeName(v)}`, row);
      const len = utf8Length(v);
      if (maxLength !== undefined && len > maxLength) {
        throw fieldError(field, `string of ${len} bytes is longer than max_length ${maxLength}`, row);
      }
      return v;
    }
    default:
      throw fieldError(field, `type ${type} is not a scalar`, row);
  }
}

function jsonText(v: unknown, field: string, row: number): string {
  // Fast path: the native stringify. A bigint makes it throw; NaN and Infinity silently become null,
  // so only a text with "null" in it needs the careful pass below.
  if (v !== undefined && typeof v !== "function" && typeof v !== "symbol") {
    try {
      const text = JSON.stringify(v);
      if (text !== undefined && !text.includes("null")) return text;
    } catch {
      // fall through to the careful pass, which says what is wrong
    }
  }
  try {
    const text = JSON.stringify(v, (_k, x: unknown) => {
      if (typeof x === "bigint") {
        if (x > BigInt(Number.MAX_SAFE_INTEGER) || x < BigInt(Number.MIN_SAFE_INTEGER)) {
          throw new Error(`bigint ${x} does not fit a JSON number`);
        }
        return Number(x);
      }
      if (typeof x === "number" && !Number.isFinite(x)) throw new Error(`${x} is not valid JSON`);
      return x;
    });
    if (text === undefined) throw new Error(`a ${typeName(v)} is not JSON`);
    return text;
  } catch (err) {
    throw fieldError(field, `not a JSON value: ${(err as Error).message}`, row);
  }
}

/** A column under construction: values are pushed row by row. */
interface Builder {
  field: FieldSchema;
  push(v: unknown, row: number): void;
  finish(): Column;
}

function typedArrayFor(type: DataTypeName, n: number): Exclude<ColumnData, string[] | unknown[][]> {
  switch (type) {
    case "Bool":
      return new Uint8Array(n);
    case "Int8":
      return new Int8Array(n);
    case "Int16":
      return new Int16Array(n);
    case "Int32":
      return new Int32Array(n);
    case "Int64":
      return new BigInt64Array(n);
    case "Float":
      return new Float32Array(n);
    case "Double":
      return new Float64Array(n);
    default:
      throw new Error(`no typed array for ${type}`);
  }
}

function defaultFor(f: FieldSchema): unknown {
  const d = f.defaultValue;
  if (f.type === "Int64" && typeof d === "number") return BigInt(d);
  return d;
}

function builder(field: FieldSchema, n: number): Builder {
  const fieldId = field.fieldId!;
  const name = field.name;
  let valid: Uint8Array | undefined = field.nullable ? new Uint8Array(n) : undefined;
  let i = 0;
  // null / missing: the default value, else null for a nullable field, else an error
  const absent = (row: number): unknown => {
    if (field.defaultValue !== undefined) return defaultFor(field);
    if (field.nullable) return undefined;
    throw fieldError(name, "is missing (the field is not nullable and has no default value)", row);
  };
  if (field.type === "FloatVector") {
    const dim = field.dim!;
    const data = new Float32Array(n * dim);
    return {
      field,
      push(v, row) {
        let src: ArrayLike<unknown>;
        if (v instanceof Float32Array || v instanceof Float64Array || Array.isArray(v)) src = v;
        else if (v === undefined || v === null) throw fieldError(name, "is missing: every row needs its vector", row);
        else throw fieldError(name, `expected a FloatVector (Float32Array or number[]), got ${typeName(v)}`, row);
        if (src.length !== dim) throw fieldError(name, `expected ${dim} floats (dim ${dim}), got ${src.length}`, row);
        const base = i * dim;
        for (let j = 0; j < dim; j++) {
          const x = src[j];
          if (typeof x !== "number" || !Number.isFinite(x)) {
            throw fieldError(name, `element ${j} is ${typeof x === "number" ? x : typeName(x)}: vectors hold finite numbers`, row);
          }
          data[base + j] = x;
        }
        i++;
      },
      finish: () => ({ fieldId, data }),
    };
  }
  if (field.type === "VarChar" || field.type === "JSON" || field.type === "Array") {
    const data: unknown[] = new Array(n);
    return {
      field,
      push(v, row) {
        if (v === undefined || v === null) v = absent(row);
        if (v === undefined) {
          data[i] = field.type === "Array" ? [] : field.type === "JSON" ? "null" : "";
          i++;
          return;
        }
        if (valid) valid[i] = 1;
        if (field.type === "VarChar") data[i] = scalar("VarChar", v, name, row, field.maxLength);
        else if (field.type === "JSON") data[i] = jsonText(v, name, row);
        else {
          if (!Array.isArray(v)) throw fieldError(name, `expected an Array, got ${typeName(v)}`, row);
          if (v.length > field.maxCapacity!) {
            throw fieldError(name, `array of ${v.length} elements is over max_capacity ${field.maxCapacity}`, row);
          }
          const et = field.elementType!;
          data[i] = v.map((x, k) => {
            try {
              const s = scalar(et, x, name, row, field.maxLength);
              return et === "Bool" ? s === 1 : s;
            } catch (err) {
              throw fieldError(name, `element ${k}: ${(err as VbError).message.replace(/^field "[^"]*" of row \d+: /, "")}`, row);
            }
          });
        }
        i++;
      },
      finish: () => ({ fieldId, data: data as string[] | unknown[][], ...(valid ? { valid } : {}) }),
    };
  }
  const data = typedArrayFor(field.type, n);
  return {
    field,
    push(v, row) {
      if (v === undefined || v === null) v = absent(row);
      if (v === undefined) {
        i++;
        return;
      }
      if (valid) valid[i] = 1;
      (data as unknown as Array<number | bigint>)[i] = scalar(field.type, v, name, row) as number | bigint;
      i++;
    },
    finish: () => ({ fieldId, data, ...(valid ? { valid } : {}) }),
  };
}

function badRequest(message: string): VbError {
  return new VbError(ErrorCode.ParameterInvalid, message);
}

/** Validates rows (objects) against the schema. */
export function validateRows(schema: CollectionSchema, rows: unknown, opts: { upsert?: boolean } = {}): ValidatedBatch {
  if (!Array.isArray(rows) || rows.length === 0) throw badRequest("rows must be a non-empty list of objects");
  const n = rows.length;
  const dynamic = schema.enableDynamicField === true;
  const userFields = schema.fields.filter((f) => !f.isDynamic);
  const pkField = schema.fields.find((f) => f.isPrimaryKey)!;
  const needsIds = pkField.autoId === true && !opts.upsert;
  const known = new Set(schema.fields.map((f) => f.name));
  const builders = userFields.map((f) => (f === pkField && needsIds ? undefined : builder(f, n)));
  const meta: string[] | undefined = dynamic ? new Array(n) : undefined;
  for (let r = 0; r < n; r++) {
    const row = rows[r] as Record<string, unknown>;
    if (typeof row !== "object" || row === null || Array.isArray(row) || ArrayBuffer.isView(row)) {
      throw badRequest(`row ${r} must be an object of field values, got ${typeName(row)}`);
    }
    if (needsIds && row[pkField.name] !== undefined) {
      throw fieldError(pkField.name, "is autoId: leave it out, Vectorbus allocates the ids", r);
    }
    for (let f = 0; f < userFields.length; f++) builders[f]?.push(row[userFields[f]!.name], r);
    let extra: Record<string, unknown> | undefined;
    for (const key of Object.keys(row)) {
      if (known.has(key)) {
        if (key === DYNAMIC_FIELD_NAME) throw fieldError(key, "is reserved for the dynamic field", r);
        continue;
      }
      if (!dynamic) {
        throw fieldError(key, `is not a field of collection "${schema.name}" (and it has no dynamic field)`, r);
      }
      (extra ??= {})[key] = row[key];
    }
    if (meta) meta[r] = extra ? jsonText(extra, DYNAMIC_FIELD_NAME, r) : "{}";
  }
  return finishBatch(schema, userFields, builders, meta, n, needsIds);
}

function finishBatch(
  schema: CollectionSchema,
  userFields: FieldSchema[],
  builders: (Builder | undefined)[],
  meta: string[] | undefined,
  n: number,
  needsIds: boolean,
): ValidatedBatch {
  const columns: Column[] = [];
  let pkIndex = -1;
  for (const f of schema.fields) {
    if (f.isDynamic) {
      columns.push({ fieldId: f.fieldId!, data: meta ?? new Array<string>(n).fill("{}") });
      continue;
    }
    const k = userFields.indexOf(f);
    if (f.isPrimaryKey) pkIndex = columns.length;
    const b = builders[k];
    columns.push(b ? b.finish() : { fieldId: f.fieldId!, data: new BigInt64Array(n) });
  }
  return { numRows: n, columns, pkIndex, needsIds };
}

/**
 * A column sent as the typed array its field is stored in (Int64 as BigInt64Array, FloatVector as one
 * flat Float32Array, ...) is taken as it is after one pass of checks, instead of value by value.
 */
function fastColumn(f: FieldSchema, v: unknown, n: number): Column | undefined {
  if (f.nullable || v === undefined) return undefined;
  const fieldId = f.fieldId!;
  const nonFinite = (a: Float32Array | Float64Array, per: number): void => {
    for (let i = 0; i < a.length; i++) {
      const x = a[i]!;
      if (x - x !== 0) throw fieldError(f.name, `element ${i % per} is ${x}: ${f.type === "FloatVector" ? "vectors hold" : "floats must be"} finite numbers`, Math.floor(i / per));
    }
  };
  switch (f.type) {
    case "FloatVector":
      if (!(v instanceof Float32Array) || v.length !== n * f.dim!) return undefined;
      nonFinite(v, f.dim!);
      return { fieldId, data: v };
    case "Float":
      if (!(v instanceof Float32Array) || v.length !== n) return undefined;
      nonFinite(v, 1);
      return { fieldId, data: v };
    case "Double":
      if (!(v instanceof Float64Array) || v.length !== n) return undefined;
      nonFinite(v, 1);
      return { fieldId, data: v };
    case "Int64":
      return v instanceof BigInt64Array && v.length === n ? { fieldId, data: v } : undefined;
    case "Int32":
      return v instanceof Int32Array && v.length === n ? { fieldId, data: v } : undefined;
    case "Int16":
      return v instanceof Int16Array && v.length === n ? { fieldId, data: v } : undefined;
    case "Int8":
      return v instanceof Int8Array && v.length === n ? { fieldId, data: v } : undefined;
    case "VarChar": {
      if (!Array.isArray(v) || v.length !== n) return undefined;
      const max = f.maxLength!;
      for (let r = 0; r < n; r++) {
        const x = v[r];
        if (typeof x !== "string") return undefined; // the slow path names the row and the problem
        if (x.length > max || (x.length * 3 > max && utf8Length(x) > max)) return undefined;
      }
      return { fieldId, data: v as string[] };
    }
    default:
      return undefined;
  }
}

function lengthOf(v: unknown): number | undefined {
  if (Array.isArray(v)) return v.length;
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return (v as unknown as { length: number }).length;
  return undefined;
}

/** Validates columns given by field name (`{id: BigInt64Array, vec: Float32Array (n × dim), ...}`). */
export function validateColumns(
  schema: CollectionSchema,
  input: unknown,
  opts: { upsert?: boolean } = {},
): ValidatedBatch {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw badRequest("columns must be an object from field name to its values");
  }
  const cols = input as Record<string, unknown>;
  const pkField = schema.fields.find((f) => f.isPrimaryKey)!;
  const needsIds = pkField.autoId === true && !opts.upsert;
  const userFields = schema.fields.filter((f) => !f.isDynamic);
  for (const key of Object.keys(cols)) {
    if (!userFields.some((f) => f.name === key)) {
      if (key === DYNAMIC_FIELD_NAME && schema.enableDynamicField) continue;
      throw fieldError(key, `is not a field of collection "${schema.name}"`);
    }
  }
  if (needsIds && cols[pkField.name] !== undefined) {
    throw fieldError(pkField.name, "is autoId: leave it out, Vectorbus allocates the ids");
  }
  // the row count: from the first column given
  let n: number | undefined;
  for (const f of userFields) {
    const v = cols[f.name];
    if (v === undefined) continue;
    let len = lengthOf(v);
    if (len === undefined) throw fieldError(f.name, `expected a list or typed array of values, got ${typeName(v)}`);
    if (f.type === "FloatVector" && !Array.isArray(v)) {
      if (len % f.dim! !== 0) throw fieldError(f.name, `flat vector data of ${len} floats is not a multiple of dim ${f.dim}`);
      len /= f.dim!;
    }
    if (n === undefined) n = len;
    else if (n !== len) throw fieldError(f.name, `has ${len} rows, other columns have ${n}`);
  }
  if (!n) throw badRequest("columns hold no rows");
  const fast = new Map<FieldSchema, Column>();
  for (const f of userFields) {
    if (f === pkField && needsIds) continue;
    const c = fastColumn(f, cols[f.name], n);
    if (c) fast.set(f, c);
  }
  const builders: (Builder | undefined)[] = userFields.map((f) => {
    if (f === pkField && needsIds) return undefined;
    const c = fast.get(f);
    return c ? { field: f, push() {}, finish: () => c } : builder(f, n);
  });
  userFields.forEach((f, k) => {
    const b = builders[k];
    if (!b || fast.has(f)) return;
    const v = cols[f.name];
    if (f.type === "FloatVector" && v !== undefined && !Array.isArray(v)) {
      const flat = v as ArrayLike<number>;
      const dim = f.dim!;
      for (let r = 0; r < n; r++) {
        b.push(
          flat instanceof Float32Array ? flat.subarray(r * dim, (r + 1) * dim) : Array.prototype.slice.call(flat, r * dim, (r + 1) * dim),
          r,
        );
      }
      return;
    }
    const list = v as ArrayLike<unknown> | undefined;
    for (let r = 0; r < n; r++) {
      let x = list?.[r];
      if (f.type === "Bool" && list instanceof Uint8Array) x = x === 1;
      b.push(x, r);
    }
  });
  let meta: string[] | undefined;
  if (schema.enableDynamicField) {
    const m = cols[DYNAMIC_FIELD_NAME];
    meta = new Array<string>(n);
    for (let r = 0; r < n; r++) {
      const x = Array.isArray(m) ? m[r] : undefined;
      meta[r] = x === undefined || x === null ? "{}" : jsonText(x, DYNAMIC_FIELD_NAME, r);
    }
  }
  return finishBatch(schema, userFields, builders, meta, n, needsIds);
}
