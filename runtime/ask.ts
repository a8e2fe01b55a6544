/**
 * Request/reply over NATS with the Vectorbus envelope: `ask` sends `{t, d, b}` and waits for `{ok, ...}`
 * until its deadline; `tell` sends and forgets. Failures come back as VbError: no responders (2,
 * retriable), timeout (10001, retriable), the remote actor's own error as it sent it.
 */
import { RequestError, TimeoutError, type NatsConnection } from "@nats-io/transport-node";
import { decode, encode } from "../protocol/codec.ts";
import { isReply, type Envelope } from "../protocol/envelope.ts";
import { ErrorCode, VbError } from "../protocol/errors.ts";

export const DEFAULT_ASK_TIMEOUT_MS = 10_000;

export interface AskOptions {
  /** How long to wait for the reply; the message carries the deadline so the receiver can drop it. */
  timeoutMs?: number;
}

export async function ask<R = unknown>(
  nc: NatsConnection,
  address: string,
  type: string,
  body: unknown,
  opts: AskOptions = {},
): Promise<R> {
  const timeout = opts.timeoutMs ?? DEFAULT_ASK_TIMEOUT_MS;
  const env: Envelope = { t: type, d: Date.now() + timeout, b: body };
  let data: Uint8Array;
  try {
    const msg = await nc.request(address, encode(env), { timeout });
    data = msg.data;
  } catch (err) {
    throw requestFailure(err, address, type, timeout);
  }
  return unwrapReply<R>(data, address, type);
}

export function tell(nc: NatsConnection, address: string, type: string, body: unknown): void {
  const env: Envelope = { t: type, d: 0, b: body };
  nc.publish(address, encode(env));
}

export function unwrapReply<R>(data: Uint8Array, address: string, type: string): R {
  let reply: unknown;
  try {
    reply = decode(data);
  } catch (err) {
    throw new VbError(ErrorCode.Unexpected, `malformed reply from ${address} to ${type}`, { cause: err });
  }
  if (!isReply(reply)) throw new VbError(ErrorCode.Unexpected, `malformed reply from ${address} to ${type}`);
  if (reply.ok) return reply.body as R;
  throw VbError.fromWire(reply.error);
}

function requestFailure(err: unknown, address: string, type: string, timeout: number): VbError {
  if (err instanceof RequestError && err.isNoResponders()) {
    return new VbError(ErrorCode.ServiceUnavailable, `no actor at ${address} (no responders) for ${type}`, {
      retriable: true,
      cause: err,
    });
  }
  if (err instanceof TimeoutError || (err instanceof Error && err.cause instanceof TimeoutError)) {
    return new VbError(ErrorCode.Timeout, `${type} to ${address} timed out after ${timeout} ms`, {
      retriable: true,
      cause: err,
    });
  }
  return new VbError(ErrorCode.ServiceUnavailable, `${type} to ${address} failed: ${String(err)}`, {
    retriable: true,
    cause: err,
  });
}
