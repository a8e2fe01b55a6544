/**
 * The message envelope. A request is `{t, d, b}`: its message type, its deadline (ms since the epoch,
 * 0 = none) and its body. A reply is `{ok: true, body}` or `{ok: false, error}`. Short keys keep the
 * envelope lean: it is on every message.
 */
import type { WireError } from "./errors.ts";

export interface Envelope<T = unknown> {
  /** message type, `<kind>.<Verb>` */
  t: string;
  /** deadline in ms since the epoch; 0 when the sender set none (a tell) */
  d: number;
  /** body */
  b: T;
}

export type Reply<T = unknown> = { ok: true; body: T } | { ok: false; error: WireError };

export function isEnvelope(v: unknown): v is Envelope {
  return (
    typeof v === "object" &&
    v !== null &&
    typeof (v as Envelope).t === "string" &&
    typeof (v as Envelope).d === "number"
  );
}

export function isReply(v: unknown): v is Reply {
  if (typeof v !== "object" || v === null) return false;
  const r = v as Reply;
  if (r.ok === true) return true;
  return r.ok === false && typeof r.error === "object" && r.error !== null && typeof r.error.code === "number";
}
