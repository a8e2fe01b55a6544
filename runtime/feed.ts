/**
 * A last-value feed: a stream that keeps one message per subject (`max_msgs_per_subject: 1`). Publishers
 * (any number, each on its own subjects) state their current value; a follower first gets the latest
 * message of every subject matching its filter, learns when it has that whole snapshot (`ready`), then
 * follows new messages. Heartbeats and distributions ride on it.
 *
 * Stream and subject names come from the caller (built by protocol/subjects.ts).
 */
import { DiscardPolicy, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { ErrorCode, VbError } from "../protocol/errors.ts";
import { createLogger, type Logger } from "./logger.ts";
import {
  assertPayloadFits,
  ensureStream,
  errorText,
  followLastPerSubject,
  isStreamNotFound,
  jetstreamOf,
  nanosFromMs,
  publishError,
  readLastPerSubject,
  type Follower,
} from "./streams.ts";

export interface FeedStreamOptions {
  /** "memory" (lost with the server, fastest) or "file" (default: survives a restart of the server). */
  storage?: "memory" | "file";
  /** Remove subjects whose last message is older than this (a publisher that went away for good). */
  maxAgeMs?: number;
  maxBytes?: number;
  replicas?: number;
}

export interface FeedMessage {
  subject: string;
  data: Uint8Array;
  /** The stream sequence of the message. */
  position: bigint;
  /** When the server stored it, ms since the epoch (server clock): the age of the value. */
  timestamp: number;
  /** true for the messages of the initial snapshot, false for those that came after it. */
  initial: boolean;
}

export type FeedEntry = Omit<FeedMessage, "subject" | "initial">;

export type FeedHandler = (msg: FeedMessage) => void | Promise<void>;

/**
 * `ready` resolves once the latest message of every subject that existed when `follow` was called has
 * been delivered (at once if there was none); `done` settles when following ends.
 */
export type FeedFollower = Follower;

export class Feed {
  private readonly log: Logger;

  constructor(
    readonly nc: NatsConnection,
    opts: { log?: Logger } = {},
  ) {
    this.log = opts.log ?? createLogger({ module: "feed" });
  }

  /** Creates the feed's stream (idempotent): one message kept per subject, older ones dropped. */
  async ensure(stream: string, subjectsWildcard: string, opts: FeedStreamOptions = {}): Promise<void> {
    const { jsm } = await jetstreamOf(this.nc);
    await ensureStream(jsm, {
      name: stream,
      subjects: [subjectsWildcard],
      storage: opts.storage === "memory" ? StorageType.Memory : StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      max_msgs_per_subject: 1,
      max_bytes: opts.maxBytes ?? -1,
      max_age: opts.maxAgeMs === undefined ? 0 : nanosFromMs(opts.maxAgeMs),
      ...(opts.replicas === undefined ? {} : { num_replicas: opts.replicas }),
    });
  }

  /** Replaces the value of `subject`; resolves with its position once stored. */
  async publish(subject: string, payload: Uint8Array): Promise<bigint> {
    assertPayloadFits(this.nc, subject, payload);
    const { js } = await jetstreamOf(this.nc);
    try {
      return BigInt((await js.publish(subject, payload)).seq);
    } catch (err) {
      throw publishError(err, subject, payload.byteLength);
    }
  }

  /**
   * Delivers the latest message of every subject matching `filterSubject` (one filter; wildcards
   * allowed), then every new one, in stream order, one at a time (an async handler is awaited). A handler
   * that throws is logged and the feed goes on: the next value of that subject supersedes the bad one.
   * `headersOnly` delivers each message without its payload (empty `data`): who spoke and when, cheaply.
   */
  async follow(stream: string, filterSubject: string, onMessage: FeedHandler, opts: { headersOnly?: boolean } = {}): Promise<FeedFollower> {
    const { js } = await jetstreamOf(this.nc);
    let follower: Follower;
    try {
      follower = await followLastPerSubject(
        js,
        stream,
        filterSubject,
        (m, initial) =>
          onMessage({
            subject: m.subject,
            data: m.data,
            position: BigInt(m.seq),
            timestamp: Math.floor(m.info.timestampNanos / 1_000_000),
            initial,
          }),
        { log: this.log, ...(opts.headersOnly === true ? { headersOnly: true } : {}) },
      );
    } catch (err) {
      throw followError(err, stream, filterSubject);
    }
    const wrap = (p: Promise<void>) => p.catch((err: unknown) => Promise.reject(followError(err, stream, filterSubject)));
    const ready = wrap(follower.ready);
    const done = wrap(follower.done);
    ready.catch(() => undefined);
    done.catch(() => undefined);
    return { ready, done, stop: () => follower.stop(), [Symbol.asyncDispose]: () => follower.stop() };
  }

  /**
   * The latest message of one subject, read from the server (undefined when it holds none). A follower
   * that reads behind its feed cannot see a subject whose value is replaced faster than it catches up
   * (each value is gone before it gets there); this reads such a subject's current value directly.
   */
  async last(stream: string, subject: string): Promise<FeedEntry | undefined> {
    const { jsm } = await jetstreamOf(this.nc);
    let m;
    try {
      m = await jsm.streams.getMessage(stream, { last_by_subj: subject });
    } catch (err) {
      throw followError(err, stream, subject);
    }
    if (m === null) return undefined;
    return { data: m.data, position: BigInt(m.seq), timestamp: Date.parse(m.timestamp) };
  }

  /** The latest message of every subject matching `filterSubject`, by subject. */
  async snapshot(stream: string, filterSubject: string): Promise<Map<string, FeedEntry>> {
    const { js } = await jetstreamOf(this.nc);
    let msgs;
    try {
      msgs = await readLastPerSubject(js, stream, filterSubject);
    } catch (err) {
      throw followError(err, stream, filterSubject);
    }
    const out = new Map<string, FeedEntry>();
    for (const m of msgs) {
      out.set(m.subject, {
        data: m.data,
        position: BigInt(m.seq),
        timestamp: Math.floor(m.info.timestampNanos / 1_000_000),
      });
    }
    return out;
  }
}

function followError(err: unknown, stream: string, filter: string): VbError {
  if (err instanceof VbError) return err;
  if (isStreamNotFound(err)) {
    return new VbError(ErrorCode.MqTopicNotFound, `feed stream "${stream}" not found (following "${filter}"): create it with ensure first`, {
      cause: err,
    });
  }
  return new VbError(ErrorCode.MqInternal, `following "${filter}" on stream "${stream}" failed: ${errorText(err)}`, {
    cause: err,
    retriable: true,
  });
}
