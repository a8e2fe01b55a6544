/**
 * The object store on a local directory: the embedded default. A key `a/b/c` is the file `<root>/a/b/c`.
 * A put writes a temporary file next to its target and renames it over the target, so a reader sees the
 * old bytes or the new ones, never a mix; with `fsync` (the default) the file and its directory are
 * synced first, so a put that returned survives a power loss.
 *
 * Unlike S3, a directory cannot hold a file and a subdirectory of the same name: once `a` is an object,
 * `a/b` cannot be written (and the other way round). Such a put is refused with code 1100.
 */
import { randomBytes } from "node:crypto";
import { mkdir, open, readdir, readFile, rename, rmdir, stat, unlink, type FileHandle } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { VbError } from "../protocol/errors.ts";
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

/** Segment prefix of temporary files; keys with a segment starting with it are refused. */
export const FS_TEMP_PREFIX = ".vbtmp-";

export interface FsObjectStoreOptions {
  /** Sync each written file and its directory before a put returns (default true). */
  fsync?: boolean;
}

/** errno codes that mean "this key is not an object here". */
const NOT_FOUND = new Set(["ENOENT", "ENOTDIR", "EISDIR"]);
/** errno codes of failures that may go away by themselves. */
const TRANSIENT = new Set(["EMFILE", "ENFILE", "EAGAIN", "EBUSY", "EINTR", "ETIMEDOUT"]);
/** Files stat'ed at once while listing a directory. */
const STAT_BATCH = 64;
/** Deletes in flight at once in `deletePrefix`. */
const DELETE_CONCURRENCY = 16;

function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** A Uint8Array that owns its whole ArrayBuffer (no pool slice), safe to view as other typed arrays. */
function ownBytes(buf: Uint8Array): Uint8Array {
  if (buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength) {
    return new Uint8Array(buf.buffer, 0, buf.byteLength);
  }
  return new Uint8Array(buf);
}

export class FsObjectStore implements ObjectStore {
  /** Absolute path of the store's root directory. */
  readonly root: string;
  private readonly fsync: boolean;
  private readonly where: string;

  constructor(root: string, options: FsObjectStoreOptions = {}) {
    if (typeof root !== "string" || root.length === 0) {
      throw VbError.invalid(`filesystem object store needs a root directory (1100): give a path such as /var/lib/vbus/objects`);
    }
    this.root = resolve(root);
    this.fsync = options.fsync ?? true;
    this.where = `filesystem store ${this.root}`;
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    validateKey(key, FS_TEMP_PREFIX);
    const file = this.pathOf(key);
    const dir = dirname(file);
    // A concurrent delete may remove a directory that just became empty between our mkdir and our
    // write; making it again is all it takes.
    for (let attempt = 0; ; attempt++) {
      try {
        await mkdir(dir, { recursive: true });
        await this.writeAtomic(dir, file, data);
        return;
      } catch (err) {
        if (errnoCode(err) === "ENOENT" && attempt < 5) continue;
        throw this.writeError(key, err);
      }
    }
  }

  async get(key: string): Promise<Uint8Array> {
    validateKey(key, FS_TEMP_PREFIX);
    try {
      return ownBytes(await readFile(this.pathOf(key)));
    } catch (err) {
      throw this.readError("get", key, err);
    }
  }

  async getRange(key: string, offset: number, length: number): Promise<Uint8Array> {
    validateKey(key, FS_TEMP_PREFIX);
    validateRange(key, offset, length);
    let fh: FileHandle;
    try {
      fh = await open(this.pathOf(key), "r");
    } catch (err) {
      throw this.readError("getRange", key, err);
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw keyNotFound(key, this.where);
      if (offset + length > st.size) throw rangeBeyondEnd(key, offset, length, st.size);
      const out = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await fh.read(out, done, length - done, offset + done);
        // The file a descriptor points to never changes size under us (puts rename a new file in).
        if (bytesRead === 0) throw rangeBeyondEnd(key, offset, length, offset + done);
        done += bytesRead;
      }
      return out;
    } catch (err) {
      if (err instanceof VbError) throw err;
      throw this.readError("getRange", key, err);
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  async stat(key: string): Promise<ObjectStat> {
    validateKey(key, FS_TEMP_PREFIX);
    let st;
    try {
      st = await stat(this.pathOf(key));
    } catch (err) {
      throw this.readError("stat", key, err);
    }
    if (!st.isFile()) throw keyNotFound(key, this.where);
    return { key, size: st.size, lastModified: st.mtime };
  }

  async *list(prefix: string): AsyncIterable<ObjectEntry> {
    validatePrefix(prefix, FS_TEMP_PREFIX);
    // Start in the deepest directory the prefix names; its last, partial segment filters that
    // directory's entries ("insert_log/1/2" lists "insert_log/1/" entries starting with "2").
    const cut = prefix.lastIndexOf("/") + 1;
    yield* this.walk(prefix.slice(0, cut), prefix.slice(cut));
  }

  async delete(key: string): Promise<void> {
    validateKey(key, FS_TEMP_PREFIX);
    await this.remove(key);
  }

  async deletePrefix(prefix: string): Promise<number> {
    validatePrefix(prefix, FS_TEMP_PREFIX);
    if (prefix === "") {
      throw VbError.invalid(`deletePrefix with an empty prefix is refused (1100): name the objects to remove`);
    }
    // Collect first: removing files (and emptied directories) while walking them would skip entries.
    const keys: string[] = [];
    for await (const e of this.list(prefix)) keys.push(e.key);
    let removed = 0;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < keys.length) {
        const key = keys[next++]!;
        if (await this.remove(key)) removed++;
      }
    };
    await Promise.all(Array.from({ length: Math.min(DELETE_CONCURRENCY, keys.length) }, worker));
    return removed;
  }

  async exists(key: string): Promise<boolean> {
    validateKey(key, FS_TEMP_PREFIX);
    try {
      return (await stat(this.pathOf(key))).isFile();
    } catch (err) {
      if (NOT_FOUND.has(errnoCode(err) ?? "")) return false;
      throw this.readError("exists", key, err);
    }
  }

  private pathOf(key: string): string {
    return join(this.root, ...key.split("/"));
  }

  private async writeAtomic(dir: string, file: string, data: Uint8Array): Promise<void> {
    const tmp = join(dir, `${FS_TEMP_PREFIX}${process.pid}-${randomBytes(8).toString("hex")}`);
    const fh = await open(tmp, "wx");
    let renamed = false;
    try {
      try {
        await fh.writeFile(data);
        if (this.fsync) await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, file);
      renamed = true;
      if (this.fsync) await syncDir(dir);
    } finally {
      if (!renamed) await unlink(tmp).catch(() => undefined);
    }
  }

  /** Removes one object and the directories it leaves empty; false when there was nothing to remove. */
  private async remove(key: string): Promise<boolean> {
    const file = this.pathOf(key);
    try {
      await unlink(file);
    } catch (err) {
      const code = errnoCode(err);
      // Missing, a parent is a file, or the key names a directory (EISDIR on Linux, EPERM on macOS):
      // no object by that key, which is fine.
      if (code === "ENOENT" || code === "ENOTDIR" || code === "EISDIR" || code === "EPERM") return false;
      throw ioFailed("delete", key, this.where, err, TRANSIENT.has(code ?? ""));
    }
    await this.pruneEmptyDirs(dirname(file));
    return true;
  }

  private async pruneEmptyDirs(dir: string): Promise<void> {
    while (dir !== this.root && dir.startsWith(this.root + "/")) {
      try {
        await rmdir(dir);
      } catch {
        return; // not empty (or already gone): parents are not empty either
      }
      dir = dirname(dir);
    }
  }

  /**
   * Yields the objects under directory `rel` (`""` or `"a/b/"`) whose names start with `namePrefix`,
   * in key order. A directory `d` sorts as `d/`: every key below it starts with that.
   */
  private async *walk(rel: string, namePrefix: string): AsyncGenerator<ObjectEntry> {
    const dir = rel === "" ? this.root : join(this.root, ...rel.slice(0, -1).split("/"));
    let dirents;
    try {
      dirents = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (NOT_FOUND.has(errnoCode(err) ?? "")) return;
      throw ioFailed("list", rel, this.where, err, TRANSIENT.has(errnoCode(err) ?? ""));
    }
    const entries = dirents
      .filter((d) => d.name.startsWith(namePrefix) && !d.name.startsWith(FS_TEMP_PREFIX))
      .filter((d) => d.isFile() || d.isDirectory())
      .map((d) => ({ name: d.name, isDir: d.isDirectory(), sortKey: d.isDirectory() ? `${d.name}/` : d.name }))
      .sort((a, b) => compareKeys(a.sortKey, b.sortKey));
    let i = 0;
    while (i < entries.length) {
      const first = entries[i]!;
      if (first.isDir) {
        yield* this.walk(`${rel}${first.name}/`, "");
        i++;
        continue;
      }
      // A run of files: stat them a batch at a time, yield in order.
      let j = i;
      while (j < entries.length && !entries[j]!.isDir && j - i < STAT_BATCH) j++;
      const batch = entries.slice(i, j);
      const stats = await Promise.all(
        batch.map(async (e) => {
          try {
            return await stat(join(dir, e.name));
          } catch (err) {
            if (errnoCode(err) === "ENOENT") return undefined; // deleted since readdir
            throw ioFailed("list", rel + e.name, this.where, err, TRANSIENT.has(errnoCode(err) ?? ""));
          }
        }),
      );
      for (let k = 0; k < batch.length; k++) {
        const st = stats[k];
        if (st?.isFile()) yield { key: rel + batch[k]!.name, size: st.size };
      }
      i = j;
    }
  }

  private readError(op: string, key: string, err: unknown): VbError {
    if (err instanceof VbError) return err;
    const code = errnoCode(err);
    if (NOT_FOUND.has(code ?? "")) return keyNotFound(key, this.where, err);
    return ioFailed(op, key, this.where, err, TRANSIENT.has(code ?? ""));
  }

  private writeError(key: string, err: unknown): VbError {
    if (err instanceof VbError) return err;
    const code = errnoCode(err);
    if (code === "ENOTDIR" || code === "EEXIST") {
      return VbError.invalid(
        `object key "${key}" runs through an existing object in ${this.where} (1100): ` +
          `a filesystem store cannot hold both "a" and "a/..."; choose keys where no key is a directory of another`,
        err,
      );
    }
    if (code === "EISDIR") {
      return VbError.invalid(
        `object key "${key}" is a directory of other keys in ${this.where} (1100): ` +
          `a filesystem store cannot hold both "a" and "a/..."; choose keys where no key is a directory of another`,
        err,
      );
    }
    return ioFailed("put", key, this.where, err, TRANSIENT.has(code ?? ""));
  }
}

/** Makes a rename durable: syncs the directory entry (a no-op where directories cannot be opened). */
async function syncDir(dir: string): Promise<void> {
  let fh: FileHandle;
  try {
    fh = await open(dir, "r");
  } catch {
    return;
  }
  try {
    await fh.sync();
  } catch (err) {
    const code = errnoCode(err);
    if (code !== "EINVAL" && code !== "EPERM" && code !== "EISDIR") throw err;
  } finally {
    await fh.close().catch(() => undefined);
  }
}
