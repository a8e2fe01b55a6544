import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { encode } from "../../protocol/codec.ts";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import { isCasConflict, KvMeta, type KvChange } from "../../runtime/kv_meta.ts";
import { jetstreamOf } from "../../runtime/streams.ts";
import { connectTest, uniquePrefix, waitFor } from "../harness/index.ts";

const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array) => new TextDecoder().decode(b);

async function twoClients(opts: Parameters<typeof KvMeta.open>[2] = {}) {
  const bucket = uniquePrefix("meta_");
  const nc1 = await connectTest();
  const nc2 = await connectTest();
  const a = await KvMeta.open(nc1, bucket, opts);
  const b = await KvMeta.open(nc2, bucket, opts);
  return {
    a,
    b,
    nc1,
    async [Symbol.asyncDispose]() {
      await a.destroy().catch(() => undefined);
      await nc1[Symbol.asyncDispose]();
      await nc2[Symbol.asyncDispose]();
    },
  };
}

async function rejection(p: Promise<unknown>): Promise<VbError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(VbError);
    return err as VbError;
  }
  throw new Error("expected a VbError");
}

describe("KV meta on JetStream", () => {
  it("lists and logs the values that do not decode as records, with bucket and key, until the key is written again", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const log = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    await using kv = await twoClients({ log });
    await kv.b.putValue("rec.1", { id: 1n });
    await kv.b.put("rec.2", Uint8Array.of(0xc1)); // 0xc1 is never used by msgpack
    await kv.b.put("rec.3", encode("a string, not a record"));
    await kv.b.putValue("rec.4", { other: true });
    const records = await kv.a.records<{ id: bigint }>((v) => typeof (v as { id?: unknown }).id === "bigint", "rec");
    expect([...records.entries()].map(([k, r]) => [k, r.value.id])).toEqual([["rec.1", 1n]]);
    const bad = kv.a.undecodable().sort((x, y) => x.key.localeCompare(y.key));
    expect(bad.map((r) => [r.bucket, r.key])).toEqual([
      [kv.a.bucket, "rec.2"],
      [kv.a.bucket, "rec.3"],
      [kv.a.bucket, "rec.4"],
    ]);
    expect(bad.every((r) => r.error.length > 0)).toBe(true);
    const logged = lines.filter((l) => l.level === 50).map((l) => [l.bucket, l.key]);
    expect(logged.sort()).toEqual(bad.map((r) => [r.bucket, r.key]));
    // reading one with getValue names it; writing a record there takes it off the list
    const err = await rejection(kv.a.getValue("rec.2"));
    expect(err.message).toMatch(/rec\.2.*does not decode/);
    await kv.a.putValue("rec.2", { id: 2n });
    await kv.a.delete("rec.3");
    expect(kv.a.undecodable().map((r) => r.key)).toEqual(["rec.4"]);
  });

  it("lets exactly one of two concurrent compare-and-set writers win, every time", async () => {
    await using kv = await twoClients();
    let rev = await kv.a.put("collections.1", text("v0"));
    for (let round = 1; round <= 30; round++) {
      const [ra, rb] = await Promise.allSettled([
        kv.a.update("collections.1", text(`a${round}`), rev),
        kv.b.update("collections.1", text(`b${round}`), rev),
      ]);
      const won = [ra, rb].filter((r) => r.status === "fulfilled");
      const lost = [ra, rb].filter((r) => r.status === "rejected");
      expect(won).toHaveLength(1);
      expect(isCasConflict(lost[0]!.reason)).toBe(true);
      expect((lost[0]!.reason as VbError).message).toMatch(/no longer at revision \d+.*re-read it and retry/);
      const winner = ra.status === "fulfilled" ? "a" : "b";
      const now = await kv.b.get("collections.1");
      expect(str(now!.value)).toBe(`${winner}${round}`);
      expect(now!.revision).toBe((won[0] as PromiseFulfilledResult<number>).value);
      rev = now!.revision;
    }
  });

  it("loses no increment when two writers read-modify-write a counter with retries", async () => {
    await using kv = await twoClients();
    await kv.a.putValue("tso", { n: 0n });
    const increment = async (m: KvMeta, times: number) => {
      for (let i = 0; i < times; i++) {
        for (;;) {
          const cur = (await m.getValue<{ n: bigint }>("tso"))!;
          try {
            await m.updateValue("tso", { n: cur.value.n + 1n }, cur.revision);
            break;
          } catch (err) {
            if (!isCasConflict(err)) throw err;
          }
        }
      }
    };
    await Promise.all([increment(kv.a, 60), increment(kv.b, 60)]);
    expect((await kv.a.getValue<{ n: bigint }>("tso"))!.value).toEqual({ n: 120n });
  });

  it("creates only when absent, including after a delete", async () => {
    await using kv = await twoClients();
    const [c1, c2] = await Promise.allSettled([kv.a.create("lock", text("a")), kv.b.create("lock", text("b"))]);
    expect([c1, c2].filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const err = [c1, c2].find((r) => r.status === "rejected") as PromiseRejectedResult;
    expect(isCasConflict(err.reason)).toBe(true);
    expect((err.reason as VbError).message).toMatch(/already exists/);
    await kv.a.delete("lock");
    expect(await kv.b.get("lock")).toBeUndefined();
    const rev = await kv.b.create("lock", text("b"));
    // a delete that expects an older revision does not remove the newer value
    expect(isCasConflict(await rejection(kv.a.delete("lock", { expectedRevision: rev - 1 })))).toBe(true);
    await kv.a.delete("lock", { expectedRevision: rev });
    expect(await kv.a.get("lock")).toBeUndefined();
  });

  it("lists keys and entries by whole-token prefix, without deleted keys", async () => {
    await using kv = await twoClients();
    for (const k of ["coll.1.seg.1", "coll.1.seg.2", "coll.1.part.7", "coll.10.seg.1", "coll.2.seg.3", "users/root=admin"]) {
      await kv.a.put(k, text(k));
    }
    await kv.a.put("coll.1.seg.2", text("second"));
    await kv.b.delete("coll.1.part.7");
    expect((await kv.b.keys("coll.1")).sort()).toEqual(["coll.1.seg.1", "coll.1.seg.2"]);
    expect((await kv.b.keys("coll.1.seg.")).sort()).toEqual(["coll.1.seg.1", "coll.1.seg.2"]);
    expect((await kv.b.keys()).sort()).toEqual(["coll.1.seg.1", "coll.1.seg.2", "coll.10.seg.1", "coll.2.seg.3", "users/root=admin"]);
    expect(await kv.b.keys("nothing")).toEqual([]);
    const entries = await kv.b.entries("coll.1");
    expect([...entries.keys()].sort()).toEqual(["coll.1.seg.1", "coll.1.seg.2"]);
    expect(str(entries.get("coll.1.seg.2")!.value)).toBe("second");
    expect(entries.get("coll.1.seg.2")!.revision).toBe((await kv.a.get("coll.1.seg.2"))!.revision);
    // bad keys are refused with 1100 and the allowed characters
    for (const bad of ["has space", ".lead", "trail.", "a..b", "star*"]) {
      const err = await rejection(kv.a.put(bad, text("x")));
      expect(err.code).toBe(ErrorCode.ParameterInvalid);
      expect(err.message).toMatch(/letters, digits/);
    }
  });

  it("watches a prefix: current values first (ready), then puts and deletes from another client", async () => {
    await using kv = await twoClients();
    await kv.a.put("replicas.1", text("r1"));
    await kv.a.put("replicas.2", text("r2"));
    await kv.a.put("other.1", text("o1"));
    const seen: KvChange[] = [];
    await using w = await kv.b.watch("replicas", (c) => void seen.push(c));
    await w.ready;
    expect(seen.map((c) => [c.key, c.operation, str(c.value), c.initial])).toEqual([
      ["replicas.1", "PUT", "r1", true],
      ["replicas.2", "PUT", "r2", true],
    ]);
    const r3 = await kv.a.put("replicas.3", text("r3"));
    await kv.a.put("other.2", text("o2"));
    await kv.a.delete("replicas.1");
    await kv.a.put("replicas.2", text("r2'"));
    await waitFor(() => seen.length === 5, { what: "three changes" });
    expect(seen.slice(2).map((c) => [c.key, c.operation, str(c.value), c.initial])).toEqual([
      ["replicas.3", "PUT", "r3", false],
      ["replicas.1", "DEL", "", false],
      ["replicas.2", "PUT", "r2'", false],
    ]);
    expect(seen[2]!.revision).toBe(r3);
    // updates only
    const later: KvChange[] = [];
    await using w2 = await kv.b.watch(undefined, (c) => void later.push(c), { includeInitial: false });
    await w2.ready;
    await kv.a.put("other.3", text("o3"));
    await waitFor(() => later.length === 1, { what: "the new put" });
    expect(later[0]).toMatchObject({ key: "other.3", operation: "PUT", initial: false });
    await w2.stop();
    await kv.a.put("other.4", text("o4"));
    await kv.a.put("replicas.4", text("r4"));
    await waitFor(() => seen.length === 6, { what: "the first watch to go on" });
    expect(later).toHaveLength(1);
  });

  it("applies asked history and TTL to an existing bucket and refuses another storage", async () => {
    await using kv = await twoClients();
    const { jsm } = await jetstreamOf(kv.nc1);
    const again = await KvMeta.open(kv.nc1, kv.a.bucket, { history: 5, ttlMs: 60_000 });
    const cfg = (await jsm.streams.info(again.stream)).config;
    expect(cfg.max_msgs_per_subject).toBe(5);
    expect(cfg.max_age).toBe(60_000 * 1_000_000);
    // opening without options leaves the settings alone
    await KvMeta.open(kv.nc1, kv.a.bucket);
    expect((await jsm.streams.info(again.stream)).config.max_msgs_per_subject).toBe(5);
    const err = await rejection(KvMeta.open(kv.nc1, kv.a.bucket, { storage: "memory" }));
    expect(err.code).toBe(ErrorCode.ParameterInvalid);
    expect(err.message).toMatch(/storage.*cannot change/);
    const badName = await rejection(KvMeta.open(kv.nc1, "bad.name"));
    expect(badName.code).toBe(ErrorCode.ParameterInvalid);
  });
});
