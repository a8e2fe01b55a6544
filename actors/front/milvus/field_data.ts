/**
 * Column-wise `schemapb.FieldData` both ways: the columns of an Insert/Upsert become the native API's
 * columns by field name (typed arrays where the field allows, lists with nulls for nullable fields,
 * `$meta` as objects); rows read back (Search entities, Query rows) become FieldData columns of the
 * output fields, with the dynamic keys gathered into the `$meta` JSON column as Milvus returns them.
 */
import { ErrorCode, VbError } from "../../../protocol/errors.ts";
import type { CollectionInfo } from "../../../protocol/meta.ts";
import { DYNAMIC_FIELD_NAME, type CollectionSchema, type DataTypeName, type FieldSchema } from "../../../protocol/schema.ts";
import type { Msg } from "./proto.ts";

function invalid(message: string): VbError {
  return new VbError(ErrorCode.ParameterInvalid, message);
}

function parseJson(b: Uint8Array | string, field: string, row: number): unknown {
  const text = typeof b === "string" ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("utf8");
  if (text.length === 0) return null;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw invalid(`field "${field}" of row ${row}: not valid JSON: ${(err as Error).message}`);
  }
}

const toBigInts = (xs: unknown[]): BigInt64Array => {
  const out = new BigInt64Array(xs.length);
  for (let i = 0; i < xs.length; i++) out[i] = BigInt(xs[i] as string);
  return out;
};

/** The values of one scalar column, typed where the field's type has a typed array. */
function scalarValues(sc: Msg, field: FieldSchema | undefined, name: string): ArrayLike<unknown> {
  const kind = sc.data as string | undefined;
  if (!kind) return [];
  const data = (sc[kind]?.data ?? []) as unknown[];
  const type = field?.type;
  switch (kind) {
    case "long_data":
      return toBigInts(data);
    case "int_data":
      if (type === "Int8") return Int8Array.from(data as number[]);
      if (type === "Int16") return Int16Array.from(data as number[]);
      if (type === "Int32") return Int32Array.from(data as number[]);
      return data;
    case "float_data":
      return type === "Double" ? Float64Array.from(data as number[]) : Float32Array.from(data as number[]);
    case "double_data":
      return type === "Float" ? Float32Array.from(data as number[]) : Float64Array.from(data as number[]);
    case "bool_data":
    case "string_data":
      return data;
    case "json_data":
      return (data as Uint8Array[]).map((b, r) => parseJson(b, name, r));
    case "array_data":
      return (data as Msg[]).map((el) => {
        const k = el.data as string | undefined;
        if (!k) return [];
        const xs = (el[k]?.data ?? []) as unknown[];
        return k === "long_data" ? xs.map((x) => BigInt(x as string)) : xs;
      });
    default:
      throw invalid(`field "${name}": column data of kind ${kind} is not supported`);
  }
}

/** Spreads a column that may be compact (values of valid rows only) or row-dense over `n` rows, nulls where invalid. */
function withNulls(values: ArrayLike<unknown>, valid: boolean[], n: number): unknown[] {
  const dense = values.length === n;
  const out = new Array<unknown>(n);
  let k = 0;
  for (let r = 0; r < n; r++) {
    if (valid[r]) out[r] = dense ? values[r] : values[k++];
    else {
      out[r] = null;
      if (dense) k++;
    }
  }
  return out;
}

/** InsertRequest/UpsertRequest fields_data → the native API's columns by field name. */
export function columnsFromFieldData(fieldsData: Msg[], numRows: number, schema: CollectionSchema): Record<string, unknown> {
  const cols: Record<string, unknown> = {};
  for (const fd of fieldsData) {
    const name = String(fd.field_name ?? "");
    if (fd.is_dynamic || name === DYNAMIC_FIELD_NAME) {
      if (!schema.enableDynamicField) throw invalid(`collection "${schema.name}" has no dynamic field: field "${name}" is not in its schema`);
      const values = fd.scalars ? scalarValues(fd.scalars as Msg, undefined, DYNAMIC_FIELD_NAME) : [];
      cols[DYNAMIC_FIELD_NAME] = Array.from(values);
      continue;
    }
    const field = schema.fields.find((f) => f.name === name && !f.isDynamic);
    let values: ArrayLike<unknown>;
    if (fd.vectors) {
      const v = fd.vectors as Msg;
      if (v.data !== "float_vector") {
        throw invalid(`field "${name}": vector data of kind ${String(v.data ?? "none")} is not supported (FloatVector only)`);
      }
      const flat = Float32Array.from((v.float_vector?.data ?? []) as number[]);
      const dim = Number(v.dim);
      if (field?.dim !== undefined && dim && dim !== field.dim) {
        throw invalid(`the dim (${dim}) of field data(${name}) is not equal to schema dim (${field.dim}) in collection "${schema.name}"`);
      }
      values = flat;
    } else if (fd.scalars) {
      values = scalarValues(fd.scalars as Msg, field, name);
    } else {
      throw invalid(`field "${name}": the column holds no data`);
    }
    const valid = fd.valid_data as boolean[] | undefined;
    if (valid && valid.length > 0 && valid.some((x) => !x) && !fd.vectors) {
      cols[name] = withNulls(values, valid, numRows || valid.length);
    } else cols[name] = values;
  }
  return cols;
}

/** Rows [start, end) of native columns (FloatVector columns are flat: rows × dim). */
export function sliceColumns(cols: Record<string, unknown>, schema: CollectionSchema, start: number, end: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, v] of Object.entries(cols)) {
    const f = schema.fields.find((x) => x.name === name);
    const per = f?.type === "FloatVector" && !Array.isArray(v) ? f.dim! : 1;
    const a = v as { slice(s: number, e: number): unknown; subarray?: (s: number, e: number) => unknown };
    out[name] = a.subarray ? a.subarray(start * per, end * per) : a.slice(start * per, end * per);
  }
  return out;
}

export function rowCountOf(cols: Record<string, unknown>, schema: CollectionSchema): number {
  for (const [name, v] of Object.entries(cols)) {
    const f = schema.fields.find((x) => x.name === name);
    const len = (v as ArrayLike<unknown>).length;
    if (f?.type === "FloatVector" && !Array.isArray(v)) return Math.floor(len / f.dim!);
    return len;
  }
  return 0;
}

const SCALAR_KEY: Partial<Record<DataTypeName, string>> = {
  Bool: "bool_data",
  Int8: "int_data",
  Int16: "int_data",
  Int32: "int_data",
  Int64: "long_data",
  Float: "float_data",
  Double: "double_data",
  VarChar: "string_data",
  JSON: "json_data",
};

function placeholder(type: DataTypeName | undefined): unknown {
  switch (type) {
    case "Bool":
      return false;
    case "Int64":
      return "0";
    case "VarChar":
      return "";
    case "JSON":
      return Buffer.alloc(0);
    default:
      return 0;
  }
}

function scalarOut(type: DataTypeName | undefined, v: unknown): unknown {
  if (v === null || v === undefined) return placeholder(type);
  switch (type) {
    case "Int64":
      return String(v);
    case "Bool":
      return v === true || v === 1;
    case "JSON":
      return Buffer.from(typeof v === "string" ? v : JSON.stringify(v, (_k, x: unknown) => (typeof x === "bigint" ? Number(x) : x)));
    case "VarChar":
      return String(v);
    default:
      return Number(v);
  }
}

/** One output column as `schemapb.FieldData`. */
export function fieldDataOf(f: FieldSchema, values: unknown[]): Msg {
  const base: Msg = { type: f.type, field_name: f.name, field_id: String(f.fieldId ?? 0), is_dynamic: f.isDynamic === true };
  if (f.nullable) base.valid_data = values.map((v) => v !== null && v !== undefined);
  if (f.type === "FloatVector") {
    const dim = f.dim!;
    const flat = new Array<number>(values.length * dim);
    values.forEach((v, r) => {
      const xs = v as ArrayLike<number> | null;
      for (let j = 0; j < dim; j++) flat[r * dim + j] = xs ? Number(xs[j]) : 0;
    });
    return { ...base, vectors: { dim: String(dim), float_vector: { data: flat } } };
  }
  if (f.type === "Array") {
    const et = f.elementType!;
    const key = SCALAR_KEY[et]!;
    return {
      ...base,
      scalars: {
        array_data: {
          element_type: et,
          data: values.map((v) => ({ [key]: { data: ((v ?? []) as unknown[]).map((x) => scalarOut(et, x)) } })),
        },
      },
    };
  }
  const key = SCALAR_KEY[f.type] ?? "string_data";
  return { ...base, scalars: { [key]: { data: values.map((v) => scalarOut(f.type, v)) } } };
}

/** Which columns a read returns: the schema fields asked for (pk always), and the dynamic keys (or all of `$meta`). */
export interface OutputPlan {
  fields: FieldSchema[];
  /** the dynamic keys asked for; `"all"` for `*` or `$meta` */
  dynamic: string[] | "all" | undefined;
  /** the names the reply lists in output_fields */
  names: string[];
}

export function outputPlan(info: CollectionInfo, requested: string[]): OutputPlan {
  const userFields = info.schema.fields.filter((f) => !f.isDynamic);
  const chosen = new Set<FieldSchema>();
  let dynamic: string[] | "all" | undefined;
  const names: string[] = [];
  const dynEnabled = info.schema.enableDynamicField === true;
  for (const raw of requested) {
    const n = raw.trim();
    if (n === "") continue;
    if (n === "*") {
      for (const f of userFields) chosen.add(f);
      if (dynEnabled) dynamic = "all";
      continue;
    }
    const f = userFields.find((x) => x.name === n);
    if (f) {
      chosen.add(f);
      continue;
    }
    if (dynEnabled) {
      if (n === DYNAMIC_FIELD_NAME) dynamic = "all";
      else if (dynamic !== "all") dynamic = [...(dynamic ?? []), n];
      if (!names.includes(n) && n !== DYNAMIC_FIELD_NAME) names.push(n);
      continue;
    }
    throw invalid(`field ${n} not exist in collection "${info.name}"`);
  }
  const pk = userFields.find((f) => f.isPrimaryKey)!;
  chosen.add(pk);
  const fields = userFields.filter((f) => chosen.has(f));
  const fixed = fields.map((f) => f.name);
  return { fields, dynamic, names: dynamic === "all" ? [...fixed, DYNAMIC_FIELD_NAME] : [...fixed, ...names] };
}

/** Rows (entities with the dynamic keys merged in, as the native API returns them) → fields_data. */
export function fieldsDataOf(info: CollectionInfo, plan: OutputPlan, rows: Record<string, unknown>[]): Msg[] {
  const out = plan.fields.map((f) => fieldDataOf(f, rows.map((r) => r[f.name])));
  if (plan.dynamic !== undefined) {
    const fixed = new Set(info.schema.fields.map((f) => f.name));
    const meta = rows.map((r) => {
      const m: Record<string, unknown> = {};
      if (plan.dynamic === "all") {
        for (const [k, v] of Object.entries(r)) if (!fixed.has(k)) m[k] = v;
      } else for (const k of plan.dynamic!) if (k in r) m[k] = r[k];
      return m;
    });
    const dyn = info.schema.fields.find((f) => f.isDynamic);
    out.push(fieldDataOf(dyn ?? { name: DYNAMIC_FIELD_NAME, type: "JSON", isDynamic: true }, meta));
  }
  return out;
}
