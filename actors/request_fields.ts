/**
 * Field checks for request bodies that actors share: anything malformed is a VbError 1100 naming the
 * field (`what`).
 */
import { VbError } from "../protocol/errors.ts";

export function obj(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw VbError.invalid(`${what} must be an object`);
  return v as Record<string, unknown>;
}

export function list(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw VbError.invalid(`${what} must be a list`);
  return v;
}

export function bigintOf(v: unknown, what: string, min = 0n): bigint {
  if (typeof v === "number" && Number.isSafeInteger(v)) v = BigInt(v);
  if (typeof v !== "bigint" || v < min) throw VbError.invalid(`${what} must be an integer ≥ ${min}`);
  return v;
}

export function stringOf(v: unknown, what: string): string {
  if (typeof v !== "string" || v.length === 0) throw VbError.invalid(`${what} must be a non-empty string`);
  return v;
}
