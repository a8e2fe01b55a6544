/**
 * The message envelope. A request is `{t, d, b}`: its message type, its deadline (ms since the epoch,
 * 0 = none) and its body. A reply is `{ok: true, body}` or `{ok: false, error}`. Short keys keep the
 * envelope lean: it is on every message.
 *
 * A traced request also carries `c`, its W3C `traceparent` (`00-<trace id>-<parent span id>-<flags>`),
 * and its reply `h`, the hops the request made (the answering actor's and those of the actors it
 * asked in turn). Untraced messages carry neither.
 */
import type { WireError } from "./errors.ts";

export interface Envelope<T = unknown> {
  /** message type, `<kind>.<Verb>` */
  t: string;
  /** deadline in ms since the epoch; 0 when the sender set none (a tell) */
  d: number;
  /** body */
  b: T;
  /** trace context: a W3C traceparent, only on traced requests */
  c?: string;
}

/** One actor's part in a traced request, as replies bring it back. */
export interface Hop {
  /** the actor's address */
  actor: string;
  /** the message type it handled */
  type: string;
  /** this hop's span id, and its parent's (the asker's) */
  span: string;
  parent: string;
  /** ms from arrival to the start of handling (the mailbox) */
  queueMs: number;
  /** ms from arrival to the answer */
  ms: number;
}

export type Reply<T = unknown> = ({ ok: true; body: T } | { ok: false; error: WireError }) & {
  /** hops of a traced request */
  h?: Hop[];
};

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
