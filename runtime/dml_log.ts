/**
 * The DML log: channels are JetStream streams (file storage, limits retention), a channel's messages are
 * those of one subject, and a message's position is its stream sequence (a bigint). Readers consume one
 * subject from a position with an ordered consumer (one filter subject, start at position + 1); after a
 * restart a reader passes its last applied position again, so resuming has no gap and no duplicate.
 *
 * Reading is flow-controlled: a reader has one pull out at a time, bounded in bytes (`max_bytes`: the
 * read-ahead, or one message when a message is larger), so the server never has more than that queued for
 * it, and the next pull leaves only once the reader has taken what came before; between messages it gives
 * the event loop a turn, so a backlog read at start never starves timers, asks and heartbeats. Readers
 * may use a connection of their own (`readNc`), so bulk data never queues ahead of control traffic.
 *
 * Stream and subject names come from the caller (built by protocol/subjects.ts).
 */
import {
  DeliverPolicy,
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  type Consumer,
  type ConsumerMessages,
  type JsMsg,
} from "@nats-io/jetstream";
import { headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import { setImmediate as nextTurn, setTimeout as delay } from "node:timers/promises";
import { ErrorCode, VbError } from "../protocol/errors.ts";
import { createLogger, type Logger } from "./logger.ts";
import { DmlLagMeter } from "./metrics.ts";
import {
  assertPayloadFits,
  ensureStream,
  errorText,
  isPullFullByBytes,
  isStreamNotFound,
  jetstreamOf,
  maxPayloadOf,
  nanosFromMs,
  publishError,
  type JetStreamClient,
  type JetStreamManager,
} from "./streams.ts";

export interface ChannelOptions {
  /** The stream's byte limit; the oldest messages go first when it is reached. Default: unlimited. */
  maxBytes?: number;
  /** The age after which messages are removed. Default: kept forever. */
  maxAgeMs?: number;
  /** Replicas in a JetStream cluster (1, 3 or 5). Default 1. */
  replicas?: number;
  /** The window in which a repeated msgId is recognised as a duplicate. Default: the server's (2 min). */
  duplicateWindowMs?: number;
}

export interface DmlPublishOptions {
  /** An id that makes a retried publish idempotent within the stream's duplicate window. */
  msgId?: string;
  /** Refuse the publish unless the subject's last position is this one (0n: the subject has no message). */
  expectedLastPosition?: bigint;
  /** How long to wait for the ack. */
  timeoutMs?: number;
}

export interface DmlBatchItem {
  subject: string;
  payload: Uint8Array;
  msgId?: string;
}

export interface DmlBatchOptions {
  /** Publishes awaiting their ack at once. Default 128. */
  maxInFlight?: number;
  timeoutMs?: number;
}

export interface DmlMessage {
  /** The stream sequence of the message: its position in the channel. */
  position: bigint;
  subject: string;
  data: Uint8Array;
  /** When the server stored it, ms since the epoch (server clock). */
  timestamp: number;
  /** Messages of the subject after this one that the reader has yet to read (the consumer's pending count). */
  pending: number;
}

export type DmlHandler = (msg: DmlMessage) => void | Promise<void>;

export interface DmlReadOptions {
  /**
   * Bytes the client pulls ahead of the reader (the server sends no more until the reader has taken
   * them). Default `DEFAULT_READ_AHEAD_BYTES`; a message larger than that is pulled alone.
   */
  readAheadBytes?: number;
  /**
   * Read on the control connection instead of the reader connection: for small streams whose messages
   * must not wait behind bulk data (events).
   */
  control?: boolean;
  /**
   * Start even when the log no longer holds position + 1 (removed by its age or size limits). By default
   * that is an error, because the reader would silently skip messages.
   */
  allowGap?: boolean;
  /**
   * Who reads (`datanode dn1`, a delegator's address): `consume` reports the reader's lag under this
   * name and the subject (`vectorbus_dml_consumer_lag_*`) while it runs. Without it, no lag is reported.
   */
  reader?: string;
}

/** A stream of the messages of one subject, in order, until `stop()`. */
export interface DmlReader extends AsyncIterable<DmlMessage>, AsyncDisposable {
  stop(): Promise<void>;
}

/** A running `consume`: the handler is called for each message, one at a time, until `stop()`. */
export interface DmlConsumption extends AsyncDisposable {
  /** The position of the last message whose handler completed (the start position before any). */
  readonly position: bigint;
  /** Stops delivering; resolves once the handler in progress (if any) has finished. */
  stop(): Promise<void>;
  /** Settles when consumption ends: resolves after `stop()`, rejects with the handler's or the consumer's error. */
  readonly done: Promise<void>;
}

export const DEFAULT_MAX_IN_FLIGHT = 128;
/** Bytes a reader pulls ahead by default (a pull for one larger message goes up to the server's max_payload). */
export const DEFAULT_READ_AHEAD_BYTES = 4 * 1024 * 1024;
/** How long a pull waits at the end of the channel for new messages (they are delivered as they come). */
const PULL_EXPIRES_MS = 5_000;
const PULL_RETRY_MAX_MS = 2_000;
/**
 * Messages in one byte-bounded pull: the client library asks for 100 (it takes no count with `max_bytes`).
 * Were that to change, a reader would only be slower: a pull left early is complete on the server's side,
 * and one left too early makes the ordered consumer start again after the last message it delivered.
 */
const PULL_BATCH = 100;
/** Room for a message's subject and headers beyond its payload in a pull's byte count. */
const MESSAGE_OVERHEAD_BYTES = 64 * 1024;
/** A reader gives the event loop a turn after this long or this many bytes without one. */
const YIELD_AFTER_MS = 10;
const YIELD_AFTER_BYTES = 4 * 1024 * 1024;

export class DmlLog {
  private readonly log: Logger;
  private readonly maxInFlight: number;
  private readonly readAheadBytes: number;
  /** The connection readers consume on (the control connection `nc` unless given one of its own). */
  readonly readNc: NatsConnection;

  constructor(
    readonly nc: NatsConnection,
    opts: { maxInFlight?: number; log?: Logger; readNc?: NatsConnection; readAheadBytes?: number } = {},
  ) {
    this.log = opts.log ?? createLogger({ module: "dml_log" });
    this.maxInFlight = opts.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    this.readNc = opts.readNc ?? nc;
    this.readAheadBytes = opts.readAheadBytes ?? DEFAULT_READ_AHEAD_BYTES;
  }

  /** Creates the channel's stream (idempotent): file storage, limits retention, the given limits. */
  async ensureChannel(stream: string, subjectsWildcard: string, opts: ChannelOptions = {}): Promise<void> {
    const { jsm } = await jetstreamOf(this.nc);
    await ensureStream(jsm, {
      name: stream,
      subjects: [subjectsWildcard],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      max_bytes: opts.maxBytes ?? -1,
      max_age: opts.maxAgeMs === undefined ? 0 : nanosFromMs(opts.maxAgeMs),
      ...(opts.replicas === undefined ? {} : { num_replicas: opts.replicas }),
      ...(opts.duplicateWindowMs === undefined ? {} : { duplicate_window: nanosFromMs(opts.duplicateWindowMs) }),
    });
  }

  /** Publishes one message and returns its position once the server has acknowledged it. */
  async publish(subject: string, payload: Uint8Array, opts: DmlPublishOptions = {}): Promise<bigint> {
    assertPayloadFits(this.nc, subject, payload);
    const { js } = await jetstreamOf(this.nc);
    return publishOne(js, subject, payload, opts);
  }

  /**
   * Publishes many messages with at most `maxInFlight` acks outstanding and returns their positions in
   * the order of `items`. Messages to one subject are stored in the order given. If one fails, the batch
   * fails with the index of that item; the items before it may be stored (retry with msgIds to stay
   * idempotent).
   */
  async publishBatch(items: readonly DmlBatchItem[], opts: DmlBatchOptions = {}): Promise<bigint[]> {
    for (const it of items) assertPayloadFits(this.nc, it.subject, it.payload);
    const { js } = await jetstreamOf(this.nc);
    const limit = Math.max(1, opts.maxInFlight ?? this.maxInFlight);
    const positions = new Array<bigint>(items.length);
    let next = 0;
    const failed: { first?: { index: number; err: unknown } } = {};
    const recordFailure = (index: number, err: unknown): void => {
      if (failed.first === undefined || index < failed.first.index) failed.first = { index, err };
    };
    // `limit` workers, each taking the next item in order; publishes are sent in index order because a
    // worker takes its index and sends synchronously up to the first await.
    const worker = async (): Promise<void> => {
      while (failed.first === undefined && next < items.length) {
        const i = next++;
        const it = items[i]!;
        try {
          positions[i] = await publishOne(js, it.subject, it.payload, {
            ...(it.msgId === undefined ? {} : { msgId: it.msgId }),
            ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
          });
        } catch (err) {
          recordFailure(i, err);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
    const failure = failed.first;
    if (failure !== undefined) {
      const cause = VbError.from(failure.err);
      throw new VbError(
        cause.code,
        `publishBatch failed at item ${failure.index} of ${items.length}: ${cause.message}; earlier items may be stored`,
        { cause: failure.err, retriable: cause.retriable },
      );
    }
    return positions;
  }

  /** The position of the last message on `subject` in `stream`, 0n when it has none. */
  async lastPosition(stream: string, subject: string): Promise<bigint> {
    const { jsm } = await jetstreamOf(this.nc);
    try {
      const m = await jsm.streams.getMessage(stream, { last_by_subj: subject });
      return m === null ? 0n : BigInt(m.seq);
    } catch (err) {
      throw readError(err, stream, subject);
    }
  }

  /**
   * The messages of `subject` after `fromPosition`, in order, following new ones as they come. Iterate it
   * once; `stop()` (or leaving the loop) ends it.
   */
  async iterate(stream: string, subject: string, fromPosition: bigint, opts: DmlReadOptions = {}): Promise<DmlReader> {
    const nc = opts.control === true ? this.nc : this.readNc;
    const { js, jsm } = await jetstreamOf(nc);
    await checkStart(jsm, stream, subject, fromPosition, opts.allowGap === true);
    let consumer: Consumer;
    try {
      consumer = await js.consumers.get(stream, {
        filter_subjects: subject,
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: Number(fromPosition + 1n),
      });
    } catch (err) {
      throw readError(err, stream, subject);
    }
    // One pull at a time, of at most `readAhead` bytes, the next only once this one's messages are taken:
    // the server never holds more than that for this reader, nor does the client. (The client's own
    // `consume` refills with pulls whose byte budget can be smaller than the next message, which the
    // server refuses with a 409 that stalls it until its heartbeat check: tens of seconds.)
    const readAhead = opts.readAheadBytes ?? this.readAheadBytes;
    const largest = maxPayloadOf(nc) + MESSAGE_OVERHEAD_BYTES;
    let batch: ConsumerMessages | undefined;
    let stopped = false;
    let last = fromPosition;
    const log = this.log;
    const stop = async (): Promise<void> => {
      if (stopped) return;
      stopped = true;
      batch?.stop();
      await Promise.resolve()
        .then(() => consumer.delete())
        .catch(() => undefined);
    };
    async function* generate(): AsyncGenerator<DmlMessage> {
      let ask = readAhead;
      let failures = 0;
      try {
        while (!stopped && !nc.isClosed()) {
          let got = 0;
          try {
            batch = await consumer.fetch({ max_bytes: ask, expires: PULL_EXPIRES_MS });
            if (stopped) {
              // stopped while the pull was being made: end it now rather than when it expires
              batch.stop();
              break;
            }
            for await (const m of batch) {
              if (stopped) break;
              got++;
              const msg = toDmlMessage(m);
              // the ordered consumer already guarantees order; this guards the contract if it ever did not
              if (msg.position <= last || !subjectMatches(subject, msg.subject)) {
                log.warn({ stream, subject, position: String(msg.position), last: String(last) }, "skipped an out-of-order message");
                continue;
              }
              last = msg.position;
              yield msg;
              if (stopped) break;
              // the pull is complete, but the client only ends it when its byte count is used up too
              if (got >= PULL_BATCH) break;
            }
            ask = readAhead;
            failures = 0;
          } catch (err) {
            if (stopped || nc.isClosed()) break;
            if (isPullFullByBytes(err)) {
              // the batch is complete; or, with nothing in it, the next message is larger than the pull
              if (got > 0) ask = readAhead;
              else if (ask < largest) ask = Math.min(ask * 2, largest);
              else throw readError(err, stream, subject);
              failures = 0;
              continue;
            }
            if (isStreamNotFound(err)) throw readError(err, stream, subject);
            // a disconnect, a missed heartbeat: the ordered consumer resumes after the last message on the next pull
            failures++;
            log.warn({ stream, subject, position: String(last), failures, err: errorText(err) }, "DML pull failed; pulling again");
            await delay(Math.min(PULL_RETRY_MAX_MS, 100 * 2 ** Math.min(failures, 8)));
          }
        }
      } finally {
        await stop();
      }
    }
    const gen = generate();
    return {
      [Symbol.asyncIterator]: () => gen,
      stop,
      [Symbol.asyncDispose]: stop,
    };
  }

  /**
   * Calls `handler` for each message of `subject` after `fromPosition`, one at a time and in order (an
   * async handler is awaited before the next message), following new ones until `stop()`. A handler that
   * throws ends the consumption: `done` rejects with its error, and the caller resumes from `position`.
   */
  async consume(
    stream: string,
    subject: string,
    fromPosition: bigint,
    handler: DmlHandler,
    opts: DmlReadOptions = {},
  ): Promise<DmlConsumption> {
    const reader = await this.iterate(stream, subject, fromPosition, opts);
    let position = fromPosition;
    let stopping = false;
    const lag = opts.reader === undefined ? undefined : new DmlLagMeter(opts.reader, subject);
    const done = (async () => {
      let turn = performance.now();
      let bytes = 0;
      for await (const msg of reader) {
        if (stopping) break;
        await handler(msg);
        position = msg.position;
        lag?.read(msg.data.byteLength, msg.pending);
        if (stopping) break;
        // messages already pulled come one after another without a turn of the event loop: give it one
        bytes += msg.data.byteLength;
        if (bytes >= YIELD_AFTER_BYTES || performance.now() - turn >= YIELD_AFTER_MS) {
          await nextTurn();
          turn = performance.now();
          bytes = 0;
        }
      }
    })();
    void done.finally(() => lag?.close()).catch(() => undefined);
    done.catch((err: unknown) => {
      this.log.warn({ stream, subject, position: String(position), err: errorText(err) }, "DML consumption ended by an error");
    });
    const stop = async (): Promise<void> => {
      stopping = true;
      await reader.stop();
      await done.catch(() => undefined);
    };
    return {
      get position() {
        return position;
      },
      stop,
      done,
      [Symbol.asyncDispose]: stop,
    };
  }
}

async function publishOne(js: JetStreamClient, subject: string, payload: Uint8Array, opts: DmlPublishOptions): Promise<bigint> {
  try {
    const pa = await js.publish(subject, payload, {
      ...(opts.msgId === undefined ? {} : { msgID: opts.msgId }),
      ...(opts.timeoutMs === undefined ? {} : { timeout: opts.timeoutMs }),
      ...(opts.expectedLastPosition === undefined ? {} : { headers: expectLastHeader(opts.expectedLastPosition) }),
    });
    return BigInt(pa.seq);
  } catch (err) {
    if (opts.expectedLastPosition !== undefined && /wrong last sequence/.test(errorText(err))) {
      throw new VbError(
        ErrorCode.Unexpected,
        `"${subject}" has moved past position ${opts.expectedLastPosition}: another writer published to it; read its last position and retry`,
        { cause: err, retriable: true },
      );
    }
    throw publishError(err, subject, payload.byteLength);
  }
}

function expectLastHeader(pos: bigint) {
  const h = natsHeaders();
  h.set("Nats-Expected-Last-Subject-Sequence", pos.toString());
  return h;
}

/** true when `subject` matches `filter` (a subject, or a wildcard with `*` and a final `>`). */
function subjectMatches(filter: string, subject: string): boolean {
  if (filter === subject) return true;
  const f = filter.split(".");
  const s = subject.split(".");
  for (let i = 0; i < f.length; i++) {
    if (f[i] === ">") return s.length > i;
    if (i >= s.length || (f[i] !== "*" && f[i] !== s[i])) return false;
  }
  return f.length === s.length;
}

function toDmlMessage(m: JsMsg): DmlMessage {
  return {
    position: BigInt(m.seq),
    subject: m.subject,
    data: m.data,
    timestamp: Math.floor(m.info.timestampNanos / 1_000_000),
    pending: m.info.pending,
  };
}

/** Refuses a start position whose successor the stream no longer holds (unless allowed). */
async function checkStart(
  jsm: JetStreamManager,
  stream: string,
  subject: string,
  fromPosition: bigint,
  allowGap: boolean,
): Promise<void> {
  if (fromPosition < 0n) throw VbError.invalid(`position must be ≥ 0, got ${fromPosition}`);
  let first: bigint;
  let lastSeq: bigint;
  try {
    const si = await jsm.streams.info(stream);
    first = BigInt(si.state.first_seq);
    lastSeq = BigInt(si.state.last_seq);
  } catch (err) {
    throw readError(err, stream, subject);
  }
  if (!allowGap && fromPosition > 0n && fromPosition + 1n < first && fromPosition < lastSeq) {
    throw new VbError(
      ErrorCode.MqInternal,
      `stream "${stream}" no longer holds position ${fromPosition + 1n} of "${subject}" (it starts at ${first}; older messages were ` +
        `removed by its limits): recover from a later checkpoint, or pass allowGap to read from ${first}`,
      { retriable: false },
    );
  }
}

function readError(err: unknown, stream: string, subject: string): VbError {
  if (err instanceof VbError) return err;
  if (isStreamNotFound(err)) {
    return new VbError(ErrorCode.MqTopicNotFound, `stream "${stream}" not found (reading "${subject}"): create the channel first`, {
      cause: err,
    });
  }
  return new VbError(ErrorCode.MqInternal, `reading "${subject}" from stream "${stream}" failed: ${errorText(err)}`, {
    cause: err,
    retriable: true,
  });
}
