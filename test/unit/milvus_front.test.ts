/**
 * The Milvus front door's translations, without servers: statuses from VbErrors, schemas both ways,
 * FieldData columns both ways (nulls compact and row-dense, dynamic keys), output plans, REST JSON.
 */
import { describe, expect, it } from "vitest";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import type { CollectionInfo } from "../../protocol/meta.ts";
import { columnsFromFieldData, fieldDataOf, fieldsDataOf, outputPlan, rowCountOf, sliceColumns } from "../../actors/front/milvus/field_data.ts";
import { decodeCollectionSchema, MILVUS_METHODS } from "../../actors/front/milvus/proto.ts";
import { describeToMilvus, fieldToMilvus, schemaFromMilvus } from "../../actors/front/milvus/schema_map.ts";
import { errorStatus, okStatus, unimplemented } from "../../actors/front/milvus/status.ts";
import { Int64Text, replyJson } from "../../actors/front/rest/rest_v2.ts";

function refusal(f: () => unknown): VbError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(VbError);
    return err as VbError;
  }
  throw new Error("expected a refusal");
}

const info: CollectionInfo = {
  collectionId: 7n,
  dbName: "default",
  name: "books",
  schema: {
    name: "books",
    enableDynamicField: true,
    fields: [
      { fieldId: 100, name: "id", type: "Int64", isPrimaryKey: true },
      { fieldId: 101, name: "vec", type: "FloatVector", dim: 2 },
      { fieldId: 102, name: "rating", type: "Int32", nullable: true },
      { fieldId: 103, name: "tags", type: "Array", elementType: "Int64", maxCapacity: 4 },
      { fieldId: 104, name: "lang", type: "VarChar", maxLength: 8, defaultValue: "en" },
      { fieldId: 105, name: "$meta", type: "JSON", isDynamic: true },
    ],
  },
  shardsNum: 2,
  vchannels: [
    { name: "7v0", shard: 0, pchannel: 0 },
    { name: "7v1", shard: 1, pchannel: 1 },
  ],
  partitions: [{ partitionId: 8n, name: "_default", createdTs: 1n << 18n }],
  aliases: ["shelf"],
  consistencyLevel: "Bounded",
  properties: {},
  createdTs: 1_700_000_000_000n << 18n,
  state: "Created",
};

describe("Milvus statuses", () => {
  it("carries the VbError's code, the legacy enum Milvus derives from it, and the message", () => {
    expect(okStatus()).toMatchObject({ code: 0, error_code: "Success", reason: "" });
    expect(errorStatus(new VbError(ErrorCode.CollectionNotFound, 'collection "x" not found'))).toMatchObject({
      code: 100,
      error_code: "CollectionNotExists",
      reason: 'collection "x" not found',
    });
    expect(errorStatus(new VbError(ErrorCode.ParameterInvalid, "bad"))).toMatchObject({ code: 1100, error_code: "IllegalArgument" });
    expect(errorStatus(new VbError(ErrorCode.IndexNotFound, "no index"))).toMatchObject({ code: 700, error_code: "IndexNotExist" });
    expect(errorStatus(new VbError(ErrorCode.CollectionNotLoaded, "not loaded"))).toMatchObject({ code: 101, error_code: "UnexpectedError" });
    expect(errorStatus(new Error("boom"))).toMatchObject({ code: 65535, error_code: "UnexpectedError" });
    expect(errorStatus(unimplemented("GetMetrics"))).toMatchObject({ code: 10, reason: expect.stringContaining("GetMetrics") });
  });

  it("knows where every MilvusService reply keeps its status", () => {
    expect(MILVUS_METHODS.size).toBe(143);
    expect(MILVUS_METHODS.get("LoadCollection")).toEqual({ statusField: "" });
    expect(MILVUS_METHODS.get("Search")).toEqual({ statusField: "status" });
  });
});

describe("schemas", () => {
  it("reads a Milvus schema: type params, autoID, nullable, defaults, element types, dynamic field", () => {
    const s = schemaFromMilvus(
      {
        name: "books",
        autoID: false,
        enable_dynamic_field: true,
        fields: [
          { name: "id", data_type: "Int64", is_primary_key: true, autoID: true, type_params: [] },
          { name: "vec", data_type: "FloatVector", type_params: [{ key: "dim", value: "8" }] },
          { name: "title", data_type: "VarChar", type_params: [{ key: "max_length", value: "64" }], nullable: true },
          { name: "n", data_type: "Int64", type_params: [], default_value: { data: "long_data", long_data: "9007199254740993" } },
          { name: "tags", data_type: "Array", element_type: "VarChar", type_params: [{ key: "max_capacity", value: "4" }, { key: "max_length", value: "8" }] },
        ],
      },
      "books",
    );
    expect(s).toEqual({
      name: "books",
      enableDynamicField: true,
      fields: [
        { name: "id", type: "Int64", isPrimaryKey: true, autoId: true },
        { name: "vec", type: "FloatVector", dim: 8 },
        { name: "title", type: "VarChar", maxLength: 64, nullable: true },
        { name: "n", type: "Int64", defaultValue: 9007199254740993n },
        { name: "tags", type: "Array", elementType: "VarChar", maxLength: 8, maxCapacity: 4 },
      ],
    });
  });

  it("refuses what it cannot hold, naming the field", () => {
    const e = refusal(() => schemaFromMilvus({ fields: [{ name: "bits", data_type: "BinaryVector", type_params: [] }] }, "c"));
    expect(e.code).toBe(1100);
    expect(e.message).toContain('field "bits"');
    expect(refusal(() => schemaFromMilvus({ name: "other", fields: [] }, "c")).message).toContain('"other"');
    expect(() => decodeCollectionSchema(Uint8Array.from([0x0a, 0xff, 0xff]))).toThrow(/schema is not a valid/);
  });

  it("describes a collection as Milvus does: the dynamic field hidden, type params as strings, defaults as a ValueField", () => {
    const d = describeToMilvus(info);
    expect(d.schema.fields.map((f: { name: string }) => f.name)).toEqual(["id", "vec", "rating", "tags", "lang"]);
    expect(d.schema.enable_dynamic_field).toBe(true);
    expect(d.collectionID).toBe("7");
    expect(d.shards_num).toBe(2);
    expect(d.virtual_channel_names).toEqual(["7v0", "7v1"]);
    expect(d.created_utc_timestamp).toBe("1700000000000");
    expect(fieldToMilvus(info.schema.fields[1]!).type_params).toEqual([{ key: "dim", value: "2" }]);
    expect(fieldToMilvus(info.schema.fields[4]!).default_value).toEqual({ string_data: "en" });
  });
});

describe("FieldData", () => {
  it("turns insert columns into native columns: typed arrays, nulls from compact or row-dense valid_data, $meta objects", () => {
    const cols = columnsFromFieldData(
      [
        { field_name: "id", scalars: { data: "long_data", long_data: { data: ["1", "2", "9007199254740993"] } } },
        { field_name: "vec", vectors: { data: "float_vector", dim: "2", float_vector: { data: [1, 2, 3, 4, 5, 6] } } },
        { field_name: "rating", valid_data: [true, false, true], scalars: { data: "int_data", int_data: { data: [5, 7] } } },
        { field_name: "lang", valid_data: [false, true, true], scalars: { data: "string_data", string_data: { data: ["", "de", "fr"] } } },
        {
          field_name: "tags",
          scalars: { data: "array_data", array_data: { data: [{ data: "long_data", long_data: { data: ["1"] } }, { data: "long_data", long_data: { data: [] } }, {}] } },
        },
        { field_name: "$meta", is_dynamic: true, scalars: { data: "json_data", json_data: { data: [Buffer.from('{"a":1}'), Buffer.from("{}"), Buffer.from('{"b":[2]}')] } } },
      ],
      3,
      info.schema,
    );
    expect(cols.id).toEqual(BigInt64Array.from([1n, 2n, 9007199254740993n]));
    expect(cols.vec).toEqual(Float32Array.from([1, 2, 3, 4, 5, 6]));
    expect(cols.rating).toEqual([5, null, 7]);
    expect(cols.lang).toEqual([null, "de", "fr"]);
    expect(cols.tags).toEqual([[1n], [], []]);
    expect(cols.$meta).toEqual([{ a: 1 }, {}, { b: [2] }]);
    expect(rowCountOf(cols, info.schema)).toBe(3);
    const part = sliceColumns(cols, info.schema, 1, 3);
    expect(part.vec).toEqual(Float32Array.from([3, 4, 5, 6]));
    expect(part.rating).toEqual([null, 7]);
  });

  it("refuses a vector column of another dimension, naming the field and the collection", () => {
    const e = refusal(() => columnsFromFieldData([{ field_name: "vec", vectors: { data: "float_vector", dim: "3", float_vector: { data: [1, 2, 3] } } }], 1, info.schema));
    expect(e.code).toBe(1100);
    expect(e.message).toContain("vec");
    expect(e.message).toContain('"books"');
  });

  it("writes rows back as columns: the pk always, nullable fields with valid_data, dynamic keys in $meta", () => {
    const plan = outputPlan(info, ["rating", "color"]);
    expect(plan.fields.map((f) => f.name)).toEqual(["id", "rating"]);
    expect(plan.names).toEqual(["id", "rating", "color"]);
    const fd = fieldsDataOf(info, plan, [
      { id: 1n, rating: 4, color: "red", size: 2 },
      { id: 2n, rating: null },
    ]);
    expect(fd[0]).toMatchObject({ field_name: "id", type: "Int64", scalars: { long_data: { data: ["1", "2"] } } });
    expect(fd[1]).toMatchObject({ field_name: "rating", valid_data: [true, false], scalars: { int_data: { data: [4, 0] } } });
    expect(fd[2]!.field_name).toBe("$meta");
    expect((fd[2]!.scalars.json_data.data as Buffer[]).map((b) => JSON.parse(b.toString()))).toEqual([{ color: "red" }, {}]);
    expect(outputPlan(info, ["*"]).names).toEqual(["id", "vec", "rating", "tags", "lang", "$meta"]);
    expect(fieldDataOf(info.schema.fields[1]!, [Float32Array.from([1, 2]), [3, 4]])).toMatchObject({ vectors: { dim: "2", float_vector: { data: [1, 2, 3, 4] } } });
    expect(fieldDataOf(info.schema.fields[3]!, [[1n, 2n]])).toMatchObject({ scalars: { array_data: { element_type: "Int64", data: [{ long_data: { data: ["1", "2"] } }] } } });
  });
});

describe("REST replies", () => {
  it("writes Int64 as bare numbers when asked, bigints as strings otherwise", () => {
    expect(replyJson({ ids: [new Int64Text("9007199254740993"), 1], n: 5n })).toBe('{"ids":[9007199254740993,1],"n":"5"}');
  });
});
