/** Reading querycoord request bodies off the wire: a bad field is a 1100 that names it, never a crash. */
import { VbError } from "../../protocol/errors.ts";

export type Body = Record<string, unknown>;

export function bodyOf(verb: string, raw: unknown): Body {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== "object" || Array.isArray(raw) || ArrayBuffer.isView(raw)) {
    throw VbError.invalid(`querycoord.${verb}: the request body must be a map of fields`);
  }
  return raw as Body;
}

function asId(verb: string, field: string, v: unknown): bigint {
  if (typeof v === "bigint" && v >= 0n) return v;
  if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  throw VbError.invalid(`querycoord.${verb}: field "${field}" must be a non-negative 64-bit integer id`);
}

export function requiredId(verb: string, b: Body, field: string): bigint {
  const v = b[field];
  if (v === undefined || v === null) throw VbError.invalid(`querycoord.${verb}: field "${field}" is missing`);
  return asId(verb, field, v);
}

export function optionalIds(verb: string, b: Body, field: string): bigint[] | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) && !(v instanceof BigInt64Array)) throw VbError.invalid(`querycoord.${verb}: field "${field}" must be a list of ids`);
  return [...new Set(Array.from(v as ArrayLike<unknown>, (x, i) => asId(verb, `${field}[${i}]`, x)))];
}

export function optionalInt(verb: string, b: Body, field: string, min: number, max: number): number | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  const n = typeof v === "bigint" ? Number(v) : v;
  if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max) {
    throw VbError.invalid(`querycoord.${verb}: field "${field}" must be an integer in [${min}, ${max}]`);
  }
  return n;
}

export function optionalBool(verb: string, b: Body, field: string): boolean | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") throw VbError.invalid(`querycoord.${verb}: field "${field}" must be true or false`);
  return v;
}
