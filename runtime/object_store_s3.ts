/**
 * The object store on S3 (or anything that speaks it: MinIO, Ceph RGW, s3rver in tests) through the
 * minio client. Keys live under an optional `rootPath` inside one bucket, which is created on first use.
 *
 * Every put is a single PUT of the whole object (`partSize` is set to S3's 5 GiB single-PUT limit, so the
 * client never starts a multipart upload): a reader sees the old object or the new one, and servers
 * without multipart upload (s3rver) work. Listing follows ListObjectsV2 continuation tokens, 1,000 keys
 * a page, in the server's order (S3 and MinIO list in UTF-8 byte order).
 *
 * The client's own retry is off (it logs to the console). This store retries a failed request itself
 * (`retries` times, 2 by default, with growing jittered pauses) when the failure may go away: network
 * errors, 5xx, throttling. What still fails comes back as code 1001 with `retriable: true`.
 */
import type { IncomingMessage } from "node:http";
import type { Readable } from "node:stream";
import { Client } from "minio";
import { ErrorCode, VbError } from "../protocol/errors.ts";
import { createLogger } from "./logger.ts";
import {
  compareKeys,
  ioFailed,
  keyNotFound,
  rangeBeyondEnd,
  validateKey,
  validatePrefix,
  validateRange,
  type ObjectEntry,
  type ObjectStat,
  type ObjectStore,
} from "./object_store.ts";

export interface S3ObjectStoreOptions {
  /** Host name or IP address of the S3 endpoint (no scheme, no port). */
  endPoint: string;
  /** Port; 443 with TLS, 80 without, when not given. */
  port?: number;
  /** TLS on (default true). */
  useSSL?: boolean;
  accessKey: string;
  secretKey: string;
  bucket: string;
  /** Region the bucket lives in / is created in (default `us-east-1`). */
  region?: string;
  /** Key prefix inside the bucket (`"vbus/prod"`); keys are stored as `<rootPath>/<key>`. */
  rootPath?: string;
  /** How many times a request that failed in a retriable way is sent again (default 2). */
  retries?: number;
}

/** S3's limit for a single PUT, also the largest part size the minio client accepts. */
const SINGLE_PUT_LIMIT = 5 * 1024 * 1024 * 1024;
/** Keys per DeleteObjects request (S3's maximum). */
const DELETE_BATCH = 1000;
const DEFAULT_REGION = "us-east-1";
const DEFAULT_RETRIES = 2;
/** First pause before a retry; each further one is 4× longer, all jittered by ±50%. */
const RETRY_BASE_MS = 50;

/** S3 error codes of failures that may go away by themselves. */
const RETRIABLE_S3_CODES = new Set([
  "InternalError",
  "ServiceUnavailable",
  "SlowDown",
  "RequestTimeout",
  "RequestTimeTooSkewed",
  "OperationAborted",
]);
/** Node network errno codes: the server may be back soon. */
const RETRIABLE_NET_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EHOSTDOWN",
]);

const log = createLogger({ component: "object_store_s3" });

/** Throws 1100 unless `name` follows S3's bucket naming rules. */
export function validateBucketName(name: string): void {
  if (
    typeof name !== "string" ||
    name.length < 3 ||
    name.length > 63 ||
    !/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(name) ||
    name.includes("..") ||
    /^\d+\.\d+\.\d+\.\d+$/.test(name)
  ) {
    throw VbError.invalid(
      `bucket name "${name}" is invalid (1100): use 3–63 lowercase letters, digits, "-" and ".", ` +
        `starting and ending with a letter or digit`,
    );
  }
}

function errCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : "";
}

function isRetriable(err: unknown): boolean {
  const code = errCode(err);
  if (RETRIABLE_S3_CODES.has(code) || RETRIABLE_NET_CODES.has(code)) return true;
  // With its retry off, the client reports 408, 429 and 5xx as a plain Error with this message.
  if (err instanceof Error && /Retryable HTTP status: \d+/.test(err.message)) return true;
  const cause = (err as { cause?: unknown } | null)?.cause;
  return cause !== undefined && cause !== err && RETRIABLE_NET_CODES.has(errCode(cause));
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

/** A Uint8Array that owns its whole ArrayBuffer (no pool slice), safe to view as other typed arrays. */
function ownBytes(buf: Uint8Array): Uint8Array {
  if (buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength) {
    return new Uint8Array(buf.buffer, 0, buf.byteLength);
  }
  return new Uint8Array(buf);
}

/** The object's total size from a `Content-Range: bytes a-b/size` header, NaN when absent. */
function totalFromContentRange(header: string | string[] | undefined): number {
  const m = typeof header === "string" ? /\/(\d+)\s*$/.exec(header) : null;
  return m ? Number(m[1]) : Number.NaN;
}

export class S3ObjectStore implements ObjectStore {
  readonly endPoint: string;
  readonly port: number;
  readonly useSSL: boolean;
  readonly region: string;
  readonly bucket: string;
  /** `""` or the root path without leading or trailing `/`. */
  readonly rootPath: string;
  readonly accessKey: string;
  private readonly client: Client;
  /** What object names start with: `""` or `<rootPath>/`. */
  private readonly base: string;
  private readonly where: string;
  private readonly retries: number;
  private bucketReady: Promise<void> | undefined;
  private warnedOrder = false;

  constructor(options: S3ObjectStoreOptions) {
    const { endPoint, accessKey, secretKey, bucket } = options;
    if (typeof endPoint !== "string" || endPoint.length === 0 || /[/:]/.test(endPoint)) {
      throw VbError.invalid(`S3 endPoint "${endPoint}" is invalid (1100): give a host name or address, without scheme or port`);
    }
    this.useSSL = options.useSSL ?? true;
    this.port = options.port ?? (this.useSSL ? 443 : 80);
    if (!Number.isInteger(this.port) || this.port < 1 || this.port > 65535) {
      throw VbError.invalid(`S3 port ${options.port} is invalid (1100): give an integer in 1–65535`);
    }
    if (!accessKey || !secretKey) {
      throw VbError.invalid(`S3 credentials are missing (1100): give both an access key and a secret key`);
    }
    validateBucketName(bucket);
    const root = (options.rootPath ?? "").replace(/^\/+|\/+$/g, "");
    if (root !== "") validateKey(root);
    this.endPoint = endPoint;
    this.region = options.region ?? DEFAULT_REGION;
    this.bucket = bucket;
    this.rootPath = root;
    this.accessKey = accessKey;
    this.base = root === "" ? "" : `${root}/`;
    this.where = `s3://${bucket}/${this.base} at ${endPoint}:${this.port}`;
    this.retries = options.retries ?? DEFAULT_RETRIES;
    if (!Number.isInteger(this.retries) || this.retries < 0) {
      throw VbError.invalid(`S3 retries ${options.retries} is invalid (1100): give an integer ≥ 0`);
    }
    try {
      this.client = new Client({
        endPoint,
        port: this.port,
        useSSL: this.useSSL,
        accessKey,
        secretKey,
        region: this.region,
        partSize: SINGLE_PUT_LIMIT,
        retryOptions: { disableRetry: true },
      });
    } catch (err) {
      throw VbError.invalid(`S3 client options are invalid (1100): ${err instanceof Error ? err.message : String(err)}`, err);
    }
  }

  /** Creates the bucket unless it exists. Called by every operation; once it succeeded it is free. */
  ensureBucket(): Promise<void> {
    this.bucketReady ??= this.createBucket().catch((err: unknown) => {
      this.bucketReady = undefined;
      throw err;
    });
    return this.bucketReady;
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    validateKey(key);
    if (data.byteLength > SINGLE_PUT_LIMIT) {
      throw new VbError(
        ErrorCode.ParameterTooLarge,
        `object "${key}" is ${data.byteLength} bytes (1102): the S3 store takes at most 5 GiB per object`,
      );
    }
    await this.ensureBucket();
    const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    try {
      await this.send(() => this.client.putObject(this.bucket, this.base + key, buf, buf.byteLength));
    } catch (err) {
      throw this.mapError("put", key, err);
    }
  }

  async get(key: string): Promise<Uint8Array> {
    validateKey(key);
    await this.ensureBucket();
    try {
      return ownBytes(await this.send(async () => readAll(await this.client.getObject(this.bucket, this.base + key))));
    } catch (err) {
      throw this.mapError("get", key, err);
    }
  }

  async getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    validateKey(key);
    validateRange(key, offset, length);
    await this.ensureBucket();
    if (length === 0) {
      // An empty Range header is not a thing: look at the size instead.
      const { size } = await this.stat(key);
      if (offset > size) throw rangeBeyondEnd(key, offset, length, size);
      return new Uint8Array(0);
    }
    let res: IncomingMessage;
    let body: Buffer;
    try {
      ({ res, body } = await this.send(async () => {
        const r = (await this.client.getPartialObject(this.bucket, this.base + key, offset, length)) as IncomingMessage;
        return { res: r, body: await readAll(r) };
      }));
    } catch (err) {
      if (errCode(err) === "InvalidRange") {
        // 416: the range starts at or past the end.
        const { size } = await this.stat(key);
        throw rangeBeyondEnd(key, offset, length, size);
      }
      throw this.mapError("getRange", key, err);
    }
    if (res.statusCode === 200) {
      // The server ignored the Range header and sent the whole object.
      if (offset + length > body.byteLength) throw rangeBeyondEnd(key, offset, length, body.byteLength);
      return new Uint8Array(body.subarray(offset, offset + length));
    }
    // 206: a range that runs past the end comes back cut short.
    if (body.byteLength !== length) {
      const size = totalFromContentRange(res.headers["content-range"]);
      throw rangeBeyondEnd(key, offset, length, Number.isNaN(size) ? offset + body.byteLength : size);
    }
    return ownBytes(body);
  }

  async stat(key: string): Promise<ObjectStat> {
    validateKey(key);
    await this.ensureBucket();
    try {
      const st = await this.send(() => this.client.statObject(this.bucket, this.base + key));
      return { key, size: st.size, lastModified: st.lastModified };
    } catch (err) {
      throw this.mapError("stat", key, err);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectEntry> {
    validatePrefix(prefix);
    await this.ensureBucket();
    let token = "";
    let last: string | undefined;
    for (;;) {
      let page;
      try {
        page = await this.send(() => this.client.listObjectsV2Query(this.bucket, this.base + prefix, token, "", 1000, ""));
      } catch (err) {
        throw this.mapError("list", prefix, err);
      }
      for (const o of page.objects) {
        if (o.name === undefined || !o.name.startsWith(this.base)) continue;
        const key = o.name.slice(this.base.length);
        if (last !== undefined && compareKeys(last, key) >= 0 && !this.warnedOrder) {
          this.warnedOrder = true;
          log.warn({ bucket: this.bucket, before: last, after: key }, "S3 server lists keys out of UTF-8 byte order");
        }
        last = key;
        yield { key, size: o.size };
      }
      if (!page.isTruncated) return;
      if (!page.nextContinuationToken) {
        throw ioFailed("list", prefix, this.where, new Error("truncated listing without a continuation token"));
      }
      token = page.nextContinuationToken;
    }
  }

  async delete(key: string): Promise<void> {
    validateKey(key);
    await this.ensureBucket();
    try {
      await this.send(() => this.client.removeObject(this.bucket, this.base + key));
    } catch (err) {
      const code = errCode(err);
      if (code === "NoSuchKey" || code === "NotFound") return;
      throw this.mapError("delete", key, err);
    }
  }

  async deletePrefix(prefix: string): Promise<number> {
    validatePrefix(prefix);
    if (prefix === "") {
      throw VbError.invalid(`deletePrefix with an empty prefix is refused (1100): name the objects to remove`);
    }
    // Collect first: deleting while paging would shift the pages under the continuation token.
    const keys: string[] = [];
    for await (const e of this.list(prefix)) keys.push(e.key);
    let removed = 0;
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH);
      let results;
      try {
        results = await this.send(() =>
          this.client.removeObjects(
            this.bucket,
            batch.map((k) => this.base + k),
          ),
        );
      } catch (err) {
        throw this.mapError("deletePrefix", prefix, err);
      }
      const failed = results.filter((r) => r?.Error !== undefined && r.Error.Code !== "NoSuchKey");
      if (failed.length > 0) {
        const e = failed[0]!.Error!;
        throw ioFailed(
          "deletePrefix",
          prefix,
          this.where,
          new Error(`${failed.length} of ${batch.length} deletes failed, first "${e.Key}": ${e.Code} ${e.Message ?? ""}`),
        );
      }
      removed += batch.length;
    }
    return removed;
  }

  async exists(key: string): Promise<boolean> {
    try {
      await this.stat(key);
      return true;
    } catch (err) {
      if (err instanceof VbError && err.code === ErrorCode.IoKeyNotFound) return false;
      throw err;
    }
  }

  private async createBucket(): Promise<void> {
    try {
      if (await this.send(() => this.client.bucketExists(this.bucket))) return;
      await this.send(() => this.client.makeBucket(this.bucket, this.region));
    } catch (err) {
      const code = errCode(err);
      // Another store created it first. "BucketAlreadyExists" may also mean someone else owns it:
      // a HEAD tells (403 when it is not ours).
      if (code === "BucketAlreadyOwnedByYou") return;
      if (code === "BucketAlreadyExists") {
        try {
          if (await this.send(() => this.client.bucketExists(this.bucket))) return;
        } catch (again) {
          throw this.mapError("create bucket", this.bucket, again);
        }
      }
      throw this.mapError("create bucket", this.bucket, err);
    }
  }

  /** Runs one request (all of them are idempotent), sending it again while it fails in a retriable way. */
  private async send<T>(request: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await request();
      } catch (err) {
        if (attempt >= this.retries || !isRetriable(err)) throw err;
        const pause = RETRY_BASE_MS * 4 ** attempt * (0.5 + Math.random());
        log.debug({ bucket: this.bucket, attempt: attempt + 1, err }, "S3 request failed, sending it again");
        await sleep(pause);
      }
    }
  }

  private mapError(op: string, key: string, err: unknown): VbError {
    if (err instanceof VbError) return err;
    const code = errCode(err);
    if (code === "NoSuchKey" || code === "NotFound") return keyNotFound(key, this.where, err);
    if (code === "NoSuchBucket") this.bucketReady = undefined; // removed under us: make it again next time
    return ioFailed(op, key, this.where, err, isRetriable(err));
  }
}
