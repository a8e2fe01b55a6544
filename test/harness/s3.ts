/**
 * An in-process S3 server (s3rver) for tests of the S3 object store: loopback, a port the OS picks,
 * its own temporary directory (removed on stop), silent. Credentials are s3rver's fixed `S3RVER`/`S3RVER`.
 *
 * s3rver has no multipart upload and needs `--openssl-legacy-provider` (vitest.config.ts sets it) to
 * hand out the continuation tokens of listings past 1,000 keys.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";

interface S3rverOptions {
  address: string;
  port: number;
  directory: string;
  silent: boolean;
  vhostBuckets: boolean;
  resetOnClose: boolean;
}

interface S3rverObject {
  readonly size: number;
  range?: unknown;
  content: Readable | null;
}

/** The parts of s3rver's FilesystemStore the fixes below wrap. */
interface S3rverStore {
  getObject(bucket: string, key: string, options?: unknown): Promise<S3rverObject | null>;
  deleteObject(bucket: string, key: string): Promise<void>;
}

interface S3rverInstance {
  store: S3rverStore;
  run(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
}

// s3rver is CommonJS without type declarations.
const require = createRequire(import.meta.url);
const S3rver = require("s3rver") as new (options: S3rverOptions) => S3rverInstance;

export interface S3Server extends AsyncDisposable {
  endPoint: string;
  port: number;
  accessKey: string;
  secretKey: string;
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** The temporary directory s3rver keeps its buckets in. */
  directory: string;
  /** An object store spec for `openObjectStore` naming a bucket (and root path) on this server. */
  storeSpec(bucket: string, rootPath?: string): string;
  stop(): Promise<void>;
}

export async function startS3Server(): Promise<S3Server> {
  const directory = await mkdtemp(join(tmpdir(), "vbus-s3rver-"));
  const endPoint = "127.0.0.1";
  // Port 0: the OS picks a free port at listen time, so no other process can take it in between.
  const server = new S3rver({
    address: endPoint,
    port: 0,
    directory,
    silent: true,
    vhostBuckets: false,
    resetOnClose: false,
  });
  fixS3rver(server.store);
  let port: number;
  try {
    ({ port } = await server.run());
  } catch (err) {
    await rm(directory, { recursive: true, force: true });
    throw err;
  }
  const accessKey = "S3RVER";
  const secretKey = "S3RVER";
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      try {
        await server.close();
      } finally {
        await rm(directory, { recursive: true, force: true });
      }
    })();
    return stopped;
  };
  return {
    endPoint,
    port,
    accessKey,
    secretKey,
    url: `http://${endPoint}:${port}`,
    directory,
    storeSpec: (bucket, rootPath) =>
      `s3://${accessKey}:${secretKey}@${endPoint}:${port}/${bucket}${rootPath ? `/${rootPath}` : ""}?ssl=false`,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/**
 * Two places where s3rver 3.7.1 departs from S3, fixed so the object store contract can run against it:
 *
 * - A ranged GET of an empty object: S3 answers 416 InvalidRange; s3rver announces one byte, sends none,
 *   and the client hangs until the server's keep-alive timeout (5 s) cuts the connection.
 * - Concurrent deletes (a DeleteObjects request deletes its keys in parallel) that empty a directory
 *   race in s3rver's cleanup of empty directories (`rmdir`/`readdir` of a directory another delete just
 *   removed) and fail with 500 although every object was deleted. S3 has no directories to race on.
 */
function fixS3rver(store: S3rverStore): void {
  const getObject = store.getObject.bind(store);
  store.getObject = async (bucket, key, options) => {
    const object = await getObject(bucket, key, options);
    if (object && object.range !== undefined && object.size === 0 && object.content) {
      object.content.destroy();
      object.content = null; // makes the controller answer 416 InvalidRange
    }
    return object;
  };
  const deleteObject = store.deleteObject.bind(store);
  store.deleteObject = async (bucket, key) => {
    try {
      await deleteObject(bucket, key);
    } catch (err) {
      // Only the directory cleanup after the unlinks can fail like this (the unlinks ignore ENOENT).
      const code = (err as { code?: unknown }).code;
      if (code !== "ENOENT" && code !== "ENOTEMPTY") throw err;
    }
  };
}
