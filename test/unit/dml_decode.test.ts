/**
 * The one set of rules the datanode and the delegator read a vchannel's DML messages by: what one
 * applies the other applies, what one skips the other skips.
 */
import { describe, expect, it } from "vitest";
import { encode } from "../../protocol/codec.ts";
import type { DmlMsg, InsertMsg } from "../../protocol/dml.ts";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import type { CollectionSchema } from "../../protocol/schema.ts";
import { checkDml, decodeDml } from "../../actors/storage/dml_decode.ts";
import { WriteBuffer } from "../../actors/datanode/write_buffer.ts";

const SCHEMA: CollectionSchema = {
  name: "c",
  fields: [
    { fieldId: 100, name: "id", type: "Int64", isPrimaryKey: true },
    { fieldId: 101, name: "title", type: "VarChar", maxLength: 16 },
    { fieldId: 102, name: "vec", type: "FloatVector", dim: 2 },
  ],
};

function insert(over: Partial<Record<string, unknown>> = {}): DmlMsg {
  return {
    k: "insert",
    collectionId: 1n,
    partitionId: 10n,
    ts: 5n,
    numRows: 2,
    pks: BigInt64Array.of(1n, 2n),
    columns: [
      { fieldId: 100, data: BigInt64Array.of(1n, 2n) },
      { fieldId: 101, data: ["a", "b"] },
      { fieldId: 102, data: Float32Array.of(1, 2, 3, 4) },
    ],
    ...over,
  } as DmlMsg;
}

function refusal(msg: unknown): VbError {
  try {
    checkDml(msg, 1n, SCHEMA);
  } catch (err) {
    expect(err).toBeInstanceOf(VbError);
    expect((err as VbError).code).toBe(ErrorCode.ParameterInvalid);
    return err as VbError;
  }
  throw new Error("expected a refusal");
}

describe("DML message rules (storage/dml_decode.ts)", () => {
  it("decodes and accepts well-formed inserts, upserts and deletes", () => {
    const ok = insert();
    expect(decodeDml(encode(ok), 1n, SCHEMA)).toEqual(ok);
    expect(checkDml({ ...ok, k: "upsert" }, 1n, SCHEMA).k).toBe("upsert");
    const del = { k: "delete", collectionId: 1n, partitionId: -1n, ts: 6n, pks: BigInt64Array.of(2n) };
    expect(checkDml(del, 1n, SCHEMA)).toBe(del);
  });

  it("refuses with 1100 naming the field: bytes, kind, collection, ts, partition, rows, pks, columns", () => {
    expect(() => decodeDml(Uint8Array.of(0xc1), 1n, SCHEMA)).toThrow(/not a DML message/);
    expect(refusal({ k: "nope" }).message).toMatch(/^k:/);
    expect(refusal(insert({ collectionId: 2n })).message).toMatch(/^collectionId:/);
    expect(refusal(insert({ ts: 5 })).message).toMatch(/^ts:/);
    expect(refusal(insert({ partitionId: -1n })).message).toMatch(/^partitionId:/);
    expect(refusal({ k: "delete", collectionId: 1n, partitionId: -2n, ts: 6n, pks: BigInt64Array.of(2n) }).message).toMatch(/^partitionId:/);
    expect(refusal(insert({ numRows: 1.5 })).message).toMatch(/^numRows/);
    expect(refusal(insert({ pks: ["1", "2"] })).message).toMatch(/^pks:/);
    const [id, title, vec] = (insert() as InsertMsg).columns;
    expect(refusal(insert({ columns: [id, vec, title] })).message).toMatch(/"title"/); // schema order
    expect(refusal(insert({ columns: [id, title] })).message).toMatch(/"vec".*column missing/);
    expect(refusal(insert({ columns: [id, title, vec, vec] })).message).toMatch(/^columns: 4 columns for the 3 fields/);
    expect(refusal(insert({ columns: [id, { fieldId: 999, data: ["a", "b"] }, vec] })).message).toMatch(/^columns\[1\]: field id 999/);
  });

  it("is what the datanode's write buffer applies by: a message refused here changes nothing there", () => {
    const buf = new WriteBuffer({
      collectionId: 1n,
      vchannel: "1v0",
      schema: SCHEMA,
      sealPolicy: { maxRows: 100, maxBytes: 1e9, idleMs: 60_000 },
      checkpoint: { position: 0n, ts: 0n },
    });
    const bad = insert({ columns: [] });
    const err = refusal(bad);
    expect(() => buf.apply(1n, bad, 0)).toThrow(err.message);
    expect(buf.consumed).toBe(0n);
    expect(buf.apply(1n, insert(), 0).opened).toHaveLength(1);
    expect(buf.bufferedRows()).toBe(2);
  });
});
