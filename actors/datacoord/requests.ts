/** Checks of the bodies datacoord receives: anything malformed is a VbError 1100 naming the field. */
import { bigintOf, list, obj, stringOf } from "../request_fields.ts";
import { VbError } from "../../protocol/errors.ts";
import type { BinlogRef, ChannelCheckpoint, SegmentLevel, SegmentState } from "../../protocol/meta.ts";
import type { ReporterRef } from "../../protocol/messages/datacoord.ts";
import { assertToken } from "../../protocol/subjects.ts";
import { isValidNodeId } from "../../protocol/ids.ts";
import { SEGMENT_STATES } from "./segment_meta.ts";

export { bigintOf, list, obj, stringOf };

export function intOf(v: unknown, what: string): number {
  if (typeof v === "bigint") v = Number(v);
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw VbError.invalid(`${what} must be an integer ≥ 0`);
  return v;
}

export function vchannelOf(v: unknown, what: string): string {
  const s = stringOf(v, what);
  try {
    return assertToken("vchannel", s);
  } catch (err) {
    throw VbError.invalid(`${what}: ${(err as Error).message}`);
  }
}

export function nodeIdOf(v: unknown, what: string): string {
  const s = stringOf(v, what);
  if (!isValidNodeId(s)) throw VbError.invalid(`${what} "${s}": use letters, digits, _ and - only`);
  return s;
}

export function levelOf(v: unknown, what: string): SegmentLevel {
  if (v !== "L0" && v !== "L1") throw VbError.invalid(`${what} must be "L0" or "L1"`);
  return v;
}

export function statesOf(v: unknown, what: string): SegmentState[] {
  return list(v, what).map((s, i) => {
    if (!SEGMENT_STATES.includes(s as SegmentState)) throw VbError.invalid(`${what}[${i}] must be one of ${SEGMENT_STATES.join(", ")}`);
    return s as SegmentState;
  });
}

export function reporterOf(o: Record<string, unknown>): ReporterRef {
  const out: ReporterRef = {};
  if (o.nodeId !== undefined) out.nodeId = nodeIdOf(o.nodeId, "nodeId");
  if (o.session !== undefined) out.session = stringOf(o.session, "session");
  return out;
}

export function binlogsOf(v: unknown, what: string): BinlogRef[] {
  return list(v, what).map((b, i) => {
    const o = obj(b, `${what}[${i}]`);
    if (typeof o.fieldId !== "number" || !Number.isSafeInteger(o.fieldId)) throw VbError.invalid(`${what}[${i}].fieldId must be an integer`);
    return {
      fieldId: o.fieldId,
      key: stringOf(o.key, `${what}[${i}].key`),
      rows: intOf(o.rows, `${what}[${i}].rows`),
      bytes: intOf(o.bytes, `${what}[${i}].bytes`),
    };
  });
}

export function checkpointOf(v: unknown, what: string): ChannelCheckpoint {
  const o = obj(v, what);
  return {
    vchannel: vchannelOf(o.vchannel, `${what}.vchannel`),
    position: bigintOf(o.position, `${what}.position`),
    ts: bigintOf(o.ts, `${what}.ts`),
  };
}

export function optionalStringOf(v: unknown, what: string): string | undefined {
  return v === undefined || v === null || v === "" ? undefined : stringOf(v, what);
}

/** An index name: letters, digits and _, not starting with a digit, at most 255 characters (Milvus's rule). */
export function indexNameOf(v: unknown, what: string): string | undefined {
  const s = optionalStringOf(v, what);
  if (s !== undefined && !/^[A-Za-z_][A-Za-z0-9_]{0,254}$/.test(s)) {
    throw VbError.invalid(`${what} "${s}": use letters, digits and _ (not starting with a digit), at most 255 characters`);
  }
  return s;
}

export function boolOf(v: unknown, what: string): boolean {
  if (typeof v !== "boolean") throw VbError.invalid(`${what} must be true or false`);
  return v;
}
