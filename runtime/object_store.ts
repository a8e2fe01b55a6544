/**
 * The object store contract: a flat namespace of immutable-by-convention blobs addressed by
 * `/`-separated relative keys (`insert_log/<coll>/<part>/<seg>/...`). Two implementations follow it:
 * the local filesystem (`object_store_fs.ts`, the embedded default) and S3 through the minio client
 * (`object_store_s3.ts`). Both give the same answers, the same key order and the same error codes.
 */
import { ErrorCode, VbError } from "../protocol/errors.ts";

/** What `stat` tells about one object. */
export interface ObjectStat {
  key: string;
  size: number;
  lastModified: Date;
}

/** One entry of a listing. */
export interface ObjectEntry {
  key: string;
  size: number;
}

/**
 * A store of byte objects. A missing key is `VbError` code 1000 (`IoKeyNotFound`); any other I/O
 * failure is code 1001 (`IoFailed`) with the underlying error as `cause`; a bad key, prefix or range is
 * code 1100 (`ParameterInvalid`).
 */
export interface ObjectStore {
  /** Writes (or replaces) an object as a whole; readers see the old or the new bytes, never a mix. */
  put(key: string, data: Uint8Array): Promise<void>;
  /** Reads a whole object. */
  get(key: string): Promise<Uint8Array>;
  /**
   * Reads exactly `length` bytes starting at `offset`. A range that ends past the object's end is
   * code 1002 (`IoUnexpectEOF`, not retriable): the caller's idea of the object is wrong.
   */
  getRange(key: string, offset: number, length: number): Promise<Uint8Array>;
  /** Size and modification time of an object. */
  stat(key: string): Promise<ObjectStat>;
  /**
   * Every object whose key starts with `prefix` (a plain string prefix, `""` for all), in ascending
   * UTF-8 byte order of keys, fetched page by page so any number of keys can be listed.
   */
  list(prefix: string): AsyncIterable<ObjectEntry>;
  /** Removes an object; removing a missing key is not an error. */
  delete(key: string): Promise<void>;
  /**
   * Removes every object whose key starts with `prefix` and returns how many were removed.
   * The empty prefix is refused (code 1100): wiping a whole store is not a garbage collector's job.
   */
  deletePrefix(prefix: string): Promise<number>;
  /** Whether an object exists under `key`. */
  exists(key: string): Promise<boolean>;
}

/** Collects a listing into an array (Node 20 has no `Array.fromAsync`). */
export async function listAll(store: ObjectStore, prefix: string): Promise<ObjectEntry[]> {
  const out: ObjectEntry[] = [];
  for await (const entry of store.list(prefix)) out.push(entry);
  return out;
}

/**
 * Throws code 1100 unless `key` is a usable object key: not empty, relative, no empty, `.` or `..`
 * segments, no NUL or backslash. `reserved` names a segment prefix an implementation keeps for itself.
 */
export function validateKey(key: string, reserved?: string): void {
  if (typeof key !== "string" || key.length === 0) {
    throw VbError.invalid(`object key is empty (1100): give a relative path such as "insert_log/1/2/3"`);
  }
  checkPath(key, "object key", reserved);
  for (const seg of key.split("/")) {
    if (seg === "") {
      throw VbError.invalid(`object key "${key}" has an empty segment (1100): remove the extra "/"`);
    }
  }
}

/**
 * Throws code 1100 unless `prefix` is a usable listing prefix: `""`, or relative with no `.` or `..`
 * segment. A trailing `/` is allowed (it selects a "directory").
 */
export function validatePrefix(prefix: string, reserved?: string): void {
  if (typeof prefix !== "string") throw VbError.invalid(`object prefix must be a string (1100)`);
  if (prefix === "") return;
  checkPath(prefix, "object prefix", reserved);
  const segs = prefix.split("/");
  if (segs.slice(0, -1).some((s) => s === "")) {
    throw VbError.invalid(`object prefix "${prefix}" has an empty segment (1100): remove the extra "/"`);
  }
}

function checkPath(p: string, what: string, reserved: string | undefined): void {
  if (p.startsWith("/")) {
    throw VbError.invalid(`${what} "${p}" is absolute (1100): drop the leading "/"`);
  }
  if (p.includes("\0") || p.includes("\\")) {
    throw VbError.invalid(`${what} "${p}" contains a NUL or a backslash (1100): use "/" as the only separator`);
  }
  for (const seg of p.split("/")) {
    if (seg === "." || seg === "..") {
      throw VbError.invalid(`${what} "${p}" contains a "${seg}" segment (1100): keys are plain relative paths`);
    }
    if (reserved !== undefined && seg.startsWith(reserved)) {
      throw VbError.invalid(`${what} "${p}" uses the reserved name prefix "${reserved}" (1100): rename it`);
    }
  }
}

/** Throws code 1100 unless `offset` and `length` are non-negative safe integers. */
export function validateRange(key: string, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw VbError.invalid(`range offset ${offset} for object "${key}" is invalid (1100): give an integer ≥ 0`);
  }
  if (!Number.isSafeInteger(length) || length < 0) {
    throw VbError.invalid(`range length ${length} for object "${key}" is invalid (1100): give an integer ≥ 0`);
  }
}

/** Code 1000 for a key that is not in the store. */
export function keyNotFound(key: string, where: string, cause?: unknown): VbError {
  return new VbError(
    ErrorCode.IoKeyNotFound,
    `object "${key}" not found in ${where} (1000): it was never written or has been deleted`,
    { cause },
  );
}

/** Code 1002 for a range that ends past the object's end. */
export function rangeBeyondEnd(key: string, offset: number, length: number, size: number): VbError {
  return new VbError(
    ErrorCode.IoUnexpectEOF,
    `range [${offset}, ${offset + length}) of object "${key}" ends past its size ${size} (1002): ` +
      `read within the object`,
    { retriable: false },
  );
}

/** Code 1001 for any other failure, keeping the cause. */
export function ioFailed(op: string, key: string, where: string, cause: unknown, retriable = false): VbError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new VbError(ErrorCode.IoFailed, `${op} "${key}" in ${where} failed (1001): ${reason}`, {
    cause,
    retriable,
  });
}

/** Orders keys by code point, which is the UTF-8 byte order S3 lists in. */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(i);
    if (ca === cb) continue;
    // Surrogates (0xD800–0xDFFF) encode code points above 0xFFFF and must sort after 0xE000–0xFFFF.
    const sa = ca >= 0xd800 && ca <= 0xdfff;
    const sb = cb >= 0xd800 && cb <= 0xdfff;
    if (sa !== sb) return sa ? (cb >= 0xe000 ? 1 : 1) : ca >= 0xe000 ? -1 : -1;
    return ca - cb;
  }
  return a.length - b.length;
}
