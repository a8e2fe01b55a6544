import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeDist, MAX_DIST_BYTES } from "../../actors/querynode/dist_publisher.ts";
import { MemoryBudget } from "../../actors/querynode/memory.ts";
import {
  mergeQueryResults,
  mergeSearchResults,
  querySources,
  readContext,
  searchResultOf,
  searchSources,
  visibleMask,
} from "../../actors/segment/read_kernel.ts";
import { estimateSegmentBytes, SealedSegment } from "../../actors/segment/sealed_segment.ts";
import { compileFilter } from "../../actors/expr/index.ts";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import type { QueryNodeDist, QuerySpec, SearchSpec } from "../../protocol/messages/querynode.ts";
import type { SegmentInfo } from "../../protocol/meta.ts";
import type { CollectionSchema } from "../../protocol/schema.ts";

const DIM = 4;
const schema: CollectionSchema = {
  name: "c",
  fields: [
    { fieldId: 100, name: "id", type: "Int64", isPrimaryKey: true },
    { fieldId: 101, name: "vec", type: "FloatVector", dim: DIM },
    { fieldId: 102, name: "tag", type: "Int32" },
    { fieldId: 103, name: "title", type: "VarChar", maxLength: 20, nullable: true },
  ],
};

function info(segmentId: bigint, partitionId = 10n): SegmentInfo {
  return {
    segmentId,
    collectionId: 1n,
    partitionId,
    vchannel: "1v0",
    level: "L1",
    state: "Flushed",
    numRows: 0,
    startPosition: 1n,
    endPosition: 100n,
    binlogs: [],
    deltalogs: [],
    statslogs: [],
    memorySize: 0,
    createdAt: 0,
    updatedAt: 0,
  };
}

/** n rows: pk = base + i, position = 1 + i, vectors on a line so distances are easy to reason about. */
function segment(segmentId: bigint, n: number, base = 0n, partitionId = 10n): SealedSegment {
  const vec = new Float32Array(n * DIM);
  for (let i = 0; i < n; i++) vec[i * DIM] = i;
  return new SealedSegment({ ...info(segmentId, partitionId), numRows: n }, schema, {
    numRows: n,
    positions: BigInt64Array.from({ length: n }, (_, i) => BigInt(i + 1)),
    columns: [
      { fieldId: 100, data: BigInt64Array.from({ length: n }, (_, i) => base + BigInt(i)) },
      { fieldId: 101, data: vec },
      { fieldId: 102, data: Int32Array.from({ length: n }, (_, i) => i % 3) },
      { fieldId: 103, data: Array.from({ length: n }, (_, i) => `t${i}`), valid: Uint8Array.from({ length: n }, (_, i) => (i % 5 === 0 ? 0 : 1)) },
    ],
  });
}

const ctx = readContext(schema);

function spec(q: number[], topk: number, extra: Partial<SearchSpec> = {}): SearchSpec {
  return {
    collectionId: 1n,
    annsFieldId: 101,
    metric: "L2",
    queries: Float32Array.from(q),
    nq: q.length / DIM,
    topk,
    partitionIds: [],
    outputFieldIds: [102, 103],
    ...extra,
  };
}

describe("sealed segment deletes", () => {
  it("keeps the first delete after each row, whatever order deletes arrive in", () => {
    const s = segment(1n, 10);
    // row i has position i + 1
    expect(s.applyDeletes(BigInt64Array.of(3n), BigInt64Array.of(9n))).toBe(1);
    expect(s.applyDeletes(BigInt64Array.of(3n), BigInt64Array.of(6n))).toBe(1);
    expect(s.applyDeletes(BigInt64Array.of(3n), BigInt64Array.of(7n))).toBe(0);
    expect(s.deletedAt[3]).toBe(6n);
    // a delete at or before the row's position does not hide it (an upsert's own row)
    expect(s.applyDeletes(BigInt64Array.of(5n), BigInt64Array.of(6n))).toBe(0);
    // a delete of another partition is ignored; of every partition it applies
    expect(s.applyDeletes(BigInt64Array.of(7n, 8n), BigInt64Array.of(20n, 20n), BigInt64Array.of(11n, -1n))).toBe(1);
    expect(s.deletedAt[7]).toBe(0n);
    expect(s.deletedAt[8]).toBe(20n);
    // unknown pks are no-ops
    expect(s.applyDeletes(BigInt64Array.of(99n), BigInt64Array.of(50n))).toBe(0);
  });

  it("shows each row to the reads it belongs to", () => {
    const s = segment(1n, 6);
    s.applyDeletes(BigInt64Array.of(1n), BigInt64Array.of(4n));
    expect(Array.from(visibleMask(s, 0n))).toEqual([0, 0, 0, 0, 0, 0]);
    expect(Array.from(visibleMask(s, 3n))).toEqual([1, 1, 1, 0, 0, 0]);
    expect(Array.from(visibleMask(s, 4n))).toEqual([1, 0, 1, 1, 0, 0]);
    expect(Array.from(visibleMask(s, 100n))).toEqual([1, 0, 1, 1, 1, 1]);
  });

  it("reads positions and deletes exactly at every size, beyond 2^53 too (growing and sealed rows)", () => {
    const position = fc.oneof(fc.bigInt({ min: 1n, max: 1000n }), fc.bigInt({ min: 2n ** 52n, max: 2n ** 63n - 1n }));
    fc.assert(
      fc.property(
        fc.array(fc.tuple(position, fc.option(position, { nil: 0n })), { minLength: 1, maxLength: 40 }),
        position,
        fc.boolean(),
        (rows, r, sealed) => {
          const positions = BigInt64Array.from(rows, ([p]) => p);
          const deletedAt = BigInt64Array.from(rows, ([, d]) => d);
          const start = rows.reduce((m, [p]) => (p > m ? p : m), 0n);
          const src = { numRows: rows.length, positions: sealed ? start : positions, deletedAt } as unknown as Parameters<typeof visibleMask>[0];
          const want = rows.map(([p, d]) => ((sealed ? start : p) <= r && (d === 0n || d > r) ? 1 : 0));
          expect(Array.from(visibleMask(src, r))).toEqual(want);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("read kernel", () => {
  it("searches exactly over several sources, with deletes, a filter and output fields", async () => {
    const a = segment(1n, 50, 0n);
    const b = segment(2n, 50, 1000n);
    a.applyDeletes(BigInt64Array.of(10n), BigInt64Array.of(80n)); // row at x = 10 gone at 80
    const hits = await searchSources(ctx, [a, b], spec([10.2, 0, 0, 0], 4), 100n);
    const res = searchResultOf(ctx, hits, [102, 103]);
    // x = 10 is deleted: 10 from b (pk 1010), then 11 (pks 11, 1011), then 9 (pk 9)
    expect(Array.from(res.hits[0]!.ids as BigInt64Array)).toEqual([1010n, 11n, 1011n, 9n]);
    const q = Math.fround(10.2);
    expect(Array.from(res.hits[0]!.scores)).toEqual([10, 11, 11, 9].map((x) => Math.fround((q - x) ** 2)));
    expect(res.hits[0]!.fields[102]).toEqual([1, 2, 2, 0]);
    expect(res.hits[0]!.fields[103]).toEqual([null, "t11", "t11", "t9"]);
    // read before the delete: the row is back
    const early = searchResultOf(ctx, await searchSources(ctx, [a], spec([10, 0, 0, 0], 1), 79n), []);
    expect(early.hits[0]!.ids[0]).toBe(10n);
    // a filter
    const plan = compileFilter("tag == 0", schema);
    const f = searchResultOf(ctx, await searchSources(ctx, [a, b], spec([10, 0, 0, 0], 3, { filter: plan }), 100n), [102]);
    expect(f.hits[0]!.fields[102]).toEqual([0, 0, 0]);
    expect(Array.from(f.hits[0]!.ids as BigInt64Array)).toEqual([9n, 1009n, 12n]);
    // partitions
    const c = segment(3n, 5, 5000n, 11n);
    const p = searchResultOf(ctx, await searchSources(ctx, [a, c], spec([0, 0, 0, 0], 2, { partitionIds: [11n] }), 100n), []);
    expect(Array.from(p.hits[0]!.ids as BigInt64Array)).toEqual([5000n, 5001n]);
  });

  it("merges shard parts: best first, each pk once, output fields follow their hit", () => {
    const s = spec([0, 0, 0, 0], 3, { outputFieldIds: [102] });
    const merged = mergeSearchResults(
      [
        { nq: 1, hits: [{ ids: BigInt64Array.of(1n, 2n), scores: Float32Array.of(1, 4), fields: { 102: [10, 20] } }] },
        { nq: 1, hits: [{ ids: BigInt64Array.of(3n, 1n), scores: Float32Array.of(2, 5), fields: { 102: [30, 11] } }] },
      ],
      s,
      ctx,
    );
    expect(Array.from(merged.hits[0]!.ids as BigInt64Array)).toEqual([1n, 3n, 2n]);
    expect(merged.hits[0]!.fields[102]).toEqual([10, 30, 20]);
  });

  it("counts and lists the rows of a query, ascending by pk under a limit", async () => {
    const a = segment(1n, 20, 100n);
    const b = segment(2n, 20, 0n);
    b.applyDeletes(BigInt64Array.of(0n), BigInt64Array.of(30n));
    const q: QuerySpec = { collectionId: 1n, partitionIds: [], outputFieldIds: [102], countOnly: true };
    expect((await querySources(ctx, [a, b], q, 100n)).count).toBe(39);
    expect((await querySources(ctx, [a, b], q, 10n)).count).toBe(20);
    const rows = await querySources(ctx, [a, b], { ...q, countOnly: false, limit: 3 }, 100n);
    expect(Array.from(rows.pks as BigInt64Array)).toEqual([1n, 2n, 3n]);
    expect(rows.fields[102]).toEqual([1, 2, 0]);
    const merged = mergeQueryResults(
      [rows, { count: 2, pks: BigInt64Array.of(0n, 2n), fields: { 102: [7, 2] } }],
      { ...q, countOnly: false, limit: 3 },
      ctx,
    );
    expect(Array.from(merged.pks as BigInt64Array)).toEqual([0n, 1n, 2n]);
    expect(merged.fields[102]).toEqual([7, 1, 2]);
  });

  it("refuses a plan it cannot evaluate with 1100", async () => {
    const a = segment(1n, 3);
    const err = await searchSources(ctx, [a], spec([0, 0, 0, 0], 1, { filter: { version: 1, root: { kind: "nope" } } }), 100n).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VbError);
    expect((err as VbError).code).toBe(ErrorCode.ParameterInvalid);
  });
});

describe("memory and the dist", () => {
  it("reserves loads against the limit and says what does not fit", () => {
    const m = new MemoryBudget(1000);
    m.reserve(600, "segment 1", "qn1");
    let err: unknown;
    try {
      m.reserve(500, "segment 2 of collection 7", "qn1");
    } catch (e) {
      err = e;
    }
    expect((err as VbError).code).toBe(ErrorCode.MemoryLimitExceeded);
    expect((err as VbError).message).toMatch(/segment 2 of collection 7.*500 bytes.*400 bytes\) free/);
    m.settle(600, 550);
    expect(m.usedBytes).toBe(550);
    expect(m.freeBytes).toBe(450);
    m.release(550);
    expect(m.freeBytes).toBe(1000);
    expect(estimateSegmentBytes({ ...info(1n), numRows: 10 }, schema)).toBe(10 * (16 + 8 + 16 + 4 + 48));
  });

  it("keeps a dist under the payload limit", () => {
    const dist: QueryNodeDist = {
      nodeId: "qn1",
      at: 0,
      memoryBytes: 1,
      memoryLimitBytes: 2,
      rows: 3,
      segments: Array.from({ length: 20_000 }, (_, i) => ({
        segmentId: BigInt(i),
        collectionId: 1n,
        partitionId: 2n,
        vchannel: "1v0",
        rows: 100,
        memoryBytes: 1000,
        indexIds: [],
      })),
      delegators: [
        { collectionId: 1n, vchannel: "1v0", replicaId: 1n, address: "vb.dlg.1.1v0.1", serviceable: true, targetVersion: 1, tSafe: 5n, sealedSegmentIds: Array.from({ length: 20_000 }, (_, i) => BigInt(i)) },
      ],
      loading: [],
    };
    expect(encodeDist(dist).byteLength).toBeLessThanOrEqual(MAX_DIST_BYTES);
    const small = { ...dist, segments: dist.segments.slice(0, 10), delegators: [] };
    expect(encodeDist(small).byteLength).toBeLessThan(10_000);
  });
});
