/**
 * Opens an object store from one string, as given on a command line or in a config file:
 *
 * - a plain path (`/var/lib/vbus/objects`, `./objects`) or `file:///abs/path`: the filesystem store;
 * - `s3://ACCESS:SECRET@host[:port]/bucket[/rootPath][?ssl=true|false&region=…]`: S3 (TLS unless
 *   `ssl=false`); `http://…` and `https://…` are the same with TLS given by the scheme.
 *
 * Credentials in the URL are percent-decoded (a secret with `/` or `+` is written `%2F`, `%2B`); without
 * them, `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` from the environment are used. Log a spec only
 * through `describeObjectStore`, which masks the secret.
 */
import { isAbsolute, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { VbError } from "../protocol/errors.ts";
import { FsObjectStore } from "./object_store_fs.ts";
import type { ObjectStore } from "./object_store.ts";
import { S3ObjectStore, validateBucketName, type S3ObjectStoreOptions } from "./object_store_s3.ts";

export type ObjectStoreSpec = { kind: "fs"; root: string } | { kind: "s3"; options: S3ObjectStoreOptions };

const FORMS =
  `give a directory ("/var/lib/vbus/objects" or "file:///var/lib/vbus/objects") or ` +
  `"s3://ACCESS:SECRET@host:port/bucket[/rootPath]?ssl=false"`;

const SCHEME = /^([a-zA-Z][a-zA-Z0-9+.-]*):/;

function bad(spec: string, why: string, cause?: unknown): VbError {
  return VbError.invalid(`object store "${describeObjectStore(spec)}" is invalid (1100): ${why}; ${FORMS}`, cause);
}

function decode(spec: string, part: string, what: string): string {
  try {
    return decodeURIComponent(part);
  } catch (err) {
    throw bad(spec, `the ${what} has a broken %-escape`, err);
  }
}

/** Parses a store spec without opening anything. `env` supplies credentials a URL leaves out. */
export function parseObjectStoreSpec(spec: string, env: NodeJS.ProcessEnv = process.env): ObjectStoreSpec {
  if (typeof spec !== "string" || spec.trim() === "") {
    throw VbError.invalid(`object store spec is empty (1100): ${FORMS}`);
  }
  const s = spec.trim();
  const scheme = SCHEME.exec(s)?.[1]?.toLowerCase();
  // No scheme (or a one-letter one, a Windows drive): a plain path.
  if (scheme === undefined || scheme.length === 1) return { kind: "fs", root: resolve(s) };

  let url: URL;
  try {
    url = new URL(s);
  } catch (err) {
    throw bad(s, "it is not a well-formed URL", err);
  }

  if (scheme === "file") {
    if (url.host !== "" && url.host !== "localhost") throw bad(s, `a file URL cannot name a host ("${url.host}")`);
    if (url.search !== "" || url.hash !== "") throw bad(s, "a file URL takes no query or fragment");
    const root = fileURLToPath(url);
    if (!isAbsolute(root)) throw bad(s, "a file URL must hold an absolute path");
    return { kind: "fs", root };
  }

  if (scheme !== "s3" && scheme !== "http" && scheme !== "https") {
    throw bad(s, `the scheme "${scheme}:" is not supported`);
  }
  if (url.hash !== "") throw bad(s, "an S3 URL takes no fragment");

  let useSSL = scheme !== "http";
  let region: string | undefined;
  for (const [name, value] of url.searchParams) {
    if (name === "ssl") {
      if (scheme !== "s3") throw bad(s, `"ssl" belongs to s3:// URLs; with ${scheme}:// the scheme decides`);
      if (value === "true" || value === "1") useSSL = true;
      else if (value === "false" || value === "0") useSSL = false;
      else throw bad(s, `ssl="${value}" is neither true nor false`);
    } else if (name === "region") {
      if (!/^[a-z0-9-]+$/.test(value)) throw bad(s, `region "${value}" is not a region name`);
      region = value;
    } else {
      throw bad(s, `the parameter "${name}" is unknown (known: ssl, region)`);
    }
  }

  const endPoint = url.hostname.replace(/^\[(.*)\]$/, "$1");
  if (endPoint === "") throw bad(s, "the URL names no host");
  const port = url.port === "" ? (useSSL ? 443 : 80) : Number(url.port);

  let accessKey = decode(s, url.username, "access key");
  let secretKey = decode(s, url.password, "secret key");
  if (accessKey === "" && secretKey === "") {
    accessKey = env.AWS_ACCESS_KEY_ID ?? "";
    secretKey = env.AWS_SECRET_ACCESS_KEY ?? "";
    if (accessKey === "" || secretKey === "") {
      throw bad(s, "it has no credentials and AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are not both set");
    }
  } else if (accessKey === "" || secretKey === "") {
    throw bad(s, "give both the access key and the secret key (ACCESS:SECRET@host)");
  }

  // "/bucket/root/path/": one leading and one trailing "/" are fine, an empty segment inside is not.
  const segs = url.pathname.replace(/^\//, "").replace(/\/$/, "").split("/");
  if (segs[0] === "") throw bad(s, "the URL names no bucket");
  if (segs.some((p) => p === "")) throw bad(s, `the path "${url.pathname}" has an empty segment`);
  const bucket = decode(s, segs[0]!, "bucket");
  try {
    validateBucketName(bucket);
  } catch (err) {
    throw bad(s, err instanceof Error ? err.message : String(err), err);
  }
  const rootPath = segs
    .slice(1)
    .map((p) => decode(s, p, "root path"))
    .join("/");

  const options: S3ObjectStoreOptions = { endPoint, port, useSSL, accessKey, secretKey, bucket };
  if (region !== undefined) options.region = region;
  if (rootPath !== "") options.rootPath = rootPath;
  return { kind: "s3", options };
}

/** Opens the store a spec names (nothing is contacted or created until the first call). */
export function openObjectStore(spec: string, env: NodeJS.ProcessEnv = process.env): ObjectStore {
  const parsed = parseObjectStoreSpec(spec, env);
  try {
    return parsed.kind === "fs" ? new FsObjectStore(parsed.root) : new S3ObjectStore(parsed.options);
  } catch (err) {
    if (err instanceof VbError) throw bad(spec, err.message, err);
    throw err;
  }
}

/** The spec with any secret in it replaced by `***`, fit for logs and error messages. Never throws. */
export function describeObjectStore(spec: string): string {
  if (typeof spec !== "string") return String(spec);
  const s = spec.trim();
  const start = s.indexOf("://");
  if (start < 0) return s;
  const authorityStart = start + 3;
  const rest = s.slice(authorityStart);
  const authEnd = rest.search(/[/?#]/);
  const authority = authEnd < 0 ? rest : rest.slice(0, authEnd);
  // The user info ends at the last "@" of the authority. A secret with an unescaped "/" cuts the
  // authority short: then mask up to the first "@" after it.
  let at = authority.lastIndexOf("@");
  if (at < 0) {
    const colon = rest.indexOf(":");
    at = rest.indexOf("@");
    if (at < 0 || colon < 0 || colon > at) return s;
  }
  const userinfo = rest.slice(0, at);
  const colon = userinfo.indexOf(":");
  if (colon < 0) return s;
  return `${s.slice(0, authorityStart)}${userinfo.slice(0, colon)}:***${rest.slice(at)}`;
}
