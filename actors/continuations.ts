/**
 * Work an actor starts off its mailbox and finishes back inside it, when no ask waits for the outcome
 * (a retry, a garbage collection, a report to a peer): `after` is the runtime's `ctx.reenterAfter` with
 * both outcomes handed to one continuation and nobody left holding a rejected reply. `backoffMs` is the
 * pause before the n-th retry.
 */
import type { ActorContext, PipeResult } from "../runtime/actor.ts";

/**
 * Runs `then` inside the actor's mailbox with the outcome of `work`. What `then` throws is handled as a
 * throw in `receive` (a VbError is dropped, anything else crashes the actor); if the actor stopped
 * meanwhile, `then` does not run. The promise it gives settles (never rejects) once `then` ran or was dropped.
 */
export function after<T>(ctx: ActorContext, work: Promise<T>, then: (outcome: PipeResult<T>) => void | Promise<void>): Promise<void> {
  return ctx
    .reenterAfter(
      work,
      (value) => then({ ok: true, value }),
      (error: unknown) => then({ ok: false, error }),
    )
    .work.then(
      () => undefined,
      () => undefined,
    );
}

/** min(maxMs, minMs · 2^retries): the pause before retrying after `retries` failures in a row. */
export function backoffMs(retries: number, minMs: number, maxMs: number): number {
  return Math.min(maxMs, minMs * 2 ** Math.min(retries, 20));
}
