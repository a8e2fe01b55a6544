import { describe, expect, it } from "vitest";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import { decode } from "../../protocol/codec.ts";
import type { SegmentInfo, CollectionInfo } from "../../protocol/meta.ts";
import type { Column } from "../../protocol/schema.ts";
import { readSegment } from "../../actors/storage/index.ts";
import { demoSchema, randomRows } from "../../ops/random_rows.ts";
import { startTestCluster, type TestCluster } from "../harness/standalone.ts";

async function refusal(p: Promise<unknown>): Promise<VbError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(VbError);
    return err as VbError;
  }
  throw new Error("expected the request to be refused");
}

async function flushedSegments(tc: TestCluster, collectionId: bigint): Promise<SegmentInfo[]> {
  const { segments } = await tc.sa.host.ask<{ segments: SegmentInfo[] }>(tc.sa.env.subjects.datacoord(), "datacoord.ListSegments", {
    collectionId,
    states: ["Flushed"],
  });
  return segments.filter((s) => s.level === "L1");
}

/** pk → the row read back from the binlogs, every field as the client would send it */
async function readBack(tc: TestCluster, info: CollectionInfo, segs: SegmentInfo[]): Promise<Map<bigint, Record<string, unknown>>> {
  const rows = new Map<bigint, Record<string, unknown>>();
  for (const seg of segs) {
    const data = await readSegment(tc.sa.env.objectStore, seg, info.schema);
    const byId = new Map<number, Column>(data.columns.map((c) => [c.fieldId, c]));
    for (let r = 0; r < data.numRows; r++) {
      const row: Record<string, unknown> = {};
      for (const f of info.schema.fields) {
        const col = byId.get(f.fieldId!)!;
        if (f.type === "FloatVector") row[f.name] = (col.data as Float32Array).slice(r * f.dim!, (r + 1) * f.dim!);
        else if (f.type === "JSON") row[f.name] = JSON.parse((col.data as string[])[r]!);
        else row[f.name] = (col.data as ArrayLike<unknown>)[r];
      }
      const pk = row.id as bigint;
      if (rows.has(pk)) throw new Error(`pk ${pk} appears twice in flushed segments`);
      rows.set(pk, row);
    }
  }
  return rows;
}

describe("write path on standalone", () => {
  it("inserts 100,000 rows, flushes them, and the binlogs read back equal the rows exactly", async () => {
    await using tc = await startTestCluster({ cluster: { sealPolicy: { maxRows: 40_000, maxBytes: 256 << 20, idleMs: 600_000 } } });
    const schema = demoSchema("books", 128);
    const info = await tc.client.createCollection({ schema, shardsNum: 2 });
    const total = 100_000;
    const batch = 5_000;
    const ids: bigint[] = [];
    let lastTs = 0n;
    for (let off = 0; off < total; off += batch) {
      const res = await tc.client.insert({ collectionName: "books", rows: randomRows(schema, off, batch) });
      expect(res.insertCount).toBe(batch);
      expect(res.timestamp).toBeGreaterThan(lastTs);
      lastTs = res.timestamp;
      ids.push(...(res.ids as BigInt64Array));
    }
    expect(ids.length).toBe(total);
    const flushed = await tc.client.flush({ collectionNames: ["books"] });
    expect(flushed.collections.books!.flushed).toBe(true);

    const segs = await flushedSegments(tc, info.collectionId);
    expect(segs.reduce((s, x) => s + x.numRows, 0)).toBe(total);
    expect(segs.length).toBeGreaterThanOrEqual(3); // 2 shards, sealed at 40,000 rows
    for (const s of segs) {
      expect(s.binlogs.length).toBeGreaterThan(0);
      expect(s.statslogs.length).toBeGreaterThan(0);
      for (const b of s.binlogs) expect(b.key.startsWith(`insert_log/${info.collectionId}/`)).toBe(true);
    }
    const back = await readBack(tc, info, segs);
    expect(back.size).toBe(total);
    const expected = randomRows(schema, 0, total);
    const mismatches: string[] = [];
    for (const row of expected) {
      const got = back.get(row.id as bigint);
      if (!got) {
        mismatches.push(`pk ${row.id}: missing`);
        continue;
      }
      const vec = row.vec as Float32Array;
      const gvec = got.vec as Float32Array;
      const sameVec = vec.length === gvec.length && vec.every((x, i) => Object.is(x, gvec[i]));
      if (got.title !== row.title || got.price !== row.price || JSON.stringify(got.meta) !== JSON.stringify(row.meta) || !sameVec) {
        mismatches.push(`pk ${row.id}: ${JSON.stringify({ title: got.title, price: got.price, meta: got.meta })}`);
      }
    }
    expect(mismatches.slice(0, 5)).toEqual([]);
    const stats = await tc.client.getCollectionStatistics({ collectionName: "books" });
    expect(stats.flushedRows).toBe(total);
  });

  it("refuses bad inserts with 1100 naming the field, and keeps taking valid ones", async () => {
    await using tc = await startTestCluster();
    const schema = demoSchema("strict", 8);
    await tc.client.createCollection({ schema });
    const ok = randomRows(schema, 0, 1)[0]!;
    const bad: [Record<string, unknown>, string][] = [
      [{ ...ok, vec: new Float32Array(7) }, "vec"],
      [{ ...ok, id: undefined }, "id"],
      [{ ...ok, title: "x".repeat(300) }, "title"],
      [{ ...ok, price: "free" }, "price"],
      [{ ...ok, colour: "red" }, "colour"],
      [{ ...ok, vec: new Float32Array([0, 1, Number.NaN, 3, 4, 5, 6, 7]) }, "vec"],
    ];
    for (const [row, field] of bad) {
      const err = await refusal(tc.client.insert({ collectionName: "strict", rows: [row] }));
      expect(err.code).toBe(ErrorCode.ParameterInvalid);
      expect(err.message).toContain(`field "${field}"`);
    }
    // a request that is not msgpack at all
    const raw = await tc.sa.nc.request(tc.sa.env.subjects.proxy(), new Uint8Array([0xc1, 0xff, 0x00]), { timeout: 5_000 });
    expect(decode<{ ok: boolean; error: { code: number } }>(raw.data).error.code).toBe(1100);
    // unknown collection
    expect((await refusal(tc.client.insert({ collectionName: "nope", rows: [ok] }))).code).toBe(ErrorCode.CollectionNotFound);
    // and the collection still takes valid rows
    const res = await tc.client.insert({ collectionName: "strict", rows: randomRows(schema, 10, 50) });
    expect(res.insertCount).toBe(50);
    await tc.client.flush({ collectionNames: ["strict"] });
    expect((await tc.client.getCollectionStatistics({ collectionName: "strict" })).flushedRows).toBe(50);
  });

  it("keeps collections, partitions, segments and checkpoints across a restart, and timestamps keep rising", async () => {
    await using tc = await startTestCluster();
    const schema = demoSchema("kept", 8);
    const info = await tc.client.createCollection({ schema, shardsNum: 2 });
    await tc.client.createPartition({ collectionName: "kept", partitionName: "p2024" });
    const first = await tc.client.insert({ collectionName: "kept", rows: randomRows(schema, 0, 1_000) });
    await tc.client.insert({ collectionName: "kept", partitionName: "p2024", rows: randomRows(schema, 1_000, 500) });
    await tc.client.flush({ collectionNames: ["kept"] });
    const before = await flushedSegments(tc, info.collectionId);
    const checkpoints = await Promise.all(
      info.vchannels.map((v) =>
        tc.sa.host.ask<{ position: bigint }>(tc.sa.env.subjects.datacoord(), "datacoord.GetChannelCheckpoint", { vchannel: v.name }),
      ),
    );

    await tc.restart();

    const again = await tc.client.describeCollection({ collectionName: "kept" });
    expect(again.collectionId).toBe(info.collectionId);
    expect((await tc.client.listPartitions({ collectionName: "kept" })).partitions.sort()).toEqual(["_default", "p2024"]);
    const after = await flushedSegments(tc, info.collectionId);
    expect(after.map((s) => s.segmentId).sort()).toEqual(before.map((s) => s.segmentId).sort());
    for (let i = 0; i < info.vchannels.length; i++) {
      const cp = await tc.sa.host.ask<{ position: bigint }>(tc.sa.env.subjects.datacoord(), "datacoord.GetChannelCheckpoint", {
        vchannel: info.vchannels[i]!.name,
      });
      expect(cp.position).toBeGreaterThanOrEqual(checkpoints[i]!.position);
    }
    const later = await tc.client.insert({ collectionName: "kept", rows: randomRows(schema, 5_000, 10) });
    expect(later.timestamp).toBeGreaterThan(first.timestamp);
    await tc.client.flush({ collectionNames: ["kept"] });
    expect((await tc.client.getCollectionStatistics({ collectionName: "kept" })).flushedRows).toBe(1_510);
  });
});
