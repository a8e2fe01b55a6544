/**
 * Request traces across actors. A traced request carries its W3C `traceparent` in the envelope (`c`);
 * the host that receives it starts a hop: an OpenTelemetry span (tracer `vectorbus`, a child of the
 * asker's span) and a `Trace` the actor hands to the asks it makes for the request
 * (`ctx.ask(..., { trace: msg.trace })`). The reply brings back the hops (`h`: actor, type, mailbox
 * wait, time to answer) of the whole subtree, so the first actor of a request knows where its time went.
 *
 * Spans go through `@opentelemetry/api`: without a registered tracer provider they cost next to nothing
 * and ids are made here; with one (any SDK, any exporter) they are recorded under its ids. An untraced
 * message carries no context and costs nothing here.
 */
import { randomFillSync } from "node:crypto";
import { INVALID_SPAN_CONTEXT, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags, type Attributes, type Span, type Tracer } from "@opentelemetry/api";
import type { Hop } from "../protocol/envelope.ts";

export type { Hop } from "../protocol/envelope.ts";

/** The tracer every span of Vectorbus comes from: the global provider's, asked each time so that a provider registered (or removed) later is followed. */
export function tracer(): Tracer {
  return trace.getTracer("vectorbus");
}

/** A remote parent: what a traceparent says. */
export interface TraceParent {
  readonly traceId: string;
  readonly spanId: string;
  readonly flags: number;
}

const SAMPLED = TraceFlags.SAMPLED;
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$/;
const ZERO_TRACE = "0".repeat(32);
const ZERO_SPAN = "0".repeat(16);

/** Reads a W3C traceparent (`00-<32 hex>-<16 hex>-<2 hex>`); undefined for anything else. */
export function parseTraceparent(value: unknown): TraceParent | undefined {
  if (typeof value !== "string") return undefined;
  const m = TRACEPARENT.exec(value.trim().toLowerCase());
  if (!m || m[1] === "ff" || m[2] === ZERO_TRACE || m[3] === ZERO_SPAN) return undefined;
  return { traceId: m[2]!, spanId: m[3]!, flags: parseInt(m[4]!, 16) };
}

export function formatTraceparent(p: TraceParent): string {
  return `00-${p.traceId}-${p.spanId}-${(p.flags & 0xff).toString(16).padStart(2, "0")}`;
}

/** One hop of a traced request in this process: its span, and the hops its own asks brought back. */
export class Trace implements TraceParent {
  /** hops reported by the actors this hop asked (each reply's `h`) */
  readonly hops: Hop[] = [];
  private ended = false;

  constructor(
    readonly traceId: string,
    readonly spanId: string,
    readonly flags: number,
    /** the span id of the asker (empty for a root) */
    readonly parentSpanId: string,
    readonly span: Span,
    /** performance.now() when the hop began */
    readonly startedAt: number,
  ) {}

  get traceparent(): string {
    return formatTraceparent(this);
  }

  /** Adds the hops of a reply. */
  collect(hops: unknown): void {
    if (!Array.isArray(hops)) return;
    for (const h of hops) if (isHop(h)) this.hops.push(h);
  }

  /** Ends the span (once), with the error when the hop failed. */
  end(error?: unknown, endTime?: number): void {
    if (this.ended) return;
    this.ended = true;
    if (error !== undefined) {
      this.span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
    }
    this.span.end(endTime === undefined ? undefined : performance.timeOrigin + endTime);
  }
}

function isHop(h: unknown): h is Hop {
  return typeof h === "object" && h !== null && typeof (h as Hop).actor === "string" && typeof (h as Hop).ms === "number";
}

/** Random bytes drawn from a pool refilled 4 KiB at a time (one randomBytes call costs microseconds). */
const pool = Buffer.alloc(4096);
let poolUsed = pool.length;

function randomHex(bytes: number): string {
  if (poolUsed + bytes > pool.length) {
    randomFillSync(pool);
    poolUsed = 0;
  }
  const hex = pool.toString("hex", poolUsed, poolUsed + bytes);
  poolUsed += bytes;
  return hex;
}

/** Span ids of hops that record no span: this process's prefix and a counter (unique, and cheap). */
const LOCAL_PREFIX = randomHex(4);
let localSeq = 0;

function localSpanId(): string {
  localSeq = (localSeq + 1) >>> 0;
  return LOCAL_PREFIX + localSeq.toString(16).padStart(8, "0");
}

/** What a hop of an unsampled trace holds for a span: nothing is recorded. */
const UNRECORDED = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/**
 * Starts a hop: a span named `name` under `parent` (a root span without one) that began at `startedAt`
 * (performance.now(); default now). Without a tracer provider the span records nothing and the hop gets
 * ids of its own, so hops still tell apart. Under an unsampled parent (flags without the sampled bit,
 * as a tracer provider's parent-based sampler would record nothing either) no span is started at all:
 * the hop only times itself, which is what the slow-query log needs.
 */
export function startTrace(
  name: string,
  parent: TraceParent | undefined,
  attributes: Attributes = {},
  opts: { startedAt?: number; kind?: SpanKind } = {},
): Trace {
  const startedAt = opts.startedAt ?? performance.now();
  if (parent && (parent.flags & SAMPLED) === 0) return new Trace(parent.traceId, localSpanId(), parent.flags, parent.spanId, UNRECORDED, startedAt);
  const ctx = parent
    ? trace.setSpanContext(ROOT_CONTEXT, { traceId: parent.traceId, spanId: parent.spanId, traceFlags: parent.flags, isRemote: true })
    : ROOT_CONTEXT;
  const span = tracer().startSpan(name, { kind: opts.kind ?? SpanKind.SERVER, attributes, startTime: performance.timeOrigin + startedAt }, ctx);
  const sc = span.spanContext();
  const own = trace.isSpanContextValid(sc) && sc.spanId !== parent?.spanId;
  const traceId = own ? sc.traceId : (parent?.traceId ?? randomHex(16));
  const spanId = own ? sc.spanId : localSpanId();
  const flags = own ? sc.traceFlags : (parent?.flags ?? 0);
  return new Trace(traceId, spanId, flags, parent?.spanId ?? "", span, startedAt);
}

/** Rounds a duration in ms to 0.01 ms for logs and hops. */
export function roundMs(ms: number): number {
  return Math.round(ms * 100) / 100;
}
