/**
 * Timestamps for datacoord's answers come from rootcoord's TSO and nowhere else: a time from the local
 * clock could be behind a timestamp the TSO already gave out, and a read at it would miss acknowledged
 * writes. When the TSO does not answer (rootcoord absent, restarting, or refusing), datacoord asks again
 * with backoff until the request's deadline, then refuses with a retriable error.
 */
import { ErrorCode, VbError } from "../../protocol/errors.ts";

export interface TsoRetry {
  /** first pause between asks (doubling up to `maxMs`) */
  minMs: number;
  maxMs: number;
  /** an ask is not started unless it has at least this long before the deadline */
  minAskMs: number;
}

const DEFAULT_RETRY: TsoRetry = { minMs: 50, maxMs: 1_000, minAskMs: 100 };

/**
 * Asks `alloc` (given the time it may take) until it answers or `deadline` (ms since the epoch) comes;
 * then throws a retriable 2 whose cause is the last failure.
 */
export async function timestampBefore(
  alloc: (timeoutMs: number) => Promise<bigint>,
  deadline: number,
  what: string,
  retry: TsoRetry = DEFAULT_RETRY,
): Promise<bigint> {
  let pause = retry.minMs;
  let attempts = 0;
  let last: unknown;
  for (;;) {
    const left = deadline - Date.now();
    if (left < retry.minAskMs) break;
    attempts++;
    try {
      return await alloc(left);
    } catch (err) {
      last = err;
    }
    const wait = Math.min(pause, deadline - Date.now() - retry.minAskMs);
    if (wait < 0) break;
    await new Promise((r) => setTimeout(r, wait));
    pause = Math.min(retry.maxMs, pause * 2);
  }
  const reason = last === undefined ? "no time was left to ask" : VbError.from(last).message;
  throw new VbError(
    ErrorCode.ServiceUnavailable,
    `${what}: rootcoord's TSO gave no timestamp before the deadline (${attempts} asks; last: ${reason}); retry once rootcoord is up`,
    { retriable: true, ...(last === undefined ? {} : { cause: last }) },
  );
}
