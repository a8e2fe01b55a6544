import { describe, expect, it } from "vitest";
import { compileFilter, evaluateFilter, filterFieldIds, passesAll, type FilterPlan } from "../../actors/expr/index.ts";
import { decode, encode } from "../../protocol/codec.ts";
import { VbError } from "../../protocol/errors.ts";
import { DYNAMIC_FIELD_NAME, normalizeSchema, type CollectionSchema, type Column } from "../../protocol/schema.ts";

// ---- a seeded random table ----------------------------------------------------------------------

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const schema: CollectionSchema = normalizeSchema({
  name: "things",
  enableDynamicField: true,
  fields: [
    { name: "id", type: "Int64", isPrimaryKey: true },
    { name: "i8", type: "Int8" },
    { name: "i16", type: "Int16" },
    { name: "i32", type: "Int32" },
    { name: "big", type: "Int64" },
    { name: "f", type: "Float" },
    { name: "d", type: "Double" },
    { name: "b", type: "Bool" },
    { name: "s", type: "VarChar", maxLength: 16 },
    { name: "ni", type: "Int32", nullable: true },
    { name: "ns", type: "VarChar", maxLength: 16, nullable: true },
    { name: "nb", type: "Bool", nullable: true },
    { name: "j", type: "JSON" },
    { name: "nj", type: "JSON", nullable: true },
    { name: "ai", type: "Array", elementType: "Int64", maxCapacity: 4 },
    { name: "as", type: "Array", elementType: "VarChar", maxCapacity: 4, maxLength: 4 },
    { name: "na", type: "Array", elementType: "Int32", maxCapacity: 4, nullable: true },
    { name: "vec", type: "FloatVector", dim: 2 },
  ],
});

interface Row {
  id: bigint;
  i8: number;
  i16: number;
  i32: number;
  big: bigint;
  f: number;
  d: number;
  b: boolean;
  s: string;
  ni: number | null;
  ns: string | null;
  nb: boolean | null;
  j: Record<string, unknown>;
  nj: Record<string, unknown> | null;
  ai: bigint[];
  as: string[];
  na: number[] | null;
  meta: Record<string, unknown>;
}

const N = 5_000;
const TWO62 = 2n ** 62n;

function makeRows(): Row[] {
  const rnd = mulberry32(20240601);
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const word = () => Array.from({ length: int(1, 5) }, () => pick(["a", "b", "c", "x", "y", "z", "m", "%", "_"])).join("");
  const rows: Row[] = [];
  for (let r = 0; r < N; r++) {
    const j: Record<string, unknown> = {};
    const nKind = int(0, 6);
    if (nKind === 0) j.n = int(-10, 10);
    else if (nKind === 1) j.n = int(0, 20) / 4;
    else if (nKind === 2) j.n = pick(["5", "x", "red"]);
    else if (nKind === 3) j.n = rnd() < 0.5;
    else if (nKind === 4) j.n = null;
    else if (nKind === 5) j.n = int(0, 10);
    // nKind 6: missing
    j.s = pick(["red", "green", "blue", 3]);
    if (rnd() < 0.8) j.arr = Array.from({ length: int(0, 4) }, () => (rnd() < 0.9 ? int(0, 5) : "2"));
    if (rnd() < 0.7) j.nested = { k: rnd() < 0.8 ? int(0, 6) : "k" };
    if (rnd() < 0.6) j.flag = rnd() < 0.5;
    const meta: Record<string, unknown> = {};
    if (rnd() < 0.7) meta.color = pick(["red", "green", "blue"]);
    if (rnd() < 0.6) meta.score = rnd() < 0.85 ? int(0, 100) : "high";
    rows.push({
      id: BigInt(r + 1),
      i8: int(-128, 127),
      i16: int(-2000, 2000),
      i32: int(-1_000_000, 1_000_000),
      big: rnd() < 0.5 ? TWO62 + BigInt(int(-1000, 1000)) : BigInt(int(-1000, 1000)),
      f: Math.fround(rnd() < 0.2 ? pick([1.1, 2.5, 0.3]) : rnd() * 4 - 1),
      d: rnd() < 0.1 ? 0.25 : rnd() * 2 - 1,
      b: rnd() < 0.5,
      s: word(),
      ni: rnd() < 0.25 ? null : int(-20, 20),
      ns: rnd() < 0.25 ? null : word(),
      nb: rnd() < 0.3 ? null : rnd() < 0.5,
      j,
      nj: rnd() < 0.3 ? null : rnd() < 0.5 ? { k: int(0, 3) } : { other: 1 },
      ai: Array.from({ length: int(0, 4) }, () => BigInt(int(0, 8))),
      as: Array.from({ length: int(0, 4) }, () => pick(["a", "b", "c", "d"])),
      na: rnd() < 0.3 ? null : Array.from({ length: int(0, 3) }, () => int(0, 3)),
      meta,
    });
  }
  return rows;
}

const rows = makeRows();
const idOf = (name: string) => schema.fields.find((f) => f.name === name)!.fieldId!;

function makeColumns(rs: Row[]): Column[] {
  const n = rs.length;
  const typed = <T extends { [i: number]: number | bigint }>(arr: T, get: (r: Row) => number | bigint): T => {
    rs.forEach((r, i) => (arr[i] = get(r)));
    return arr;
  };
  const validOf = (get: (r: Row) => unknown) => Uint8Array.from(rs, (r) => (get(r) === null ? 0 : 1));
  return [
    { fieldId: idOf("id"), data: typed(new BigInt64Array(n), (r) => r.id) },
    { fieldId: idOf("i8"), data: typed(new Int8Array(n), (r) => r.i8) },
    { fieldId: idOf("i16"), data: typed(new Int16Array(n), (r) => r.i16) },
    { fieldId: idOf("i32"), data: typed(new Int32Array(n), (r) => r.i32) },
    { fieldId: idOf("big"), data: typed(new BigInt64Array(n), (r) => r.big) },
    { fieldId: idOf("f"), data: typed(new Float32Array(n), (r) => r.f) },
    { fieldId: idOf("d"), data: typed(new Float64Array(n), (r) => r.d) },
    { fieldId: idOf("b"), data: typed(new Uint8Array(n), (r) => (r.b ? 1 : 0)) },
    { fieldId: idOf("s"), data: rs.map((r) => r.s) },
    { fieldId: idOf("ni"), data: typed(new Int32Array(n), (r) => r.ni ?? 0), valid: validOf((r) => r.ni) },
    { fieldId: idOf("ns"), data: rs.map((r) => r.ns ?? ""), valid: validOf((r) => r.ns) },
    { fieldId: idOf("nb"), data: typed(new Uint8Array(n), (r) => (r.nb ? 1 : 0)), valid: validOf((r) => r.nb) },
    { fieldId: idOf("j"), data: rs.map((r) => JSON.stringify(r.j)) },
    { fieldId: idOf("nj"), data: rs.map((r) => JSON.stringify(r.nj)), valid: validOf((r) => r.nj) },
    { fieldId: idOf("ai"), data: rs.map((r) => r.ai) },
    { fieldId: idOf("as"), data: rs.map((r) => r.as) },
    { fieldId: idOf("na"), data: rs.map((r) => r.na ?? []), valid: validOf((r) => r.na) },
    { fieldId: idOf("vec"), data: new Float32Array(n * 2) },
    { fieldId: idOf(DYNAMIC_FIELD_NAME), data: rs.map((r) => JSON.stringify(r.meta)) },
  ];
}

const columns = makeColumns(rows);

// ---- the same predicates in plain JS --------------------------------------------------------------
// Three-valued where nulls are involved: true, false, or null (unknown); a row passes only on true.

type T3 = boolean | null;
const and3 = (...xs: T3[]): T3 => (xs.includes(false) ? false : xs.includes(null) ? null : true);
const or3 = (...xs: T3[]): T3 => (xs.includes(true) ? true : xs.includes(null) ? null : false);
const not3 = (x: T3): T3 => (x === null ? null : !x);
const nn = <V>(v: V | null, f: (v: V) => boolean): T3 => (v === null ? null : f(v));

/** Milvus's JSON comparison: same type compares; another type (or missing) is false, except != true. */
function jcmp(op: string, v: unknown, lit: number | string | boolean): boolean {
  const sameType = typeof v === typeof lit;
  if (!sameType) return op === "!=";
  const a = v as number | string | boolean;
  switch (op) {
    case "==":
      return a === lit;
    case "!=":
      return a !== lit;
    case "<":
      return a < lit;
    case "<=":
      return a <= lit;
    case ">":
      return a > lit;
    default:
      return a >= lit;
  }
}
const jget = (o: unknown, ...path: (string | number)[]): unknown => {
  let v = o;
  for (const k of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string | number, unknown>)[k];
  }
  return v;
};
const jarr = (v: unknown): unknown[] | undefined => (Array.isArray(v) ? v : undefined);
const bigVals = [TWO62 - 5n, TWO62, TWO62 + 7n];
const sampleIds = [3n, 17n, 256n, 4999n, 5000n, 77777n];

const cases: [string, (r: Row) => T3, Record<string, unknown>?][] = [
  ["i32 > 100", (r) => r.i32 > 100],
  ["i8 <= -3", (r) => r.i8 <= -3],
  ["100 < i16", (r) => r.i16 > 100],
  ["i32 == 7 or i8 == 1", (r) => r.i32 === 7 || r.i8 === 1],
  ["i8 != 0 and i16 >= 0", (r) => r.i8 !== 0 && r.i16 >= 0],
  ["-10 < i8 < 10", (r) => -10 < r.i8 && r.i8 < 10],
  ["1000 >= i16 > -500", (r) => r.i16 <= 1000 && r.i16 > -500],
  ["0 <= i32 <= 500000", (r) => r.i32 >= 0 && r.i32 <= 500000],
  ["f > 0.5", (r) => r.f > 0.5],
  ["f == 1.1", (r) => r.f === Math.fround(1.1)],
  ["f >= 2.5 && f < 2.6", (r) => r.f >= 2.5 && r.f < Math.fround(2.6)],
  ["d <= 0.25", (r) => r.d <= 0.25],
  ["d * 2 + 1 > 1.5", (r) => r.d * 2 + 1 > 1.5],
  ["f * 2 > 1", (r) => Math.fround(r.f * 2) > 1],
  ["i32 % 3 == 1", (r) => r.i32 % 3 === 1],
  ["i32 % 3 == -1", (r) => r.i32 % 3 === -1],
  ["i16 / 7 == -2", (r) => Math.trunc(r.i16 / 7) === -2],
  ["i8 ** 2 > 1000", (r) => r.i8 ** 2 > 1000],
  ["-i8 > 100", (r) => -r.i8 > 100],
  ["i8 + i16 > 0", (r) => r.i8 + r.i16 > 0],
  ["i8 < i16", (r) => r.i8 < r.i16],
  ["i32 * i32 > 900000000000", (r) => r.i32 * r.i32 > 900000000000],
  ["b", (r) => r.b],
  ["not b", (r) => !r.b],
  ["b == false and i8 > 0", (r) => !r.b && r.i8 > 0],
  ["!b || i8 < -100", (r) => !r.b || r.i8 < -100],
  ['s like "ab%"', (r) => r.s.startsWith("ab")],
  ['s like "%z"', (r) => r.s.endsWith("z")],
  ['s like "%b_c%"', (r) => /b.c/.test(r.s)],
  ['s like "%\\%%"', (r) => r.s.includes("%")],
  ['s like "_\\_%"', (r) => r.s.length >= 2 && r.s[1] === "_"],
  ['s in ["abc", "xyz", "q", "a"]', (r) => ["abc", "xyz", "q", "a"].includes(r.s)],
  ["s not in ['a', 'b']", (r) => !["a", "b"].includes(r.s)],
  ['s > "m"', (r) => r.s > "m"],
  ['"c" <= s < "y"', (r) => r.s >= "c" && r.s < "y"],
  ["ni > 5", (r) => nn(r.ni, (v) => v > 5)],
  ["ni != 5", (r) => nn(r.ni, (v) => v !== 5)],
  ["not (ni == 5)", (r) => not3(nn(r.ni, (v) => v === 5))],
  ["ni is null", (r) => r.ni === null],
  ["ni is not null and ni < 0", (r) => and3(r.ni !== null, nn(r.ni, (v) => v < 0))],
  ["ni in [1, 2, 3]", (r) => nn(r.ni, (v) => [1, 2, 3].includes(v))],
  ["ni not in [1, 2, 3]", (r) => not3(nn(r.ni, (v) => [1, 2, 3].includes(v)))],
  ["ni % 2 == 0", (r) => nn(r.ni, (v) => v % 2 === 0)],
  ['ns like "a%" or ni is null', (r) => or3(nn(r.ns, (v) => v.startsWith("a")), r.ni === null)],
  ["not (nb == true) or ni > 10", (r) => or3(not3(nn(r.nb, (v) => v)), nn(r.ni, (v) => v > 10))],
  ["nb", (r) => r.nb],
  ["not nb", (r) => not3(r.nb)],
  ['ns < "m"', (r) => nn(r.ns, (v) => v < "m")],
  ['j["n"] > 5', (r) => jcmp(">", r.j.n, 5)],
  ['j["n"] != 5', (r) => jcmp("!=", r.j.n, 5)],
  ['j["n"] == 2.5', (r) => jcmp("==", r.j.n, 2.5)],
  ['j["n"] == "5"', (r) => jcmp("==", r.j.n, "5")],
  ['j["n"] == true', (r) => jcmp("==", r.j.n, true)],
  ['j["n"] in [1, 2, "x"]', (r) => [1, 2, "x"].includes(r.j.n as never)],
  ['j["n"] is null', (r) => r.j.n === undefined || r.j.n === null],
  ['exists j["n"]', (r) => r.j.n !== undefined],
  ['1 <= j["n"] < 3', (r) => jcmp(">=", r.j.n, 1) && jcmp("<", r.j.n, 3)],
  ['j["s"] == "red"', (r) => jcmp("==", r.j.s, "red")],
  ['j["nested"]["k"] < 3', (r) => jcmp("<", jget(r.j, "nested", "k"), 3)],
  ['j["arr"][0] == 1', (r) => jcmp("==", jget(r.j, "arr", 0), 1)],
  ['j["flag"]', (r) => r.j.flag === true],
  ['j["n"] * 2 > 4', (r) => typeof r.j.n === "number" && r.j.n * 2 > 4],
  ['json_contains(j["arr"], 2)', (r) => jarr(r.j.arr)?.includes(2) ?? false],
  ['json_contains(j["arr"], "2")', (r) => jarr(r.j.arr)?.includes("2") ?? false],
  ['json_contains_all(j["arr"], [1, 2])', (r) => [1, 2].every((x) => jarr(r.j.arr)?.includes(x) ?? false)],
  ['json_contains_any(j["arr"], [3, 4])', (r) => [3, 4].some((x) => jarr(r.j.arr)?.includes(x) ?? false)],
  ['array_length(j["arr"]) == 2', (r) => jarr(r.j.arr)?.length === 2],
  ['nj["k"] is null', (r) => r.nj === null || r.nj.k === undefined || r.nj.k === null],
  ['nj["k"] == 1', (r) => nn(r.nj, (v) => v.k === 1)],
  ['nj["k"] != 1', (r) => nn(r.nj, (v) => v.k !== 1)],
  ["array_contains(ai, 5)", (r) => r.ai.includes(5n)],
  ['array_contains_all(as, ["a", "b"])', (r) => r.as.includes("a") && r.as.includes("b")],
  ["array_contains_any(ai, [1, 2, 3])", (r) => r.ai.some((x) => x >= 1n && x <= 3n)],
  ["array_length(ai) == 2", (r) => r.ai.length === 2],
  ["array_length(as) > 1 and ai[0] < 5", (r) => r.as.length > 1 && r.ai.length > 0 && r.ai[0]! < 5n],
  ["ai[1] != 3", (r) => r.ai.length > 1 && r.ai[1] !== 3n],
  ['as[0] == "a"', (r) => r.as[0] === "a"],
  ["ai == [1, 2]", (r) => r.ai.length === 2 && r.ai[0] === 1n && r.ai[1] === 2n],
  ["array_contains(na, 1)", (r) => nn(r.na, (v) => v.includes(1))],
  ["not array_contains(na, 1)", (r) => not3(nn(r.na, (v) => v.includes(1)))],
  ["na is null or na[0] == 0", (r) => or3(r.na === null, nn(r.na, (v) => v.length > 0 && v[0] === 0))],
  ['color == "red"', (r) => jcmp("==", r.meta.color, "red")],
  ['$meta["score"] >= 50', (r) => jcmp(">=", r.meta.score, 50)],
  ['color in ["red", "blue"] and not (score < 10)', (r) => ["red", "blue"].includes(r.meta.color as string) && !jcmp("<", r.meta.score, 10)],
  ["score != 42", (r) => jcmp("!=", r.meta.score, 42)],
  [`id in [${sampleIds.join(", ")}]`, (r) => sampleIds.includes(r.id)],
  ["id % 5 == 0 and id > 100", (r) => r.id % 5n === 0n && r.id > 100n],
  ["big > 4611686018427387904", (r) => r.big > TWO62],
  [`big == ${rows[10]!.big}`, (r) => r.big === rows[10]!.big],
  ["big - 1 >= 4611686018427387904", (r) => r.big - 1n >= TWO62],
  ["big in {vals}", (r) => bigVals.includes(r.big), { vals: bigVals }],
  ["(i8 > 0 or i16 > 0) and not (i32 > 0)", (r) => (r.i8 > 0 || r.i16 > 0) && !(r.i32 > 0)],
  ["i8 > 0 or i16 > 0 and i32 > 0", (r) => r.i8 > 0 || (r.i16 > 0 && r.i32 > 0)],
  ["not i8 > 0 and i16 > 0", (r) => !(r.i8 > 0) && r.i16 > 0],
  ["i8 > 0 AND i16 < 0 Or b", (r) => (r.i8 > 0 && r.i16 < 0) || r.b],
  ["i32 > {min} and id in {ids}", (r) => r.i32 > -500_000 && [1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n].includes(r.id), { min: -500_000, ids: [1, 2, 3, 4, 5, 6, 7, 8] }],
  ["s like {p} and f < {lim}", (r) => r.s.startsWith("a") && r.f < 1.5, { p: "a%", lim: 1.5 }],
  ["true", () => true],
  ["false or i8 == 5", (r) => r.i8 === 5],
];

function passing(mask: Uint8Array): number[] {
  const out: number[] = [];
  mask.forEach((x, i) => x === 1 && out.push(i));
  return out;
}

describe("filter expressions over a random table", () => {
  it("covers at least 40 filters", () => {
    expect(new Set(cases.map((c) => c[0])).size).toBeGreaterThanOrEqual(40);
  });

  it.each(cases.map(([expr, fn, params]) => ({ expr, fn, params })))("$expr", ({ expr, fn, params }) => {
    const plan = compileFilter(expr, schema, params);
    const mask = evaluateFilter(plan, columns, N);
    expect(mask).toBeInstanceOf(Uint8Array);
    expect(mask.length).toBe(N);
    const want = rows.flatMap((r, i) => (fn(r) === true ? [i] : []));
    expect(passing(mask)).toEqual(want);
    // the columns can come as a Map too, and a second run (cached JSON) agrees
    const byId = new Map(columns.map((c) => [c.fieldId, c]));
    expect(passing(evaluateFilter(plan, byId, N))).toEqual(want);
  });

  it("selects neither all nor none on most filters (the data exercises them)", () => {
    let mixed = 0;
    for (const [expr, , params] of cases) {
      const k = passing(evaluateFilter(compileFilter(expr, schema, params), columns, N)).length;
      if (k > 0 && k < N) mixed++;
    }
    expect(mixed).toBeGreaterThanOrEqual(cases.length - 3);
  });

  it("survives msgpack: the decoded plan is equal and evaluates the same", () => {
    for (const [expr, , params] of cases) {
      const plan = compileFilter(expr, schema, params);
      const wire = decode<FilterPlan>(encode(plan));
      expect(wire).toEqual(plan);
      expect(passing(evaluateFilter(wire, columns, N))).toEqual(passing(evaluateFilter(plan, columns, N)));
    }
  });

  it("names the fields a plan reads", () => {
    expect(filterFieldIds(compileFilter('i8 > 1 and (color == "red" or array_length(ai) > 2) and i8 < 9', schema))).toEqual(
      [idOf("i8"), idOf("ai"), idOf(DYNAMIC_FIELD_NAME)].sort((a, b) => a - b),
    );
    expect(filterFieldIds(compileFilter("i8 + i16 > ni", schema))).toEqual([idOf("i8"), idOf("i16"), idOf("ni")]);
    const only = compileFilter("s like 'a%'", schema);
    expect(passing(evaluateFilter(only, [columns.find((c) => c.fieldId === idOf("s"))!], N))).toEqual(
      rows.flatMap((r, i) => (r.s.startsWith("a") ? [i] : [])),
    );
  });
});

// ---- errors --------------------------------------------------------------------------------------

function refusal(fn: () => unknown): VbError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(VbError);
    return err as VbError;
  }
  throw new Error("expected a refusal");
}

const staticSchema = normalizeSchema({
  name: "books",
  fields: [
    { name: "id", type: "Int64", isPrimaryKey: true },
    { name: "title", type: "VarChar", maxLength: 32 },
    { name: "price", type: "Float" },
    { name: "vec", type: "FloatVector", dim: 2 },
  ],
});

describe("filter errors", () => {
  const cases: [string, RegExp, CollectionSchema?, Record<string, unknown>?][] = [
    ["i32 == ", /^invalid filter at 7: expected a value after "==", got the end of the filter$/],
    ["i32 == 3 and", /at 12: expected a value after "and"/],
    ["(i8 > 1", /at 7: expected "\)" to close the "\(" at 0/],
    ["i8 > 1)", /at 6: unmatched "\)"/],
    ["i8 > 1 i16", /at 7: unexpected "i16"/],
    ['s == "abc', /at 5: unterminated string/],
    ["i8 # 3", /at 3: unexpected character "#"/],
    ["i8 > 1 & 3", /at 7: bitwise operator "&" is not supported/],
    ["i8 > 09", /at 5: malformed octal number 09/],
    ["1 < i8 > 3", /at 0: a chained range needs both bounds in the same direction/],
    ["1 < i8 < 3 < 5", /at 11: at most two comparisons can be chained/],
    ["colour == 3", /at 0: unknown field "colour" \(the collection has no dynamic field\)/, staticSchema],
    ["title == 3", /at 0: cannot compare VarChar field "title" with 3$/, staticSchema],
    ["3 < title", /at 4: cannot compare VarChar field "title" with 3$/, staticSchema],
    ['price > "cheap"', /cannot compare Float field "price" with "cheap"/, staticSchema],
    ['i8 == "a"', /at 0: cannot compare Int8 field "i8" with "a"/],
    ["b > true", /cannot compare Bool field "b" with true: booleans support only == and !=/],
    ["b == 1", /cannot compare Bool field "b" with 1/],
    ['i32 like "a%"', /at 0: like needs a VarChar or JSON value, got Int32 field "i32"/],
    ["s like 3", /at 7: like needs a string pattern such as "abc%", got 3/],
    ["s + 1 > 2", /at 0: arithmetic needs numbers, got VarChar field "s"/],
    ["b * 2 == 2", /arithmetic needs numbers, got Bool field "b"/],
    ["i8 / 0 > 1", /at 5: division by zero/],
    ["foo(i8) > 1", /at 0: unknown function "foo"/],
    ["i8 in 3", /at 6: "in" needs a list of values such as \[1, 2\], got 3/],
    ["i8 not in i16", /at 10: "not in" needs a list of values.*got Int16 field "i16"/],
    ['s in ["a", 1]', /cannot compare VarChar field "s" with 1/],
    ["array_contains(ai)", /at 0: array_contains takes 2 arguments, got 1/],
    ["array_length(ai, as) > 1", /at 0: array_length takes 1 argument, got 2/],
    ['array_contains(ai, "x")', /Array field "ai" holds Int64 elements, not "x"/],
    ['json_contains_all(j["arr"], 3)', /json_contains_all needs a list as its second argument, got 3/],
    ["array_contains(i8, 3)", /array_contains needs an Array field or a JSON path as its first argument, got Int8 field "i8"/],
    ["array_length(ai)", /array_length\(\.\.\.\) is a number, not a condition/],
    ["vec > 1", /at 0: vector field "vec" cannot be used in a filter/],
    ["i8 > 1 and vec[0] > 1", /at 11: vector field "vec" cannot be used in a filter/],
    ["i8", /at 0: expected a condition, got Int8 field "i8"/],
    ["i8 + 1", /at 0: expected a condition, got an arithmetic expression/],
    ["ai == 3", /cannot compare Array field "ai" with 3: use array_contains\(ai, \.\.\.\) or an element such as ai\[0\]/],
    ["i8[0] == 1", /at 0: Int8 field "i8" cannot be indexed/],
    ['ai["k"] == 1', /Array field "ai" takes an integer index/],
    ["i8 > {missing}", /at 5: template parameter \{missing\} has no value/],
    ["i8 > {o}", /template parameter \{o\} must be a number, bigint, string, boolean or a list of them, got an object/, undefined, { o: {} }],
    ["1 is null", /at 0: is null applies to a field or a JSON path, got 1/],
    ["exists i8", /exists applies to a JSON path/],
    ["i8 == (i16 > 1)", /at 7: expected a value here, got a condition/],
    ["AND", /at 0: expected a value, got "and"/],
  ];
  it.each(cases.map(([expr, re, s, params]) => ({ expr, re, s, params })))("$expr", ({ expr, re, s, params }) => {
    const err = refusal(() => compileFilter(expr, s ?? schema, params));
    expect(err.code).toBe(1100);
    expect(err.message).toMatch(re);
    expect(err.message).toMatch(/^invalid filter at \d+: /);
  });

  it("refuses a filter that is not a string", () => {
    const err = refusal(() => compileFilter(42 as unknown as string, schema));
    expect(err.code).toBe(1100);
  });
});

// ---- precedence, ranges, empty filters -----------------------------------------------------------

describe("precedence and chained ranges", () => {
  const small = normalizeSchema({
    name: "s",
    fields: [
      { name: "id", type: "Int64", isPrimaryKey: true },
      { name: "a", type: "Int32" },
      { name: "v", type: "FloatVector", dim: 1 },
    ],
  });
  const aValues = [-3, 0, 1, 2, 3, 4, 5, 6, 10];
  const cols: Column[] = [{ fieldId: 101, data: Int32Array.from(aValues) }];
  const pass = (expr: string) => passing(evaluateFilter(compileFilter(expr, small), cols, aValues.length)).map((i) => aValues[i]);

  it("binds not tighter than and, and tighter than or", () => {
    expect(pass("a == 1 or a == 2 and a == 3")).toEqual([1]);
    expect(pass("(a == 1 or a == 2) and a == 2")).toEqual([2]);
    expect(pass("not a == 1 and a < 3")).toEqual([-3, 0, 2]);
    expect(pass("not (a == 1 or a < 3)")).toEqual([3, 4, 5, 6, 10]);
    expect(pass("a > 4 || a < 0 && a != -3")).toEqual([5, 6, 10]);
    expect(pass("!(a > 4) && !(a < 1)")).toEqual([1, 2, 3, 4]);
    expect(pass("a + 1 * 2 == 4")).toEqual([2]);
    expect(pass("(a + 1) * 2 == 4")).toEqual([1]);
    expect(pass("-2 ** 2 == a - 1")).toEqual([-3]);
    expect(pass("2 ** 3 ** 2 == 512 and a == 0")).toEqual([0]);
    const root = compileFilter("a == 1 or a == 2 and a == 3", small).root;
    expect(root.kind).toBe("or");
  });

  it("reads chained ranges in both directions", () => {
    expect(pass("1 < a < 5")).toEqual([2, 3, 4]);
    expect(pass("1 <= a <= 5")).toEqual([1, 2, 3, 4, 5]);
    expect(pass("1 <= a < 5")).toEqual([1, 2, 3, 4]);
    expect(pass("10 >= a > 2")).toEqual([3, 4, 5, 6, 10]);
    expect(pass("5 > a >= 0")).toEqual([0, 1, 2, 3, 4]);
    expect(pass("0.5 < a < 2.5")).toEqual([1, 2]);
    expect(pass("-1 < a * 2 < 5")).toEqual([0, 1, 2]);
    expect(compileFilter("1 < a < 5", small).root).toMatchObject({ kind: "range", lower: 1n, upper: 5n, lowerInclusive: false });
    expect(compileFilter("10 >= a > 2", small).root).toMatchObject({
      kind: "range",
      lower: 2n,
      lowerInclusive: false,
      upper: 10n,
      upperInclusive: true,
    });
  });

  it("treats an empty filter as no filter", () => {
    for (const e of ["", "   ", "\n\t"]) {
      const plan = compileFilter(e, small);
      expect(passesAll(plan)).toBe(true);
      expect(filterFieldIds(plan)).toEqual([]);
      expect(Array.from(evaluateFilter(plan, [], 3))).toEqual([1, 1, 1]);
    }
    expect(passesAll(compileFilter("a > 1", small))).toBe(false);
  });

  it("compares ints with fractions exactly and folds literal arithmetic", () => {
    expect(pass("a > 2.5")).toEqual([3, 4, 5, 6, 10]);
    expect(pass("a == 2.0")).toEqual([2]);
    expect(pass("a == 2.5")).toEqual([]);
    expect(pass("a / 2 == 2")).toEqual([4, 5]);
    expect(pass("a / 2.0 == 2.5")).toEqual([5]);
    expect(pass("a == 7 / 2")).toEqual([3]);
    expect(pass("a % 4 == -3")).toEqual([-3]);
    expect(pass("a == 0x0A or a == 0b11")).toEqual([3, 10]);
  });

  it("reads like patterns with escapes and literal characters", () => {
    const ls = normalizeSchema({
      name: "l",
      fields: [
        { name: "id", type: "Int64", isPrimaryKey: true },
        { name: "t", type: "VarChar", maxLength: 32 },
        { name: "v", type: "FloatVector", dim: 1 },
      ],
    });
    const texts = ["abc", "a.c", "50%", "a_c", "ab", "", "(x)", "日本語", "a\nc"];
    const c: Column[] = [{ fieldId: 101, data: texts }];
    const m = (p: string) => passing(evaluateFilter(compileFilter(`t like ${p}`, ls), c, texts.length)).map((i) => texts[i]);
    expect(m('"a_c"')).toEqual(["abc", "a.c", "a_c", "a\nc"]);
    expect(m('"a\\_c"')).toEqual(["a_c"]);
    expect(m('"a.c"')).toEqual(["a.c"]);
    expect(m('"%\\%"')).toEqual(["50%"]);
    expect(m('"%"')).toEqual(texts);
    expect(m('""')).toEqual([""]);
    expect(m('"(%)"')).toEqual(["(x)"]);
    expect(m('"日_語"')).toEqual(["日本語"]);
    expect(m("'a%c'")).toEqual(["abc", "a.c", "a_c", "a\nc"]);
    expect(m('r"a\\_c"')).toEqual(["a_c"]);
  });
});

// ---- Int64 beyond 2^53 ---------------------------------------------------------------------------

describe("Int64 beyond 2^53", () => {
  const bs = normalizeSchema({
    name: "b",
    fields: [
      { name: "id", type: "Int64", isPrimaryKey: true },
      { name: "x", type: "Int64" },
      { name: "v", type: "FloatVector", dim: 1 },
    ],
  });
  const P53 = 2n ** 53n;
  const MAX = 2n ** 63n - 1n;
  const MIN = -(2n ** 63n);
  const xs = [P53, P53 + 1n, P53 + 2n, MAX, MIN, 0n, -P53 - 1n];
  const cols: Column[] = [{ fieldId: 100, data: BigInt64Array.from(xs) }, { fieldId: 101, data: BigInt64Array.from(xs) }];
  const pass = (expr: string, params?: Record<string, unknown>) =>
    passing(evaluateFilter(compileFilter(expr, bs, params), cols, xs.length)).map((i) => xs[i]);

  it("compares exactly, with no rounding through doubles", () => {
    expect(pass("x == 9007199254740993")).toEqual([P53 + 1n]);
    expect(pass("x != 9007199254740993")).toEqual(xs.filter((x) => x !== P53 + 1n));
    expect(pass("x > 9007199254740992")).toEqual([P53 + 1n, P53 + 2n, MAX]);
    expect(pass("9007199254740992 < x < 9223372036854775807")).toEqual([P53 + 1n, P53 + 2n]);
    expect(pass("x in [9007199254740993, 9223372036854775807]")).toEqual([P53 + 1n, MAX]);
    expect(pass("x >= 9223372036854775807")).toEqual([MAX]);
    expect(pass("x == -9223372036854775808")).toEqual([MIN]);
    expect(pass("x < -9007199254740992")).toEqual([MIN, -P53 - 1n]);
    expect(pass("x > 9223372036854775808")).toEqual([]);
    expect(pass("id == 9007199254740994")).toEqual([P53 + 2n]);
  });

  it("compares with floats by value", () => {
    expect(pass("x == 9007199254740992.0")).toEqual([P53]);
    expect(pass("x > 9007199254740992.5")).toEqual([P53 + 1n, P53 + 2n, MAX]);
    expect(pass("x < 0.5 and x > -0.5")).toEqual([0n]);
  });

  it("does integer arithmetic in 64 bits", () => {
    expect(pass("x % 2 == 1")).toEqual([P53 + 1n, MAX]);
    expect(pass("x - 1 == 9007199254740992")).toEqual([P53 + 1n]);
    expect(pass("x / 3 == 3002399751580331")).toEqual([P53 + 1n, P53 + 2n]);
    expect(pass("x * 2 == 18014398509481986")).toEqual([P53 + 1n]);
  });

  it("takes bigint template parameters and survives msgpack", () => {
    const plan = compileFilter("x == {v} or x in {vs}", bs, { v: P53 + 1n, vs: [MAX, P53 + 2n] });
    const wire = decode<FilterPlan>(encode(plan));
    expect(wire).toEqual(plan);
    expect(passing(evaluateFilter(wire, cols, xs.length)).map((i) => xs[i])).toEqual([P53 + 1n, P53 + 2n, MAX]);
  });
});

// ---- the JSON cache ------------------------------------------------------------------------------

describe("parsed JSON cache", () => {
  it("parses a growing column only where it grew", () => {
    const js = normalizeSchema({
      name: "j",
      enableDynamicField: true,
      fields: [
        { name: "id", type: "Int64", isPrimaryKey: true },
        { name: "v", type: "FloatVector", dim: 1 },
      ],
    });
    const texts = ['{"k":1}', '{"k":2}'];
    const cols: Column[] = [{ fieldId: 102, data: texts }];
    const plan = compileFilter("k >= 2", js);
    expect(Array.from(evaluateFilter(plan, cols, 2))).toEqual([0, 1]);
    texts.push('{"k":3}', "not json", '{"k":0}');
    expect(Array.from(evaluateFilter(plan, cols, 5))).toEqual([0, 1, 1, 0, 0]);
    expect(Array.from(evaluateFilter(compileFilter("k is null", js), cols, 5))).toEqual([0, 0, 0, 1, 0]);
  });
});
