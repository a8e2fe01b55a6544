/**
 * Collection schemas between Milvus's `schemapb.CollectionSchema` (type params as key-value pairs,
 * default values as a `ValueField` oneof) and Vectorbus's `CollectionSchema`.
 */
import { ErrorCode, VbError } from "../../../protocol/errors.ts";
import type { CollectionInfo } from "../../../protocol/meta.ts";
import { DataType, type CollectionSchema, type DataTypeName, type FieldSchema } from "../../../protocol/schema.ts";
import type { Msg } from "./proto.ts";

const SUPPORTED = Object.keys(DataType) as DataTypeName[];

function invalid(message: string): VbError {
  return new VbError(ErrorCode.ParameterInvalid, message);
}

export function keyValues(pairs: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (Array.isArray(pairs)) for (const p of pairs as Msg[]) if (p && typeof p.key === "string") out[p.key] = String(p.value ?? "");
  return out;
}

export function toKeyValues(obj: Record<string, unknown>): { key: string; value: string }[] {
  return Object.entries(obj).map(([key, value]) => ({ key, value: typeof value === "string" ? value : JSON.stringify(value) }));
}

function positiveInt(field: string, key: string, v: string | undefined): number | undefined {
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw invalid(`field "${field}": type param ${key}=${JSON.stringify(v)} is not an integer`);
  return n;
}

function defaultOf(name: string, vf: Msg | null | undefined): FieldSchema["defaultValue"] {
  if (!vf || !vf.data) return undefined;
  const v = vf[vf.data as string];
  if (vf.data === "long_data") return BigInt(v as string);
  if (vf.data === "bytes_data" || vf.data === "timestamptz_data" || vf.data === "date_data" || vf.data === "time_data") {
    throw invalid(`field "${name}": a default value of kind ${String(vf.data)} is not supported`);
  }
  return v as boolean | number | string;
}

/** A decoded `schemapb.CollectionSchema` → a Vectorbus schema (rootcoord checks the rest and names the field at fault). */
export function schemaFromMilvus(s: Msg, collectionName: string): CollectionSchema {
  if (s.name && collectionName && s.name !== collectionName) {
    throw invalid(`collection name "${collectionName}" does not match the schema's name "${String(s.name)}"`);
  }
  if (Array.isArray(s.functions) && s.functions.length > 0) throw invalid(`collection "${collectionName}": schema functions are not supported`);
  if (Array.isArray(s.struct_array_fields) && s.struct_array_fields.length > 0) {
    throw invalid(`collection "${collectionName}": struct array fields are not supported`);
  }
  const fields = ((s.fields ?? []) as Msg[]).map((f): FieldSchema => {
    const name = String(f.name ?? "");
    const type = f.data_type as DataTypeName;
    if (!SUPPORTED.includes(type)) {
      throw invalid(`field "${name}": data type ${String(f.data_type)} is not supported (supported: ${SUPPORTED.join(", ")})`);
    }
    if (f.is_partition_key) throw invalid(`field "${name}": partition key fields are not supported`);
    if (f.is_dynamic) throw invalid(`field "${name}": declare a dynamic field with enable_dynamic_field, not as a field`);
    const tp = keyValues(f.type_params);
    const out: FieldSchema = { name, type };
    if (f.description) out.description = String(f.description);
    if (f.is_primary_key) {
      out.isPrimaryKey = true;
      if (f.autoID || s.autoID) out.autoId = true;
    } else if (f.autoID) out.autoId = true;
    const dim = positiveInt(name, "dim", tp.dim);
    if (dim !== undefined) out.dim = dim;
    const maxLength = positiveInt(name, "max_length", tp.max_length);
    if (maxLength !== undefined) out.maxLength = maxLength;
    const maxCapacity = positiveInt(name, "max_capacity", tp.max_capacity);
    if (maxCapacity !== undefined) out.maxCapacity = maxCapacity;
    if (type === "Array") {
      const et = f.element_type as DataTypeName;
      if (!SUPPORTED.includes(et)) throw invalid(`field "${name}": array element type ${String(f.element_type)} is not supported`);
      out.elementType = et;
    }
    if (f.nullable) out.nullable = true;
    const dv = defaultOf(name, f.default_value as Msg | null);
    if (dv !== undefined) out.defaultValue = dv;
    return out;
  });
  const schema: CollectionSchema = { name: collectionName || String(s.name ?? ""), fields };
  if (s.description) schema.description = String(s.description);
  if (s.enable_dynamic_field) schema.enableDynamicField = true;
  return schema;
}

function valueField(f: FieldSchema): Msg | null {
  const v = f.defaultValue;
  if (v === undefined) return null;
  switch (f.type) {
    case "Bool":
      return { bool_data: v };
    case "Int8":
    case "Int16":
    case "Int32":
      return { int_data: Number(v) };
    case "Int64":
      return { long_data: String(v) };
    case "Float":
      return { float_data: Number(v) };
    case "Double":
      return { double_data: Number(v) };
    default:
      return { string_data: String(v) };
  }
}

/** A Vectorbus field → `schemapb.FieldSchema` as DescribeCollection returns it. */
export function fieldToMilvus(f: FieldSchema): Msg {
  const typeParams: Record<string, unknown> = {};
  if (f.dim !== undefined) typeParams.dim = String(f.dim);
  if (f.maxLength !== undefined) typeParams.max_length = String(f.maxLength);
  if (f.maxCapacity !== undefined) typeParams.max_capacity = String(f.maxCapacity);
  return {
    fieldID: String(f.fieldId ?? 0),
    name: f.name,
    is_primary_key: f.isPrimaryKey === true,
    description: f.description ?? "",
    data_type: f.type,
    type_params: toKeyValues(typeParams),
    index_params: [],
    autoID: f.autoId === true,
    element_type: f.elementType ?? "None",
    default_value: valueField(f),
    is_dynamic: false,
    nullable: f.nullable === true,
  };
}

/** Milvus keeps the hybrid timestamp's physical part (ms) in the upper bits. */
export function utcMs(ts: bigint): string {
  return String(ts >> 18n);
}

/** CollectionInfo → DescribeCollectionResponse (without status). The dynamic field `$meta` stays hidden, as in Milvus. */
export function describeToMilvus(info: CollectionInfo): Msg {
  const pk = info.schema.fields.find((f) => f.isPrimaryKey);
  return {
    schema: {
      name: info.name,
      description: info.schema.description ?? "",
      autoID: pk?.autoId === true,
      fields: info.schema.fields.filter((f) => !f.isDynamic).map(fieldToMilvus),
      enable_dynamic_field: info.schema.enableDynamicField === true,
      properties: [],
      dbName: info.dbName,
    },
    collectionID: String(info.collectionId),
    virtual_channel_names: info.vchannels.map((v) => v.name),
    physical_channel_names: info.vchannels.map((v) => `VB_DML_${v.pchannel}`),
    created_timestamp: String(info.createdTs),
    created_utc_timestamp: utcMs(info.createdTs),
    shards_num: info.shardsNum,
    aliases: info.aliases,
    consistency_level: info.consistencyLevel,
    collection_name: info.name,
    properties: toKeyValues(info.properties ?? {}),
    db_name: info.dbName,
    num_partitions: String(info.partitions.length),
    update_timestamp: String(info.createdTs),
    update_timestamp_str: String(info.createdTs),
  };
}
