import { describe, expect, it } from "vitest";
import { chunkDeletes, DeleteBuffer } from "../../actors/delegator/delete_buffer.ts";
import { Distribution, Version } from "../../actors/delegator/distribution.ts";
import { GrowingRows } from "../../actors/segment/growing.ts";
import { TSafe } from "../../actors/delegator/tsafe.ts";
import { querySources, readContext, type RowSource } from "../../actors/segment/read_kernel.ts";
import type { QuerySpec, SealedEntry } from "../../protocol/messages/querynode.ts";
import type { CollectionSchema } from "../../protocol/schema.ts";

const schema: CollectionSchema = {
  name: "c",
  fields: [
    { fieldId: 100, name: "id", type: "Int64", isPrimaryKey: true },
    { fieldId: 101, name: "vec", type: "FloatVector", dim: 2 },
  ],
};

function batch(position: bigint, partitionId: bigint, pks: bigint[]) {
  return {
    position,
    ts: position,
    partitionId,
    numRows: pks.length,
    pks: BigInt64Array.from(pks),
    columns: [
      { fieldId: 100, data: BigInt64Array.from(pks) },
      { fieldId: 101, data: new Float32Array(pks.length * 2) },
    ],
  };
}

function entry(segmentId: bigint, partitionId: bigint, start: bigint, end: bigint, nodeId = "n1"): SealedEntry {
  return { segmentId, partitionId, nodeId, startPosition: start, endPosition: end, numRows: 1 };
}

const countSpec: QuerySpec = { collectionId: 1n, partitionIds: [], outputFieldIds: [], countOnly: true };

describe("delete buffer", () => {
  it("collects the deletes after a position that apply to a partition", () => {
    const b = new DeleteBuffer(true);
    b.add(BigInt64Array.of(1n, 2n), 5n, -1n);
    b.add(BigInt64Array.of(3n), 7n, 10n);
    b.add(BigInt64Array.of(4n), 9n, 11n);
    expect(b.size).toBe(4);
    const s = b.collect(5n, 10n);
    expect(Array.from(s.pks as BigInt64Array)).toEqual([3n]);
    expect(Array.from(b.collect(4n, 11n).pks as BigInt64Array)).toEqual([1n, 2n, 4n]);
    expect(Array.from(b.collect(4n, -1n).positions)).toEqual([5n, 5n, 7n, 9n]);
    expect(Array.from(b.collect(0n, -1n, 7n).positions)).toEqual([5n, 5n, 7n]);
    expect(() => b.add(BigInt64Array.of(9n), 8n, -1n)).toThrow(/before/);
  });

  it("splits big slices under a byte budget, keeping every delete once", () => {
    const b = new DeleteBuffer(false);
    for (let i = 0; i < 1000; i++) b.add([`key-${i}`], BigInt(i + 1), -1n);
    const all = b.collect(0n, -1n);
    const parts = chunkDeletes(all, 2000);
    expect(parts.length).toBeGreaterThan(5);
    expect(parts.flatMap((p) => p.pks as string[])).toEqual(all.pks);
    expect(parts.reduce((a, p) => a + p.positions.length, 0)).toBe(1000);
  });
});

describe("growing rows", () => {
  it("stamps the rows a delete hides: earlier positions, same partition or every partition", () => {
    const g = new GrowingRows();
    const a = g.add(batch(3n, 10n, [1n, 2n]));
    const b = g.add(batch(5n, 11n, [1n, 3n]));
    expect(g.applyDelete(BigInt64Array.of(1n), 4n, 11n)).toBe(0); // pk 1 of partition 11 is at 5
    expect(g.applyDelete(BigInt64Array.of(1n), 6n, 10n)).toBe(1);
    expect(a.deletedAt[0]).toBe(6n);
    expect(b.deletedAt[0]).toBe(0n);
    // an upsert at 7: the delete half hides rows before 7, the row at 7 stays
    g.applyDelete(BigInt64Array.of(3n), 7n, -1n);
    const c = g.add(batch(7n, 10n, [3n]));
    expect(b.deletedAt[1]).toBe(7n);
    expect(c.deletedAt[0]).toBe(0n);
    // a later delete does not move an earlier stamp
    g.applyDelete(BigInt64Array.of(1n, 3n), 9n, -1n);
    expect(a.deletedAt[0]).toBe(6n);
    expect(b.deletedAt[0]).toBe(9n);
    expect(c.deletedAt[0]).toBe(9n);
  });

  it("drops batches and forgets their keys", () => {
    const g = new GrowingRows();
    g.add(batch(3n, 10n, [1n, 2n]));
    const b = g.add(batch(5n, 10n, [1n]));
    expect(g.numRows).toBe(3);
    expect(g.dropWhere((x) => x.position === 3n)).toBe(2);
    expect(g.numRows).toBe(1);
    expect(g.applyDelete(BigInt64Array.of(1n, 2n), 8n, -1n)).toBe(1);
    expect(b.deletedAt[0]).toBe(8n);
    expect(g.snapshot()).toEqual([b]);
  });

  it("drops batches at once and takes their keys out of the index in chunks, hiding nothing dropped meanwhile", () => {
    const g = new GrowingRows();
    const ids = (from: number, n: number) => Array.from({ length: n }, (_, i) => BigInt(from + i));
    g.add(batch(1n, 10n, ids(0, 15_000)));
    g.add(batch(2n, 10n, ids(15_000, 15_000)));
    const kept = g.add(batch(3n, 10n, [7n, ...ids(30_000, 99)])); // pk 7 again, in a batch that stays
    expect(g.dropWhere((b) => b.position < 3n)).toBe(30_000);
    expect([g.numRows, g.sweeping]).toEqual([100, true]);
    // before any sweep: deletes of dropped keys hide nothing, the kept copy of 7 is hidden
    expect(g.applyDelete(BigInt64Array.of(3n, 7n, 20_000n), 9n, -1n)).toBe(1);
    expect(kept.deletedAt[0]).toBe(9n);
    let rounds = 0;
    while (g.sweep(10_000)) rounds++;
    expect(rounds).toBe(2);
    expect(g.indexedKeys).toBe(99);
    expect(g.applyDelete(BigInt64Array.of(30_000n), 10n, -1n)).toBe(1);
  });

  it("tells Int64 keys apart beyond ±2^53 and negative, and counts the bytes it holds", () => {
    const keys = [2n ** 63n - 1n, 2n ** 53n, 2n ** 53n + 1n, -(2n ** 63n), -1n, 0n, 4294967296n];
    const g = new GrowingRows();
    const a = g.add(batch(3n, 10n, keys));
    expect(g.numBytes).toBeGreaterThanOrEqual(keys.length * (8 + 8 + 8)); // pks, the 2-dim vector, the stamps
    expect(g.applyDelete(BigInt64Array.of(2n ** 53n + 1n, -1n, 2n ** 63n - 2n), 4n, -1n)).toBe(2);
    expect(Array.from(a.deletedAt)).toEqual([0n, 0n, 4n, 0n, 4n, 0n, 0n]);
    expect(g.dropWhere(() => true)).toBe(keys.length);
    expect(g.numBytes).toBe(0);
    expect(g.applyDelete(BigInt64Array.from(keys), 9n, -1n)).toBe(0);
  });

  it("reads a snapshot at a position while later messages are applied", async () => {
    const g = new GrowingRows();
    g.add(batch(2n, 10n, [1n, 2n, 3n]));
    const snap = g.snapshot();
    g.add(batch(4n, 10n, [4n]));
    g.applyDelete(BigInt64Array.of(1n), 5n, -1n);
    const ctx = readContext(schema);
    expect((await querySources(ctx, snap as RowSource[], countSpec, 2n)).count).toBe(3);
    expect((await querySources(ctx, g.snapshot() as RowSource[], countSpec, 4n)).count).toBe(4);
    expect((await querySources(ctx, g.snapshot() as RowSource[], countSpec, 5n)).count).toBe(3);
  });
});

describe("distribution", () => {
  it("covers a partition's positions by its sealed ranges", () => {
    const v = new Version(1, 1, [entry(1n, 10n, 5n, 9n), entry(2n, 10n, 20n, 30n), entry(3n, 10n, 1n, 40n), entry(4n, 11n, 7n, 7n)]);
    expect(v.covers(10n, 5n)).toBe(true);
    expect(v.covers(10n, 35n)).toBe(true); // by the wide range
    expect(v.covers(10n, 41n)).toBe(false);
    expect(v.covers(11n, 7n)).toBe(true);
    expect(v.covers(11n, 8n)).toBe(false);
    expect(v.covers(12n, 7n)).toBe(false);
    const w = new Version(2, 1, [entry(1n, 10n, 5n, 9n), entry(2n, 10n, 20n, 30n)]);
    expect(w.covers(10n, 15n)).toBe(false);
    expect(w.covers(10n, 30n)).toBe(true);
  });

  it("keeps pinned versions live and hands a row to exactly one side", async () => {
    const d = new Distribution();
    const g = new GrowingRows();
    g.add(batch(3n, 10n, [1n, 2n]));
    g.add(batch(8n, 10n, [3n]));
    const old = d.pin();
    const next = d.publish(5, [entry(7n, 10n, 1n, 4n)]);
    expect(d.current).toBe(next);
    expect(d.liveVersions()).toEqual([next, old]);
    // a read of either version sees 3 rows: growing rows not covered plus the sealed segment's (2 rows, here counted as covered)
    const ctx = readContext(schema);
    const count = async (v: Version) =>
      (await querySources(ctx, g.snapshot() as RowSource[], countSpec, 10n, (s) => v.covers(s.partitionId, s.positions as bigint))).count +
      v.sealed.reduce((a, e) => a + (e.endPosition >= 3n ? 2 : 0), 0);
    expect(await count(old)).toBe(3);
    expect(await count(next)).toBe(3);
    // the covered batch may go only once the old version is unpinned
    const live = () => d.liveVersions();
    expect(g.dropWhere((b) => live().every((v) => v.covers(b.partitionId, b.position)))).toBe(0);
    d.unpin(old.id);
    expect(d.liveVersions()).toEqual([next]);
    expect(g.dropWhere((b) => live().every((v) => v.covers(b.partitionId, b.position)))).toBe(2);
    expect(await count(next)).toBe(3);
  });

  it("forwards deletes to the current and pending entries of the partition, and tracks offline entries", () => {
    const d = new Distribution();
    d.publish(1, [entry(1n, 10n, 1n, 5n), entry(2n, 11n, 1n, 5n, "n2")]);
    d.setPending([entry(3n, 10n, 6n, 9n, "n2"), entry(1n, 10n, 1n, 5n)]);
    expect(d.forwardTargets(10n).map((e) => e.segmentId)).toEqual([1n, 3n]);
    expect(d.forwardTargets(-1n).map((e) => e.segmentId)).toEqual([1n, 2n, 3n]);
    d.markOffline([entry(2n, 11n, 1n, 5n, "n2")]);
    expect(d.offlineIn(d.current).map((e) => e.segmentId)).toEqual([2n]);
    d.publish(2, [entry(2n, 11n, 1n, 5n, "n2")]);
    expect(d.offlineIn(d.current)).toEqual([]);
    expect(d.pending).toEqual([]);
  });
});

describe("tSafe", () => {
  it("parks reads until their position and hands back the expired ones", () => {
    const t = new TSafe(10n);
    const resumed: number[] = [];
    const a = t.park(12n, () => resumed.push(1), () => undefined);
    t.park(15n, () => resumed.push(2), () => undefined);
    t.advance(13n, 100n);
    for (const w of t.due(t.position)) w.resume();
    expect(resumed).toEqual([1]);
    expect(t.take(a)).toBeUndefined();
    const errors: Error[] = [];
    const c = t.park(20n, () => undefined, (e) => errors.push(e));
    expect(t.take(c)?.position).toBe(20n);
    t.failAll(new Error("stop"));
    expect(t.parked).toBe(0);
    t.advance(11n, 5n);
    expect(t.position).toBe(13n);
    expect(t.ts).toBe(100n);
  });
});
