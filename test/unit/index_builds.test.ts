/**
 * Index build scheduling in datacoord (pure functions of its records), the proxy's index cache and the
 * checks a search gets against the anns field's index.
 */
import { describe, expect, it } from "vitest";
import {
  assigned,
  failed,
  failedForGood,
  finished,
  indexProgress,
  isDue,
  lost,
  MAX_BUILD_ATTEMPTS,
  missingBuilds,
  planBuilds,
  rearmed,
  retryDelayMs,
} from "../../actors/datacoord/index_builds.ts";
import { indexIdOfKey, type BuildRecord } from "../../actors/datacoord/index_meta.ts";
import { buildParamsOf } from "../../actors/datanode/index_builder.ts";
import { estimateIndexMemory } from "../../actors/index/index.ts";
import { IndexCache } from "../../actors/proxy/index_cache.ts";
import { prepareSearch } from "../../actors/proxy/read_task.ts";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import type { CollectionInfo, SegmentInfo } from "../../protocol/meta.ts";
import { indexFileKey, type IndexInfo } from "../../protocol/messages/indexes.ts";
import { segmentInfo } from "./segment_fixture.ts";

const index: IndexInfo = {
  indexId: 50n,
  collectionId: 1n,
  fieldId: 101,
  fieldName: "vec",
  indexName: "vec",
  indexType: "HNSW",
  metricType: "L2",
  params: { M: 16, efConstruction: 128 },
  createdTs: 1n,
};

function segment(id: bigint, over: Partial<SegmentInfo> = {}): SegmentInfo {
  return segmentInfo(id, { partitionId: 2n, state: "Flushed", numRows: 100, ...over });
}

function build(segmentId: bigint, over: Partial<BuildRecord> = {}): BuildRecord {
  return { segmentId, collectionId: 1n, partitionId: 2n, indexId: 50n, buildId: 1000n + segmentId, state: "Unissued", numRows: 100, attempts: 0, lost: 0, ...over };
}

describe("index build scheduling", () => {
  it("wants a build for every Flushed L1 segment without one", () => {
    const segs = [segment(1n), segment(2n), segment(3n, { state: "Growing" }), segment(4n, { level: "L0" }), segment(5n, { state: "Dropped" }), segment(6n, { numRows: 0 })];
    const missing = missingBuilds([index], () => segs, (s) => s === 2n);
    expect(missing.map((m) => m.segment.segmentId)).toEqual([1n, 6n]);
  });

  it("gives builds to the live node with the fewest in flight, ties by id, at most the cap per node", () => {
    const plan = planBuilds([1n, 2n, 3n, 4n, 5n, 6n], new Map([["dn2", 1], ["dn1", 0], ["dn3", 2]]), 2);
    expect([...plan]).toEqual([
      [1n, "dn1"],
      [2n, "dn1"],
      [3n, "dn2"],
    ]);
    expect(planBuilds([1n], new Map(), 2).size).toBe(0);
    expect(planBuilds([1n, 2n], new Map([["dn1", 2]]), 2).size).toBe(0);
  });

  it("retries reported failures with backoff, then keeps them Failed; lost builds are always retried", () => {
    expect([1, 2, 3, 6, 20].map(retryDelayMs)).toEqual([1_000, 2_000, 4_000, 30_000, 30_000]);
    let b = assigned(build(1n), "dn1", 1_000);
    expect(b).toMatchObject({ state: "InProgress", nodeId: "dn1", assignedAt: 1_000 });
    b = failed(b, "boom", 2_000);
    expect(b).toMatchObject({ state: "Failed", failReason: "boom", attempts: 1, retryAt: 3_000 });
    expect([isDue(b, 2_999), isDue(b, 3_000)]).toEqual([false, true]);
    for (let i = 1; i < MAX_BUILD_ATTEMPTS; i++) b = failed(assigned(b, "dn1", 5_000), "boom", 5_000);
    expect(b.attempts).toBe(MAX_BUILD_ATTEMPTS);
    expect(failedForGood(b)).toBe(true);
    expect(isDue(b, Number.MAX_SAFE_INTEGER)).toBe(false);
    b = rearmed(b, 9_000);
    expect([b.attempts, isDue(b, 9_000)]).toEqual([0, true]);

    let l = assigned(build(2n), "dn1", 0);
    for (let i = 1; i <= 10; i++) {
      l = lost(l, "gone", 100);
      expect(failedForGood(l)).toBe(false);
      expect(l.retryAt).toBe(100 + retryDelayMs(i));
    }
    const key = indexFileKey(1n, 2n, 2n, 50n, l.buildId);
    const f = finished(assigned(l, "dn2", 200), { fileKey: key, serializedSize: 10, memorySize: 20 });
    expect(f).toMatchObject({ state: "Finished", nodeId: "dn2", fileKey: key, lost: 10 });
    expect(f.failReason).toBeUndefined();
    expect(indexIdOfKey(key)).toBe(50n);
  });

  it("reports progress over the Flushed L1 segments", () => {
    const segs = [segment(1n, { numRows: 10 }), segment(2n, { numRows: 20 }), segment(3n, { numRows: 30 }), segment(4n, { state: "Growing", numRows: 99 })];
    const builds = new Map<bigint, BuildRecord>([
      [1n, finished(build(1n), { fileKey: "k", serializedSize: 1, memorySize: 1 })],
      [2n, { ...build(2n), state: "Failed", failReason: "bad", attempts: MAX_BUILD_ATTEMPTS }],
    ]);
    const p = indexProgress(index, segs, (s) => builds.get(s));
    expect(p).toMatchObject({ totalRows: 60, indexedRows: 10, pendingBuilds: 1, failedBuilds: [{ segmentId: 2n, reason: "bad" }], state: "InProgress" });
    builds.set(3n, finished(build(3n), { fileKey: "k", serializedSize: 1, memorySize: 1 }));
    expect(indexProgress(index, segs, (s) => builds.get(s)).state).toBe("Failed");
    builds.set(2n, finished(build(2n), { fileKey: "k", serializedSize: 1, memorySize: 1 }));
    expect(indexProgress(index, segs, (s) => builds.get(s))).toMatchObject({ indexedRows: 60, pendingBuilds: 0, state: "Finished" });
    expect(indexProgress(index, [], () => undefined)).toMatchObject({ totalRows: 0, state: "Finished" });
  });

  it("builds AUTOINDEX without the params it records (AUTOINDEX takes none from a caller)", () => {
    const auto: IndexInfo = { ...index, indexType: "AUTOINDEX", params: { M: 16, efConstruction: 128 } };
    expect(buildParamsOf(auto)).toEqual({});
    expect(estimateIndexMemory("AUTOINDEX", 1_000, 8, buildParamsOf(auto))).toBe(estimateIndexMemory("HNSW", 1_000, 8, auto.params));
    expect(buildParamsOf(index)).toBe(index.params);
  });
});

describe("proxy index cache", () => {
  it("drops an answer fetched before an invalidation", () => {
    const c = new IndexCache(1_000);
    const g = c.generation(1n);
    c.invalidate(1n);
    c.put(1n, [index], g, 0);
    expect(c.get(1n, 0)).toBeUndefined();
    c.put(1n, [index], c.generation(1n), 0);
    expect(c.get(1n, 999)).toEqual([index]);
    expect(c.get(1n, 1_000)).toBeUndefined();
    const g2 = c.generation(1n);
    c.clear();
    c.put(1n, [index], g2, 0);
    expect(c.get(1n, 0)).toBeUndefined();
  });
});

describe("search against the anns field's index", () => {
  const info = {
    collectionId: 1n,
    name: "c",
    consistencyLevel: "Bounded",
    partitions: [],
    schema: { name: "c", fields: [{ name: "id", type: "Int64", isPrimaryKey: true, fieldId: 100 }, { name: "vec", type: "FloatVector", dim: 2, fieldId: 101 }] },
  } as unknown as CollectionInfo;
  const req = { collectionName: "c", data: [[1, 0]], limit: 5 };
  const refused = (f: () => unknown, text: RegExp) => {
    try {
      f();
    } catch (err) {
      expect(err).toBeInstanceOf(VbError);
      expect((err as VbError).code).toBe(ErrorCode.ParameterInvalid);
      expect((err as VbError).message).toMatch(text);
      return;
    }
    throw new Error("not refused");
  };

  it("takes the index's metric by default and refuses another", () => {
    expect(prepareSearch(info, req).metric).toBe("COSINE");
    expect(prepareSearch(info, req, [index]).metric).toBe("L2");
    expect(prepareSearch(info, { ...req, metricType: "L2" }, [index]).spec.metric).toBe("L2");
    refused(() => prepareSearch(info, { ...req, metricType: "COSINE" }, [index]), /metric type COSINE does not match the index's L2/);
    // an index on another field changes nothing
    expect(prepareSearch(info, { ...req, metricType: "IP" }, [{ ...index, fieldId: 999 }]).metric).toBe("IP");
  });

  it("checks ef and nprobe and passes them on as numbers", () => {
    expect(prepareSearch(info, { ...req, searchParams: { ef: "16" } }, [index]).spec.searchParams).toEqual({ ef: 16 });
    refused(() => prepareSearch(info, { ...req, offset: 10, searchParams: { ef: 12 } }, [index]), /^ef: must be at least k \(15\), got 12/);
    const ivf: IndexInfo = { ...index, indexType: "IVF_FLAT", params: { nlist: 4 } };
    expect(prepareSearch(info, { ...req, searchParams: { nprobe: 4 } }, [ivf]).spec.searchParams).toEqual({ nprobe: 4 });
    refused(() => prepareSearch(info, { ...req, searchParams: { nprobe: 5 } }, [ivf]), /^nprobe: must be an integer in 1\.\.4/);
    // knobs of another index type are ignored, as Milvus ignores them
    expect(prepareSearch(info, { ...req, searchParams: { nprobe: 99 } }, [index]).spec.searchParams).toEqual({ nprobe: 99 });
  });
});
