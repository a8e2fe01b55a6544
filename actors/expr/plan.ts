/**
 * The compiled filter: plain data (objects, arrays, strings, numbers, bigints, booleans), so the proxy
 * can compile a filter once and ship it to querynodes through msgpack unchanged. Field names are
 * resolved to field ids and types; template parameters are substituted; constant arithmetic is folded.
 *
 * Literals: an integer is a `bigint`, a float a `number`, then `string`, `boolean`, and lists of them.
 * A literal compared with a Float field (or a float32 arithmetic result) is already rounded to float32.
 */
import type { ArithOp, CompareOp } from "./syntax.ts";

export type { ArithOp, CompareOp } from "./syntax.ts";

export type Literal = bigint | number | string | boolean | Literal[];

/** Scalar field types a filter can read directly. */
export type ScalarType = "Bool" | "Int8" | "Int16" | "Int32" | "Int64" | "Float" | "Double" | "VarChar";

/** A scalar field's column. */
export interface FieldValue {
  kind: "field";
  fieldId: number;
  name: string;
  type: ScalarType;
}

/** A value inside a JSON field (or the dynamic field `$meta`); `path` [] is the whole document. */
export interface JsonValue {
  kind: "json";
  fieldId: number;
  name: string;
  path: (string | number)[];
}

/** A whole Array field (for `==` with a list, contains, length, `is null`). */
export interface ArrayValue {
  kind: "array";
  fieldId: number;
  name: string;
  elementType: ScalarType;
}

/** `tags[i]`: one element of an Array field; a row whose array is shorter fails every comparison. */
export interface ElementValue {
  kind: "element";
  fieldId: number;
  name: string;
  elementType: ScalarType;
  index: number;
}

/** `array_length(x)` of an Array field or of a JSON path (a row whose value is not an array fails). */
export interface LengthValue {
  kind: "length";
  of: ArrayValue | JsonValue;
}

/**
 * Arithmetic. `mode` is fixed at compile time: "int53" integers exact in doubles (Int8/16/32 and small
 * literals: `/` truncates toward zero, as in Milvus); "int64" integers as bigint (Int64 operands);
 * "float64" doubles; "float32" float32 arithmetic (Float fields with literals, each step rounded).
 */
export interface ArithValue {
  kind: "arith";
  op: ArithOp;
  left: Value;
  right: Value;
  mode: "int53" | "int64" | "float64" | "float32";
}

export interface LiteralValue {
  kind: "literal";
  value: Literal;
}

export type Value = FieldValue | JsonValue | ArrayValue | ElementValue | LengthValue | ArithValue | LiteralValue;

/** Values that name a stored column (what `is null` and `exists` take). */
export type ColumnValue = FieldValue | JsonValue | ArrayValue;

export type Predicate =
  | { kind: "const"; value: boolean }
  | { kind: "and"; args: Predicate[] }
  | { kind: "or"; args: Predicate[] }
  | { kind: "not"; arg: Predicate }
  /** `left op right`; when one side is a literal it is `right` */
  | { kind: "compare"; op: CompareOp; left: Value; right: Value }
  /** `lower < value < upper` with each bound inclusive or not */
  | {
      kind: "range";
      value: Value;
      lower: bigint | number | string;
      lowerInclusive: boolean;
      upper: bigint | number | string;
      upperInclusive: boolean;
    }
  /** `value in [...]` (`not in` is `not` of this) */
  | { kind: "in"; value: Value; values: Literal[] }
  | { kind: "like"; value: Value; pattern: string }
  | { kind: "isNull"; value: ColumnValue }
  | { kind: "exists"; value: JsonValue }
  /** json_contains / array_contains (`one`: values has one element), `_all`, `_any` */
  | { kind: "contains"; mode: "one" | "all" | "any"; value: ArrayValue | JsonValue; values: Literal[] };

export interface FilterPlan {
  /** bumped when the shape changes, so a querynode can refuse a plan it does not know */
  version: 1;
  root: Predicate;
}

export const PLAN_VERSION = 1;

/** The plan of an empty filter: every row passes. */
export function passAllPlan(): FilterPlan {
  return { version: PLAN_VERSION, root: { kind: "const", value: true } };
}

/** True when the plan passes every row without reading any column (an empty filter, or `true`). */
export function passesAll(plan: FilterPlan): boolean {
  return plan.root.kind === "const" && plan.root.value;
}

function valueFieldIds(v: Value, out: Set<number>): void {
  switch (v.kind) {
    case "field":
    case "json":
    case "array":
    case "element":
      out.add(v.fieldId);
      return;
    case "length":
      out.add(v.of.fieldId);
      return;
    case "arith":
      valueFieldIds(v.left, out);
      valueFieldIds(v.right, out);
      return;
    case "literal":
      return;
  }
}

function predicateFieldIds(p: Predicate, out: Set<number>): void {
  switch (p.kind) {
    case "const":
      return;
    case "and":
    case "or":
      for (const a of p.args) predicateFieldIds(a, out);
      return;
    case "not":
      predicateFieldIds(p.arg, out);
      return;
    case "compare":
      valueFieldIds(p.left, out);
      valueFieldIds(p.right, out);
      return;
    case "range":
    case "in":
    case "like":
    case "isNull":
    case "exists":
    case "contains":
      valueFieldIds(p.value, out);
      return;
  }
}

/** The ids of the fields a plan reads, ascending: a segment needs only these columns to evaluate it. */
export function filterFieldIds(plan: FilterPlan): number[] {
  const out = new Set<number>();
  predicateFieldIds(plan.root, out);
  return [...out].sort((a, b) => a - b);
}
