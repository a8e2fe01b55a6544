import { afterAll, describe, expect, it } from "vitest";
import { compileFilter } from "../../actors/expr/index.ts";
import { buildIndex } from "../../actors/index/index.ts";
import { readContext } from "../../actors/segment/read_kernel.ts";
import { knobsOf, searchSealed, type SegmentPath } from "../../actors/segment/sealed_search.ts";
import { SealedSegment } from "../../actors/segment/sealed_segment.ts";
import { SearchThreads } from "../../actors/segment/search_threads.ts";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import type { IndexLoadInfo } from "../../protocol/messages/indexes.ts";
import type { SearchSpec } from "../../protocol/messages/querynode.ts";
import type { CollectionSchema } from "../../protocol/schema.ts";
import { embeddingVectors } from "../harness/sealed.ts";

const DIM = 16;
const N = 4000;
const schema: CollectionSchema = {
  name: "c",
  fields: [
    { fieldId: 100, name: "id", type: "Int64", isPrimaryKey: true },
    { fieldId: 101, name: "vec", type: "FloatVector", dim: DIM },
    { fieldId: 102, name: "tag", type: "Int32" },
  ],
};
const ctx = readContext(schema);
const threads = new SearchThreads({ threads: 0 });
afterAll(() => threads.close());

const vectors = embeddingVectors(N, DIM, 3);

function segment(): SealedSegment {
  return new SealedSegment(
    {
      segmentId: 1n,
      collectionId: 1n,
      partitionId: 10n,
      vchannel: "1v0",
      level: "L1",
      state: "Flushed",
      numRows: N,
      startPosition: 1n,
      endPosition: BigInt(N),
      binlogs: [],
      deltalogs: [],
      statslogs: [],
      memorySize: 0,
      createdAt: 0,
      updatedAt: 0,
    },
    schema,
    {
      numRows: N,
      positions: BigInt64Array.from({ length: N }, (_, i) => BigInt(i + 1)),
      columns: [
        { fieldId: 100, data: BigInt64Array.from({ length: N }, (_, i) => BigInt(i)) },
        { fieldId: 101, data: vectors },
        { fieldId: 102, data: Int32Array.from({ length: N }, (_, i) => i % 100) },
      ],
    },
  );
}

async function attach(seg: SealedSegment, indexType: "HNSW" | "FLAT", metric: "L2" | "IP", indexId: bigint): Promise<void> {
  const bytes = await buildIndex({ vectors, dim: DIM, metric, indexType });
  const handle = await threads.loadIndex(bytes);
  const info: IndexLoadInfo = { segmentId: 1n, fieldId: 101, indexId, buildId: indexId, fileKey: "k", indexType, metricType: metric, memorySize: 0 };
  seg.indexes.set(indexId, { info, handle, memoryBytes: handle.info.memoryBytes });
}

function spec(queries: Float32Array, extra: Partial<SearchSpec> = {}): SearchSpec {
  return { collectionId: 1n, annsFieldId: 101, metric: "L2", queries, nq: queries.length / DIM, topk: 10, partitionIds: [], outputFieldIds: [], ...extra };
}

async function run(seg: SealedSegment, s: SearchSpec, r = 1n << 40n): Promise<{ ids: bigint[][]; scores: number[][]; path: SegmentPath | undefined }> {
  const paths = new Map<bigint, SegmentPath>();
  const hits = await searchSealed(ctx, [seg], s, r, threads, paths);
  return { ids: hits.map((h) => [...(h.ids as BigInt64Array)]), scores: hits.map((h) => [...h.scores]), path: paths.get(1n) };
}

describe("sealed segment search", () => {
  const queries = embeddingVectors(8, DIM, 42);

  it("goes through an index of the searched field and metric, with the exact kernel's scores", async () => {
    const plain = segment();
    const indexed = segment();
    await attach(indexed, "HNSW", "L2", 5n);
    const exact = await run(plain, spec(queries));
    const viaIndex = await run(indexed, spec(queries));
    expect(exact.path).toBe("exact");
    expect(viaIndex.path).toBe("index");
    // the same hits but for what the graph misses (its build is multithreaded, so not the same graph
    // every run), each with the very score the exact kernel gives it, best first
    let found = 0;
    let total = 0;
    viaIndex.ids.forEach((ids, q) => {
      const exactScore = new Map(exact.ids[q]!.map((id, i) => [id, exact.scores[q]![i]!]));
      const scores = viaIndex.scores[q]!;
      expect(ids.length).toBe(exact.ids[q]!.length);
      ids.forEach((id, i) => {
        total++;
        if (exactScore.has(id)) {
          found++;
          expect(scores[i]).toBe(exactScore.get(id));
        } else {
          expect(scores[i]).toBeGreaterThanOrEqual(exact.scores[q]!.at(-1)!); // a miss is replaced by a worse row
        }
        if (i > 0) expect(scores[i]).toBeGreaterThanOrEqual(scores[i - 1]!);
      });
    });
    expect(found / total).toBeGreaterThanOrEqual(0.95);
    // another metric: exact; a range search: exact
    expect((await run(indexed, spec(queries, { metric: "IP" }))).path).toBe("exact");
    const radius = exact.scores[0]![9]!;
    const ranged = await run(indexed, spec(queries, { radius, topk: 50 }));
    expect(ranged.path).toBe("exact");
    expect(ranged.ids[0]).toEqual(exact.ids[0]!.slice(0, 9));
  });

  it("passes visibility and the filter to the index: deleted, later and filtered-out rows are never hits", async () => {
    const seg = segment();
    await attach(seg, "HNSW", "L2", 5n);
    const top = await run(seg, spec(queries));
    // delete every query's best hit at position N + 10
    const del = BigInt64Array.from(new Set(top.ids.map((ids) => ids[0]!)));
    seg.applyDeletes(del, new BigInt64Array(del.length).fill(BigInt(N + 10)));
    const before = await run(seg, spec(queries), BigInt(N + 9));
    expect(before.ids.map((ids) => ids[0])).toEqual(top.ids.map((ids) => ids[0]));
    const after = await run(seg, spec(queries), BigInt(N + 10));
    expect(after.path).toBe("index");
    for (const ids of after.ids) for (const pk of ids) expect(del.includes(pk)).toBe(false);
    // rows after the read position are not there yet
    const early = await run(seg, spec(queries), 1000n);
    for (const ids of early.ids) for (const pk of ids) expect(pk).toBeLessThan(1000n);
    // a filter
    const filtered = await run(seg, spec(queries, { filter: compileFilter("tag < 30", schema) }), BigInt(N + 10));
    for (const ids of filtered.ids) for (const pk of ids) expect(Number(pk) % 100).toBeLessThan(30);
  });

  it("falls back to exact search when the index went away under it", async () => {
    const seg = segment();
    await attach(seg, "HNSW", "L2", 5n);
    threads.release(seg.indexes.get(5n)!.handle); // released in its thread, still attached here
    const res = await run(seg, spec(queries));
    expect(res.path).toBe("exact");
    expect(res).toEqual({ ...(await run(segment(), spec(queries))), path: "exact" });
  });

  it("uses the newest index of a field and metric, and hands the search params on", async () => {
    const seg = segment();
    await attach(seg, "FLAT", "L2", 5n);
    await attach(seg, "HNSW", "L2", 9n);
    const e = await run(seg, spec(queries, { searchParams: { ef: 3 } })).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(VbError);
    expect((e as VbError).code).toBe(ErrorCode.ParameterInvalid);
    expect(knobsOf({ ef: "64", radius: 1 })).toEqual({ ef: "64" });
    expect(knobsOf({ radius: 1 })).toBeUndefined();
  });
});
