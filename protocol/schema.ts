/**
 * Collection schemas: data types (Milvus's names and numbers), fields, and the checks a schema must
 * pass before rootcoord stores it. Rows travel and are stored column by column; `Column` says which
 * typed array or list holds each type.
 */
import { ErrorCode, VbError } from "./errors.ts";

/** Milvus's `schemapb.DataType` numbers, so the gRPC and REST front doors map one to one. */
export const DataType = {
  Bool: 1,
  Int8: 2,
  Int16: 3,
  Int32: 4,
  Int64: 5,
  Float: 10,
  Double: 11,
  VarChar: 21,
  Array: 22,
  JSON: 23,
  FloatVector: 101,
} as const;
export type DataTypeName = keyof typeof DataType;

export const SCALAR_TYPES: readonly DataTypeName[] = ["Bool", "Int8", "Int16", "Int32", "Int64", "Float", "Double", "VarChar"];
/** Element types an Array field may hold (Milvus: every scalar but JSON and Array). */
export const ARRAY_ELEMENT_TYPES: readonly DataTypeName[] = SCALAR_TYPES;

export const DYNAMIC_FIELD_NAME = "$meta";
/** First id rootcoord gives a user field (Milvus keeps 0..99 for system fields). */
export const FIRST_FIELD_ID = 100;
export const MAX_DIM = 32_768;
export const MAX_VARCHAR_LENGTH = 65_535;
export const MAX_ARRAY_CAPACITY = 4_096;
export const MAX_FIELDS = 64;
export const MAX_SHARDS = 16;

export interface FieldSchema {
  /** Assigned by rootcoord (100, 101, ...); absent in a CreateCollection request. */
  fieldId?: number;
  name: string;
  type: DataTypeName;
  description?: string;
  isPrimaryKey?: boolean;
  /** Primary key only: ids are allocated by Vectorbus, rows must not carry them. */
  autoId?: boolean;
  nullable?: boolean;
  /** Used when a row leaves the field out (or gives null). Not for the pk, vectors or JSON. */
  defaultValue?: boolean | number | bigint | string;
  /** VarChar, and Array of VarChar: max length in UTF-8 bytes... counted in characters as Milvus does. */
  maxLength?: number;
  /** FloatVector */
  dim?: number;
  /** Array */
  elementType?: DataTypeName;
  maxCapacity?: number;
  /** The hidden JSON field `$meta` that holds a dynamic-field collection's unknown keys. */
  isDynamic?: boolean;
}

export interface CollectionSchema {
  name: string;
  description?: string;
  fields: FieldSchema[];
  /** Keys a row carries that are not fields go into the hidden JSON field `$meta`. */
  enableDynamicField?: boolean;
}

export type ConsistencyLevel = "Strong" | "Session" | "Bounded" | "Eventually";
export const CONSISTENCY_LEVELS: readonly ConsistencyLevel[] = ["Strong", "Session", "Bounded", "Eventually"];

/**
 * One field's values for a batch of rows. Numbers travel in typed arrays, never as arrays of numbers:
 * Bool → Uint8Array (0/1), Int8/16/32 → Int8Array/Int16Array/Int32Array, Int64 → BigInt64Array,
 * Float → Float32Array, Double → Float64Array, FloatVector → Float32Array of rows × dim,
 * VarChar → string[], JSON → string[] (JSON text), Array → unknown[][] (elements as their scalar
 * type: bigint for Int64). `valid` marks non-null rows of a nullable field (1 = value, 0 = null); a
 * null row holds a zero / "" / [] placeholder in `data`.
 */
export type ColumnData =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Float32Array
  | Float64Array
  | string[]
  | unknown[][];

export interface Column {
  fieldId: number;
  data: ColumnData;
  valid?: Uint8Array;
}

export function fieldError(field: string, message: string, row?: number): VbError {
  const where = row === undefined ? `field "${field}"` : `field "${field}" of row ${row}`;
  return new VbError(ErrorCode.ParameterInvalid, `${where}: ${message}`);
}

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Collection, partition, alias, database and field names: Milvus's rule (letter or _, then letters, digits, _; ≤ 255). */
export function checkName(kind: string, name: unknown): string {
  if (typeof name !== "string" || name.length === 0) {
    throw new VbError(ErrorCode.ParameterInvalid, `${kind} name must be a non-empty string`);
  }
  if (name.length > 255 || !NAME_RE.test(name)) {
    throw new VbError(
      ErrorCode.ParameterInvalid,
      `invalid ${kind} name "${name}": start with a letter or _, then letters, digits or _ (at most 255)`,
    );
  }
  return name;
}

export function primaryField(schema: CollectionSchema): FieldSchema {
  const pk = schema.fields.find((f) => f.isPrimaryKey);
  if (!pk) throw new VbError(ErrorCode.CollectionIllegalSchema, `collection "${schema.name}" has no primary key field`);
  return pk;
}

export function vectorFields(schema: CollectionSchema): FieldSchema[] {
  return schema.fields.filter((f) => f.type === "FloatVector");
}

export function fieldByName(schema: CollectionSchema, name: string): FieldSchema | undefined {
  return schema.fields.find((f) => f.name === name);
}

function illegal(message: string): VbError {
  return new VbError(ErrorCode.ParameterInvalid, `invalid schema: ${message}`);
}

/**
 * Checks a CreateCollection schema and returns it normalized: field ids assigned from 100, the
 * dynamic field `$meta` appended when enabled. Throws 1100 naming the field at fault.
 */
export function normalizeSchema(input: unknown): CollectionSchema {
  if (typeof input !== "object" || input === null) throw illegal("schema must be an object with name and fields");
  const s = input as CollectionSchema;
  checkName("collection", s.name);
  if (!Array.isArray(s.fields) || s.fields.length === 0) throw illegal("fields must be a non-empty list");
  if (s.fields.length > MAX_FIELDS) throw illegal(`at most ${MAX_FIELDS} fields`);
  const seen = new Set<string>();
  const fields: FieldSchema[] = [];
  let pkCount = 0;
  let vecCount = 0;
  s.fields.forEach((raw, i) => {
    if (typeof raw !== "object" || raw === null) throw illegal(`field ${i} must be an object`);
    const f = raw as FieldSchema;
    if (f.name === DYNAMIC_FIELD_NAME) throw illegal(`field name "${DYNAMIC_FIELD_NAME}" is reserved for the dynamic field`);
    checkName("field", f.name);
    if (seen.has(f.name)) throw illegal(`duplicate field name "${f.name}"`);
    seen.add(f.name);
    if (typeof f.type !== "string" || !Object.hasOwn(DataType, f.type)) {
      throw illegal(`field "${f.name}": unknown type ${JSON.stringify(f.type)}; use one of ${Object.keys(DataType).join(", ")}`);
    }
    const out: FieldSchema = { fieldId: FIRST_FIELD_ID + i, name: f.name, type: f.type };
    if (f.description) out.description = String(f.description);
    if (f.isPrimaryKey) {
      pkCount++;
      if (f.type !== "Int64" && f.type !== "VarChar") {
        throw illegal(`field "${f.name}": a primary key must be Int64 or VarChar, not ${f.type}`);
      }
      if (f.nullable) throw illegal(`field "${f.name}": a primary key cannot be nullable`);
      if (f.defaultValue !== undefined) throw illegal(`field "${f.name}": a primary key cannot have a default value`);
      out.isPrimaryKey = true;
      if (f.autoId) {
        if (f.type !== "Int64") throw illegal(`field "${f.name}": autoId needs an Int64 primary key`);
        out.autoId = true;
      }
    } else if (f.autoId) {
      throw illegal(`field "${f.name}": autoId is only for the primary key`);
    }
    if (f.type === "VarChar" || (f.type === "Array" && f.elementType === "VarChar")) {
      const n = f.maxLength;
      if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > MAX_VARCHAR_LENGTH) {
        throw illegal(`field "${f.name}": maxLength must be an integer in [1, ${MAX_VARCHAR_LENGTH}]`);
      }
      out.maxLength = n;
    }
    if (f.type === "FloatVector") {
      vecCount++;
      const d = f.dim;
      if (typeof d !== "number" || !Number.isInteger(d) || d < 1 || d > MAX_DIM) {
        throw illegal(`field "${f.name}": dim must be an integer in [1, ${MAX_DIM}]`);
      }
      if (f.nullable) throw illegal(`field "${f.name}": a vector field cannot be nullable`);
      out.dim = d;
    }
    if (f.type === "Array") {
      if (!f.elementType || !ARRAY_ELEMENT_TYPES.includes(f.elementType)) {
        throw illegal(`field "${f.name}": elementType must be one of ${ARRAY_ELEMENT_TYPES.join(", ")}`);
      }
      const c = f.maxCapacity;
      if (typeof c !== "number" || !Number.isInteger(c) || c < 1 || c > MAX_ARRAY_CAPACITY) {
        throw illegal(`field "${f.name}": maxCapacity must be an integer in [1, ${MAX_ARRAY_CAPACITY}]`);
      }
      out.elementType = f.elementType;
      out.maxCapacity = c;
    }
    if (f.nullable) out.nullable = true;
    if (f.defaultValue !== undefined && f.defaultValue !== null) {
      if (f.type === "FloatVector" || f.type === "JSON" || f.type === "Array") {
        throw illegal(`field "${f.name}": ${f.type} fields cannot have a default value`);
      }
      out.defaultValue = checkDefault(f);
    }
    fields.push(out);
  });
  if (pkCount !== 1) throw illegal(`exactly one field must be the primary key (found ${pkCount})`);
  if (vecCount === 0) throw illegal("at least one FloatVector field is needed");
  const schema: CollectionSchema = { name: s.name, fields };
  if (s.description) schema.description = String(s.description);
  if (s.enableDynamicField) {
    schema.enableDynamicField = true;
    fields.push({ fieldId: FIRST_FIELD_ID + fields.length, name: DYNAMIC_FIELD_NAME, type: "JSON", isDynamic: true });
  }
  return schema;
}

function checkDefault(f: FieldSchema): boolean | number | bigint | string {
  const v = f.defaultValue;
  const bad = () => illegal(`field "${f.name}": default value ${String(v)} is not a valid ${f.type}`);
  switch (f.type) {
    case "Bool":
      if (typeof v !== "boolean") throw bad();
      return v;
    case "Int8":
    case "Int16":
    case "Int32": {
      const n = typeof v === "bigint" ? Number(v) : v;
      if (typeof n !== "number" || !Number.isInteger(n) || !inIntRange(f.type, n)) throw bad();
      return n;
    }
    case "Int64":
      if (typeof v === "bigint") return v;
      if (typeof v === "number" && Number.isSafeInteger(v)) return BigInt(v);
      throw bad();
    case "Float":
    case "Double":
      if (typeof v !== "number" || !Number.isFinite(v)) throw bad();
      return v;
    case "VarChar":
      if (typeof v !== "string" || v.length > (f.maxLength ?? MAX_VARCHAR_LENGTH)) throw bad();
      return v;
    default:
      throw bad();
  }
}

const INT_RANGES: Record<string, [number, number]> = {
  Int8: [-128, 127],
  Int16: [-32_768, 32_767],
  Int32: [-2_147_483_648, 2_147_483_647],
};

export function inIntRange(type: DataTypeName, n: number): boolean {
  const r = INT_RANGES[type];
  return r === undefined || (n >= r[0] && n <= r[1]);
}
