import { describe, expect, it } from "vitest";
import { VbError } from "../../protocol/errors.ts";
import { normalizeSchema, type CollectionSchema } from "../../protocol/schema.ts";
import { validateColumns, validateRows } from "../../actors/proxy/validate.ts";
import { splitByShard } from "../../actors/proxy/shard_split.ts";
import { shardOfPk } from "../../protocol/hash.ts";

const schema: CollectionSchema = normalizeSchema({
  name: "books",
  fields: [
    { name: "id", type: "Int64", isPrimaryKey: true },
    { name: "title", type: "VarChar", maxLength: 8 },
    { name: "price", type: "Float", nullable: true },
    { name: "stock", type: "Int16", defaultValue: 7 },
    { name: "meta", type: "JSON" },
    { name: "tags", type: "Array", elementType: "Int64", maxCapacity: 3 },
    { name: "vec", type: "FloatVector", dim: 4 },
  ],
});

const good = (id: number) => ({ id, title: "t", price: 1.5, meta: { a: 1 }, tags: [1n, 2n], vec: [1, 2, 3, 4] });

function refusal(fn: () => unknown): VbError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(VbError);
    return err as VbError;
  }
  throw new Error("expected a refusal");
}

describe("insert validation", () => {
  it("turns rows into typed columns in schema order, with defaults and nulls", () => {
    const b = validateRows(schema, [good(1), { ...good(2), price: null, stock: undefined }]);
    expect(b.numRows).toBe(2);
    expect(b.columns.map((c) => c.fieldId)).toEqual(schema.fields.map((f) => f.fieldId));
    expect(b.columns[0]!.data).toEqual(new BigInt64Array([1n, 2n]));
    expect(b.columns[2]!.valid).toEqual(new Uint8Array([1, 0]));
    expect(Array.from(b.columns[3]!.data as Int16Array)).toEqual([7, 7]);
    expect(b.columns[4]!.data).toEqual(['{"a":1}', '{"a":1}']);
    expect(b.columns[6]!.data).toEqual(new Float32Array([1, 2, 3, 4, 1, 2, 3, 4]));
  });

  it("refuses bad rows with 1100 naming the field and the row", () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ...good(1), vec: [1, 2, 3] }, /field "vec" of row 0: expected 4 floats/],
      [{ ...good(1), vec: [1, Number.NaN, 3, 4] }, /field "vec" of row 0: element 1 is NaN/],
      [{ ...good(1), id: undefined }, /field "id" of row 0: is missing/],
      [{ ...good(1), title: "much too long" }, /field "title" of row 0: .*longer than max_length 8/],
      [{ ...good(1), price: "cheap" }, /field "price" of row 0: expected a finite Float/],
      [{ ...good(1), stock: 40_000 }, /field "stock" of row 0: 40000 is out of the Int16 range/],
      [{ ...good(1), tags: [1n, 2n, 3n, 4n] }, /field "tags" of row 0: array of 4 elements is over max_capacity 3/],
      [{ ...good(1), colour: "red" }, /field "colour" of row 0: is not a field of collection "books"/],
    ];
    for (const [row, re] of cases) {
      const err = refusal(() => validateRows(schema, [good(0), row].slice(1)));
      expect(err.code).toBe(1100);
      expect(err.message).toMatch(re);
    }
    expect(refusal(() => validateRows(schema, [good(1), { ...good(2), vec: [1] }])).message).toMatch(/row 1/);
    expect(refusal(() => validateRows(schema, [])).code).toBe(1100);
    expect(refusal(() => validateRows(schema, "rows")).code).toBe(1100);
  });

  it("puts unknown keys into $meta when the dynamic field is on, and refuses a pk for autoId", () => {
    const dyn = normalizeSchema({
      name: "d",
      enableDynamicField: true,
      fields: [
        { name: "id", type: "Int64", isPrimaryKey: true, autoId: true },
        { name: "vec", type: "FloatVector", dim: 2 },
      ],
    });
    const b = validateRows(dyn, [{ vec: [1, 2], colour: "red" }]);
    expect(b.needsIds).toBe(true);
    expect(b.columns[2]!.data).toEqual(['{"colour":"red"}']);
    expect(refusal(() => validateRows(dyn, [{ id: 5, vec: [1, 2] }])).message).toMatch(/autoId/);
  });

  it("takes columns, and splits rows by the hash of their pk", () => {
    const n = 1000;
    const vec = new Float32Array(n * 4).map((_, i) => i);
    const b = validateColumns(schema, {
      id: BigInt64Array.from({ length: n }, (_, i) => BigInt(i)),
      title: Array.from({ length: n }, () => "x"),
      meta: Array.from({ length: n }, () => ({})),
      tags: Array.from({ length: n }, () => []),
      vec,
    });
    expect(b.numRows).toBe(n);
    const parts = splitByShard(schema, b.columns, b.pkIndex, n, 3, { maxRows: 100, maxBytes: 1 << 20 });
    expect(parts.reduce((s, p) => s + p.numRows, 0)).toBe(n);
    for (const p of parts) {
      expect(p.numRows).toBeLessThanOrEqual(100);
      for (let i = 0; i < p.numRows; i++) {
        const pk = (p.pks as BigInt64Array)[i]!;
        expect(shardOfPk(pk, 3)).toBe(p.shard);
        const v = p.columns[6]!.data as Float32Array;
        expect(v[i * 4]).toBe(Number(pk) * 4);
      }
    }
    expect(refusal(() => validateColumns(schema, { id: new BigInt64Array(2), vec: new Float32Array(12) })).message).toMatch(
      /has 3 rows, other columns have 2/,
    );
  });

  it("takes typed columns as they are, and still refuses NaN and overlong strings in them", () => {
    const n = 3;
    const cols = {
      id: new BigInt64Array([1n, 2n, 3n]),
      title: ["a", "b", "c"],
      stock: [1, 2, 3],
      meta: [{}, {}, {}],
      tags: [[], [], []],
      vec: new Float32Array(n * 4).fill(0.5),
    };
    const b = validateColumns(schema, cols);
    expect(b.columns[0]!.data).toBe(cols.id);
    expect(b.columns[6]!.data).toBe(cols.vec);
    const nan = new Float32Array(n * 4).fill(0.5);
    nan[9] = Number.NaN;
    const err = refusal(() => validateColumns(schema, { ...cols, vec: nan }));
    expect(err.message).toMatch(/field "vec" of row 2: element 1 is NaN/);
    expect(refusal(() => validateColumns(schema, { ...cols, title: ["a", "far too long", "c"] })).message).toMatch(
      /field "title" of row 1: .*max_length 8/,
    );
  });

  it("keeps JSON exact: null stays, NaN and Infinity are refused, safe bigints become numbers", () => {
    const b = validateRows(schema, [{ ...good(1), meta: { a: null, b: [1, null] } }, { ...good(2), meta: { big: 5n } }]);
    expect(b.columns[4]!.data).toEqual(['{"a":null,"b":[1,null]}', '{"big":5}']);
    expect(refusal(() => validateRows(schema, [{ ...good(1), meta: { a: Number.NaN } }])).message).toMatch(/field "meta" of row 0: not a JSON value/);
    expect(refusal(() => validateRows(schema, [{ ...good(1), meta: [Infinity] }])).message).toMatch(/field "meta" of row 0/);
    expect(refusal(() => validateRows(schema, [{ ...good(1), meta: { x: 2n ** 60n } }])).message).toMatch(/does not fit a JSON number/);
  });
});
