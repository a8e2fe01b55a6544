/** The current targets querycoord stores in KV (a real nats-server): in pages, a handoff rewriting only the pages it changed. */
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { targetKey, targetSegmentKey } from "../../actors/querycoord/kv_layout.ts";
import { KvWriter } from "../../actors/querycoord/meta/kv_writer.ts";
import { TargetManager } from "../../actors/querycoord/meta/target_manager.ts";
import type { CollectionTarget, PersistedTarget } from "../../actors/querycoord/meta/types.ts";
import { encode } from "../../protocol/codec.ts";
import type { SegmentInfo } from "../../protocol/meta.ts";
import { KvMeta } from "../../runtime/kv_meta.ts";
import { connectTest, uniquePrefix } from "../harness/index.ts";

const COLL = 7n;
const log = pino({ level: "silent" });

const seg = (id: bigint, level: "L0" | "L1" = "L1"): SegmentInfo => ({
  segmentId: id,
  collectionId: COLL,
  partitionId: level === "L0" ? -1n : 3n,
  vchannel: `${COLL}v${id % 2n}`,
  level,
  state: "Flushed",
  numRows: 1_000,
  startPosition: 1n,
  endPosition: 2n,
  endTs: 3n,
  binlogs: [{ fieldId: 100, key: `files/insert_log/${COLL}/3/${id}/100/1`, rows: 1_000, bytes: 40_000 }],
  deltalogs: [],
  statslogs: [`files/stats_log/${COLL}/3/${id}/pk`],
  memorySize: 40_000,
  createdAt: 1,
  updatedAt: 2,
});

function target(ids: bigint[], l0: bigint[] = []): Omit<CollectionTarget, "version"> {
  return {
    collectionId: COLL,
    partitionIds: [3n],
    channels: new Map([[`${COLL}v0`, { vchannel: `${COLL}v0`, pchannel: 0, seekPosition: 5n, checkpointTs: 6n }]]),
    segments: new Map(ids.map((id) => [id, seg(id)])),
    l0Segments: new Map(l0.map((id) => [id, seg(id, "L0")])),
  };
}

const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => BigInt(from + i));

async function bucket() {
  const nc = await connectTest();
  const kv = await KvMeta.open(nc, uniquePrefix("qc_targets_"));
  return {
    kv,
    async [Symbol.asyncDispose]() {
      await kv.destroy().catch(() => undefined);
      await nc[Symbol.asyncDispose]();
    },
  };
}

/** Counts the puts and deletes that reach the bucket. */
function counting(kv: KvMeta) {
  const writer = new KvWriter(kv, log);
  const seen = { puts: [] as string[], deletes: [] as string[] };
  const put = writer.put.bind(writer);
  const del = writer.delete.bind(writer);
  writer.put = (key, value) => (seen.puts.push(key), put(key, value));
  writer.delete = (key) => (seen.deletes.push(key), del(key));
  return { writer, seen };
}

describe("stored current targets", () => {
  it("are stored in pages, and a handoff of a few segments rewrites a few pages; a restarted querycoord reads the same target", async () => {
    await using b = await bucket();
    const { writer, seen } = counting(b.kv);
    const tm = new TargetManager(writer);
    tm.offerNext(target(range(1, 6_000), [900_001n]));
    await tm.promote(COLL)!.stored;
    const first = seen.puts.length;
    // 6,000 segments in a handful of values, not one each
    expect(first).toBeGreaterThan(2);
    expect(first).toBeLessThan(60);
    for (const [key, v] of await b.kv.entries()) expect(v.value.byteLength, key).toBeLessThan(800 * 1024);

    // a handoff: 3 segments compacted into 1
    seen.puts.length = 0;
    const now = [...range(4, 5_997), 10_000n];
    tm.offerNext(target(now, [900_001n]));
    await tm.promote(COLL)!.stored;
    expect(seen.puts.length).toBeLessThanOrEqual(5); // the pages of 4 segments, and the head
    expect(seen.deletes.length).toBe(seen.puts.length - 1); // the pages they replaced

    const again = await TargetManager.open(b.kv, new KvWriter(b.kv, log));
    const cur = again.current(COLL)!;
    expect(cur.version).toBe(tm.current(COLL)!.version);
    expect([...cur.segments.keys()].sort((x, y) => Number(x - y))).toEqual(now);
    expect([...cur.l0Segments.keys()]).toEqual([900_001n]);
    // what a target keeps of a segment: everything a load needs, not datacoord's times or end timestamp
    const { createdAt: _c, updatedAt: _u, endTs: _e, ...kept } = seg(10_000n);
    expect(cur.segments.get(10_000n)).toEqual(kept);
    expect(cur.channels.get(`${COLL}v0`)!.seekPosition).toBe(5n);

    // released: nothing of it stays in the bucket
    await again.remove(COLL);
    expect([...(await b.kv.entries()).keys()]).toEqual([]);
  });

  it("reads a target stored one key per segment, and drops those keys once it stores the next one", async () => {
    await using b = await bucket();
    const head: PersistedTarget = { collectionId: COLL, version: 5, partitionIds: [3n], channels: [], segmentIds: [1n, 2n], l0SegmentIds: [3n] };
    await b.kv.put(targetKey(COLL), encode(head));
    for (const id of [1n, 2n]) await b.kv.put(targetSegmentKey(COLL, id), encode(seg(id)));
    await b.kv.put(targetSegmentKey(COLL, 3n), encode(seg(3n, "L0")));
    const writer = new KvWriter(b.kv, log);
    const tm = await TargetManager.open(b.kv, writer);
    expect([...tm.current(COLL)!.segments.keys()]).toEqual([1n, 2n]);
    expect([...tm.current(COLL)!.l0Segments.keys()]).toEqual([3n]);

    tm.offerNext(target([1n, 2n, 4n], [3n]));
    await tm.promote(COLL)!.stored;
    const keys = [...(await b.kv.entries()).keys()];
    expect(keys.filter((k) => k.includes(".seg."))).toEqual([]);
    const reread = await TargetManager.open(b.kv, writer);
    expect([...reread.current(COLL)!.segments.keys()].sort()).toEqual([1n, 2n, 4n]);
    expect([...reread.current(COLL)!.l0Segments.keys()]).toEqual([3n]);
  });
});
