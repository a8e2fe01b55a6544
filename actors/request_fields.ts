/**
 * Reading request bodies that came off the wire, for every actor: whatever a client sent, a field of the
 * wrong type or a missing one is refused with a VbError 1100 that names the field, never a crash.
 *
 * Two ways to name the field: by a path (`obj(b.segment, "segment")`, `bigintOf(o.id, "channels[2].id")`:
 * "segment must be an object"), or by the verb and the field of its body
 * (`requiredString(verb, body, "collectionName")`: `CreateCollection: field "collectionName" is missing`).
 * A field of a nested map names its path in the verb (`requiredId(`${verb}: segments[2]`, s, "segmentId")`).
 *
 * The same rules hold everywhere: a 64-bit integer is a bigint or a safe integer number (and comes back a
 * bigint), an integer is a safe integer number (or a bigint in range), a map is not a list nor bytes.
 */
import { VbError } from "../protocol/errors.ts";
import { isValidNodeId } from "../protocol/ids.ts";
import { DEFAULT_DB } from "../protocol/meta.ts";

export type Body = Record<string, unknown>;

/** What a wrong value is, for the error message: the value itself when short and scalar, else its kind. */
function show(v: unknown): string {
  if (v === null) return "null";
  if (typeof v === "string") return v.length <= 40 ? JSON.stringify(v) : "a long string";
  if (typeof v === "number" || typeof v === "bigint" || typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return "a list";
  if (ArrayBuffer.isView(v)) return "bytes";
  return typeof v;
}

function isMap(v: unknown): v is Body {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

/** `v` as a 64-bit integer (a bigint, or a number that is a safe integer), else undefined. */
function integerOf(v: unknown): bigint | undefined {
  if (typeof v === "bigint") return v;
  if (typeof v === "number" && Number.isSafeInteger(v)) return BigInt(v);
  return undefined;
}

// ---- fields named by a path ----

export function obj(v: unknown, what: string): Record<string, unknown> {
  if (!isMap(v)) throw VbError.invalid(`${what} must be an object`);
  return v;
}

export function list(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw VbError.invalid(`${what} must be a list`);
  return v;
}

export function bigintOf(v: unknown, what: string, min = 0n): bigint {
  const n = integerOf(v);
  if (n === undefined || n < min) throw VbError.invalid(`${what} must be an integer ≥ ${min}`);
  return n;
}

export function stringOf(v: unknown, what: string): string {
  if (typeof v !== "string" || v.length === 0) throw VbError.invalid(`${what} must be a non-empty string`);
  return v;
}

// ---- fields of a verb's body ----

/** A refusal of a verb's request: `<verb>: <message>`, code 1100. */
export function invalid(verb: string, message: string): VbError {
  return VbError.invalid(`${verb}: ${message}`);
}

/** The body as a map of fields; no body (null) is an empty map. */
export function bodyOf(verb: string, raw: unknown): Body {
  if (raw === undefined || raw === null) return {};
  if (!isMap(raw)) throw VbError.invalid(`${verb}: the request body must be a map of fields, got ${show(raw)}`);
  return raw;
}

function wrongType(verb: string, field: string, want: string, got: unknown): VbError {
  return VbError.invalid(`${verb}: field "${field}" must be ${want}, got ${show(got)}`);
}

/** A required non-empty string. */
export function requiredString(verb: string, b: Body, field: string): string {
  const v = b[field];
  if (v === undefined || v === null) throw VbError.invalid(`${verb}: field "${field}" is missing; pass it as a string`);
  if (typeof v !== "string") throw wrongType(verb, field, "a string", v);
  if (v.length === 0) throw VbError.invalid(`${verb}: field "${field}" must not be empty`);
  return v;
}

/** A required name that goes into subjects (a vchannel, a node id): letters, digits, _ and - only. */
export function requiredToken(verb: string, b: Body, field: string): string {
  const v = requiredString(verb, b, field);
  // node ids follow the rule of every subject token
  if (!isValidNodeId(v)) throw VbError.invalid(`${verb}: field "${field}" must hold letters, digits, _ and - only, got ${show(v)}`);
  return v;
}

/** An optional string: absent, null and "" are all undefined. */
export function optionalString(verb: string, b: Body, field: string): string | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw wrongType(verb, field, "a string", v);
  return v.length === 0 ? undefined : v;
}

/** The database a request names, `default` when it names none. */
export function dbNameOf(verb: string, b: Body, field = "dbName"): string {
  return optionalString(verb, b, field) ?? DEFAULT_DB;
}

/** An integer in [min, max] (a bigint in range is accepted too). */
function intIn(verb: string, field: string, v: unknown, min: number, max: number): number {
  const n = typeof v === "bigint" ? Number(v) : v;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `in [${min}, ${max}]`;
    throw VbError.invalid(`${verb}: field "${field}" must be an integer ${range}, got ${show(v)}`);
  }
  return n;
}

/** An optional integer in [min, max] (a bigint in range is accepted too). */
export function optionalInt(verb: string, b: Body, field: string, min: number, max: number): number | undefined {
  const v = b[field];
  return v === undefined || v === null ? undefined : intIn(verb, field, v, min, max);
}

/** A required integer in [min, max] (a bigint in range is accepted too). */
export function requiredInt(verb: string, b: Body, field: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = b[field];
  if (v === undefined || v === null) throw VbError.invalid(`${verb}: field "${field}" is missing; pass it as an integer`);
  return intIn(verb, field, v, min, max);
}

/** A required 64-bit integer ≥ min that is not an id (a position, a timestamp). */
export function requiredInteger(verb: string, b: Body, field: string, min = 0n): bigint {
  const v = b[field];
  if (v === undefined || v === null) throw VbError.invalid(`${verb}: field "${field}" is missing; pass it as a 64-bit integer`);
  const n = integerOf(v);
  if (n === undefined || n < min) throw wrongType(verb, field, `a 64-bit integer ≥ ${min}`, v);
  return n;
}

/** A required list. */
export function requiredList(verb: string, b: Body, field: string, of: string): unknown[] {
  const v = b[field];
  if (v === undefined || v === null) throw VbError.invalid(`${verb}: field "${field}" is missing; pass it as a list of ${of}`);
  if (!Array.isArray(v)) throw wrongType(verb, field, `a list of ${of}`, v);
  return v;
}

/** A 64-bit id: a bigint, or a non-negative safe integer number. */
function idOf(verb: string, field: string, v: unknown): bigint {
  const n = integerOf(v);
  if (n === undefined || n < 0n) throw wrongType(verb, field, "a non-negative 64-bit integer id", v);
  return n;
}

/** An optional 64-bit id. */
export function optionalId(verb: string, b: Body, field: string): bigint | undefined {
  const v = b[field];
  return v === undefined || v === null ? undefined : idOf(verb, field, v);
}

/** A required 64-bit id. */
export function requiredId(verb: string, b: Body, field: string): bigint {
  const v = b[field];
  if (v === undefined || v === null) throw VbError.invalid(`${verb}: field "${field}" is missing; pass it as an id`);
  return idOf(verb, field, v);
}

function idsOf(verb: string, field: string, v: unknown): bigint[] {
  if (!Array.isArray(v) && !(v instanceof BigInt64Array)) throw wrongType(verb, field, "a list of ids", v);
  return [...new Set(Array.from(v as ArrayLike<unknown>, (x, i) => idOf(verb, `${field}[${i}]`, x)))];
}

/** An optional list of 64-bit ids (a list or a BigInt64Array), without repeats. */
export function optionalIds(verb: string, b: Body, field: string): bigint[] | undefined {
  const v = b[field];
  return v === undefined || v === null ? undefined : idsOf(verb, field, v);
}

/** A required list of 64-bit ids (a list or a BigInt64Array; may be empty), without repeats. */
export function requiredIds(verb: string, b: Body, field: string): bigint[] {
  const v = b[field];
  if (v === undefined || v === null) throw VbError.invalid(`${verb}: field "${field}" is missing; pass it as a list of ids`);
  return idsOf(verb, field, v);
}

/** An optional true or false. */
export function optionalBool(verb: string, b: Body, field: string): boolean | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") throw wrongType(verb, field, "true or false", v);
  return v;
}

/** An optional string from a closed set. */
export function optionalEnum<T extends string>(verb: string, b: Body, field: string, allowed: readonly T[]): T | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string" || !(allowed as readonly string[]).includes(v)) {
    throw VbError.invalid(`${verb}: field "${field}" must be one of ${allowed.join(", ")}, got ${show(v)}`);
  }
  return v as T;
}

/** An optional map of string to string. */
export function optionalStringMap(verb: string, b: Body, field: string): Record<string, string> | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  if (!isMap(v)) throw wrongType(verb, field, "a map of strings", v);
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== "string") throw VbError.invalid(`${verb}: field "${field}.${k}" must be a string, got ${show(x)}`);
    out[k] = x;
  }
  return out;
}
