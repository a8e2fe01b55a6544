import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decode, encode } from "../../protocol/codec.ts";
import { VbError } from "../../protocol/errors.ts";

const leaf = fc.oneof(
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }),
  fc.integer(),
  fc.double({ noNaN: false }),
  fc.string(),
  fc.boolean(),
  fc.constant(null),
  fc.float32Array().map((a) => new Float32Array(a)),
  fc.array(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })).map((a) => BigInt64Array.from(a)),
  fc.uint8Array(),
);

const value = fc.letrec((tie) => ({
  node: fc.oneof({ depthSize: "small" }, leaf, fc.array(tie("node")), fc.dictionary(fc.string().filter((k) => k !== "__proto__"), tie("node"))),
})).node;

function same(a: unknown, b: unknown): void {
  if (typeof a === "number" && Number.isNaN(a)) {
    expect(Number.isNaN(b)).toBe(true);
    return;
  }
  if (ArrayBuffer.isView(a)) {
    expect((b as object).constructor).toBe(a.constructor);
    expect(Buffer.from((b as Uint8Array).buffer, (b as Uint8Array).byteOffset, (b as Uint8Array).byteLength)).toEqual(
      Buffer.from(a.buffer, a.byteOffset, a.byteLength),
    );
    return;
  }
  if (Array.isArray(a)) {
    expect(Array.isArray(b)).toBe(true);
    expect((b as unknown[]).length).toBe(a.length);
    a.forEach((x, i) => same(x, (b as unknown[])[i]));
    return;
  }
  if (a !== null && typeof a === "object") {
    expect(Object.keys(b as object).sort()).toEqual(Object.keys(a).sort());
    for (const k of Object.keys(a)) same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]);
    return;
  }
  expect(typeof b).toBe(typeof a);
  expect(Object.is(b, a) || (a === 0 && b === 0)).toBe(true);
}

describe("codec", () => {
  it("renames a __proto__ key instead of letting it reach an object's prototype", () => {
    const back = decode<Record<string, unknown>>(encode(JSON.parse('{"__proto__": {"polluted": 1}, "a": 1}')));
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(back.a).toBe(1);
  });

  it("round-trips bigint, Float32Array, BigInt64Array, nested objects and null exactly", () => {
    const v = {
      id: 2n ** 63n - 1n,
      neg: -(2n ** 63n),
      ts: 460_000_000_000_000_000n,
      n: 3,
      f: 0.1,
      vec: new Float32Array([1.5, -0, Number.NaN, 3.4e38]),
      pks: new BigInt64Array([1n, -2n, 2n ** 62n]),
      nested: { a: [1, "x", null, { b: 7n }] },
      none: null,
    };
    const back = decode<typeof v>(encode(v));
    same(v, back);
    expect(typeof back.id).toBe("bigint");
    expect(back.vec).toBeInstanceOf(Float32Array);
    expect(back.pks).toBeInstanceOf(BigInt64Array);
  });

  it("round-trips generated values exactly (property)", () => {
    fc.assert(
      fc.property(value, (v) => {
        same(v, decode(encode(v)));
      }),
      { numRuns: 300 },
    );
  });

  it("rejects malformed bytes with a 1100 error", () => {
    for (const bytes of [new Uint8Array([]), new Uint8Array([0xc1]), new Uint8Array([0x92, 0x01])]) {
      let caught: unknown;
      try {
        decode(bytes);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(VbError);
      expect((caught as VbError).code).toBe(1100);
    }
  });
});
