/**
 * JetStream plumbing shared by the DML log, the feed and KV meta: one JetStream client and manager per
 * connection, idempotent stream and consumer set-up, the payload limit, the read of "the last message of
 * every subject matching a filter", and the mapping of client errors to VbError.
 *
 * Everything here works on nats-server 2.9.10: one `filter_subject` per consumer (no `filter_subjects`),
 * no stream metadata or compression, no per-message TTL.
 */
import {
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  JetStreamError,
  jetstream,
  jetstreamManager,
  type ConsumerConfig,
  type ConsumerInfo,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type StreamConfig,
  type StreamInfo,
} from "@nats-io/jetstream";
import { InvalidArgumentError, TimeoutError, type NatsConnection } from "@nats-io/transport-node";
import { ErrorCode, VbError } from "../protocol/errors.ts";
import type { Logger } from "./logger.ts";

export type { ConsumerConfig, ConsumerInfo, JetStreamClient, JetStreamManager, StreamConfig, StreamInfo };

/** A stream configuration: the name and whatever else the caller cares about. */
export type StreamSpec = Partial<StreamConfig> & { name: string };

/** A named consumer configuration (durable or named ephemeral); one filter subject at most. */
export type ConsumerSpec = Partial<ConsumerConfig> & ({ durable_name: string } | { name: string });

export interface JetStreamHandles {
  js: JetStreamClient;
  jsm: JetStreamManager;
}

const handles = new WeakMap<NatsConnection, Promise<JetStreamHandles>>();

/**
 * The JetStream client and manager of a connection, made once and shared. Fails with a clear error when
 * the server has no JetStream.
 */
export function jetstreamOf(nc: NatsConnection): Promise<JetStreamHandles> {
  let p = handles.get(nc);
  if (!p) {
    p = jetstreamManager(nc).then(
      (jsm) => ({ js: jsm.jetstream(), jsm }),
      (err: unknown) => {
        handles.delete(nc);
        throw new VbError(
          ErrorCode.ServiceUnavailable,
          `JetStream is not available on the NATS server: ${errorText(err)}; start nats-server with JetStream enabled (-js)`,
          { cause: err, retriable: true },
        );
      },
    );
    handles.set(nc, p);
  }
  return p;
}

/** A JetStream client without the manager's account check (for publishing on a hot path). */
export function jetstreamClientOf(nc: NatsConnection, opts: { timeoutMs?: number } = {}): JetStreamClient {
  return jetstream(nc, opts.timeoutMs === undefined ? {} : { timeout: opts.timeoutMs });
}

export const nanosFromMs = (ms: number): number => Math.round(ms * 1_000_000);
export const msFromNanos = (ns: number): number => ns / 1_000_000;

// ---------------------------------------------------------------------------------------------------
// errors

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The JetStream API error code (10071 wrong last sequence, 10059 stream not found ...), if any. */
export function jsApiCode(err: unknown): number | undefined {
  return err instanceof JetStreamApiError ? err.code : undefined;
}

export function isStreamNotFound(err: unknown): boolean {
  return jsApiCode(err) === JetStreamApiCodes.StreamNotFound || (err instanceof Error && err.message === "stream not found");
}

/**
 * A pull with `max_bytes` ended because its next message did not fit what was left of it (409): after
 * some messages that is the end of the batch; before any, the message is larger than the whole pull.
 * The server gives no other code for it, so the description is compared (as the client library does).
 */
export function isPullFullByBytes(err: unknown): boolean {
  // a JetStreamStatusError (not exported by the client's main module): a JetStreamError with the status code
  return err instanceof JetStreamError && (err as { code?: unknown }).code === 409 && err.message === "message size exceeds maxbytes";
}

export function isConsumerNotFound(err: unknown): boolean {
  return (
    jsApiCode(err) === JetStreamApiCodes.ConsumerNotFound || (err instanceof Error && err.message === "consumer not found")
  );
}

/** An expected-last-sequence check failed: someone wrote the subject (or key) since the caller read it. */
export function isWrongLastSequence(err: unknown): boolean {
  const code = jsApiCode(err);
  return code === JetStreamApiCodes.StreamWrongLastSequence || code === JetStreamApiCodes.StreamWrongLastSequenceUnknown;
}

function isPayloadTooLarge(err: unknown): boolean {
  if (err instanceof InvalidArgumentError && /max_payload/.test(err.message)) return true;
  // the stream's max_msg_size: "message size exceeds maximum allowed" (10054)
  return jsApiCode(err) === 10054 || (err instanceof Error && /message size exceeds maximum/.test(err.message));
}

/** Wraps an error of a publish into a VbError that says what happened to which subject. */
export function publishError(err: unknown, subject: string, bytes: number): VbError {
  if (err instanceof VbError) return err;
  if (isPayloadTooLarge(err)) return payloadTooLarge(subject, bytes, undefined, err);
  if (err instanceof TimeoutError || (err instanceof Error && err.cause instanceof TimeoutError)) {
    return new VbError(
      ErrorCode.Timeout,
      `publish to "${subject}" got no JetStream ack in time: the message may or may not be stored; retry with the same msgId to stay idempotent`,
      { cause: err, retriable: true },
    );
  }
  if (err instanceof Error && err.name === "JetStreamNotEnabled") {
    return new VbError(
      ErrorCode.MqTopicNotFound,
      `no stream stores "${subject}": create the stream (ensureStream / ensureChannel) before publishing`,
      { cause: err },
    );
  }
  return new VbError(ErrorCode.MqInternal, `publish to "${subject}" failed: ${errorText(err)}`, {
    cause: err,
    retriable: true,
  });
}

function payloadTooLarge(subject: string, bytes: number, limit: number | undefined, cause?: unknown): VbError {
  const lim = limit === undefined ? "the server's limit" : `the server's max_payload of ${limit} bytes`;
  return new VbError(
    ErrorCode.ParameterTooLarge,
    `message of ${bytes} bytes to "${subject}" exceeds ${lim}: split it into smaller messages or raise max_payload in the nats-server config`,
    cause === undefined ? {} : { cause },
  );
}

// ---------------------------------------------------------------------------------------------------
// payload limit

/** The largest message the server takes (max_payload from its INFO), headers included. */
export function maxPayloadOf(nc: NatsConnection): number {
  return nc.info?.max_payload ?? 1024 * 1024;
}

/** Headroom left for the JetStream headers we may add (msg id, expected sequence). */
const HEADER_ALLOWANCE = 256;

/** Refuses, before sending, a payload the server would refuse (an error the caller can act on, not a hang). */
export function assertPayloadFits(nc: NatsConnection, subject: string, payload: Uint8Array): void {
  const limit = maxPayloadOf(nc);
  if (payload.byteLength + HEADER_ALLOWANCE > limit) throw payloadTooLarge(subject, payload.byteLength, limit);
}

// ---------------------------------------------------------------------------------------------------
// streams

/** Stream settings nats-server 2.9 cannot change after creation. */
const STREAM_IMMUTABLE = new Set(["storage", "retention", "max_consumers", "mirror", "first_seq", "allow_msg_counter"]);

/**
 * Creates the stream, or checks that the existing one has the asked settings and updates those that may
 * change (subjects, limits, ...). Only the fields present in `cfg` are compared, so server defaults never
 * cause an update. A setting that cannot change (storage, retention, ...) is a VbError 1100 that says so.
 */
export async function ensureStream(jsm: JetStreamManager, cfg: StreamSpec): Promise<StreamInfo> {
  rejectUnsupportedStreamFields(cfg);
  for (let attempt = 0; ; attempt++) {
    let existing: StreamInfo | undefined;
    try {
      existing = await jsm.streams.info(cfg.name);
    } catch (err) {
      if (!isStreamNotFound(err)) throw streamError(err, cfg.name, "read");
    }
    if (!existing) {
      try {
        return await jsm.streams.add(cfg);
      } catch (err) {
        // another process created it between our info and add: compare with what it made
        if (attempt === 0 && /already in use/.test(errorText(err))) continue;
        throw streamError(err, cfg.name, "create");
      }
    }
    const changed = diffConfig(cfg, existing.config as unknown as Record<string, unknown>, ["name"]);
    if (changed.length === 0) return existing;
    const fixed = changed.filter((k) => STREAM_IMMUTABLE.has(k));
    if (fixed.length > 0) {
      throw new VbError(
        ErrorCode.ParameterInvalid,
        `stream "${cfg.name}" exists with ${describe(fixed, existing.config)} but ${describe(fixed, cfg)} was asked; ` +
          `these cannot change: use the existing settings, or delete the stream (its data is lost) and create it again`,
      );
    }
    const update: Record<string, unknown> = {};
    for (const k of changed) update[k] = (cfg as Record<string, unknown>)[k];
    // The server caps the duplicate window at max_age when it creates a stream, but refuses an update
    // that lowers max_age below the window: lower the window along with it.
    const maxAge = cfg.max_age ?? 0;
    if (changed.includes("max_age") && maxAge > 0 && cfg.duplicate_window === undefined && existing.config.duplicate_window > maxAge) {
      update.duplicate_window = maxAge;
    }
    try {
      return await jsm.streams.update(cfg.name, update);
    } catch (err) {
      throw streamError(err, cfg.name, `update (${changed.join(", ")}) of`);
    }
  }
}

function rejectUnsupportedStreamFields(cfg: StreamSpec): void {
  for (const k of ["metadata", "compression", "subject_transform", "allow_msg_ttl", "subject_delete_marker_ttl"] as const) {
    if (cfg[k] !== undefined) {
      throw VbError.invalid(`stream "${cfg.name}": "${k}" needs nats-server 2.10 or later; this project targets 2.9`);
    }
  }
}

function streamError(err: unknown, name: string, what: string): VbError {
  if (err instanceof VbError) return err;
  const text = errorText(err);
  if (/subjects overlap/.test(text)) {
    return new VbError(
      ErrorCode.ParameterInvalid,
      `cannot ${what} stream "${name}": its subjects overlap another stream's (${text}); every subject belongs to one stream, pick disjoint subjects`,
      { cause: err },
    );
  }
  return new VbError(ErrorCode.MqInternal, `cannot ${what} stream "${name}": ${text}`, { cause: err, retriable: true });
}

// ---------------------------------------------------------------------------------------------------
// consumers

/** Consumer settings nats-server 2.9 can change on an existing consumer. */
const CONSUMER_UPDATABLE = new Set([
  "description",
  "ack_wait",
  "max_deliver",
  "sample_freq",
  "max_ack_pending",
  "max_waiting",
  "headers_only",
  "max_batch",
  "max_expires",
  "inactive_threshold",
  "backoff",
  "max_bytes",
  "num_replicas",
]);

/**
 * Creates a named (durable or ephemeral-with-name) consumer, or checks the existing one: equal settings
 * pass, updatable settings are updated, others are a VbError 1100. One `filter_subject` per consumer:
 * nats-server 2.9 has no `filter_subjects`.
 */
export async function ensureConsumer(jsm: JetStreamManager, stream: string, cfg: ConsumerSpec): Promise<ConsumerInfo> {
  const name = ("durable_name" in cfg && cfg.durable_name) || ("name" in cfg && cfg.name) || "";
  if (!name) throw VbError.invalid(`consumer on stream "${stream}": give it a durable_name or a name`);
  if (cfg.filter_subjects !== undefined) {
    throw VbError.invalid(
      `consumer "${name}" on stream "${stream}": nats-server 2.9 takes one filter_subject per consumer, not filter_subjects; make one consumer per subject`,
    );
  }
  let existing: ConsumerInfo | undefined;
  try {
    existing = await jsm.consumers.info(stream, name);
  } catch (err) {
    if (isStreamNotFound(err)) {
      throw new VbError(ErrorCode.MqTopicNotFound, `stream "${stream}" not found: create it before its consumer "${name}"`, {
        cause: err,
      });
    }
    if (!isConsumerNotFound(err)) throw consumerError(err, stream, name, "read");
  }
  if (!existing) {
    try {
      return await jsm.consumers.add(stream, cfg);
    } catch (err) {
      throw consumerError(err, stream, name, "create");
    }
  }
  const changed = diffConfig(cfg, existing.config as unknown as Record<string, unknown>, ["name", "durable_name"]);
  if (changed.length === 0) return existing;
  const fixed = changed.filter((k) => !CONSUMER_UPDATABLE.has(k));
  if (fixed.length > 0) {
    throw new VbError(
      ErrorCode.ParameterInvalid,
      `consumer "${name}" on stream "${stream}" exists with ${describe(fixed, existing.config)} but ${describe(fixed, cfg)} was asked; ` +
        `these cannot change: delete the consumer (its position is lost) and create it again, or use another name`,
    );
  }
  const update: Record<string, unknown> = {};
  for (const k of changed) update[k] = (cfg as Record<string, unknown>)[k];
  try {
    return await jsm.consumers.update(stream, name, update);
  } catch (err) {
    throw consumerError(err, stream, name, `update (${changed.join(", ")}) of`);
  }
}

function consumerError(err: unknown, stream: string, name: string, what: string): VbError {
  if (err instanceof VbError) return err;
  return new VbError(ErrorCode.MqInternal, `cannot ${what} consumer "${name}" on stream "${stream}": ${errorText(err)}`, {
    cause: err,
    retriable: true,
  });
}

// ---------------------------------------------------------------------------------------------------
// config comparison

/** The keys of `want` (but `skip`) whose values differ from `have`; an absent field equals its zero value. */
function diffConfig(want: object, have: Record<string, unknown>, skip: string[]): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(want)) {
    if (v === undefined || skip.includes(k)) continue;
    if (!sameValue(v, have[k])) out.push(k);
  }
  return out;
}

function sameValue(want: unknown, have: unknown): boolean {
  if (have === undefined || have === null) have = zeroLike(want);
  if (Array.isArray(want) && Array.isArray(have)) {
    if (want.length !== have.length) return false;
    const a = [...want].map((x) => JSON.stringify(x)).sort();
    const b = [...have].map((x) => JSON.stringify(x)).sort();
    return a.every((x, i) => x === b[i]);
  }
  if (typeof want === "object" && want !== null && typeof have === "object" && have !== null) {
    const w = want as Record<string, unknown>;
    const h = have as Record<string, unknown>;
    return Object.keys(w).every((k) => w[k] === undefined || sameValue(w[k], h[k]));
  }
  return want === have;
}

function zeroLike(v: unknown): unknown {
  switch (typeof v) {
    case "boolean":
      return false;
    case "number":
      return 0;
    case "string":
      return "";
    default:
      return Array.isArray(v) ? [] : undefined;
  }
}

function describe(keys: string[], cfg: object): string {
  const c = cfg as Record<string, unknown>;
  return keys.map((k) => `${k}=${JSON.stringify(c[k])}`).join(", ");
}

// ---------------------------------------------------------------------------------------------------
// last message per subject

export interface LastPerSubjectOptions {
  /** Deliver headers only (with the payload size header), for listing subjects. */
  headersOnly?: boolean;
}

/**
 * Reads the last message of every subject matching `filter` (one filter subject) and returns them in
 * stream order: a snapshot as of the call.
 */
export async function readLastPerSubject(
  js: JetStreamClient,
  stream: string,
  filter: string,
  opts: LastPerSubjectOptions = {},
): Promise<JsMsg[]> {
  const out: JsMsg[] = [];
  const follower = await followLastPerSubject(js, stream, filter, (m) => void out.push(m), opts);
  try {
    await Promise.race([follower.ready, follower.done]);
  } finally {
    await follower.stop();
  }
  await follower.ready;
  return out;
}

/** The subjects of `stream` that match `filter` and hold a message now. */
export async function subjectsOf(js: JetStreamClient, stream: string, filter: string): Promise<Set<string>> {
  const jsm = await js.jetstreamManager(false);
  const si = await jsm.streams.info(stream, { subjects_filter: filter });
  return new Set(Object.keys(si.state.subjects ?? {}));
}

export interface FollowOptions extends LastPerSubjectOptions {
  /** Start with the last message of every subject (default), or only with messages stored from now on. */
  start?: "lastPerSubject" | "new";
  /** Where a failing handler is reported; the message is skipped and following goes on. */
  log?: Logger;
}

/** `initial` is true for the messages of the snapshot taken when following started. */
export type FollowHandler = (msg: JsMsg, initial: boolean) => void | Promise<void>;

export interface Follower extends AsyncDisposable {
  /**
   * Resolves once the last message (or a newer one) of every subject that existed when following started
   * has been delivered (at once if there was none, or with start "new"). Rejects if following fails first.
   */
  readonly ready: Promise<void>;
  /** Settles when following ends: resolves after `stop()`, rejects if the consumer fails. */
  readonly done: Promise<void>;
  /** Stops delivering; resolves once the handler in progress (if any) has returned. */
  stop(): Promise<void>;
}

/**
 * Follows the subjects matching `filter` with an ordered consumer: first the last message of each (in
 * stream order), then every new message, one at a time (an async handler is awaited before the next).
 *
 * nats-server 2.9.10 pitfall: a `last_per_subject` consumer computes its list of last sequences when it
 * is created; if one of those messages is replaced (max_msgs_per_subject) before it is delivered, the
 * server delivers the next stored message in its place, so one message can come several times, and the
 * consumer's pending counts do not say when the snapshot is complete. Deliveries stay in non-decreasing
 * sequence order, so a message at or below the last delivered sequence is dropped here; and the subjects
 * that exist are listed before the consumer is made: the snapshot is complete once each of them has been
 * delivered (a replaced one comes later with its newer value). Pending counts are not trusted for
 * that; when one says nothing is pending, the subjects are listed again, and a listed subject that no
 * longer exists (removed by age) stops being waited for.
 */
/** What a follower has on its way from the server at once, at most (messages). */
const FOLLOW_MAX_MESSAGES = 128;

export async function followLastPerSubject(
  js: JetStreamClient,
  stream: string,
  filter: string,
  handler: FollowHandler,
  opts: FollowOptions = {},
): Promise<Follower> {
  const fromNew = opts.start === "new";
  const missing = fromNew ? new Set<string>() : await subjectsOf(js, stream, filter);
  const consumer = await js.consumers.get(stream, {
    filter_subjects: filter,
    deliver_policy: fromNew ? DeliverPolicy.New : DeliverPolicy.LastPerSubject,
    ...(opts.headersOnly ? { headers_only: true } : {}),
  });
  let isReady = false;
  let resolveReady!: () => void;
  let rejectReady!: (err: unknown) => void;
  const ready = new Promise<void>((res, rej) => {
    resolveReady = res;
    rejectReady = rej;
  });
  ready.catch(() => undefined); // a caller that never awaits `ready` must not see an unhandled rejection
  const markReady = (): void => {
    if (!isReady) {
      isReady = true;
      resolveReady();
    }
  };
  if (missing.size === 0) markReady();

  let rechecking = false;
  const recheck = async (): Promise<void> => {
    if (rechecking) return;
    rechecking = true;
    try {
      const now = await subjectsOf(js, stream, filter);
      for (const subject of [...missing]) if (!now.has(subject)) missing.delete(subject);
      if (missing.size === 0) markReady();
    } catch {
      // the next message that reports nothing pending tries again
    } finally {
      rechecking = false;
    }
  };

  // at most 128 messages on their way at once: a follower whose thread is busy for a while must not
  // have the server queue a feed's worth of large messages on its connection (nats-server cuts a
  // connection whose outbound queue passes max_pending off as a slow consumer)
  const messages = await consumer.consume({ max_messages: FOLLOW_MAX_MESSAGES });
  let stopped = false;
  let lastSeq = 0;
  const done = (async () => {
    try {
      for await (const m of messages) {
        if (stopped) break;
        if (m.seq > lastSeq) {
          // (a message at or below lastSeq is the 2.9 repeat described above)
          lastSeq = m.seq;
          if (!isReady) missing.delete(m.subject);
          try {
            await handler(m, !isReady);
          } catch (err) {
            opts.log?.error({ stream, subject: m.subject, err: errorText(err) }, "follower handler failed; message skipped");
          }
        }
        if (!isReady) {
          if (missing.size === 0) markReady();
          else if (m.info.pending === 0) void recheck();
        }
      }
    } catch (err) {
      rejectReady(err);
      throw err;
    } finally {
      stopped = true;
      messages.stop();
      await consumer.delete().catch(() => undefined);
    }
    if (!isReady) rejectReady(new VbError(ErrorCode.Canceled, `following "${filter}" on "${stream}" stopped before the snapshot was complete`));
  })();
  done.catch(() => undefined);

  const stop = async (): Promise<void> => {
    stopped = true;
    messages.stop();
    await done.catch(() => undefined);
  };
  return { ready, done, stop, [Symbol.asyncDispose]: stop };
}
