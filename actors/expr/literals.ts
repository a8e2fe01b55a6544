/**
 * Literal values of the plan: their kinds, how they print in messages, template parameters turned
 * into literals, and the one equality/order rule shared by the evaluator for dynamic (JSON) values.
 */
import type { CompareOp, Literal } from "./plan.ts";

export type LiteralKind = "int" | "float" | "string" | "bool" | "list";

export function literalKind(v: Literal): LiteralKind {
  switch (typeof v) {
    case "bigint":
      return "int";
    case "number":
      return "float";
    case "string":
      return "string";
    case "boolean":
      return "bool";
    default:
      return "list";
  }
}

export function formatLiteral(v: Literal): string {
  if (Array.isArray(v)) return `[${v.map(formatLiteral).join(", ")}]`;
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number" && Number.isInteger(v)) return v.toFixed(1);
  return String(v);
}

/** A template parameter's value as a literal; undefined when the value is not one a filter can hold. */
export function literalOf(v: unknown): Literal | undefined {
  switch (typeof v) {
    case "bigint":
    case "string":
    case "boolean":
      return v;
    case "number":
      if (!Number.isFinite(v)) return undefined;
      return Number.isInteger(v) ? BigInt(v) : v;
    default:
      if (!Array.isArray(v)) return undefined;
      {
        const out: Literal[] = [];
        for (const x of v) {
          const l = literalOf(x);
          if (l === undefined) return undefined;
          out.push(l);
        }
        return out;
      }
  }
}

/** A number that equals the bigint exactly, or undefined when no double does. */
export function exactNumber(v: bigint): number | undefined {
  const n = Number(v);
  return BigInt(n) === v ? n : undefined;
}

/** A bigint that equals the number exactly, or undefined (fractions, infinities). */
export function exactBigInt(v: number): bigint | undefined {
  return Number.isInteger(v) ? BigInt(v) : undefined;
}

function orderOf(op: CompareOp, c: number): boolean {
  switch (op) {
    case "==":
      return c === 0;
    case "!=":
      return c !== 0;
    case "<":
      return c < 0;
    case "<=":
      return c <= 0;
    case ">":
      return c > 0;
    case ">=":
      return c >= 0;
  }
}

/** Compares two numbers or bigints exactly (JavaScript compares a bigint with a number by value). */
export function compareNumeric(op: CompareOp, a: number | bigint, b: number | bigint): boolean {
  switch (op) {
    // loose equality on purpose: it compares a bigint with a number by value (1n == 1)
    case "==":
      return a == b;
    case "!=":
      return a != b;
    case "<":
      return a < b;
    case "<=":
      return a <= b;
    case ">":
      return a > b;
    case ">=":
      return a >= b;
  }
}

const isNumeric = (v: unknown): v is number | bigint => typeof v === "number" || typeof v === "bigint";

/** Deep equality of dynamic values: numbers by value (1 == 1.0 == 1n), arrays element-wise, objects by keys. */
export function sameValue(a: unknown, b: unknown): boolean {
  if (isNumeric(a) && isNumeric(b)) {
    return a == b; // by value across bigint and number
  }
  if (typeof a === "string" || typeof a === "boolean") return a === b;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameValue(a[i], b[i])) return false;
    return true;
  }
  if (a !== null && typeof a === "object") {
    if (b === null || typeof b !== "object" || Array.isArray(b)) return false;
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    for (const k of ka) {
      if (!Object.hasOwn(b, k) || !sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
    }
    return true;
  }
  return a === b;
}

/**
 * Compares a dynamic value (a JSON value, an array element) with another, Milvus's way: values of
 * the same type compare (numbers with numbers, strings with strings, booleans and lists by equality);
 * a value of another type, or no value, makes every comparison false except `!=`, which is true.
 */
export function compareDynamic(op: CompareOp, a: unknown, b: unknown): boolean {
  if (isNumeric(a) && isNumeric(b)) return compareNumeric(op, a, b);
  if (typeof a === "string" && typeof b === "string") return orderOf(op, a < b ? -1 : a > b ? 1 : 0);
  if (op === "==") return a !== undefined && sameValue(a, b);
  if (op === "!=") return a === undefined || !sameValue(a, b);
  return false;
}

/** A key under which equal values meet in a Set: 1, 1.0 and 1n share one; "1" does not. */
export function valueKey(v: unknown): string | undefined {
  switch (typeof v) {
    case "bigint":
      return "n" + v.toString();
    case "number":
      return Number.isInteger(v) ? "n" + BigInt(v).toString() : "n" + String(v);
    case "string":
      return "s" + v;
    case "boolean":
      return v ? "t" : "f";
    default:
      if (Array.isArray(v)) {
        const parts: string[] = [];
        for (const x of v) {
          const k = valueKey(x);
          if (k === undefined) return undefined;
          parts.push(JSON.stringify(k));
        }
        return "a[" + parts.join(",") + "]";
      }
      return undefined;
  }
}
