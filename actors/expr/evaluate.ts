/**
 * Evaluates a plan over a segment's columns, column by column: each predicate fills one byte per row
 * in a tight loop over the column's typed array, and `and` / `or` / `not` combine those bytes.
 *
 * Logic is three-valued, as in Milvus (and SQL): a byte is 0 false, 1 unknown, 2 true. A null value
 * makes a comparison unknown; `not` keeps unknown unknown; `and` is the minimum and `or` the maximum;
 * a row passes only when the whole filter is true. So `x != 3` and `not (x == 3)` both drop null rows,
 * while `x is null` and `x is not null` are never unknown.
 */
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import type { Column } from "../../protocol/schema.ts";
import { jsonPathValues } from "./json_cache.ts";
import { likeMatcher } from "./like.ts";
import { compareDynamic, compareNumeric, exactBigInt, exactNumber, sameValue, valueKey } from "./literals.ts";
import {
  PLAN_VERSION,
  type ArithValue,
  type ArrayValue,
  type CompareOp,
  type FilterPlan,
  type JsonValue,
  type Literal,
  type Predicate,
  type Value,
} from "./plan.ts";

const FALSE = 0;
const UNKNOWN = 1;
const TRUE = 2;

type NumArray = Int8Array | Int16Array | Int32Array | Float32Array | Float64Array | Uint8Array;

/**
 * A value per row. `valid` 0 marks a null row (the comparison is unknown); `absent` 1 marks a row with
 * no value to compare (an array index past the end, integer division by zero): every comparison false.
 * `any` holds dynamic values (JSON, whole arrays) where undefined means "no value".
 */
type Vec = { valid?: Uint8Array | undefined; absent?: Uint8Array | undefined } & (
  | { kind: "num"; data: NumArray }
  | { kind: "big"; data: BigInt64Array }
  | { kind: "str"; data: string[] }
  | { kind: "bool"; data: Uint8Array }
  | { kind: "any"; data: unknown[] }
);

interface Ctx {
  columns: Map<number, Column>;
  n: number;
}

/** One byte per row, 1 where the row passes the filter. */
export function evaluateFilter(plan: FilterPlan, columns: Map<number, Column> | Column[], numRows: number): Uint8Array {
  if (plan?.version !== PLAN_VERSION) {
    throw new VbError(ErrorCode.ParameterInvalid, `filter plan version ${String(plan?.version)} is not supported (expected ${PLAN_VERSION})`);
  }
  const byId = columns instanceof Map ? columns : new Map(columns.map((c) => [c.fieldId, c]));
  const tri = predicate(plan.root, { columns: byId, n: numRows });
  // 2 (true) → 1; 1 (unknown) and 0 (false) → 0
  for (let i = 0; i < numRows; i++) tri[i] = tri[i]! >> 1;
  return tri;
}

// ---- predicates ---------------------------------------------------------------------------------

function predicate(p: Predicate, ctx: Ctx): Uint8Array {
  switch (p.kind) {
    case "const":
      return new Uint8Array(ctx.n).fill(p.value ? TRUE : FALSE);
    case "and":
    case "or":
      return logical(p.kind, p.args, ctx);
    case "not": {
      const r = predicate(p.arg, ctx);
      for (let i = 0; i < ctx.n; i++) r[i] = TRUE - r[i]!;
      return r;
    }
    case "compare":
      return compare(p.op, p.left, p.right, ctx);
    case "range":
      return range(p, ctx);
    case "in":
      return inList(value(p.value, ctx), p.values, ctx.n);
    case "like":
      return like(value(p.value, ctx), p.pattern, ctx.n);
    case "isNull":
      return isNull(p.value, ctx);
    case "exists":
      return exists(p.value, ctx);
    case "contains":
      return contains(p, ctx);
  }
}

function logical(kind: "and" | "or", args: Predicate[], ctx: Ctx): Uint8Array {
  const n = ctx.n;
  const acc = predicate(args[0]!, ctx);
  // and: the minimum, stopping once every row is false; or: the maximum, stopping once every row is true
  const settled = kind === "and" ? FALSE : TRUE;
  for (let a = 1; a < args.length; a++) {
    let open = false;
    for (let i = 0; i < n; i++) {
      if (acc[i] !== settled) {
        open = true;
        break;
      }
    }
    if (!open) break;
    const r = predicate(args[a]!, ctx);
    if (kind === "and") {
      for (let i = 0; i < n; i++) if (r[i]! < acc[i]!) acc[i] = r[i]!;
    } else {
      for (let i = 0; i < n; i++) if (r[i]! > acc[i]!) acc[i] = r[i]!;
    }
  }
  return acc;
}

/** Rows without a value are false, then null rows unknown. */
function applyMasks(out: Uint8Array, v: Vec, n: number): Uint8Array {
  const absent = v.absent;
  if (absent) for (let i = 0; i < n; i++) if (absent[i]) out[i] = FALSE;
  const valid = v.valid;
  if (valid) for (let i = 0; i < n; i++) if (!valid[i]) out[i] = UNKNOWN;
  return out;
}

function compare(op: CompareOp, left: Value, right: Value, ctx: Ctx): Uint8Array {
  const l = value(left, ctx);
  if (right.kind === "literal") return applyMasks(compareLiteral(op, l, right.value, ctx.n), l, ctx.n);
  const r = value(right, ctx);
  const n = ctx.n;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const a = at(l, i);
    const b = at(r, i);
    if (l.kind === "any" || r.kind === "any") out[i] = compareDynamic(op, a, b) ? TRUE : FALSE;
    else out[i] = compareTyped(op, a, b) ? TRUE : FALSE;
  }
  applyMasks(out, r, n);
  return applyMasks(out, l, n);
}

/** Two typed values (numbers/bigints, strings, booleans) of comparable types. */
function compareTyped(op: CompareOp, a: unknown, b: unknown): boolean {
  if (typeof a === "string" && typeof b === "string") return compareDynamic(op, a, b);
  if (typeof a === "boolean") return op === "==" ? a === b : a !== b;
  return compareNumeric(op, a as number | bigint, b as number | bigint);
}

function at(v: Vec, i: number): unknown {
  if (v.kind === "bool") return v.data[i] === 1;
  return v.data[i];
}

function compareLiteral(op: CompareOp, v: Vec, lit: Literal, n: number): Uint8Array {
  const out = new Uint8Array(n);
  switch (v.kind) {
    case "num": {
      const c = typeof lit === "bigint" ? exactNumber(lit) : (lit as number);
      if (c !== undefined) compareNum(op, v.data, c, out, n);
      else for (let i = 0; i < n; i++) out[i] = compareNumeric(op, v.data[i]!, lit as bigint) ? TRUE : FALSE;
      return out;
    }
    case "big": {
      const c = typeof lit === "bigint" ? lit : exactBigInt(lit as number);
      if (c !== undefined) compareBig(op, v.data, c, out, n);
      else for (let i = 0; i < n; i++) out[i] = compareNumeric(op, v.data[i]!, lit as number) ? TRUE : FALSE;
      return out;
    }
    case "str":
      compareStr(op, v.data, lit as string, out, n);
      return out;
    case "bool": {
      const want = (lit as boolean) === (op === "==") ? 1 : 0;
      const d = v.data;
      for (let i = 0; i < n; i++) out[i] = d[i] === want ? TRUE : FALSE;
      return out;
    }
    case "any": {
      const d = v.data;
      for (let i = 0; i < n; i++) out[i] = compareDynamic(op, d[i], lit) ? TRUE : FALSE;
      return out;
    }
  }
}

function compareNum(op: CompareOp, d: NumArray, c: number, out: Uint8Array, n: number): void {
  switch (op) {
    case "==":
      for (let i = 0; i < n; i++) out[i] = d[i] === c ? TRUE : FALSE;
      return;
    case "!=":
      for (let i = 0; i < n; i++) out[i] = d[i] !== c ? TRUE : FALSE;
      return;
    case "<":
      for (let i = 0; i < n; i++) out[i] = d[i]! < c ? TRUE : FALSE;
      return;
    case "<=":
      for (let i = 0; i < n; i++) out[i] = d[i]! <= c ? TRUE : FALSE;
      return;
    case ">":
      for (let i = 0; i < n; i++) out[i] = d[i]! > c ? TRUE : FALSE;
      return;
    case ">=":
      for (let i = 0; i < n; i++) out[i] = d[i]! >= c ? TRUE : FALSE;
      return;
  }
}

function compareBig(op: CompareOp, d: BigInt64Array, c: bigint, out: Uint8Array, n: number): void {
  switch (op) {
    case "==":
      for (let i = 0; i < n; i++) out[i] = d[i] === c ? TRUE : FALSE;
      return;
    case "!=":
      for (let i = 0; i < n; i++) out[i] = d[i] !== c ? TRUE : FALSE;
      return;
    case "<":
      for (let i = 0; i < n; i++) out[i] = d[i]! < c ? TRUE : FALSE;
      return;
    case "<=":
      for (let i = 0; i < n; i++) out[i] = d[i]! <= c ? TRUE : FALSE;
      return;
    case ">":
      for (let i = 0; i < n; i++) out[i] = d[i]! > c ? TRUE : FALSE;
      return;
    case ">=":
      for (let i = 0; i < n; i++) out[i] = d[i]! >= c ? TRUE : FALSE;
      return;
  }
}

function compareStr(op: CompareOp, d: string[], c: string, out: Uint8Array, n: number): void {
  switch (op) {
    case "==":
      for (let i = 0; i < n; i++) out[i] = d[i] === c ? TRUE : FALSE;
      return;
    case "!=":
      for (let i = 0; i < n; i++) out[i] = d[i] !== c ? TRUE : FALSE;
      return;
    case "<":
      for (let i = 0; i < n; i++) out[i] = d[i]! < c ? TRUE : FALSE;
      return;
    case "<=":
      for (let i = 0; i < n; i++) out[i] = d[i]! <= c ? TRUE : FALSE;
      return;
    case ">":
      for (let i = 0; i < n; i++) out[i] = d[i]! > c ? TRUE : FALSE;
      return;
    case ">=":
      for (let i = 0; i < n; i++) out[i] = d[i]! >= c ? TRUE : FALSE;
      return;
  }
}

function range(p: Extract<Predicate, { kind: "range" }>, ctx: Ctx): Uint8Array {
  const v = value(p.value, ctx);
  const n = ctx.n;
  const out = new Uint8Array(n);
  const { lowerInclusive: li, upperInclusive: ui } = p;
  const loOp: CompareOp = li ? ">=" : ">";
  const hiOp: CompareOp = ui ? "<=" : "<";
  const asNum = (b: bigint | number | string) => (typeof b === "bigint" ? exactNumber(b) : typeof b === "number" ? b : undefined);
  const asBig = (b: bigint | number | string) => (typeof b === "bigint" ? b : typeof b === "number" ? exactBigInt(b) : undefined);
  if (v.kind === "num" && asNum(p.lower) !== undefined && asNum(p.upper) !== undefined) {
    const lo = asNum(p.lower)!;
    const hi = asNum(p.upper)!;
    const d = v.data;
    for (let i = 0; i < n; i++) {
      const x = d[i]!;
      out[i] = (li ? x >= lo : x > lo) && (ui ? x <= hi : x < hi) ? TRUE : FALSE;
    }
  } else if (v.kind === "big" && asBig(p.lower) !== undefined && asBig(p.upper) !== undefined) {
    const lo = asBig(p.lower)!;
    const hi = asBig(p.upper)!;
    const d = v.data;
    for (let i = 0; i < n; i++) {
      const x = d[i]!;
      out[i] = (li ? x >= lo : x > lo) && (ui ? x <= hi : x < hi) ? TRUE : FALSE;
    }
  } else if (v.kind === "str" && typeof p.lower === "string" && typeof p.upper === "string") {
    const lo = p.lower;
    const hi = p.upper;
    const d = v.data;
    for (let i = 0; i < n; i++) {
      const x = d[i]!;
      out[i] = (li ? x >= lo : x > lo) && (ui ? x <= hi : x < hi) ? TRUE : FALSE;
    }
  } else {
    // mixed bigint / fractional bounds, JSON values: exact one-by-one comparisons
    const lo = p.lower;
    const hi = p.upper;
    for (let i = 0; i < n; i++) {
      const x = at(v, i);
      out[i] = compareDynamic(loOp, x, lo) && compareDynamic(hiOp, x, hi) ? TRUE : FALSE;
    }
  }
  return applyMasks(out, v, n);
}

function inList(v: Vec, values: Literal[], n: number): Uint8Array {
  const out = new Uint8Array(n);
  switch (v.kind) {
    case "num": {
      const set = new Set<number>();
      for (const x of values) {
        const c = typeof x === "bigint" ? exactNumber(x) : typeof x === "number" ? x : undefined;
        if (c !== undefined) set.add(c);
      }
      const d = v.data;
      for (let i = 0; i < n; i++) out[i] = set.has(d[i]!) ? TRUE : FALSE;
      break;
    }
    case "big": {
      const set = new Set<bigint>();
      for (const x of values) {
        const c = typeof x === "bigint" ? x : typeof x === "number" ? exactBigInt(x) : undefined;
        if (c !== undefined) set.add(c);
      }
      const d = v.data;
      for (let i = 0; i < n; i++) out[i] = set.has(d[i]!) ? TRUE : FALSE;
      break;
    }
    case "str": {
      const set = new Set<string>(values.filter((x): x is string => typeof x === "string"));
      const d = v.data;
      for (let i = 0; i < n; i++) out[i] = set.has(d[i]!) ? TRUE : FALSE;
      break;
    }
    case "bool": {
      const hasTrue = values.includes(true);
      const hasFalse = values.includes(false);
      const d = v.data;
      for (let i = 0; i < n; i++) out[i] = (d[i] ? hasTrue : hasFalse) ? TRUE : FALSE;
      break;
    }
    case "any": {
      const keys = new Set<string>();
      for (const x of values) {
        const k = valueKey(x);
        if (k !== undefined) keys.add(k);
      }
      const d = v.data;
      for (let i = 0; i < n; i++) {
        const k = valueKey(d[i]);
        out[i] = k !== undefined && keys.has(k) ? TRUE : FALSE;
      }
      break;
    }
  }
  return applyMasks(out, v, n);
}

function like(v: Vec, pattern: string, n: number): Uint8Array {
  const match = likeMatcher(pattern);
  const out = new Uint8Array(n);
  const d = v.data as unknown[];
  for (let i = 0; i < n; i++) {
    const s = d[i];
    out[i] = typeof s === "string" && match(s) ? TRUE : FALSE;
  }
  return applyMasks(out, v, n);
}

function isNull(target: Value, ctx: Ctx): Uint8Array {
  const n = ctx.n;
  const col = column(ctx, target as ArrayValue);
  const valid = col.valid;
  const out = new Uint8Array(n);
  if (target.kind === "json") {
    const values = jsonPathValues(col.data as string[], target.path, n);
    for (let i = 0; i < n; i++) {
      const x = values[i];
      out[i] = (valid && !valid[i]) || x === undefined || x === null ? TRUE : FALSE;
    }
  } else if (valid) {
    for (let i = 0; i < n; i++) out[i] = valid[i] ? FALSE : TRUE;
  }
  return out;
}

function exists(target: JsonValue, ctx: Ctx): Uint8Array {
  const n = ctx.n;
  const col = column(ctx, target);
  const valid = col.valid;
  const values = jsonPathValues(col.data as string[], target.path, n);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (!valid || valid[i]) && values[i] !== undefined ? TRUE : FALSE;
  return out;
}

function contains(p: Extract<Predicate, { kind: "contains" }>, ctx: Ctx): Uint8Array {
  const n = ctx.n;
  const v = value(p.value, ctx);
  const rows = v.data as unknown[];
  const out = new Uint8Array(n);
  const keys: string[] = [];
  for (const x of p.values) {
    const k = valueKey(x);
    if (k !== undefined && !keys.includes(k)) keys.push(k);
  }
  const wanted = new Set(keys);
  const mode = p.mode;
  for (let i = 0; i < n; i++) {
    const row = rows[i];
    if (!Array.isArray(row)) continue;
    if (mode === "one") {
      const w = p.values[0];
      let hit = false;
      for (const el of row) {
        if (sameValue(el, w)) {
          hit = true;
          break;
        }
      }
      out[i] = hit ? TRUE : FALSE;
    } else if (mode === "any") {
      let hit = false;
      for (const el of row) {
        const k = valueKey(el);
        if (k !== undefined && wanted.has(k)) {
          hit = true;
          break;
        }
      }
      out[i] = hit ? TRUE : FALSE;
    } else {
      const seen = new Set<string>();
      for (const el of row) {
        const k = valueKey(el);
        if (k !== undefined && wanted.has(k)) seen.add(k);
      }
      out[i] = seen.size === wanted.size ? TRUE : FALSE;
    }
  }
  return applyMasks(out, v, n);
}

// ---- values -------------------------------------------------------------------------------------

function column(ctx: Ctx, v: { fieldId: number; name: string }): Column {
  const c = ctx.columns.get(v.fieldId);
  if (!c) {
    throw new VbError(
      ErrorCode.ServiceInternal,
      `the filter reads field "${v.name}" (id ${v.fieldId}) but no column was given for it: load the columns filterFieldIds(plan) names`,
    );
  }
  return c;
}

const floatRowsCache = new WeakMap<unknown[][], unknown[][]>();

/** Array(Float) rows with their elements as float32 values, as the field stores them. */
function floatRows(rows: unknown[][]): unknown[][] {
  let out = floatRowsCache.get(rows);
  if (!out || out.length < rows.length) {
    out = rows.map((r) => (Array.isArray(r) ? r.map((x) => (typeof x === "number" ? Math.fround(x) : x)) : r));
    floatRowsCache.set(rows, out);
  }
  return out;
}

function value(v: Value, ctx: Ctx): Vec {
  switch (v.kind) {
    case "field": {
      const c = column(ctx, v);
      const valid = c.valid;
      switch (v.type) {
        case "Bool":
          return { kind: "bool", data: c.data as Uint8Array, valid };
        case "Int64":
          return { kind: "big", data: c.data as BigInt64Array, valid };
        case "VarChar":
          return { kind: "str", data: c.data as string[], valid };
        default:
          return { kind: "num", data: c.data as NumArray, valid };
      }
    }
    case "json": {
      const c = column(ctx, v);
      return { kind: "any", data: jsonPathValues(c.data as string[], v.path, ctx.n), valid: c.valid };
    }
    case "array": {
      const c = column(ctx, v);
      const rows = c.data as unknown[][];
      return { kind: "any", data: v.elementType === "Float" ? floatRows(rows) : rows, valid: c.valid };
    }
    case "element":
      return element(v, ctx);
    case "length":
      return length(v.of, ctx);
    case "arith":
      return arith(v, ctx);
    case "literal": {
      // only reached for a literal on both sides, which the compiler folds; kept total for safety
      return { kind: "any", data: new Array<unknown>(ctx.n).fill(v.value) };
    }
  }
}

function element(v: Extract<Value, { kind: "element" }>, ctx: Ctx): Vec {
  const c = column(ctx, v);
  const rows = c.data as unknown[][];
  const n = ctx.n;
  const idx = v.index;
  const absent = new Uint8Array(n);
  const get = (i: number): unknown => {
    const r = rows[i];
    if (!Array.isArray(r) || idx >= r.length) {
      absent[i] = 1;
      return undefined;
    }
    return r[idx];
  };
  switch (v.elementType) {
    case "Int64": {
      const data = new BigInt64Array(n);
      for (let i = 0; i < n; i++) {
        const x = get(i);
        if (typeof x === "bigint") data[i] = x;
        else if (typeof x === "number") data[i] = BigInt(x);
      }
      return { kind: "big", data, absent, valid: c.valid };
    }
    case "VarChar": {
      const data = new Array<string>(n);
      for (let i = 0; i < n; i++) {
        const x = get(i);
        data[i] = typeof x === "string" ? x : "";
      }
      return { kind: "str", data, absent, valid: c.valid };
    }
    case "Bool": {
      const data = new Uint8Array(n);
      for (let i = 0; i < n; i++) data[i] = get(i) === true ? 1 : 0;
      return { kind: "bool", data, absent, valid: c.valid };
    }
    default: {
      const data = v.elementType === "Float" ? new Float32Array(n) : new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const x = get(i);
        data[i] = typeof x === "number" ? x : typeof x === "bigint" ? Number(x) : 0;
      }
      return { kind: "num", data, absent, valid: c.valid };
    }
  }
}

function length(of: ArrayValue | JsonValue, ctx: Ctx): Vec {
  const c = column(ctx, of);
  const n = ctx.n;
  const rows = of.kind === "json" ? jsonPathValues(c.data as string[], of.path, n) : (c.data as unknown[]);
  const data = new Float64Array(n);
  let absent: Uint8Array | undefined;
  for (let i = 0; i < n; i++) {
    const r = rows[i];
    if (Array.isArray(r)) data[i] = r.length;
    else (absent ??= new Uint8Array(n))[i] = 1;
  }
  return { kind: "num", data, absent, valid: c.valid };
}

/** Combined masks of two operands. */
function mergeMasks(a: Vec | undefined, b: Vec | undefined, n: number): { valid?: Uint8Array; absent?: Uint8Array } {
  const out: { valid?: Uint8Array; absent?: Uint8Array } = {};
  for (const v of [a, b]) {
    if (!v) continue;
    if (v.valid) {
      if (!out.valid) out.valid = Uint8Array.from(v.valid.subarray(0, n));
      else for (let i = 0; i < n; i++) out.valid[i]! &= v.valid[i]!;
    }
    if (v.absent) {
      if (!out.absent) out.absent = Uint8Array.from(v.absent.subarray(0, n));
      else for (let i = 0; i < n; i++) out.absent[i]! |= v.absent[i]!;
    }
  }
  return out;
}

function arith(node: ArithValue, ctx: Ctx): Vec {
  const n = ctx.n;
  const lv = node.left.kind === "literal" ? undefined : value(node.left, ctx);
  const rv = node.right.kind === "literal" ? undefined : value(node.right, ctx);
  const masks = mergeMasks(lv, rv, n);
  if (node.mode === "int64") {
    const a = bigOperand(node.left, lv, n);
    const b = bigOperand(node.right, rv, n);
    const out = new BigInt64Array(n);
    const absent = masks.absent ?? new Uint8Array(n);
    const op = node.op;
    for (let i = 0; i < n; i++) {
      const x = a(i);
      const y = b(i);
      if ((op === "/" || op === "%") && y === 0n) {
        absent[i] = 1;
        continue;
      }
      const r = op === "+" ? x + y : op === "-" ? x - y : op === "*" ? x * y : op === "/" ? x / y : x % y;
      out[i] = BigInt.asIntN(64, r);
    }
    return { kind: "big", data: out, valid: masks.valid, absent };
  }
  const a = numOperand(node.left, lv, n);
  const b = numOperand(node.right, rv, n);
  const absent = masks.absent ?? new Uint8Array(n);
  if (a.absent) for (let i = 0; i < n; i++) absent[i]! |= a.absent[i]!;
  if (b.absent) for (let i = 0; i < n; i++) absent[i]! |= b.absent[i]!;
  const out = node.mode === "float32" ? new Float32Array(n) : new Float64Array(n);
  const int = node.mode === "int53";
  const x = a.data;
  const y = b.data;
  switch (node.op) {
    case "+":
      for (let i = 0; i < n; i++) out[i] = x[i]! + y[i]!;
      break;
    case "-":
      for (let i = 0; i < n; i++) out[i] = x[i]! - y[i]!;
      break;
    case "*":
      for (let i = 0; i < n; i++) out[i] = x[i]! * y[i]!;
      break;
    case "/":
      if (int) {
        for (let i = 0; i < n; i++) {
          if (y[i] === 0) absent[i] = 1;
          else out[i] = Math.trunc(x[i]! / y[i]!);
        }
      } else for (let i = 0; i < n; i++) out[i] = x[i]! / y[i]!;
      break;
    case "%":
      if (int) {
        for (let i = 0; i < n; i++) {
          if (y[i] === 0) absent[i] = 1;
          else out[i] = x[i]! % y[i]!;
        }
      } else for (let i = 0; i < n; i++) out[i] = x[i]! % y[i]!;
      break;
    case "**":
      for (let i = 0; i < n; i++) out[i] = x[i]! ** y[i]!;
      break;
  }
  return { kind: "num", data: out, valid: masks.valid, absent };
}

function bigOperand(node: Value, v: Vec | undefined, n: number): (i: number) => bigint {
  if (!v) {
    const c = (node as { value: Literal }).value;
    const b = typeof c === "bigint" ? c : BigInt(c as number);
    return () => b;
  }
  if (v.kind === "big") {
    const d = v.data;
    return (i) => d[i]!;
  }
  if (v.kind === "num") {
    const d = v.data;
    return (i) => BigInt(d[i]!);
  }
  throw new VbError(ErrorCode.ServiceInternal, `int64 arithmetic over a ${v.kind} value (n=${n})`);
}

/** An operand as doubles (float32 values stay exact in doubles); non-numbers (JSON) are absent. */
function numOperand(node: Value, v: Vec | undefined, n: number): { data: ArrayLike<number>; absent?: Uint8Array } {
  if (!v) {
    const c = Number((node as { value: Literal }).value);
    return { data: new Float64Array(n).fill(c) };
  }
  switch (v.kind) {
    case "num":
      return { data: v.data };
    case "big":
      return { data: Float64Array.from(v.data.subarray(0, n), Number) };
    case "any": {
      const data = new Float64Array(n);
      const absent = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        const x = v.data[i];
        if (typeof x === "number") data[i] = x;
        else if (typeof x === "bigint") data[i] = Number(x);
        else absent[i] = 1;
      }
      return { data, absent };
    }
    default:
      throw new VbError(ErrorCode.ServiceInternal, `arithmetic over a ${v.kind} value`);
  }
}
