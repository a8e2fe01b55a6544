/**
 * One contract, two object stores: the filesystem store in a temporary directory and the S3 store
 * against an in-process s3rver. Both must give the same bytes, the same key order and the same error
 * codes. Then what only one of them has (fs: atomic replace, directory pruning; S3: root paths, bucket
 * creation, an unreachable server), and the parsing of store specs.
 */
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import { compareKeys, listAll, type ObjectStore } from "../../runtime/object_store.ts";
import { FsObjectStore } from "../../runtime/object_store_fs.ts";
import { S3ObjectStore } from "../../runtime/object_store_s3.ts";
import { describeObjectStore, openObjectStore, parseObjectStoreSpec } from "../../runtime/object_store_url.ts";
import { freePort } from "../../ops/nats_server.ts";
import { startS3Server, type S3Server } from "../harness/s3.ts";

interface StoreFixture extends AsyncDisposable {
  store: ObjectStore;
}
type StoreFactory = () => Promise<StoreFixture>;

/** The VbError a call fails with (fails the test if it does not fail, or fails otherwise). */
async function failure(p: Promise<unknown> | (() => Promise<unknown>)): Promise<VbError> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (err) {
    expect(err).toBeInstanceOf(VbError);
    return err as VbError;
  }
  throw new Error("expected the call to fail");
}

async function codeOf(p: Promise<unknown> | (() => Promise<unknown>)): Promise<number> {
  return (await failure(p)).code;
}

function bytes(n: number): Uint8Array {
  return new Uint8Array(randomBytes(n));
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

async function putAll(store: ObjectStore, entries: [string, Uint8Array][], concurrency = 32): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < entries.length) {
      const [k, v] = entries[next++]!;
      await store.put(k, v);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

const BAD_KEYS = ["", "/abs", "a//b", "../x", "a/../b", "a/./b", "a/", "a\\b"];
const BAD_PREFIXES = ["/abs", "a//b", "../x", "a/../"];

function objectStoreContract(name: string, open: StoreFactory): void {
  describe(`ObjectStore contract: ${name}`, () => {
    it("puts and gets exact bytes, including an empty object and an 8 MiB one", async () => {
      await using f = await open();
      const small = bytes(1000);
      const big = bytes(8 * 1024 * 1024 + 13);
      await f.store.put("seg/1/small", small);
      await f.store.put("seg/1/empty", new Uint8Array(0));
      await f.store.put("seg/1/big", big);
      // A view into a larger buffer: only the viewed bytes are stored.
      const backing = bytes(300);
      await f.store.put("seg/1/view", backing.subarray(100, 200));

      const gotSmall = await f.store.get("seg/1/small");
      expect(gotSmall).toBeInstanceOf(Uint8Array);
      expect(same(gotSmall, small)).toBe(true);
      expect((await f.store.get("seg/1/empty")).byteLength).toBe(0);
      const gotBig = await f.store.get("seg/1/big");
      expect(gotBig.byteLength).toBe(big.byteLength);
      expect(same(gotBig, big)).toBe(true);
      expect(same(await f.store.get("seg/1/view"), backing.subarray(100, 200))).toBe(true);
      // The result owns its buffer from offset 0, so it can be viewed as other typed arrays.
      expect(gotSmall.byteOffset).toBe(0);
      expect(gotSmall.buffer.byteLength).toBe(gotSmall.byteLength);
    });

    it("replaces an object on put", async () => {
      await using f = await open();
      await f.store.put("k", bytes(5000));
      const second = bytes(17);
      await f.store.put("k", second);
      expect(same(await f.store.get("k"), second)).toBe(true);
      expect((await f.store.stat("k")).size).toBe(17);
      expect(await listAll(f.store, "k")).toEqual([{ key: "k", size: 17 }]);
    });

    it("reads ranges at the start, in the middle, at the end and of zero length; past the end is 1002", async () => {
      await using f = await open();
      const data = bytes(100_000);
      await f.store.put("r/obj", data);
      const at = (o: number, n: number) => data.subarray(o, o + n);
      expect(same(await f.store.getRange("r/obj", 0, 10), at(0, 10))).toBe(true);
      expect(same(await f.store.getRange("r/obj", 40_000, 12_345), at(40_000, 12_345))).toBe(true);
      expect(same(await f.store.getRange("r/obj", 99_990, 10), at(99_990, 10))).toBe(true);
      expect(same(await f.store.getRange("r/obj", 0, 100_000), data)).toBe(true);
      expect((await f.store.getRange("r/obj", 500, 0)).byteLength).toBe(0);
      expect((await f.store.getRange("r/obj", 100_000, 0)).byteLength).toBe(0);

      // Ends past the end (starting inside, at the end, or beyond it).
      for (const [o, n] of [
        [99_990, 11],
        [0, 100_001],
        [100_000, 1],
        [200_000, 5],
        [100_001, 0],
      ] as const) {
        const err = await failure(f.store.getRange("r/obj", o, n));
        expect(err.code).toBe(ErrorCode.IoUnexpectEOF);
        expect(err.retriable).toBe(false);
        expect(err.message).toContain("100000");
      }
      // An empty object has only the empty range at 0.
      await f.store.put("r/empty", new Uint8Array(0));
      expect((await f.store.getRange("r/empty", 0, 0)).byteLength).toBe(0);
      expect(await codeOf(f.store.getRange("r/empty", 0, 1))).toBe(ErrorCode.IoUnexpectEOF);
      // Bad range arguments are the caller's mistake.
      expect(await codeOf(f.store.getRange("r/obj", -1, 5))).toBe(ErrorCode.ParameterInvalid);
      expect(await codeOf(f.store.getRange("r/obj", 0, -5))).toBe(ErrorCode.ParameterInvalid);
      expect(await codeOf(f.store.getRange("r/obj", 1.5, 5))).toBe(ErrorCode.ParameterInvalid);
    });

    it("stats an object's size and modification time", async () => {
      await using f = await open();
      const before = Date.now();
      await f.store.put("s/a", bytes(4321));
      await f.store.put("s/empty", new Uint8Array(0));
      const st = await f.store.stat("s/a");
      expect(st.key).toBe("s/a");
      expect(st.size).toBe(4321);
      expect(st.lastModified).toBeInstanceOf(Date);
      // Whole seconds on S3 (HTTP dates): allow for the truncation, not for a wrong clock.
      expect(st.lastModified.getTime()).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 - 1000);
      expect((await f.store.stat("s/empty")).size).toBe(0);
    });

    it("lists by prefix in key order, also with a prefix that ends inside a segment", async () => {
      await using f = await open();
      const keys = [
        "insert_log/1/3/0",
        "insert_log/1/2x",
        "insert_log/1/20/1/0",
        "insert_log/1/2/99/z",
        "insert_log/1/2/99/\u00e9",
        "insert_log/1/2/99/0",
        "insert_log/1/2/100/0",
        "insert_log/10/1/0",
        "stats_log/1/0",
      ];
      const sizes = new Map(keys.map((k, i) => [k, i * 3 + 1]));
      await putAll(
        f.store,
        keys.map((k) => [k, bytes(sizes.get(k)!)]),
      );
      const entry = (k: string) => ({ key: k, size: sizes.get(k)! });

      expect(await listAll(f.store, "insert_log/1/2")).toEqual(
        [
          "insert_log/1/2/100/0",
          "insert_log/1/2/99/0",
          "insert_log/1/2/99/z",
          "insert_log/1/2/99/\u00e9",
          "insert_log/1/20/1/0",
          "insert_log/1/2x",
        ].map(entry),
      );
      expect(await listAll(f.store, "insert_log/1/2/")).toEqual(
        ["insert_log/1/2/100/0", "insert_log/1/2/99/0", "insert_log/1/2/99/z", "insert_log/1/2/99/\u00e9"].map(entry),
      );
      expect((await listAll(f.store, "insert_log/1")).map((e) => e.key)).toEqual(
        keys.filter((k) => k.startsWith("insert_log/1")).sort(compareKeys),
      );
      expect((await listAll(f.store, "insert_log/1")).at(-1)?.key).toBe("insert_log/10/1/0");
      expect(await listAll(f.store, "")).toEqual([...keys].sort(compareKeys).map(entry));
      expect(await listAll(f.store, "insert_log/1/2/99/z")).toEqual([entry("insert_log/1/2/99/z")]);
      expect(await listAll(f.store, "insert_log/1/2/99/zz")).toEqual([]);
      expect(await listAll(f.store, "delta_log/")).toEqual([]);
      expect(await listAll(f.store, "nothing/here/at/all")).toEqual([]);
    });

    it("lists and deletes past 1,000 keys", async () => {
      await using f = await open();
      const keys = Array.from({ length: 1100 }, (_, i) => `bulk/${i % 3}/${i}`);
      await putAll(
        f.store,
        keys.map((k, i) => [k, new Uint8Array([i & 0xff, i >> 8])]),
      );
      const all = await listAll(f.store, "bulk/");
      expect(all.map((e) => e.key)).toEqual([...keys].sort(compareKeys));
      expect(all.every((e) => e.size === 2)).toBe(true);
      expect((await listAll(f.store, "bulk/1/")).length).toBe(367);
      expect((await listAll(f.store, "bulk/1/109")).map((e) => e.key)).toEqual([
        "bulk/1/109",
        "bulk/1/1090",
        "bulk/1/1093",
        "bulk/1/1096",
        "bulk/1/1099",
      ]);

      expect(await f.store.deletePrefix("bulk/")).toBe(1100);
      expect(await listAll(f.store, "bulk/")).toEqual([]);
      expect(await f.store.exists("bulk/1/1000")).toBe(false);
    });

    it("deletes an object; deleting a missing key is fine", async () => {
      await using f = await open();
      await f.store.put("d/a", bytes(10));
      await f.store.put("d/b", bytes(10));
      await f.store.delete("d/a");
      expect(await f.store.exists("d/a")).toBe(false);
      expect(await codeOf(f.store.get("d/a"))).toBe(ErrorCode.IoKeyNotFound);
      expect((await listAll(f.store, "d/")).map((e) => e.key)).toEqual(["d/b"]);
      await f.store.delete("d/a");
      await f.store.delete("never/written");
      await f.store.delete("d/b");
      expect(await listAll(f.store, "")).toEqual([]);
      // The key can be written again after a delete.
      const again = bytes(3);
      await f.store.put("d/a", again);
      expect(same(await f.store.get("d/a"), again)).toBe(true);
    });

    it("deletes by prefix, returning the count, and refuses the empty prefix", async () => {
      await using f = await open();
      const keys = ["p/1/a", "p/1/b", "p/10/a", "p/2/a", "q/1/a"];
      await putAll(
        f.store,
        keys.map((k) => [k, bytes(8)]),
      );
      expect(await codeOf(f.store.deletePrefix(""))).toBe(ErrorCode.ParameterInvalid);
      expect((await listAll(f.store, "")).length).toBe(5);

      expect(await f.store.deletePrefix("p/1/")).toBe(2);
      expect((await listAll(f.store, "")).map((e) => e.key)).toEqual(["p/10/a", "p/2/a", "q/1/a"]);
      expect(await f.store.deletePrefix("p/")).toBe(2);
      expect(await f.store.deletePrefix("p/")).toBe(0);
      expect(await f.store.deletePrefix("none/")).toBe(0);
      expect((await listAll(f.store, "")).map((e) => e.key)).toEqual(["q/1/a"]);
    });

    it("tells whether an object exists", async () => {
      await using f = await open();
      await f.store.put("e/x/y", bytes(1));
      await f.store.put("e/zero", new Uint8Array(0));
      expect(await f.store.exists("e/x/y")).toBe(true);
      expect(await f.store.exists("e/zero")).toBe(true);
      expect(await f.store.exists("e/x")).toBe(false); // a "directory" is not an object
      expect(await f.store.exists("e/x/y/z")).toBe(false);
      expect(await f.store.exists("e/none")).toBe(false);
    });

    it("answers a missing key with 1000 on get, getRange and stat", async () => {
      await using f = await open();
      await f.store.put("m/present/leaf", bytes(4));
      for (const key of ["m/absent", "m/present", "m/present/leaf/below", "nothing"]) {
        const errs = [
          await failure(f.store.get(key)),
          await failure(f.store.getRange(key, 0, 1)),
          await failure(f.store.getRange(key, 0, 0)),
          await failure(f.store.stat(key)),
        ];
        for (const err of errs) {
          expect(err.code).toBe(ErrorCode.IoKeyNotFound);
          expect(err.message).toContain(key);
        }
      }
    });

    it("refuses bad keys and prefixes with 1100", async () => {
      await using f = await open();
      for (const key of BAD_KEYS) {
        expect(await codeOf(f.store.put(key, bytes(1)))).toBe(ErrorCode.ParameterInvalid);
        expect(await codeOf(f.store.get(key))).toBe(ErrorCode.ParameterInvalid);
        expect(await codeOf(f.store.getRange(key, 0, 1))).toBe(ErrorCode.ParameterInvalid);
        expect(await codeOf(f.store.stat(key))).toBe(ErrorCode.ParameterInvalid);
        expect(await codeOf(f.store.delete(key))).toBe(ErrorCode.ParameterInvalid);
        expect(await codeOf(f.store.exists(key))).toBe(ErrorCode.ParameterInvalid);
      }
      for (const prefix of BAD_PREFIXES) {
        expect(await codeOf(listAll(f.store, prefix))).toBe(ErrorCode.ParameterInvalid);
        expect(await codeOf(f.store.deletePrefix(prefix))).toBe(ErrorCode.ParameterInvalid);
      }
      // Nothing was written by the refused calls.
      expect(await listAll(f.store, "")).toEqual([]);
    });
  });
}

// ---------------------------------------------------------------------------------------------------
// The filesystem store

let fsTmp: string;
beforeAll(async () => {
  fsTmp = await mkdtemp(join(tmpdir(), "vbus-objstore-"));
});
afterAll(async () => {
  await rm(fsTmp, { recursive: true, force: true });
});

function freshFsRoot(): string {
  return join(fsTmp, randomBytes(6).toString("hex"), "store");
}

async function openFs(): Promise<StoreFixture & { store: FsObjectStore }> {
  const root = freshFsRoot();
  return {
    store: new FsObjectStore(root),
    [Symbol.asyncDispose]: () => rm(resolve(root, ".."), { recursive: true, force: true }),
  };
}

objectStoreContract("filesystem", openFs);

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const d of await readdir(dir, { withFileTypes: true, recursive: true })) {
    const parent = (d as { parentPath?: string; path?: string }).parentPath ?? (d as { path?: string }).path ?? dir;
    out.push(join(parent, d.name).slice(dir.length + 1));
  }
  return out.sort();
}

describe("FsObjectStore", () => {
  it("creates its root on first put; before that it is an empty store", async () => {
    await using f = await openFs();
    expect(await listAll(f.store, "")).toEqual([]);
    expect(await codeOf(f.store.get("a"))).toBe(ErrorCode.IoKeyNotFound);
    expect(await f.store.exists("a")).toBe(false);
    await f.store.put("a/b", bytes(2));
    expect(await filesUnder(f.store.root)).toEqual(["a", "a/b"]);
  });

  it("replaces atomically: readers see one whole version, never a mix", async () => {
    await using f = await openFs();
    const versions = [bytes(256 * 1024), bytes(256 * 1024), bytes(256 * 1024)];
    await f.store.put("atomic/k", versions[0]!);
    let writing = true;
    const writer = (async () => {
      for (let i = 1; i <= 60; i++) await f.store.put("atomic/k", versions[i % 3]!);
      writing = false;
    })();
    let reads = 0;
    while (writing) {
      const got = await f.store.get("atomic/k");
      expect(versions.some((v) => same(v, got))).toBe(true);
      const part = await f.store.getRange("atomic/k", 1000, 5000);
      expect(versions.some((v) => same(v.subarray(1000, 6000), part))).toBe(true);
      reads++;
    }
    await writer;
    expect(reads).toBeGreaterThan(0);
    expect(await filesUnder(f.store.root)).toEqual(["atomic", "atomic/k"]);
  });

  it("keeps its temporary names to itself: refused as keys, never listed", async () => {
    await using f = await openFs();
    expect(await codeOf(f.store.put(".vbtmp-x", bytes(1)))).toBe(ErrorCode.ParameterInvalid);
    expect(await codeOf(f.store.put("a/.vbtmp-x/b", bytes(1)))).toBe(ErrorCode.ParameterInvalid);
    await f.store.put("t/k", bytes(3));
    // What a put that crashed between write and rename leaves behind.
    await writeFile(join(f.store.root, "t", ".vbtmp-12-deadbeef"), "partial");
    await mkdir(join(f.store.root, "t", "sub"), { recursive: true });
    await writeFile(join(f.store.root, "t", "sub", ".vbtmp-13-cafe"), "partial");
    expect(await listAll(f.store, "")).toEqual([{ key: "t/k", size: 3 }]);
    expect(await listAll(f.store, "t/")).toEqual([{ key: "t/k", size: 3 }]);
  });

  it("lists in byte order where a file and a directory share a name prefix", async () => {
    await using f = await openFs();
    // "-" (0x2d) and "." (0x2e) sort before "/" (0x2f): "k/a-c" < "k/a.b" < "k/a/b" < "k/a0".
    const keys = ["k/ab", "k/a0", "k/a/b", "k/a.b", "k/a-c", "k/a/a/z", "k/\u{1F600}", "k/\uFFFD"];
    await putAll(
      f.store,
      keys.map((k) => [k, bytes(1)]),
    );
    expect((await listAll(f.store, "k/")).map((e) => e.key)).toEqual([
      "k/a-c",
      "k/a.b",
      "k/a/a/z",
      "k/a/b",
      "k/a0",
      "k/ab",
      "k/\uFFFD",
      "k/\u{1F600}",
    ]);
    expect((await listAll(f.store, "k/a")).map((e) => e.key)).toEqual([
      "k/a-c",
      "k/a.b",
      "k/a/a/z",
      "k/a/b",
      "k/a0",
      "k/ab",
    ]);
  });

  it("removes the directories a delete empties, up to (not including) the root", async () => {
    await using f = await openFs();
    await f.store.put("x/y/z/1", bytes(1));
    await f.store.put("x/w", bytes(1));
    await f.store.delete("x/y/z/1");
    expect(await filesUnder(f.store.root)).toEqual(["x", "x/w"]);
    await f.store.delete("x/w");
    expect(await filesUnder(f.store.root)).toEqual([]);
    await f.store.put("p/q/r", bytes(1));
    expect(await f.store.deletePrefix("p/")).toBe(1);
    expect(await filesUnder(f.store.root)).toEqual([]);
  });

  it("survives puts racing deletes that empty the same directory", async () => {
    await using f = await openFs();
    for (let round = 0; round < 20; round++) {
      await f.store.put(`race/${round}/old`, bytes(1));
      await Promise.all([f.store.delete(`race/${round}/old`), f.store.put(`race/${round}/new`, bytes(1))]);
      expect((await listAll(f.store, `race/${round}/`)).map((e) => e.key)).toEqual([`race/${round}/new`]);
    }
  });

  it("refuses a key that runs through an object, or names a directory of keys, with 1100", async () => {
    await using f = await openFs();
    await f.store.put("f", bytes(1));
    const through = await failure(f.store.put("f/g", bytes(1)));
    expect(through.code).toBe(ErrorCode.ParameterInvalid);
    expect(through.message).toContain('"f/g"');
    await f.store.put("d/e", bytes(1));
    expect(await codeOf(f.store.put("d", bytes(1)))).toBe(ErrorCode.ParameterInvalid);
    // Reads of such keys are plain misses; deleting one does not touch the keys below it.
    expect(await codeOf(f.store.get("d"))).toBe(ErrorCode.IoKeyNotFound);
    expect(await codeOf(f.store.get("f/g"))).toBe(ErrorCode.IoKeyNotFound);
    await f.store.delete("d");
    expect((await listAll(f.store, "")).map((e) => e.key)).toEqual(["d/e", "f"]);
  });
});

// ---------------------------------------------------------------------------------------------------
// The S3 store

describe("S3 object store on s3rver", () => {
  let s3: S3Server;
  beforeAll(async () => {
    s3 = await startS3Server();
  });
  afterAll(async () => {
    await s3?.stop();
  });

  const bucketName = () => `vbt-${randomBytes(5).toString("hex")}`;
  const s3Store = (bucket: string, rootPath?: string) =>
    new S3ObjectStore({
      endPoint: s3.endPoint,
      port: s3.port,
      useSSL: false,
      accessKey: s3.accessKey,
      secretKey: s3.secretKey,
      bucket,
      ...(rootPath === undefined ? {} : { rootPath }),
    });
  // Objects of finished tests stay in s3rver's directory, removed with the server.
  const noop = async () => {};

  objectStoreContract("S3, a fresh bucket per test", async () => ({
    store: s3Store(bucketName()),
    [Symbol.asyncDispose]: noop,
  }));

  const shared = bucketName();
  objectStoreContract("S3, a fresh root path per test in one bucket", async () => ({
    store: s3Store(shared, `vb/${randomBytes(4).toString("hex")}/`),
    [Symbol.asyncDispose]: noop,
  }));

  it("keeps stores with different root paths apart, keys relative to the root", async () => {
    const bucket = bucketName();
    const a = s3Store(bucket, "tenant-a");
    const b = s3Store(bucket, "/tenant-b/x/");
    const whole = s3Store(bucket);
    expect(b.rootPath).toBe("tenant-b/x");
    const da = bytes(10);
    const db = bytes(20);
    await a.put("seg/1", da);
    await b.put("seg/1", db);
    expect(same(await a.get("seg/1"), da)).toBe(true);
    expect(same(await b.get("seg/1"), db)).toBe(true);
    expect(await listAll(a, "")).toEqual([{ key: "seg/1", size: 10 }]);
    expect(await listAll(b, "seg")).toEqual([{ key: "seg/1", size: 20 }]);
    expect((await listAll(whole, "")).map((e) => e.key)).toEqual(["tenant-a/seg/1", "tenant-b/x/seg/1"]);
    expect(await a.deletePrefix("seg/")).toBe(1);
    expect(await b.exists("seg/1")).toBe(true);
    expect((await listAll(whole, "")).map((e) => e.key)).toEqual(["tenant-b/x/seg/1"]);
  });

  it("creates its bucket once, even when two stores race to create it", async () => {
    const bucket = bucketName();
    const a = s3Store(bucket);
    const b = s3Store(bucket);
    await Promise.all([a.ensureBucket(), b.ensureBucket(), a.ensureBucket()]);
    const data = bytes(64);
    await a.put("k", data);
    expect(same(await b.get("k"), data)).toBe(true);
  });

  it("reports an unreachable server as a retriable 1001", async () => {
    const port = await freePort(); // nothing listens there
    const store = new S3ObjectStore({
      endPoint: "127.0.0.1",
      port,
      useSSL: false,
      accessKey: "x",
      secretKey: "y",
      bucket: "vbt-unreachable",
    });
    for (const call of [() => store.get("k"), () => store.put("k", bytes(1)), () => listAll(store, "")]) {
      const err = await failure(call);
      expect(err.code).toBe(ErrorCode.IoFailed);
      expect(err.retriable).toBe(true);
      expect(err.cause).toBeDefined();
    }
  });

  it("refuses bad bucket names and options with 1100", () => {
    for (const bucket of ["ab", "Upper", "-lead", "trail-", "a..b", "10.0.0.1", "x".repeat(64)]) {
      const err = (() => {
        try {
          s3Store(bucket);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err).toBeInstanceOf(VbError);
      expect((err as VbError).code).toBe(ErrorCode.ParameterInvalid);
    }
    expect(() => s3Store("ok-bucket", "a//b")).toThrow(VbError);
    expect(
      () => new S3ObjectStore({ endPoint: "h", port: 70000, accessKey: "a", secretKey: "b", bucket: "abc" }),
    ).toThrow(/port/);
  });

  it("opens from a spec: s3:// with a root path, and file://", async () => {
    const bucket = bucketName();
    const store = openObjectStore(s3.storeSpec(bucket, "root/dir"));
    expect(store).toBeInstanceOf(S3ObjectStore);
    const data = bytes(1234);
    await store.put("a/b", data);
    expect(same(await store.get("a/b"), data)).toBe(true);
    expect((await listAll(s3Store(bucket), "")).map((e) => e.key)).toEqual(["root/dir/a/b"]);

    const root = freshFsRoot();
    const fsStore = openObjectStore(`file://${root}`);
    expect(fsStore).toBeInstanceOf(FsObjectStore);
    await fsStore.put("a/b", data);
    expect(same(await new FsObjectStore(root).get("a/b"), data)).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------------
// Store specs

describe("openObjectStore / parseObjectStoreSpec", () => {
  const noEnv = {};

  it("reads plain paths and file URLs as filesystem stores", () => {
    expect(parseObjectStoreSpec("/var/lib/vbus/objects", noEnv)).toEqual({ kind: "fs", root: "/var/lib/vbus/objects" });
    expect(parseObjectStoreSpec("file:///var/lib/vbus/objects", noEnv)).toEqual({
      kind: "fs",
      root: "/var/lib/vbus/objects",
    });
    expect(parseObjectStoreSpec("file://localhost/srv/a%20b", noEnv)).toEqual({ kind: "fs", root: "/srv/a b" });
    expect(parseObjectStoreSpec("data/objects", noEnv)).toEqual({ kind: "fs", root: resolve("data/objects") });
    const store = openObjectStore("/tmp/vbus-never-created-by-this-test", noEnv);
    expect(store).toBeInstanceOf(FsObjectStore);
    expect((store as FsObjectStore).root).toBe("/tmp/vbus-never-created-by-this-test");
  });

  it("reads s3://, http:// and https:// URLs as S3 stores", () => {
    expect(
      parseObjectStoreSpec("s3://AKID:se%2Fcr%2Bet@minio.local:9000/my-bucket/vbus/prod?ssl=false&region=eu-west-1", noEnv),
    ).toEqual({
      kind: "s3",
      options: {
        endPoint: "minio.local",
        port: 9000,
        useSSL: false,
        accessKey: "AKID",
        secretKey: "se/cr+et",
        bucket: "my-bucket",
        region: "eu-west-1",
        rootPath: "vbus/prod",
      },
    });
    expect(parseObjectStoreSpec("s3://A:B@s3.amazonaws.com/bkt", noEnv)).toEqual({
      kind: "s3",
      options: { endPoint: "s3.amazonaws.com", port: 443, useSSL: true, accessKey: "A", secretKey: "B", bucket: "bkt" },
    });
    expect(parseObjectStoreSpec("http://A:B@10.0.0.5/bkt/", noEnv)).toEqual({
      kind: "s3",
      options: { endPoint: "10.0.0.5", port: 80, useSSL: false, accessKey: "A", secretKey: "B", bucket: "bkt" },
    });
    expect(parseObjectStoreSpec("https://A:B@[::1]:9443/bkt/r", noEnv)).toEqual({
      kind: "s3",
      options: { endPoint: "::1", port: 9443, useSSL: true, accessKey: "A", secretKey: "B", bucket: "bkt", rootPath: "r" },
    });
    // Credentials from the environment when the URL has none.
    const env = { AWS_ACCESS_KEY_ID: "envkey", AWS_SECRET_ACCESS_KEY: "envsecret" };
    expect(parseObjectStoreSpec("s3://minio:9000/bkt?ssl=0", env)).toEqual({
      kind: "s3",
      options: { endPoint: "minio", port: 9000, useSSL: false, accessKey: "envkey", secretKey: "envsecret", bucket: "bkt" },
    });
    const store = openObjectStore("s3://A:B@minio:9000/bkt/root?ssl=false", noEnv) as S3ObjectStore;
    expect(store).toBeInstanceOf(S3ObjectStore);
    expect([store.endPoint, store.port, store.useSSL, store.bucket, store.rootPath, store.region]).toEqual([
      "minio",
      9000,
      false,
      "bkt",
      "root",
      "us-east-1",
    ]);
  });

  it("refuses a bad spec with 1100 and says what is wrong, without the secret", () => {
    const cases: [string, RegExp][] = [
      ["", /empty/],
      ["   ", /empty/],
      ["ftp://A:B@h/bkt", /scheme "ftp:"/],
      ["s3://A:TOPSECRET@h:9000", /no bucket/],
      ["s3://A:TOPSECRET@h:9000/", /no bucket/],
      ["s3://A:TOPSECRET@h/ab", /bucket name "ab"/],
      ["s3://A:TOPSECRET@h/Bucket", /bucket name/],
      ["s3://A:TOPSECRET@h:99999/bkt", /not a well-formed URL/],
      ["s3://A:TOPSECRET@h/bkt?ssl=maybe", /ssl="maybe"/],
      ["s3://A:TOPSECRET@h/bkt?sll=false", /parameter "sll" is unknown/],
      ["https://A:TOPSECRET@h/bkt?ssl=false", /"ssl" belongs to s3/],
      ["s3://A:TOPSECRET@h/bkt/a//b", /empty segment/],
      ["s3://A:TOPSECRET@h/bkt/a%5Cb", /backslash/],
      ["s3://A@h/bkt", /both the access key and the secret key/],
      ["s3://h/bkt", /no credentials/],
      ["s3://A:TOP%ZZSECRET@h/bkt", /%-escape/],
      ["file://remote/x", /cannot name a host/],
      ["file:///x?y=1", /no query/],
    ];
    for (const [spec, why] of cases) {
      let err: unknown;
      try {
        openObjectStore(spec, {});
      } catch (e) {
        err = e;
      }
      expect(err, spec).toBeInstanceOf(VbError);
      expect((err as VbError).code, spec).toBe(ErrorCode.ParameterInvalid);
      expect((err as VbError).message, spec).toMatch(why);
      expect((err as VbError).message, spec).not.toContain("TOPSECRET");
    }
  });

  it("describes a spec for logs with the secret masked", () => {
    expect(describeObjectStore("s3://AKID:TOPSECRET@h:9000/bkt/r?ssl=false")).toBe("s3://AKID:***@h:9000/bkt/r?ssl=false");
    expect(describeObjectStore("https://AKID:TOP%2FSECRET@h/bkt")).toBe("https://AKID:***@h/bkt");
    expect(describeObjectStore("s3://AKID:TOP/SECRET@h/bkt")).not.toContain("SECRET");
    expect(describeObjectStore("s3://AKID@h/bkt")).toBe("s3://AKID@h/bkt");
    expect(describeObjectStore("/var/lib/vbus/objects")).toBe("/var/lib/vbus/objects");
    expect(describeObjectStore("file:///var/lib/vbus")).toBe("file:///var/lib/vbus");
  });
});
