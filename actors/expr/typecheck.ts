/**
 * From parse tree to plan: names resolved against the schema (an unknown name is a key of `$meta`
 * when the collection has a dynamic field), template parameters substituted, types checked, literal
 * arithmetic folded. Every refusal is a 1100 naming the offset and the field or value at fault.
 */
import { DYNAMIC_FIELD_NAME, type CollectionSchema, type FieldSchema } from "../../protocol/schema.ts";
import { filterError } from "./errors.ts";
import { compareDynamic, formatLiteral, literalKind, literalOf } from "./literals.ts";
import {
  PLAN_VERSION,
  type ArithValue,
  type ArrayValue,
  type FilterPlan,
  type JsonValue,
  type Literal,
  type LiteralValue,
  type Predicate,
  type ScalarType,
  type Value,
} from "./plan.ts";
import type { ArithOp, CompareOp, Syntax } from "./syntax.ts";

type Kind = "int" | "float" | "string" | "bool" | "json" | "array" | "list";

/** A value with what the checker knows of it. */
interface Typed {
  value: Value;
  kind: Kind;
  /** holds float32 values (a Float field or element, float32 arithmetic): literals it meets are rounded */
  f32: boolean;
  /** holds float64 values (Double, JSON numbers, float64 arithmetic) */
  f64: boolean;
  /** integers only: the smallest and largest value it can take */
  range?: [bigint, bigint];
  /** how messages name it: `VarChar field "title"`, `3` */
  desc: string;
  pos: number;
}

const SCALAR_TYPES = new Set<string>(["Bool", "Int8", "Int16", "Int32", "Int64", "Float", "Double", "VarChar"]);
const INT_RANGES: Record<string, [bigint, bigint]> = {
  Int8: [-128n, 127n],
  Int16: [-32_768n, 32_767n],
  Int32: [-2_147_483_648n, 2_147_483_647n],
  Int64: [-(2n ** 63n), 2n ** 63n - 1n],
};
/** int53 arithmetic keeps operands and results within ±2^52, where double `/` then trunc is exact */
const INT53_LIMIT = 2n ** 52n;
const FLIP: Record<CompareOp, CompareOp> = { "==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<=" };
const FUNCTIONS = [
  "json_contains",
  "json_contains_all",
  "json_contains_any",
  "array_contains",
  "array_contains_all",
  "array_contains_any",
  "array_length",
];

function kindOfType(t: ScalarType): Kind {
  switch (t) {
    case "Bool":
      return "bool";
    case "VarChar":
      return "string";
    case "Float":
    case "Double":
      return "float";
    default:
      return "int";
  }
}

function pathText(name: string, path: (string | number)[]): string {
  return name + path.map((k) => `[${typeof k === "string" ? JSON.stringify(k) : k}]`).join("");
}

export class Checker {
  private readonly byName = new Map<string, FieldSchema>();
  private readonly dynamic: FieldSchema | undefined;

  constructor(
    private readonly schema: CollectionSchema,
    private readonly params: Record<string, unknown> | undefined,
  ) {
    for (const f of schema.fields) this.byName.set(f.name, f);
    this.dynamic = schema.enableDynamicField
      ? schema.fields.find((f) => f.isDynamic || f.name === DYNAMIC_FIELD_NAME)
      : undefined;
  }

  plan(root: Syntax): FilterPlan {
    return { version: PLAN_VERSION, root: this.predicate(root) };
  }

  // ---- predicates -------------------------------------------------------------------------------

  predicate(s: Syntax): Predicate {
    switch (s.t) {
      case "and":
      case "or":
        return this.logical(s.t, this.predicate(s.left), this.predicate(s.right));
      case "not":
        return negate(this.predicate(s.arg));
      case "compare":
        return this.compare(s);
      case "in":
        return this.inList(s.value, s.list, s.negated);
      case "like":
        return this.like(s.value, s.pattern, s.pos);
      case "isNull":
        return this.isNull(s.value, s.negated);
      case "exists": {
        const v = this.value(s.value);
        if (v.value.kind !== "json") throw filterError(s.pos, `exists applies to a JSON path such as meta["key"], got ${v.desc}`);
        return { kind: "exists", value: v.value };
      }
      case "call":
        return this.callPredicate(s);
      default: {
        const v = this.value(s);
        if (v.value.kind === "literal" && typeof v.value.value === "boolean") return { kind: "const", value: v.value.value };
        if (v.kind === "bool" || v.kind === "json") {
          return { kind: "compare", op: "==", left: v.value, right: { kind: "literal", value: true } };
        }
        throw filterError(s.pos, `expected a condition, got ${v.desc}: compare it (==, <, in, like ...)`);
      }
    }
  }

  private logical(kind: "and" | "or", a: Predicate, b: Predicate): Predicate {
    // false dominates `and`, true dominates `or`, in three-valued logic too
    const absorbing = kind === "or";
    for (const [x, y] of [
      [a, b],
      [b, a],
    ] as const) {
      if (x.kind === "const") return x.value === absorbing ? x : y;
    }
    const args: Predicate[] = [];
    for (const p of [a, b]) {
      if (p.kind === kind) args.push(...p.args);
      else args.push(p);
    }
    return { kind, args };
  }

  private compare(s: Extract<Syntax, { t: "compare" }>): Predicate {
    const operands = s.operands.map((o) => this.value(o));
    if (s.ops.length === 1) return this.compareValues(s.ops[0]!, operands[0]!, operands[1]!);
    const [a, m, b] = operands as [Typed, Typed, Typed];
    const [op1, op2] = s.ops as [CompareOp, CompareOp];
    if (m.value.kind === "literal" || a.value.kind !== "literal" || b.value.kind !== "literal") {
      return this.logical("and", this.compareValues(op1, a, m), this.compareValues(op2, m, b));
    }
    for (const bound of [a, b]) this.checkComparable("<", m, bound);
    const ascending = op1 === "<" || op1 === "<=";
    const [lo, loOp, hi, hiOp] = ascending ? [a, op1, b, op2] : [b, op2, a, op1];
    const lower = this.coerce((lo.value as LiteralValue).value, m) as bigint | number | string;
    const upper = this.coerce((hi.value as LiteralValue).value, m) as bigint | number | string;
    return {
      kind: "range",
      value: m.value,
      lower,
      lowerInclusive: loOp.endsWith("="),
      upper,
      upperInclusive: hiOp.endsWith("="),
    };
  }

  private compareValues(op: CompareOp, left: Typed, right: Typed): Predicate {
    if (left.value.kind === "literal" && right.value.kind !== "literal") [left, right, op] = [right, left, FLIP[op]];
    this.checkComparable(op, left, right);
    if (left.value.kind === "literal" && right.value.kind === "literal") {
      return { kind: "const", value: compareDynamic(op, left.value.value, right.value.value) };
    }
    if (right.value.kind === "literal") {
      return { kind: "compare", op, left: left.value, right: { kind: "literal", value: this.coerce(right.value.value, left) } };
    }
    return { kind: "compare", op, left: left.value, right: right.value };
  }

  private checkComparable(op: CompareOp, a: Typed, b: Typed): void {
    const equality = op === "==" || op === "!=";
    const fail = (why = ""): never => {
      throw filterError(a.pos, `cannot compare ${a.desc} with ${b.desc}${why}`);
    };
    const numeric = (k: Kind) => k === "int" || k === "float";
    const [x, y] = [a.kind, b.kind];
    if (numeric(x) && numeric(y)) return;
    if (x === "string" && y === "string") return;
    if (x === "bool" && y === "bool") {
      if (!equality) fail(`: booleans support only == and !=`);
      return;
    }
    if (x === "json" || y === "json") {
      const other = x === "json" ? y : x;
      if (other === "array") fail();
      if ((other === "bool" || other === "list") && !equality) fail(`: ${op} needs numbers or strings`);
      return;
    }
    if ((x === "array" && y === "list") || (x === "list" && y === "array")) {
      if (!equality) fail(`: arrays support only == and !=`);
      const [arr, list] = x === "array" ? [a, b] : [b, a];
      if (list.value.kind === "literal") {
        this.checkElements(arr, list.value.value as Literal[], list.pos);
      }
      return;
    }
    if (x === "list" && y === "list") {
      if (!equality) fail();
      return;
    }
    if (x === "array" || y === "array") {
      const arr = x === "array" ? a : b;
      const name = (arr.value as ArrayValue).name;
      fail(`: use array_contains(${name}, ...) or an element such as ${name}[0]`);
    }
    fail();
  }

  /** Checks that list elements fit an Array field's element type. */
  private checkElements(arr: Typed, items: Literal[], pos: number): void {
    const et = (arr.value as ArrayValue).elementType;
    const want = kindOfType(et);
    for (const item of items) {
      const k = literalKind(item);
      const ok = want === "int" || want === "float" ? k === "int" || k === "float" : want === k;
      if (!ok) throw filterError(pos, `${arr.desc} holds ${et} elements, not ${formatLiteral(item)}`);
    }
  }

  /** A literal as the other side reads it: rounded to float32 against float32 values. */
  private coerce(v: Literal, target: Typed): Literal {
    if (Array.isArray(v)) return v.map((x) => this.coerce(x, target));
    if (target.f32 && (typeof v === "number" || typeof v === "bigint")) return Math.fround(Number(v));
    return v;
  }

  private inList(valueSyntax: Syntax, listSyntax: Syntax, negated: boolean): Predicate {
    const v = this.value(valueSyntax);
    const list = this.value(listSyntax);
    const word = negated ? "not in" : "in";
    if (list.value.kind !== "literal" || !Array.isArray(list.value.value)) {
      throw filterError(listSyntax.pos, `"${word}" needs a list of values such as [1, 2], got ${list.desc}`);
    }
    const items = list.value.value;
    for (const item of items) this.checkComparable("==", v, literalTyped(item, listSyntax.pos));
    let p: Predicate;
    if (v.value.kind === "literal") {
      const x = v.value.value;
      p = { kind: "const", value: items.some((item) => compareDynamic("==", x, item)) };
    } else {
      p = { kind: "in", value: v.value, values: items.map((item) => this.coerce(item, v)) };
    }
    return negated ? negate(p) : p;
  }

  private like(valueSyntax: Syntax, patternSyntax: Syntax, pos: number): Predicate {
    const v = this.value(valueSyntax);
    const pattern = this.value(patternSyntax);
    if (pattern.value.kind !== "literal" || typeof pattern.value.value !== "string") {
      throw filterError(patternSyntax.pos, `like needs a string pattern such as "abc%", got ${pattern.desc}`);
    }
    if (v.value.kind === "literal" || (v.kind !== "string" && v.kind !== "json")) {
      throw filterError(pos, `like needs a VarChar or JSON value, got ${v.desc}`);
    }
    return { kind: "like", value: v.value, pattern: pattern.value.value };
  }

  private isNull(valueSyntax: Syntax, negated: boolean): Predicate {
    const v = this.value(valueSyntax);
    const k = v.value.kind;
    if (k !== "field" && k !== "json" && k !== "array") {
      throw filterError(valueSyntax.pos, `is ${negated ? "not " : ""}null applies to a field or a JSON path, got ${v.desc}`);
    }
    const p: Predicate = { kind: "isNull", value: v.value };
    return negated ? negate(p) : p;
  }

  private callPredicate(s: Extract<Syntax, { t: "call" }>): Predicate {
    const name = s.name.toLowerCase();
    const m = /^(json|array)_contains(?:_(all|any))?$/.exec(name);
    if (!m) {
      if (name === "array_length") {
        throw filterError(s.pos, `array_length(...) is a number, not a condition: compare it, e.g. array_length(x) > 2`);
      }
      throw unknownFunction(s);
    }
    arity(s, 2);
    const target = this.value(s.args[0]!);
    if (target.value.kind !== "array" && target.value.kind !== "json") {
      throw filterError(s.args[0]!.pos, `${name} needs an Array field or a JSON path as its first argument, got ${target.desc}`);
    }
    const arg = this.value(s.args[1]!);
    if (arg.value.kind !== "literal") {
      throw filterError(s.args[1]!.pos, `${name} needs a literal as its second argument, got ${arg.desc}`);
    }
    const lit = arg.value.value;
    const mode = (m[2] ?? "one") as "one" | "all" | "any";
    let values: Literal[];
    if (mode === "one") values = [lit];
    else {
      if (!Array.isArray(lit)) throw filterError(s.args[1]!.pos, `${name} needs a list as its second argument, got ${arg.desc}`);
      values = lit;
    }
    if (target.value.kind === "array") this.checkElements(target, values, s.args[1]!.pos);
    const coerced =
      target.value.kind === "array" && target.value.elementType === "Float"
        ? values.map((x) => this.coerce(x, { ...target, f32: true }))
        : values;
    return { kind: "contains", mode, value: target.value, values: coerced };
  }

  // ---- values -----------------------------------------------------------------------------------

  value(s: Syntax): Typed {
    switch (s.t) {
      case "int":
      case "float":
      case "string":
      case "bool":
        return literalTyped(s.value, s.pos);
      case "list":
        return literalTyped(
          s.items.map((item) => {
            const v = this.value(item);
            if (v.value.kind !== "literal") throw filterError(item.pos, `list elements must be literals, got ${v.desc}`);
            return v.value.value;
          }),
          s.pos,
        );
      case "param":
        return this.param(s.name, s.pos);
      case "ident":
        return this.ident(s.name, s.pos);
      case "index":
        return this.index(s);
      case "call":
        return this.callValue(s);
      case "neg":
        return this.arith("-", literalTyped(0n, s.pos), this.value(s.arg), s.pos);
      case "arith":
        return this.arith(s.op, this.value(s.left), this.value(s.right), s.pos);
      default:
        throw filterError(s.pos, `expected a value here, got a condition (${conditionName(s)})`);
    }
  }

  private param(name: string, pos: number): Typed {
    const params = this.params;
    if (!params || !Object.hasOwn(params, name) || params[name] === undefined) {
      throw filterError(pos, `template parameter {${name}} has no value: pass it in the request's params`);
    }
    const lit = literalOf(params[name]);
    if (lit === undefined) {
      throw filterError(
        pos,
        `template parameter {${name}} must be a number, bigint, string, boolean or a list of them, got ${describeJs(params[name])}`,
      );
    }
    return literalTyped(lit, pos);
  }

  private ident(name: string, pos: number): Typed {
    const f = this.byName.get(name);
    if (name === DYNAMIC_FIELD_NAME || (f && f.isDynamic)) {
      if (!this.dynamic) throw filterError(pos, `"${name}" is the dynamic field, and the collection has none`);
      return jsonTyped(this.dynamic, [], pos);
    }
    if (!f) {
      if (!this.dynamic) throw filterError(pos, `unknown field "${name}" (the collection has no dynamic field)`);
      return jsonTyped(this.dynamic, [name], pos);
    }
    const fieldId = fieldIdOf(f, pos);
    if (f.type === "FloatVector") throw filterError(pos, `vector field "${name}" cannot be used in a filter`);
    if (f.type === "JSON") return jsonTyped(f, [], pos);
    if (f.type === "Array") {
      const et = f.elementType;
      if (!et || !SCALAR_TYPES.has(et)) throw filterError(pos, `Array field "${name}" has no scalar element type`);
      return {
        value: { kind: "array", fieldId, name, elementType: et as ScalarType },
        kind: "array",
        f32: false,
        f64: false,
        desc: `Array field "${name}"`,
        pos,
      };
    }
    if (!SCALAR_TYPES.has(f.type)) throw filterError(pos, `field "${name}" of type ${f.type} cannot be used in a filter`);
    const type = f.type as ScalarType;
    const kind = kindOfType(type);
    return {
      value: { kind: "field", fieldId, name, type },
      kind,
      f32: type === "Float",
      f64: type === "Double",
      ...(kind === "int" ? { range: INT_RANGES[type]! } : {}),
      desc: `${type} field "${name}"`,
      pos,
    };
  }

  private index(s: Extract<Syntax, { t: "index" }>): Typed {
    const base = this.value(s.base);
    const b = base.value;
    if (b.kind === "json") {
      const path = [...b.path, s.key];
      return { ...base, value: { ...b, path }, desc: `JSON value ${pathText(b.name, path)}` };
    }
    if (b.kind === "array") {
      if (typeof s.key !== "number") {
        throw filterError(s.pos, `Array field "${b.name}" takes an integer index such as ${b.name}[0], not ${JSON.stringify(s.key)}`);
      }
      const et = b.elementType;
      const kind = kindOfType(et);
      return {
        value: { kind: "element", fieldId: b.fieldId, name: b.name, elementType: et, index: s.key },
        kind,
        f32: et === "Float",
        f64: et === "Double",
        ...(kind === "int" ? { range: INT_RANGES[et]! } : {}),
        desc: `${et} element ${b.name}[${s.key}]`,
        pos: s.pos,
      };
    }
    throw filterError(s.pos, `${base.desc} cannot be indexed: only JSON fields and Array fields take [...]`);
  }

  private callValue(s: Extract<Syntax, { t: "call" }>): Typed {
    const name = s.name.toLowerCase();
    if (name !== "array_length") {
      if (FUNCTIONS.includes(name)) throw filterError(s.pos, `${name}(...) is a condition, not a value`);
      throw unknownFunction(s);
    }
    arity(s, 1);
    const target = this.value(s.args[0]!);
    const t = target.value;
    if (t.kind !== "array" && t.kind !== "json") {
      throw filterError(s.args[0]!.pos, `array_length needs an Array field or a JSON path, got ${target.desc}`);
    }
    return {
      value: { kind: "length", of: t },
      kind: "int",
      f32: false,
      f64: false,
      range: [0n, 2n ** 31n],
      desc: `array_length(${t.kind === "json" ? pathText(t.name, t.path) : t.name})`,
      pos: s.pos,
    };
  }

  private arith(op: ArithOp, a: Typed, b: Typed, pos: number): Typed {
    for (const x of [a, b]) {
      if (x.kind !== "int" && x.kind !== "float" && x.kind !== "json") {
        throw filterError(x.pos, `arithmetic needs numbers, got ${x.desc}`);
      }
    }
    const bv = b.value;
    if ((op === "/" || op === "%") && bv.kind === "literal" && Number(bv.value) === 0) {
      throw filterError(b.pos, `division by zero`);
    }
    if (a.value.kind === "literal" && bv.kind === "literal") {
      return literalTyped(foldArith(op, a.value.value as bigint | number, bv.value as bigint | number), pos);
    }
    const isFloat = op === "**" || [a, b].some((x) => x.kind === "float" || x.kind === "json");
    let mode: ArithValue["mode"];
    let range: [bigint, bigint] | undefined;
    if (isFloat) {
      mode = a.f64 || b.f64 || a.kind === "json" || b.kind === "json" ? "float64" : a.f32 || b.f32 ? "float32" : "float64";
    } else {
      range = intRange(op, a.range!, b.range!);
      const fits = (r: [bigint, bigint]) => r[0] >= -INT53_LIMIT && r[1] <= INT53_LIMIT;
      mode = fits(a.range!) && fits(b.range!) && fits(range) ? "int53" : "int64";
      if (mode === "int64") range = INT_RANGES.Int64!;
    }
    const operand = (x: Typed): Value => {
      if (x.value.kind !== "literal") return x.value;
      const v = x.value.value as bigint | number;
      return { kind: "literal", value: mode === "float32" ? Math.fround(Number(v)) : mode === "float64" ? Number(v) : v };
    };
    return {
      value: { kind: "arith", op, left: operand(a), right: operand(b), mode },
      kind: isFloat ? "float" : "int",
      f32: mode === "float32",
      f64: mode === "float64",
      ...(range ? { range } : {}),
      desc: "an arithmetic expression",
      pos,
    };
  }
}

function negate(p: Predicate): Predicate {
  if (p.kind === "const") return { kind: "const", value: !p.value };
  if (p.kind === "not") return p.arg; // not not x == x, in three-valued logic too
  return { kind: "not", arg: p };
}

function literalTyped(v: Literal, pos: number): Typed {
  const k = literalKind(v);
  return {
    value: { kind: "literal", value: v },
    kind: k,
    f32: false,
    f64: false,
    ...(typeof v === "bigint" ? { range: [v, v] as [bigint, bigint] } : {}),
    desc: formatLiteral(v),
    pos,
  };
}

function jsonTyped(f: FieldSchema, path: (string | number)[], pos: number): Typed {
  const fieldId = fieldIdOf(f, pos);
  const value: JsonValue = { kind: "json", fieldId, name: f.name, path };
  const desc =
    f.name === DYNAMIC_FIELD_NAME && path.length === 1 ? `dynamic field key "${path[0]}"` : `JSON value ${pathText(f.name, path)}`;
  return { value, kind: "json", f32: false, f64: true, desc, pos };
}

function fieldIdOf(f: FieldSchema, pos: number): number {
  if (f.fieldId === undefined) throw filterError(pos, `field "${f.name}" has no field id: the schema is not normalized`);
  return f.fieldId;
}

function arity(s: Extract<Syntax, { t: "call" }>, n: number): void {
  if (s.args.length !== n) {
    throw filterError(s.pos, `${s.name} takes ${n} argument${n === 1 ? "" : "s"}, got ${s.args.length}`);
  }
}

function unknownFunction(s: Extract<Syntax, { t: "call" }>) {
  return filterError(s.pos, `unknown function "${s.name}"; the functions are ${FUNCTIONS.join(", ")}`);
}

function conditionName(s: Syntax): string {
  switch (s.t) {
    case "compare":
      return s.ops.join(" ");
    case "isNull":
      return s.negated ? "is not null" : "is null";
    case "in":
      return s.negated ? "not in" : "in";
    default:
      return s.t;
  }
}

function describeJs(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list with an unsupported element";
  return typeof v === "object" ? "an object" : `${typeof v} ${String(v)}`;
}

function intRange(op: ArithOp, a: [bigint, bigint], b: [bigint, bigint]): [bigint, bigint] {
  const abs = (x: bigint) => (x < 0n ? -x : x);
  const maxAbs = (r: [bigint, bigint]) => (abs(r[0]) > abs(r[1]) ? abs(r[0]) : abs(r[1]));
  switch (op) {
    case "+":
      return [a[0] + b[0], a[1] + b[1]];
    case "-":
      return [a[0] - b[1], a[1] - b[0]];
    case "*": {
      const p = [a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1]];
      return [p.reduce((x, y) => (y < x ? y : x)), p.reduce((x, y) => (y > x ? y : x))];
    }
    case "/": {
      const m = maxAbs(a);
      return [-m, m];
    }
    default: {
      const m = maxAbs(b) < maxAbs(a) ? maxAbs(b) : maxAbs(a);
      return [-m, m];
    }
  }
}

/** Literal arithmetic: integers exact (bigint, `/` truncating), floats as doubles, `**` always a float. */
function foldArith(op: ArithOp, a: bigint | number, b: bigint | number): bigint | number {
  if (typeof a === "bigint" && typeof b === "bigint" && op !== "**") {
    switch (op) {
      case "+":
        return a + b;
      case "-":
        return a - b;
      case "*":
        return a * b;
      case "/":
        return a / b;
      default:
        return a % b;
    }
  }
  const x = Number(a);
  const y = Number(b);
  let r: number;
  switch (op) {
    case "+":
      r = x + y;
      break;
    case "-":
      r = x - y;
      break;
    case "*":
      r = x * y;
      break;
    case "/":
      r = x / y;
      break;
    case "%":
      r = x % y;
      break;
    default:
      r = x ** y;
  }
  return r === 0 ? 0 : r; // no -0 in a plan
}

