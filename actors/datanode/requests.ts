/** Checks of the bodies the datanode receives: anything malformed is a VbError 1100 naming the field. */
import { bigintOf, list, obj, stringOf } from "../request_fields.ts";
import { VbError } from "../../protocol/errors.ts";
import type { ChannelWatch, SealPolicy } from "../../protocol/messages/datacoord.ts";
import { assertToken } from "../../protocol/subjects.ts";

export { bigintOf, list, obj, stringOf };

export function vchannelOf(v: unknown, what: string): string {
  if (typeof v !== "string") throw VbError.invalid(`${what} must be a vchannel name`);
  try {
    return assertToken("vchannel", v);
  } catch (err) {
    throw VbError.invalid(`${what}: ${(err as Error).message}`);
  }
}

function positiveNumber(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) throw VbError.invalid(`${what} must be a number > 0`);
  return v;
}

export function sealPolicyOf(v: unknown, what: string): SealPolicy {
  const o = obj(v, what);
  return {
    maxRows: positiveNumber(o.maxRows, `${what}.maxRows`),
    maxBytes: positiveNumber(o.maxBytes, `${what}.maxBytes`),
    idleMs: positiveNumber(o.idleMs, `${what}.idleMs`),
  };
}

export function channelWatchOf(v: unknown, what: string): ChannelWatch {
  const o = obj(v, what);
  const pchannel = o.pchannel;
  if (typeof pchannel !== "number" || !Number.isSafeInteger(pchannel) || pchannel < 0) {
    throw VbError.invalid(`${what}.pchannel must be an integer ≥ 0`);
  }
  return {
    collectionId: bigintOf(o.collectionId, `${what}.collectionId`),
    vchannel: vchannelOf(o.vchannel, `${what}.vchannel`),
    pchannel,
    checkpoint: bigintOf(o.checkpoint, `${what}.checkpoint`),
  };
}

