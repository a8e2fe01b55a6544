/**
 * Request/reply over NATS with the Vectorbus envelope: `ask` sends `{t, d, b}` and waits for `{ok, ...}`
 * until its deadline; `tell` sends and forgets. Failures come back as VbError: no responders (2,
 * retriable), timeout (10001, retriable), the remote actor's own error as it sent it.
 *
 * An ask whose answer is late does not wait blindly for its deadline: its address is probed
 * (`actor.Probe`, answered by the receiving process without entering the mailbox). When the process
 * that took the request has died, NATS answers the probe at once with "no responders" and every ask
 * to that address sent before the probe fails (2, retriable) within about a second instead of at its
 * deadline, so the asker can try another replica. A probe that is answered, or late itself (a busy
 * process), changes nothing.
 */
import { createInbox, RequestError, TimeoutError, type Msg, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { decode, encode } from "../protocol/codec.ts";
import { isReply, type Envelope } from "../protocol/envelope.ts";
import { ErrorCode, VbError } from "../protocol/errors.ts";
import type { Trace } from "./trace.ts";

export const DEFAULT_ASK_TIMEOUT_MS = 10_000;

/** The message type of a liveness probe (answered by the host, never by an actor). */
export const PROBE_TYPE = "actor.Probe";
/** An ask unanswered for this long gets its address probed, */
const PROBE_AFTER_MS = 500;
/** every this often while it waits (one probe per address in flight at a time). */
const PROBE_EVERY_MS = 250;
const PROBE_TIMEOUT_MS = 2_000;
const PROBE_BYTES = encode({ t: PROBE_TYPE, d: 0, b: null } satisfies Envelope);

export interface AskOptions {
  /** How long to wait for the reply; the message carries the deadline so the receiver can drop it. */
  timeoutMs?: number;
  /**
   * When the actor lives in the asker's process, hand the body and the reply over as they are instead
   * of encoding and decoding them (reads on the hot path). Only for messages whose body the asker
   * never changes after the ask and whose reply the actor builds fresh for it, keeping no reference;
   * the receiver must not change the body. Over NATS this changes nothing.
   */
  share?: boolean;
  /**
   * The hop of a traced request this ask is made for (`msg.trace`): the envelope carries its
   * traceparent, and the hops of the reply are added to it.
   */
  trace?: Trace;
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
  if (opts.trace) env.c = opts.trace.traceparent;
  const msg = await muxOf(nc).request(address, encode(env), timeout, type);
  return unwrapReply<R>(msg.data, address, type, opts.trace);
}

interface Pending {
  resolve: (m: Msg) => void;
  reject: (e: VbError) => void;
  timer: NodeJS.Timeout;
  address: string;
  type: string;
  timeout: number;
  sentAt: number;
}

/**
 * Request/reply over one inbox subscription per connection. nats.js's own `request` builds two Error
 * objects (with stack traces) for every request, which cost about half the CPU of a small request at
 * 100 in flight; here an error is made only when one happens. "No responders" is the server's 503
 * status message on the reply subject.
 */
class RequestMux {
  private readonly prefix = createInbox();
  private readonly pending = new Map<string, Pending>();
  private readonly sub: Subscription;
  private seq = 0;
  private probeTimer: NodeJS.Timeout | undefined;
  /** addresses with a probe in flight */
  private readonly probing = new Set<string>();

  constructor(private readonly nc: NatsConnection) {
    this.sub = nc.subscribe(`${this.prefix}.*`, { callback: (err, m) => (err ? this.failAll(err) : this.onReply(m)) });
    void this.sub.closed.then(() => this.failAll(new Error("connection closed")));
    // a request or its reply in flight when the connection drops is lost (core NATS does not resend
    // it): fail those asks now, retriable, instead of at their deadlines; the connection reconnects
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === "disconnect") this.failAll(new Error("the connection to NATS was lost before the answer came (it reconnects by itself)"));
      }
    })().catch(() => undefined);
  }

  request(address: string, data: Uint8Array, timeout: number, type: string): Promise<Msg> {
    const id = (this.seq++).toString(36);
    return new Promise<Msg>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new VbError(ErrorCode.Timeout, `${type} to ${address} timed out after ${timeout} ms`, { retriable: true }));
      }, timeout);
      this.pending.set(id, { resolve, reject, timer, address, type, timeout, sentAt: Date.now() });
      if (!this.probeTimer && type !== PROBE_TYPE) {
        this.probeTimer = setInterval(() => this.probeLate(), PROBE_EVERY_MS);
        this.probeTimer.unref();
      }
      outboxOf(this.nc).publish(address, data, `${this.prefix}.${id}`, (err) => {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(requestFailure(err, address, type, timeout));
      });
    });
  }

  /** Probes the addresses of asks unanswered for PROBE_AFTER_MS (see the module's comment). */
  private probeLate(): void {
    const now = Date.now();
    let waiting = 0;
    const late = new Set<string>();
    for (const p of this.pending.values()) {
      if (p.type === PROBE_TYPE) continue;
      waiting++;
      if (now - p.sentAt >= PROBE_AFTER_MS && !this.probing.has(p.address)) late.add(p.address);
    }
    if (waiting === 0) {
      clearInterval(this.probeTimer);
      this.probeTimer = undefined;
      return;
    }
    for (const address of late) {
      this.probing.add(address);
      const sentAt = Date.now();
      this.request(address, PROBE_BYTES, PROBE_TIMEOUT_MS, PROBE_TYPE).then(
        (m) => {
          this.probing.delete(address);
          // answered by a process that no longer holds the actor (released, moved)
          let gone = false;
          try {
            unwrapReply(m.data, address, PROBE_TYPE);
          } catch (err) {
            gone = err instanceof VbError && err.code === ErrorCode.ServiceUnavailable;
          }
          if (gone) this.failGone(address, sentAt);
        },
        (err: unknown) => {
          this.probing.delete(address);
          // no responders: nobody subscribes to the address any more (its process died or left)
          if (err instanceof VbError && err.code === ErrorCode.ServiceUnavailable) this.failGone(address, sentAt);
        },
      );
    }
  }

  /** Fails the asks to `address` sent before `before`: their receiver is gone and will not answer. */
  private failGone(address: string, before: number): void {
    for (const [id, p] of this.pending) {
      if (p.address !== address || p.type === PROBE_TYPE || p.sentAt > before) continue;
      this.pending.delete(id);
      clearTimeout(p.timer);
      p.reject(
        new VbError(
          ErrorCode.ServiceUnavailable,
          `${p.type} to ${address}: the actor went away before it answered (its process stopped, or it was released or moved)`,
          { retriable: true },
        ),
      );
    }
  }

  private onReply(m: Msg): void {
    const id = m.subject.slice(this.prefix.length + 1);
    const p = this.pending.get(id);
    if (!p) return; // late: its ask already timed out
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (m.data.length === 0 && m.headers?.code === 503) {
      p.reject(new VbError(ErrorCode.ServiceUnavailable, `no actor at ${p.address} (no responders) for ${p.type}`, { retriable: true }));
      return;
    }
    p.resolve(m);
  }

  private failAll(err: unknown): void {
    clearInterval(this.probeTimer);
    this.probeTimer = undefined;
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      clearTimeout(p.timer);
      p.reject(requestFailure(err, p.address, p.type, p.timeout));
    }
  }
}

const muxes = new WeakMap<NatsConnection, RequestMux>();

function muxOf(nc: NatsConnection): RequestMux {
  let m = muxes.get(nc);
  if (!m) muxes.set(nc, (m = new RequestMux(nc)));
  return m;
}

export function tell(nc: NatsConnection, address: string, type: string, body: unknown): void {
  const env: Envelope = { t: type, d: 0, b: body };
  outboxOf(nc).publish(address, encode(env));
}

interface Outgoing {
  subject: string;
  data: Uint8Array;
  reply: string | undefined;
  onError: ((err: unknown) => void) | undefined;
}

/**
 * The messages a connection sends for asks, tells and replies, handed to nats.js together at the end of
 * the event loop's turn. nats.js writes to its socket once for what it was given within one microtask,
 * and a write to a loopback socket costs tens of microseconds of CPU (the receiver's side of TCP runs
 * in the sender's call): under load, replies and requests made in one turn share a write instead of
 * paying one each. Order is kept.
 */
class Outbox {
  private queue: Outgoing[] = [];
  private scheduled = false;

  constructor(private readonly nc: NatsConnection) {}

  publish(subject: string, data: Uint8Array, reply?: string, onError?: (err: unknown) => void): void {
    this.queue.push({ subject, data, reply, onError });
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Hands every queued message to nats.js now. */
  flush(): void {
    this.scheduled = false;
    const queue = this.queue;
    this.queue = [];
    for (const m of queue) {
      try {
        this.nc.publish(m.subject, m.data, m.reply === undefined ? undefined : { reply: m.reply });
      } catch (err) {
        m.onError?.(err);
      }
    }
  }
}

const outboxes = new WeakMap<NatsConnection, Outbox>();

export function outboxOf(nc: NatsConnection): Outbox {
  let o = outboxes.get(nc);
  if (!o) outboxes.set(nc, (o = new Outbox(nc)));
  return o;
}

/** Sends what the connection's asks, tells and replies have queued (before closing or draining it). */
export function flushOutbox(nc: NatsConnection): void {
  outboxes.get(nc)?.flush();
}

/** Decodes a reply: its body, or its error thrown; a traced ask's `trace` gets the reply's hops. */
export function unwrapReply<R>(data: Uint8Array, address: string, type: string, trace?: Trace): R {
  let reply: unknown;
  try {
    reply = decode(data);
  } catch (err) {
    throw new VbError(ErrorCode.Unexpected, `malformed reply from ${address} to ${type}`, { cause: err });
  }
  if (!isReply(reply)) throw new VbError(ErrorCode.Unexpected, `malformed reply from ${address} to ${type}`);
  if (trace && reply.h) trace.collect(reply.h);
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
