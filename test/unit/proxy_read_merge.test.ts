import { describe, expect, it } from "vitest";
import { mergeSearch, type PreparedSearch } from "../../actors/proxy/read_task.ts";
import type { SearchResult } from "../../protocol/messages/querynode.ts";
import type { FieldSchema } from "../../protocol/schema.ts";

const title: FieldSchema = { name: "title", type: "VarChar", maxLength: 16, fieldId: 101 };

function prepared(limit: number, offset: number): PreparedSearch {
  return {
    spec: { collectionId: 1n, annsFieldId: 102, metric: "IP", queries: new Float32Array(4), nq: 1, topk: limit + offset, partitionIds: [], outputFieldIds: [101] },
    limit,
    offset,
    metric: "IP",
    consistency: "Strong",
    outputFields: [title],
  };
}

const shard = (ids: string[], scores: number[]): SearchResult => ({
  nq: 1,
  hits: [{ ids, scores: Float32Array.from(scores), fields: { 101: ids.map((id) => `t-${id}`) } }],
});

describe("the proxy's search merge", () => {
  it("orders equal scores across shards by VarChar pk in code point order, then skips offset and keeps limit", () => {
    // the shards' own order: equal scores by code point ("\uff61" before "😀", unlike UTF-16's `<`)
    const shards = [shard(["\uff61", "😀", "m"], [0.5, 0.5, 0.1]), shard(["b", "\ue000", "𝔸"], [0.5, 0.5, 0.5])];
    const all = ["b", "\ue000", "\uff61", "𝔸", "😀", "m"];
    for (const [offset, limit] of [
      [0, 6],
      [0, 2],
      [2, 2],
      [3, 3],
      [5, 4],
    ] as const) {
      const [hits] = mergeSearch(shards, prepared(limit, offset), false);
      const want = all.slice(offset, offset + limit);
      expect(hits!.ids, `offset ${offset} limit ${limit}`).toEqual(want);
      expect(hits!.entities).toEqual(want.map((id) => ({ title: `t-${id}` })));
    }
  });
});
