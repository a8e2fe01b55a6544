/**
 * The process host: one NATS connection per process, one subscription per hosted actor kind (a wildcard
 * route such as `vb.seg.n1.*`), and a serial mailbox per actor. Incoming messages are routed to the
 * mailbox of the actor whose address is the message's subject. Asks and tells between actors of one
 * host skip nats-server: the envelope's bytes go straight to the receiver's mailbox (see `ask`).
 */
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { decode, encode } from "../protocol/codec.ts";
import { isEnvelope, type Envelope, type Hop, type Reply } from "../protocol/envelope.ts";
import { ErrorCode, VbError } from "../protocol/errors.ts";
import {
  ACTOR_STOPPED,
  DeferredReply,
  DEFAULT_SUPERVISOR,
  type Actor,
  type ActorContext,
  type ActorStopped,
  isInternalType,
  type Message,
  type PipeResult,
  type Props,
  type SupervisorStrategy,
  type TellOptions,
  type Timers,
} from "./actor.ts";
import { ask, DEFAULT_ASK_TIMEOUT_MS, flushOutbox, outboxOf, PROBE_TYPE, tell, unwrapReply, type AskOptions } from "./ask.ts";
import { createLogger, type Logger } from "./logger.ts";
import { Mailbox } from "./mailbox.ts";
import { parseTraceparent, roundMs, startTrace, type TraceParent } from "./trace.ts";

/** What an asker gets back: the actor's value or its error (and the hops of a traced request). */
type Answer = ({ ok: true; value: unknown } | { ok: false; error: VbError }) & { hops?: Hop[] };

interface Item {
  msg: Message;
  /** answers the asker: encoded onto NATS, or handed over in process (a shared local ask) */
  answer?: (a: Answer) => void;
  /** an internal stop marker */
  stop?: boolean;
  /** sent by the actor itself or by the runtime: may carry an internal type */
  private?: boolean;
  /** a continuation (reenterAfter): run in the mailbox instead of `receive` */
  run?: () => unknown;
  /** the asker's trace context: the request is traced (see runtime/trace.ts) */
  trace?: TraceParent;
}

/** An answer channel that sends the encoded reply through `respond`. */
function encodedAnswer(respond: ((data: Uint8Array) => void) | undefined): ((a: Answer) => void) | undefined {
  return respond && ((a) => respond(a.ok ? replyOk(a.value, a.hops) : replyError(a.error, a.hops)));
}

const OK_EMPTY = encode({ ok: true, body: null } satisfies Reply);

function replyError(err: VbError, hops?: Hop[]): Uint8Array {
  const reply: Reply = { ok: false, error: err.toWire() };
  if (hops) reply.h = hops;
  return encode(reply);
}

function replyOk(body: unknown, hops?: Hop[]): Uint8Array {
  if ((body === undefined || body === null) && !hops) return OK_EMPTY;
  try {
    const reply: Reply = { ok: true, body: body ?? null };
    if (hops) reply.h = hops;
    return encode(reply);
  } catch (err) {
    return replyError(new VbError(ErrorCode.Unexpected, "reply could not be encoded", { cause: err }), hops);
  }
}

type CellState = "starting" | "running" | "restarting" | "stopping" | "stopped";

class ActorTimers implements Timers {
  private readonly handles = new Map<string, NodeJS.Timeout>();
  constructor(private readonly post: (type: string, body: unknown) => void) {}
  startSingle(key: string, ms: number, type: string, body?: unknown): void {
    this.cancel(key);
    const h = setTimeout(() => {
      this.handles.delete(key);
      this.post(type, body);
    }, ms);
    this.handles.set(key, h);
  }
  startPeriodic(key: string, ms: number, type: string, body?: unknown): void {
    this.cancel(key);
    this.handles.set(
      key,
      setInterval(() => this.post(type, body), ms),
    );
  }
  cancel(key: string): void {
    const h = this.handles.get(key);
    if (h) {
      clearTimeout(h);
      this.handles.delete(key);
    }
  }
  isActive(key: string): boolean {
    return this.handles.has(key);
  }
  cancelAll(): void {
    for (const h of this.handles.values()) clearTimeout(h);
    this.handles.clear();
  }
}

/** One hosted actor: its instance, mailbox, timers and supervision record. */
class ActorCell implements ActorContext {
  readonly address: string;
  readonly parent: string | undefined;
  readonly log: Logger;
  readonly timers: ActorTimers;
  restarts = 0;
  state: CellState = "starting";
  /** requests handled and failed, and the time spent handling them (for discovery's STATS) */
  readonly stats = { requests: 0, errors: 0, lastError: "", processingMs: 0 };
  private readonly kids = new Set<string>();
  private instance: Actor;
  private readonly mailbox: Mailbox<Item>;
  private readonly strategy: SupervisorStrategy;
  private readonly crashTimes: number[] = [];
  private stopped: Promise<void>;
  private resolveStopped!: () => void;

  constructor(
    private readonly host: ActorHost,
    readonly props: Props,
  ) {
    this.address = props.address;
    this.parent = props.parent;
    this.strategy = { ...DEFAULT_SUPERVISOR, ...props.supervisor };
    this.log = host.log.child({ actor: props.address, ...props.logFields });
    this.timers = new ActorTimers((type, body) => this.self(type, body));
    this.mailbox = new Mailbox((item) => this.handle(item));
    this.stopped = new Promise((r) => (this.resolveStopped = r));
    this.instance = props.create();
  }

  get nc(): NatsConnection {
    return this.host.nc;
  }

  async start(): Promise<void> {
    this.mailbox.suspend();
    try {
      this.instance.ctx = this;
      await this.instance.preStart();
      this.state = "running";
      this.mailbox.resume();
    } catch (err) {
      this.crashed(err, "preStart");
    }
  }

  deliver(item: Item): void {
    if (!item.private && isInternalType(item.msg.type)) {
      // a request like any other for discovery's counts (errors never outnumber requests)
      const error = VbError.invalid(`${item.msg.type} is internal to ${this.address}: only the actor itself sends it`);
      this.stats.requests++;
      this.stats.errors++;
      this.stats.lastError = error.message;
      item.answer?.({ ok: false, error });
      if (!item.answer) this.log.warn({ type: item.msg.type }, "refused an internal message sent from outside the actor");
      return;
    }
    if (this.state === "stopping" || this.state === "stopped") {
      item.answer?.({ ok: false, error: new VbError(ErrorCode.ServiceUnavailable, `actor ${this.address} is stopping`, { retriable: true }) });
      return;
    }
    this.mailbox.post(item);
  }

  get queued(): number {
    return this.mailbox.size;
  }

  /** Handles one item; synchronous when the actor's `receive` is, so replies leave in the same tick. */
  private handle(item: Item): PromiseLike<void> | void {
    if (item.stop) return this.finish("stopped");
    const { msg } = item;
    if (msg.deadline > 0 && Date.now() > msg.deadline) {
      this.log.debug({ type: msg.type }, "dropped a message past its deadline");
      return;
    }
    if (!item.private) this.stats.requests++;
    const t0 = item.private ? 0 : performance.now();
    if (item.trace) this.beginHop(item, t0);
    let result: unknown;
    try {
      result = item.run ? item.run() : this.instance.receive(msg);
    } catch (err) {
      this.timed(item, t0);
      this.failed(item, err);
      return;
    }
    if (isThenable(result)) {
      return result.then(
        (value) => {
          this.timed(item, t0);
          this.succeeded(item, value);
        },
        (err: unknown) => {
          this.timed(item, t0);
          this.failed(item, err);
        },
      );
    }
    this.timed(item, t0);
    this.succeeded(item, result);
  }

  /**
   * A traced request: its hop's span starts (as of its arrival) under the asker's, the actor sees the
   * hop as `msg.trace`, and the answer ends the span and carries this hop and those it collected.
   */
  private beginHop(item: Item, handledAt: number): void {
    const { msg } = item;
    const receivedAt = msg.receivedAt ?? handledAt;
    const t = startTrace(msg.type, item.trace, { "vectorbus.actor": this.address, ...(this.host.nodeId ? { "vectorbus.node": this.host.nodeId } : {}) }, { startedAt: receivedAt });
    msg.trace = t;
    const queueMs = roundMs(handledAt - receivedAt);
    const answer = item.answer;
    item.answer = (a) => {
      const end = performance.now();
      t.span.setAttribute("vectorbus.queue_ms", queueMs);
      t.end(a.ok ? undefined : a.error, end);
      const hop: Hop = { actor: this.address, type: msg.type, span: t.spanId, parent: t.parentSpanId, queueMs, ms: roundMs(end - receivedAt) };
      answer?.({ ...a, hops: [hop, ...t.hops] });
    };
  }

  /** Adds a request's time in `receive` (not its deferred work) to the actor's processing time. */
  private timed(item: Item, t0: number): void {
    if (!item.private) this.stats.processingMs += performance.now() - t0;
  }

  private succeeded(item: Item, result: unknown): void {
    if (result instanceof DeferredReply) {
      const answer = item.answer;
      const type = item.msg.type;
      result.work.then(
        (value) => answer?.({ ok: true, value }),
        (err: unknown) => {
          const e = VbError.from(err);
          if (e.code === ErrorCode.Unexpected) this.log.error({ err, type }, "deferred work failed");
          if (!item.private) {
            this.stats.errors++;
            this.stats.lastError = e.message;
          }
          answer?.({ ok: false, error: e });
        },
      );
      return;
    }
    item.answer?.({ ok: true, value: result });
  }

  private failed(item: Item, err: unknown): void {
    if (!item.private) {
      this.stats.errors++;
      this.stats.lastError = errText(err);
    }
    if (err instanceof VbError) {
      item.answer?.({ ok: false, error: err });
      return;
    }
    item.answer?.({
      ok: false,
      error: new VbError(ErrorCode.Unexpected, `actor ${this.address} failed on ${item.msg.type}: ${errText(err)}`, { cause: err }),
    });
    this.crashed(err, item.msg.type);
  }

  /** Supervision: restart with backoff, or stop for good after too many crashes inside the window. */
  private crashed(err: unknown, during: string): void {
    const now = Date.now();
    this.crashTimes.push(now);
    while (this.crashTimes.length > 0 && now - this.crashTimes[0]! > this.strategy.withinMs) this.crashTimes.shift();
    this.timers.cancelAll();
    if (this.crashTimes.length > this.strategy.maxRestarts) {
      this.log.error({ err, during, crashes: this.crashTimes.length }, "actor failed too often; stopping it");
      this.mailbox.suspend();
      void this.finish("failed", err);
      return;
    }
    this.state = "restarting";
    this.mailbox.suspend();
    const n = this.crashTimes.length;
    const backoff = Math.min(this.strategy.maxBackoffMs, this.strategy.minBackoffMs * 2 ** (n - 1));
    this.log.warn({ err, during, restartIn: backoff, crashes: n }, "actor crashed; restarting");
    const old = this.instance;
    setTimeout(() => {
      if (this.state !== "restarting") return;
      void (async () => {
        try {
          await old.postStop();
        } catch (e) {
          this.log.warn({ err: e }, "postStop failed during restart");
        }
        this.restarts++;
        try {
          this.instance = this.props.create();
        } catch (e) {
          this.crashed(e, "create");
          return;
        }
        await this.start();
      })();
    }, backoff);
  }

  /** Graceful stop: what is queued before the stop is handled first. */
  requestStop(): Promise<void> {
    if (this.state === "stopped") return Promise.resolve();
    if (this.state !== "stopping") {
      if (this.state === "restarting" || this.state === "starting") {
        this.mailbox.clear();
        void this.finish("stopped");
      } else {
        this.state = "stopping";
        this.mailbox.post({ msg: { type: "", body: null, replyable: false, deadline: 0 }, stop: true });
      }
    }
    return this.stopped;
  }

  private async finish(reason: "stopped" | "failed", err?: unknown): Promise<void> {
    if (this.state === "stopped") return;
    this.state = "stopped";
    this.timers.cancelAll();
    for (const rest of this.mailbox.clear()) {
      rest.answer?.({ ok: false, error: new VbError(ErrorCode.ServiceUnavailable, `actor ${this.address} stopped`, { retriable: true }) });
    }
    // children stop before their parent's postStop (Proto.Actor's order)
    await Promise.all([...this.kids].map((a) => this.host.stopActor(a).catch(() => undefined)));
    this.kids.clear();
    try {
      await this.instance.postStop();
    } catch (e) {
      this.log.warn({ err: e }, "postStop failed");
    }
    this.host.removeCell(this);
    if (this.parent) {
      const note: ActorStopped = { address: this.address, reason, ...(err ? { error: errText(err) } : {}) };
      try {
        this.host.notifyParent(this.parent, note);
      } catch (e) {
        this.log.warn({ err: e }, "could not tell the parent that the actor stopped");
      }
    }
    this.resolveStopped();
  }

  /** Posts a private message (from the actor itself or the runtime) to this mailbox. */
  post(type: string, body: unknown): void {
    if (this.state === "stopped") return;
    this.mailbox.post({ msg: { type, body, replyable: false, deadline: 0 }, private: true });
  }

  /** A child of this actor stopped for good. */
  childStopped(note: ActorStopped): void {
    this.kids.delete(note.address);
    this.post(ACTOR_STOPPED, note);
  }

  /** @internal a child spawned at this actor's address as parent */
  adopt(address: string): void {
    this.kids.add(address);
  }

  // ---- ActorContext ----
  tell(address: string, type: string, body?: unknown, opts?: TellOptions): void {
    this.host.tell(address, type, body, opts);
  }
  ask<R = unknown>(address: string, type: string, body?: unknown, opts?: AskOptions): Promise<R> {
    return this.host.ask<R>(address, type, body, opts);
  }
  self(type: string, body?: unknown): void {
    this.post(type, body);
  }
  reenterAfter<T, R>(
    work: Promise<T>,
    then: (value: T) => R | Promise<R>,
    onError?: (err: unknown) => R | Promise<R>,
  ): DeferredReply<Awaited<R>> {
    // a continuation belongs to the instance that started the work: one restarted meanwhile drops it
    const instance = this.instance;
    const reply = new Promise<Awaited<R>>((resolve, reject) => {
      const continueWith = (run: () => R | Promise<R>) => {
        if (this.state === "stopped") {
          reject(new VbError(ErrorCode.ServiceUnavailable, `actor ${this.address} stopped`, { retriable: true }));
          return;
        }
        const item: Item = {
          msg: { type: "actor.Continue", body: null, replyable: false, deadline: 0 },
          private: true,
          run: () => {
            if (this.instance !== instance) {
              reject(new VbError(ErrorCode.ServiceUnavailable, `actor ${this.address} restarted before its work came back`, { retriable: true }));
              return;
            }
            // what the continuation throws answers the ask; a throw that is not a VbError is also a crash
            const fail = (err: unknown) => {
              reject(err);
              if (!(err instanceof VbError)) throw err;
            };
            let out: R | Promise<R>;
            try {
              out = run();
            } catch (err) {
              return fail(err);
            }
            // a continuation that defers its answer (ctx.reenter) frees the mailbox at once
            if (out instanceof DeferredReply) {
              (out.work as Promise<Awaited<R>>).then(resolve, reject);
              return;
            }
            // the mailbox waits for an async continuation, as it does for an async receive
            if (isThenable(out)) return Promise.resolve(out).then(resolve, fail);
            resolve(out as Awaited<R>);
          },
        };
        this.mailbox.post(item);
      };
      work.then(
        (value) => continueWith(() => then(value)),
        (err: unknown) =>
          continueWith(() => {
            if (onError) return onError(err);
            throw err;
          }),
      );
    });
    return new DeferredReply(reply);
  }
  async spawn(props: Omit<Props, "parent">): Promise<string> {
    if (this.state === "stopping" || this.state === "stopped") {
      throw new VbError(ErrorCode.ServiceUnavailable, `actor ${this.address} is stopping: it starts no child`, { retriable: true });
    }
    this.kids.add(props.address);
    try {
      return await this.host.spawn({ ...props, parent: this.address });
    } catch (err) {
      this.kids.delete(props.address);
      throw err;
    }
  }
  stopChild(address: string): Promise<void> {
    if (!this.kids.has(address)) return Promise.resolve();
    return this.host.stopActor(address);
  }
  children(): ReadonlySet<string> {
    return this.kids;
  }
  tellChild(address: string, type: string, body?: unknown): void {
    if (!this.kids.has(address)) throw new VbError(ErrorCode.ParameterInvalid, `${address} is not a child of ${this.address}`);
    queueMicrotask(() => this.host.postPrivate(address, type, body));
  }
  pipeToSelf<T>(work: Promise<T>, type: string): void {
    work.then(
      (value) => this.self(type, { ok: true, value } satisfies PipeResult<T>),
      (error: unknown) => this.self(type, { ok: false, error } satisfies PipeResult<T>),
    );
  }
  stop(): void {
    void this.requestStop();
  }
  reenter<T>(work: Promise<T>): DeferredReply<T> {
    return new DeferredReply(work);
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === "object" && v !== null && typeof (v as PromiseLike<unknown>).then === "function";
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** An actor as discovery shows it. */
export interface HostedActor {
  address: string;
  kind: string;
  /** the subscription it is reached through (a wildcard shared by its kind) */
  route: string;
  queue?: string;
  parent?: string;
  state: string;
  info: Record<string, string>;
  requests: number;
  errors: number;
  lastError: string;
  /** time spent in `receive` on requests (ms) */
  processingMs: number;
}

/** The kind of an actor by its address: the token after the prefix (`vb.seg.n1.7` → `seg`). */
function kindOf(address: string): string {
  return address.split(".")[1] ?? address;
}

export interface HostOptions {
  /** The process's node id, for logs and discovery. */
  nodeId?: string;
  log?: Logger;
}

export class ActorHost implements AsyncDisposable {
  readonly log: Logger;
  readonly nodeId: string | undefined;
  private readonly cells = new Map<string, ActorCell>();
  /** kinds named for addresses whose Props give none (see `setKind`) */
  private readonly kinds = new Map<string, string>();
  private readonly routes = new Map<string, { sub: Subscription; members: number }>();
  private closing = false;

  constructor(
    readonly nc: NatsConnection,
    opts: HostOptions = {},
  ) {
    this.nodeId = opts.nodeId;
    this.log = opts.log ?? createLogger(opts.nodeId ? { node: opts.nodeId } : {});
  }

  /**
   * Names the kind discovery shows for the actor at `address` when its Props name none (for spawn
   * functions that do not set one). Holds for every actor spawned at the address from now on.
   */
  setKind(address: string, kind: string): void {
    this.kinds.set(address, kind);
  }

  /** Starts an actor at its address. The address must not be taken in this process. */
  async spawn(props: Props): Promise<string> {
    if (this.closing) throw new VbError(ErrorCode.ServiceUnavailable, "the host is stopping", { retriable: true });
    if (this.cells.has(props.address)) {
      throw new VbError(ErrorCode.ParameterInvalid, `an actor already lives at ${props.address}`);
    }
    const cell = new ActorCell(this, props);
    this.cells.set(props.address, cell);
    if (props.parent) this.cells.get(props.parent)?.adopt(props.address);
    this.addRoute(props.route ?? props.address, props.queue);
    await cell.start();
    return props.address;
  }

  has(address: string): boolean {
    return this.cells.has(address);
  }

  /** The actors hosted here, for discovery: address, kind, what they show, requests served. */
  actors(): HostedActor[] {
    const out: HostedActor[] = [];
    for (const c of this.cells.values()) {
      if (c.state === "stopped") continue;
      let info: Record<string, string> = {};
      try {
        info = c.props.describe?.() ?? {};
      } catch (err) {
        info = { error: errText(err) };
      }
      out.push({
        address: c.address,
        kind: c.props.kind ?? this.kinds.get(c.address) ?? kindOf(c.address),
        route: c.props.route ?? c.address,
        ...(c.props.queue ? { queue: c.props.queue } : {}),
        ...(c.parent ? { parent: c.parent } : {}),
        state: c.state,
        info,
        requests: c.stats.requests,
        errors: c.stats.errors,
        lastError: c.stats.lastError,
        processingMs: c.stats.processingMs,
      });
    }
    return out;
  }

  /** @internal posts a private message to a local actor (a parent's to its child) */
  postPrivate(address: string, type: string, body: unknown): void {
    this.cells.get(address)?.post(type, body);
  }

  /** Tells a parent that its child stopped: privately when the parent lives here. */
  notifyParent(parent: string, note: ActorStopped): void {
    const cell = this.cells.get(parent);
    if (cell) {
      queueMicrotask(() => cell.childStopped(note));
      return;
    }
    tell(this.nc, parent, ACTOR_STOPPED, note);
  }

  addresses(): string[] {
    return [...this.cells.keys()];
  }

  /** Stops one actor gracefully: queued messages are handled first. */
  async stopActor(address: string): Promise<void> {
    const cell = this.cells.get(address);
    if (cell) await cell.requestStop();
  }

  tell(address: string, type: string, body?: unknown, opts: TellOptions = {}): void {
    if (!this.isLocal(address)) {
      tell(this.nc, address, type, body);
      return;
    }
    if (opts.share) {
      queueMicrotask(() => this.deliverLocal(address, (cell) => cell.deliver({ msg: { type, body, replyable: false, deadline: 0, receivedAt: performance.now() } })));
      return;
    }
    const bytes = encode({ t: type, d: 0, b: body });
    queueMicrotask(() => this.deliverLocal(address, (cell) => this.dispatch(cell, bytes, undefined)));
  }

  /**
   * Asks an actor. One hosted in this process gets the message without a trip through nats-server: the
   * same envelope bytes are decoded into its mailbox on a later microtask (so the asker and the actor
   * never share objects, and the actor never runs inside the asker's call), and its reply comes back
   * the same way. Deadlines, timeouts and errors are those of an ask over NATS. With `share`, the body
   * and the reply are handed over without encoding (see AskOptions).
   */
  ask<R = unknown>(address: string, type: string, body?: unknown, opts: AskOptions = {}): Promise<R> {
    if (!this.isLocal(address)) return ask<R>(this.nc, address, type, body, opts);
    const timeout = opts.timeoutMs ?? DEFAULT_ASK_TIMEOUT_MS;
    const deadline = Date.now() + timeout;
    let bytes: Uint8Array | undefined;
    if (!opts.share) {
      const env: Envelope = { t: type, d: deadline, b: body };
      if (opts.trace) env.c = opts.trace.traceparent;
      bytes = encode(env);
    }
    const trace = opts.trace;
    return new Promise<R>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        settled = true;
        reject(new VbError(ErrorCode.Timeout, `${type} to ${address} timed out after ${timeout} ms`, { retriable: true }));
      }, timeout);
      const settle = (fn: () => R) => {
        if (settled) return; // late: the ask already timed out
        settled = true;
        clearTimeout(timer);
        try {
          resolve(fn());
        } catch (err) {
          reject(err);
        }
      };
      if (bytes) {
        const respond = (data: Uint8Array) => settle(() => unwrapReply<R>(data, address, type, trace));
        queueMicrotask(() =>
          this.deliverLocal(address, (cell) => this.dispatch(cell, bytes, respond), (err) => respond(replyError(err))),
        );
        return;
      }
      // shared: the body and the answer are handed over as they are
      const answer = (a: Answer) =>
        settle(() => {
          if (trace && a.hops) trace.collect(a.hops);
          // the error the asker would read off the wire: code, message, retriable
          if (!a.ok) throw VbError.fromWire(a.error.toWire());
          return a.value as R;
        });
      queueMicrotask(() =>
        this.deliverLocal(
          address,
          (cell) => {
            const item: Item = { msg: { type, body, replyable: true, deadline, receivedAt: performance.now() }, answer };
            if (trace) item.trace = trace;
            cell.deliver(item);
          },
          (error) => answer({ ok: false, error }),
        ),
      );
    });
  }

  /** Whether an actor hosted here takes messages at `address`. */
  private isLocal(address: string): boolean {
    return !this.closing && this.cells.has(address);
  }

  /**
   * Hands a local message to the cell at `address`, looked up again (the actor may have stopped, or been
   * replaced, since the message was sent); without one, `missing` gets the error an empty address gives.
   */
  private deliverLocal(address: string, deliver: (cell: ActorCell) => void, missing?: (err: VbError) => void): void {
    const cell = this.cells.get(address);
    if (cell) deliver(cell);
    else missing?.(new VbError(ErrorCode.ServiceUnavailable, `no actor at ${address}`, { retriable: true }));
  }

  /** Graceful stop: stop taking messages, let every mailbox drain, stop every actor. */
  async stop(opts: { closeConnection?: boolean } = {}): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const { sub } of this.routes.values()) sub.unsubscribe();
    this.routes.clear();
    await Promise.all([...this.cells.values()].map((c) => c.requestStop()));
    flushOutbox(this.nc);
    if (opts.closeConnection && !this.nc.isClosed()) await this.nc.drain();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /** @internal */
  removeCell(cell: ActorCell): void {
    if (this.cells.get(cell.address) !== cell) return;
    this.cells.delete(cell.address);
    const key = cell.props.route ?? cell.props.address;
    const route = this.routes.get(key);
    if (route && --route.members <= 0) {
      route.sub.unsubscribe();
      this.routes.delete(key);
    }
  }

  private addRoute(subject: string, queue: string | undefined): void {
    const existing = this.routes.get(subject);
    if (existing) {
      existing.members++;
      return;
    }
    const sub = this.nc.subscribe(subject, {
      ...(queue ? { queue } : {}),
      callback: (err, msg) => {
        if (err) {
          this.log.error({ err, subject }, "subscription failed");
          return;
        }
        this.route(msg);
      },
    });
    this.routes.set(subject, { sub, members: 1 });
  }

  private route(m: Msg): void {
    const reply = m.reply;
    const respond = reply
      ? (data: Uint8Array) =>
          outboxOf(this.nc).publish(reply, data, undefined, (err) => this.log.warn({ err, subject: m.subject }, "a reply could not be sent"))
      : undefined;
    const cell = this.cells.get(m.subject);
    if (!cell) {
      respond?.(
        replyError(new VbError(ErrorCode.ServiceUnavailable, `no actor at ${m.subject}`, { retriable: true })),
      );
      return;
    }
    this.dispatch(cell, m.data, respond);
  }

  /** Decodes an envelope into the cell's mailbox; what cannot be read is answered with 1100. */
  private dispatch(cell: ActorCell, data: Uint8Array, respond: ((data: Uint8Array) => void) | undefined): void {
    let env: unknown;
    try {
      env = decode(data);
    } catch (err) {
      respond?.(replyError(VbError.from(err)));
      return;
    }
    if (!isEnvelope(env)) {
      respond?.(
        replyError(new VbError(ErrorCode.ParameterInvalid, "malformed request: not a Vectorbus envelope {t, d, b}")),
      );
      return;
    }
    if (env.t === PROBE_TYPE) {
      // answered here, not in the mailbox: it asks whether this process still holds the actor, not
      // whether the actor is idle (runtime/ask.ts probes an address whose answer is late)
      respond?.(OK_EMPTY);
      return;
    }
    const item: Item = {
      msg: { type: env.t, body: env.b, replyable: respond !== undefined, deadline: env.d, receivedAt: performance.now() },
      answer: encodedAnswer(respond),
    };
    if (env.c !== undefined) {
      const parent = parseTraceparent(env.c);
      if (parent) item.trace = parent;
    }
    cell.deliver(item);
  }
}
