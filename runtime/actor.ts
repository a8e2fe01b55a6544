/**
 * The actor contract. An actor handles one message at a time in `receive`; what it returns is the reply
 * to an ask, what it throws is the error reply. A VbError is a refusal (the actor is fine); anything else
 * is a crash, and the actor's supervisor restarts it.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "./logger.ts";
import type { AskOptions } from "./ask.ts";
import type { Trace } from "./trace.ts";

export interface Message<B = unknown> {
  /** `<kind>.<Verb>` */
  type: string;
  body: B;
  /** true when the sender waits for a reply (an ask) */
  replyable: boolean;
  /** deadline in ms since the epoch; 0 = none */
  deadline: number;
  /** performance.now() when the host took the message (requests from other actors and NATS) */
  receivedAt?: number;
  /**
   * The hop of a traced request (its envelope carried a traceparent): pass it on as `{ trace }` in
   * the asks made for the request, so the trace follows them and their hops come back.
   */
  trace?: Trace;
}

/**
 * Private messages: an actor's own (`ctx.self`, timers, `pipeToSelf`, continuations) and the runtime's
 * (`actor.*`, such as a child's `actor.Stopped`). Their types are `<kind>.internal.<Verb>` or `actor.<Verb>`;
 * one that arrives from any other sender (over NATS, or an ask or tell from another actor) is refused
 * with 1100 before the actor sees it, so no client can reach an actor's internals.
 */
export function isInternalType(type: string): boolean {
  return type.startsWith("actor.") || type.includes(".internal.");
}

export interface Timers {
  /** Delivers `type`/`body` to the actor's own mailbox once after `ms`. Replaces a timer with the same key. */
  startSingle(key: string, ms: number, type: string, body?: unknown): void;
  /** Delivers `type`/`body` every `ms`. Replaces a timer with the same key. */
  startPeriodic(key: string, ms: number, type: string, body?: unknown): void;
  cancel(key: string): void;
  isActive(key: string): boolean;
  cancelAll(): void;
}

export interface TellOptions {
  /**
   * When the actor lives in the sender's process, hand the body over as it is (no encoding): for bulk
   * data to a child (a delegator's rows to its growing segments). The sender must not change the body
   * afterwards. Messages told or asked in process keep their order either way.
   */
  share?: boolean;
}

/** The outcome of work started with `pipeToSelf`, delivered as the body of a message. */
export type PipeResult<T> = { ok: true; value: T } | { ok: false; error: unknown };

export interface ActorContext {
  readonly address: string;
  readonly parent: string | undefined;
  readonly nc: NatsConnection;
  readonly log: Logger;
  readonly timers: Timers;
  /** Number of times this actor was restarted by its supervisor. */
  readonly restarts: number;
  tell(address: string, type: string, body?: unknown, opts?: TellOptions): void;
  ask<R = unknown>(address: string, type: string, body?: unknown, opts?: AskOptions): Promise<R>;
  /** Runs long work off the mailbox and reports its outcome back as a message `type` with a PipeResult. */
  pipeToSelf<T>(work: Promise<T>, type: string): void;
  /** Posts a message to this actor's own mailbox without going through NATS. */
  self(type: string, body?: unknown): void;
  /**
   * Runs `then` back inside this actor's mailbox once `work` settles (Proto.Actor's ReenterAfter): the
   * mailbox serves other messages meanwhile, and `then` may change the actor's state. When `work` fails,
   * `onError` runs in the mailbox instead (without it the error is the answer). What the continuation
   * returns or throws answers the current ask when `receive` returns the DeferredReply this gives.
   */
  reenterAfter<T, R>(
    work: Promise<T>,
    then: (value: T) => R | Promise<R>,
    onError?: (err: unknown) => R | Promise<R>,
  ): DeferredReply<Awaited<R>>;
  /**
   * Starts a child actor: its parent is this actor, it stops (before this actor's `postStop`) when this
   * actor stops, and this actor gets `actor.Stopped` when it stops for good.
   */
  spawn(props: Omit<Props, "parent">): Promise<string>;
  /** Stops a child gracefully (queued messages first); resolves when it has stopped. */
  stopChild(address: string): Promise<void>;
  /** The addresses of this actor's children that are alive. */
  children(): ReadonlySet<string>;
  /**
   * Tells a child privately: the message may carry an internal type (`<kind>.internal.<Verb>`) that the
   * child takes from its parent alone, and its body is handed over as it is (the parent must not change
   * it afterwards). Ordered with every other message this actor sends the child.
   */
  tellChild(address: string, type: string, body?: unknown): void;
  /** Stops this actor after the current message: what is queued is handled first. */
  stop(): void;
  /**
   * Replies to the current ask when `work` settles, without holding the mailbox: `receive` returns
   * `ctx.reenter(promise)` and the next message is handled at once. For stateless front ends (the
   * proxy) whose requests must not queue behind each other. `work` must not touch the actor's state.
   */
  reenter<T>(work: Promise<T>): DeferredReply<T>;
}

/** A reply that comes later: see `ActorContext.reenter`. */
export class DeferredReply<T = unknown> {
  constructor(readonly work: Promise<T>) {}
}

export abstract class Actor {
  /** Set by the host before `preStart`. */
  ctx!: ActorContext;
  preStart(): Promise<void> | void {}
  abstract receive(msg: Message): Promise<unknown> | unknown;
  postStop(): Promise<void> | void {}
}

export interface SupervisorStrategy {
  /** Restarts allowed inside `withinMs` before the actor is stopped for good. */
  maxRestarts: number;
  withinMs: number;
  /** Backoff before the n-th restart: min(maxBackoffMs, minBackoffMs * 2^(n-1)). */
  minBackoffMs: number;
  maxBackoffMs: number;
}

export const DEFAULT_SUPERVISOR: SupervisorStrategy = {
  maxRestarts: 5,
  withinMs: 60_000,
  minBackoffMs: 50,
  maxBackoffMs: 5_000,
};

export interface Props {
  /** The actor's address: a NATS subject. */
  address: string;
  create: () => Actor;
  /**
   * The subscription this actor is reached through: a wildcard shared by all actors of its kind in this
   * process (`vb.seg.n1.*`). Defaults to the address itself.
   */
  route?: string;
  /** Queue group of the route (several processes share the load of one address). */
  queue?: string;
  /** Address told `actor.Stopped` when this actor stops for good. */
  parent?: string;
  supervisor?: Partial<SupervisorStrategy>;
  /** Extra log fields. */
  logFields?: Record<string, unknown>;
  /** The actor's kind (`querynode`, `segment`, ...) for discovery; defaults to the address's second token. */
  kind?: string;
  /** What discovery shows of the actor beside its address (string values: collection, rows, ...). */
  describe?: () => Record<string, string>;
}

/** Told to a parent when its child stops for good. */
export interface ActorStopped {
  address: string;
  reason: "stopped" | "failed";
  error?: string;
}
export const ACTOR_STOPPED = "actor.Stopped";
