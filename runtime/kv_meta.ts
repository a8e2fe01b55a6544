/**
 * Meta storage on a JetStream KV bucket: get / put / create / compare-and-set update / delete, listing by
 * key prefix, and watches. Every write returns the key's new revision (the bucket's stream sequence, so
 * revisions grow across all keys of a bucket); `update` with a stale revision fails with a conflict that
 * `isCasConflict` recognises.
 *
 * Keys: letters, digits, `-`, `_`, `/`, `=` and `.`; a key neither starts nor ends with `.`, and `.`
 * separates the tokens that prefixes and watches match on (`coll.42.seg.7`). A prefix is whole tokens:
 * `coll.42` lists `coll.42.seg.7` and `coll.42.x` (not `coll.420.x`, nor `coll.42` itself).
 * Values are bytes; `getValue`/`putValue`/`createValue`/`updateValue`/`records` encode with protocol/codec.ts.
 * A value that does not decode is never skipped in silence: it is logged with its bucket and key and kept
 * in `undecodable()` (until the key is written again), so a lost record is seen instead of read as absent.
 * Bucket names: letters, digits, `-` and `_`.
 */
import { StorageType, type JsMsg } from "@nats-io/jetstream";
import { Kvm, type KV, type KvEntry } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { decode, encode } from "../protocol/codec.ts";
import { ErrorCode, VbError, isVbError } from "../protocol/errors.ts";
import { createLogger, type Logger } from "./logger.ts";
import {
  ensureStream,
  errorText,
  followLastPerSubject,
  isWrongLastSequence,
  jetstreamClientOf,
  jetstreamOf,
  nanosFromMs,
  readLastPerSubject,
  type Follower,
} from "./streams.ts";

export interface KvMetaOptions {
  /** Revisions kept per key (1–64). Default 1. */
  history?: number;
  /** Bucket-level TTL: every value expires this long after it was written. Default: none. */
  ttlMs?: number;
  storage?: "file" | "memory";
  maxBytes?: number;
  maxValueSize?: number;
  replicas?: number;
  /** How long a KV operation waits for the server. Default: the connection's timeout. */
  timeoutMs?: number;
  log?: Logger;
}

export interface KvValue {
  value: Uint8Array;
  revision: number;
  /** When the server stored this revision. */
  created: Date;
}

export interface KvChange {
  key: string;
  /** PUT for a value; DEL or PURGE when the key was removed (then `value` is empty). */
  operation: "PUT" | "DEL" | "PURGE";
  value: Uint8Array;
  revision: number;
  created: Date;
  /** true for values that existed when the watch started (delivered first), false for later changes. */
  initial: boolean;
}

export interface KvWatchOptions {
  /** Deliver the current value of every matching key first (default true), or only later changes. */
  includeInitial?: boolean;
}

/** A value a reader could not take as a record: left in the bucket, logged, and listed by `undecodable()`. */
export interface UndecodableRecord {
  bucket: string;
  key: string;
  /** why it could not be read */
  error: string;
}

/** `ready` resolves once the initial values were delivered; `done` settles when the watch ends. */
export type KvWatch = Follower;

const KEY_RE = /^[-/=.\w]+$/;
const BUCKET_RE = /^[-\w]+$/;
const CONFLICT = "kv revision conflict";

/** Throws a VbError 1100 for a key the bucket cannot store; returns it otherwise. */
export function assertKvKey(key: string): string {
  if (!KEY_RE.test(key) || key.startsWith(".") || key.endsWith(".") || key.includes("..")) {
    throw VbError.invalid(
      `invalid KV key "${key}": use letters, digits, "-", "_", "/", "=" and "." (not first, not last, not doubled)`,
    );
  }
  return key;
}

/** true when a create/update/delete lost a compare-and-set race: re-read the key and decide again. */
export function isCasConflict(err: unknown): boolean {
  return isVbError(err) && err.message.startsWith(CONFLICT);
}

export class KvMeta {
  /** undecodable values by key */
  private readonly unreadable = new Map<string, UndecodableRecord>();

  private constructor(
    readonly bucket: string,
    private readonly kv: KV,
    private readonly nc: NatsConnection,
    private readonly log: Logger,
  ) {}

  /** The name of the bucket's stream (`KV_<bucket>`). */
  get stream(): string {
    return `KV_${this.bucket}`;
  }

  /**
   * Opens the bucket, creating it if needed. On an existing bucket, the history and TTL given here (only
   * those given) are applied if they differ; a different storage is an error.
   */
  static async open(nc: NatsConnection, bucket: string, opts: KvMetaOptions = {}): Promise<KvMeta> {
    if (!BUCKET_RE.test(bucket)) throw VbError.invalid(`invalid KV bucket name "${bucket}": use letters, digits, "-" and "_"`);
    const log = (opts.log ?? createLogger({ module: "kv_meta" })).child({ bucket });
    const js = jetstreamClientOf(nc, opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs });
    let kv: KV;
    try {
      kv = await new Kvm(js).create(bucket, {
        history: opts.history ?? 1,
        storage: opts.storage === "memory" ? StorageType.Memory : StorageType.File,
        ...(opts.ttlMs === undefined ? {} : { ttl: opts.ttlMs }),
        ...(opts.maxBytes === undefined ? {} : { max_bytes: opts.maxBytes }),
        ...(opts.maxValueSize === undefined ? {} : { maxValueSize: opts.maxValueSize }),
        ...(opts.replicas === undefined ? {} : { replicas: opts.replicas }),
      });
    } catch (err) {
      throw new VbError(ErrorCode.MqInternal, `cannot open KV bucket "${bucket}": ${errorText(err)}`, {
        cause: err,
        retriable: true,
      });
    }
    // Kvm.create binds to an existing bucket as it is; bring the settings we were asked for into line.
    const { jsm } = await jetstreamOf(nc);
    await ensureStream(jsm, {
      name: `KV_${bucket}`,
      ...(opts.history === undefined ? {} : { max_msgs_per_subject: opts.history }),
      ...(opts.ttlMs === undefined ? {} : { max_age: nanosFromMs(opts.ttlMs) }),
      ...(opts.storage === undefined ? {} : { storage: opts.storage === "memory" ? StorageType.Memory : StorageType.File }),
    });
    return new KvMeta(bucket, kv, nc, log);
  }

  async get(key: string): Promise<KvValue | undefined> {
    assertKvKey(key);
    let e: KvEntry | null;
    try {
      e = await this.kv.get(key);
    } catch (err) {
      throw this.failure(err, "get", key);
    }
    if (!e || e.operation !== "PUT") return undefined;
    return { value: e.value, revision: e.revision, created: e.created };
  }

  /** Writes the value whatever the key holds; returns the new revision. */
  async put(key: string, value: Uint8Array): Promise<number> {
    assertKvKey(key);
    try {
      return this.written(key, await this.kv.put(key, value));
    } catch (err) {
      throw this.failure(err, "put", key);
    }
  }

  /** Writes the value only if the key has none (never written, deleted or expired); else a conflict. */
  async create(key: string, value: Uint8Array): Promise<number> {
    assertKvKey(key);
    try {
      return this.written(key, await this.kv.create(key, value));
    } catch (err) {
      if (isWrongLastSequence(err)) {
        throw new VbError(
          ErrorCode.Unexpected,
          `${CONFLICT}: KV key "${key}" in bucket "${this.bucket}" already exists; read it and update it with its revision`,
          { cause: err, retriable: true },
        );
      }
      throw this.failure(err, "create", key);
    }
  }

  /** Writes the value only if the key is still at `expectedRevision` (compare-and-set); else a conflict. */
  async update(key: string, value: Uint8Array, expectedRevision: number): Promise<number> {
    assertKvKey(key);
    if (!Number.isSafeInteger(expectedRevision) || expectedRevision <= 0) {
      throw VbError.invalid(`update of KV key "${key}": expectedRevision must be a positive integer, got ${expectedRevision}`);
    }
    try {
      return this.written(key, await this.kv.update(key, value, expectedRevision));
    } catch (err) {
      if (isWrongLastSequence(err)) throw this.conflict(key, expectedRevision, err);
      throw this.failure(err, "update", key);
    }
  }

  /** Removes the key (a delete marker stays in history); with `expectedRevision`, only if it is still there. */
  async delete(key: string, opts: { expectedRevision?: number } = {}): Promise<void> {
    assertKvKey(key);
    try {
      await this.kv.delete(key, opts.expectedRevision === undefined ? {} : { previousSeq: opts.expectedRevision });
      this.unreadable.delete(key);
    } catch (err) {
      if (opts.expectedRevision !== undefined && isWrongLastSequence(err)) throw this.conflict(key, opts.expectedRevision, err);
      throw this.failure(err, "delete", key);
    }
  }

  /** The keys that hold a value, under `prefix` (whole tokens) or all. */
  async keys(prefix?: string): Promise<string[]> {
    const msgs = await this.lastPerKey(prefix, true);
    return msgs.filter((m) => m.operation === "PUT").map((m) => m.key);
  }

  /** The keys that hold a value with their values, under `prefix` (whole tokens) or all. */
  async entries(prefix?: string): Promise<Map<string, KvValue>> {
    const out = new Map<string, KvValue>();
    for (const m of await this.lastPerKey(prefix, false)) {
      if (m.operation === "PUT") out.set(m.key, { value: m.value, revision: m.revision, created: m.created });
    }
    return out;
  }

  /**
   * Calls `onChange` for the keys under `prefix` (all keys when undefined): their current values first
   * (unless `includeInitial` is false), then every put and delete as it happens. Expiry by the bucket TTL
   * produces no event.
   */
  async watch(prefix: string | undefined, onChange: (c: KvChange) => void | Promise<void>, opts: KvWatchOptions = {}): Promise<KvWatch> {
    return this.watchFilter(filterOf(prefix), onChange, opts);
  }

  /** Like `watch`, for one key. */
  async watchKey(key: string, onChange: (c: KvChange) => void | Promise<void>, opts: KvWatchOptions = {}): Promise<KvWatch> {
    return this.watchFilter(assertKvKey(key), onChange, opts);
  }

  private async watchFilter(filter: string, onChange: (c: KvChange) => void | Promise<void>, opts: KvWatchOptions): Promise<KvWatch> {
    const { js } = await jetstreamOf(this.nc);
    const subjectPrefix = this.subjectPrefix;
    try {
      return await followLastPerSubject(
        js,
        this.stream,
        subjectPrefix + filter,
        (m, initial) => onChange({ ...toKvRecord(m, subjectPrefix), initial }),
        { start: opts.includeInitial === false ? "new" : "lastPerSubject", log: this.log },
      );
    } catch (err) {
      throw this.failure(err, "watch", filter);
    }
  }

  // ---- typed helpers: values through protocol/codec.ts (msgpack) ----

  /** The key's value decoded; one that does not decode is logged, listed in `undecodable()`, and a VbError. */
  async getValue<T>(key: string): Promise<{ value: T; revision: number } | undefined> {
    const e = await this.get(key);
    if (e === undefined) return undefined;
    let value: T;
    try {
      value = decode<T>(e.value);
    } catch (err) {
      const note = this.noteUndecodable(key, errorText(err));
      throw new VbError(ErrorCode.Unexpected, `KV key "${key}" in bucket "${this.bucket}" holds a value that does not decode: ${note.error}`, {
        cause: err,
      });
    }
    this.unreadable.delete(key);
    return { value, revision: e.revision };
  }

  /**
   * The records under `prefix` (whole tokens) or all, decoded. A value that does not decode, or that
   * `isRecord` refuses, is not returned: it is logged with its bucket and key and listed in `undecodable()`.
   */
  async records<T>(isRecord: (v: unknown) => boolean, prefix?: string): Promise<Map<string, { value: T; revision: number }>> {
    const out = new Map<string, { value: T; revision: number }>();
    for (const [key, e] of await this.entries(prefix)) {
      let v: unknown;
      try {
        v = decode<unknown>(e.value);
      } catch (err) {
        this.noteUndecodable(key, errorText(err));
        continue;
      }
      if (typeof v !== "object" || v === null || !isRecord(v)) {
        this.noteUndecodable(key, "decodes to something that is not a record of this bucket");
        continue;
      }
      this.unreadable.delete(key);
      out.set(key, { value: v as T, revision: e.revision });
    }
    return out;
  }

  /** The values readers of this bucket could not take as records (since the key was last written). */
  undecodable(): UndecodableRecord[] {
    return [...this.unreadable.values()];
  }
  putValue(key: string, value: unknown): Promise<number> {
    return this.put(key, encode(value));
  }
  createValue(key: string, value: unknown): Promise<number> {
    return this.create(key, encode(value));
  }
  updateValue(key: string, value: unknown, expectedRevision: number): Promise<number> {
    return this.update(key, encode(value), expectedRevision);
  }

  /** Deletes the bucket and everything in it. */
  async destroy(): Promise<void> {
    try {
      await this.kv.destroy();
    } catch (err) {
      throw this.failure(err, "destroy", "*");
    }
  }

  private async lastPerKey(prefix: string | undefined, headersOnly: boolean) {
    const filter = filterOf(prefix);
    const { js } = await jetstreamOf(this.nc);
    const subjectPrefix = this.subjectPrefix;
    let msgs;
    try {
      msgs = await readLastPerSubject(js, this.stream, subjectPrefix + filter, { headersOnly });
    } catch (err) {
      throw this.failure(err, "list", filter);
    }
    return msgs.map((m) => toKvRecord(m, subjectPrefix));
  }

  private noteUndecodable(key: string, error: string): UndecodableRecord {
    const note = { bucket: this.bucket, key, error };
    if (!this.unreadable.has(key)) this.log.error({ key, error }, "a KV value does not decode as a record; it is left in place and ignored");
    this.unreadable.set(key, note);
    return note;
  }

  private written(key: string, revision: number): number {
    this.unreadable.delete(key);
    return revision;
  }

  /** The subjects of the bucket's keys start with this. */
  private get subjectPrefix(): string {
    return `$KV.${this.bucket}.`;
  }

  private conflict(key: string, expected: number, cause: unknown): VbError {
    return new VbError(
      ErrorCode.Unexpected,
      `${CONFLICT}: KV key "${key}" in bucket "${this.bucket}" is no longer at revision ${expected} (${errorText(cause)}); re-read it and retry`,
      { cause, retriable: true },
    );
  }

  private failure(err: unknown, op: string, key: string): VbError {
    if (err instanceof VbError) return err;
    const text = errorText(err);
    if (/invalid key/.test(text)) return VbError.invalid(`invalid KV key "${key}": ${text}`, err);
    return new VbError(ErrorCode.MqInternal, `KV ${op} of "${key}" in bucket "${this.bucket}" failed: ${text}`, {
      cause: err,
      retriable: true,
    });
  }
}

function filterOf(prefix: string | undefined): string {
  if (prefix === undefined || prefix === "" || prefix === ">") return ">";
  const p = prefix.endsWith(".") ? prefix.slice(0, -1) : prefix;
  assertKvKey(p);
  return `${p}.>`;
}

function toKvRecord(m: JsMsg, subjectPrefix: string): Omit<KvChange, "initial"> {
  return {
    key: m.subject.substring(subjectPrefix.length),
    operation: (m.headers?.get("KV-Operation") || "PUT") as KvChange["operation"],
    value: m.data,
    revision: m.seq,
    created: new Date(Math.floor(m.info.timestampNanos / 1_000_000)),
  };
}
