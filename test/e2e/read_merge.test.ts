/**
 * The proxy merges its shards' results the way the shards merge their segments' (actors/search/reduce.ts):
 * pages of a query over VarChar primary keys spread over 2 shards are exactly the pages of one list sorted
 * by code point, the order Milvus compares VarChar keys in (UTF-8 bytes), not JavaScript's UTF-16 `<`.
 */
import { describe, expect, it } from "vitest";
import type { CollectionSchema } from "../../protocol/schema.ts";
import { startTestCluster } from "../harness/standalone.ts";

const DIM = 4;

const schema: CollectionSchema = {
  name: "pages",
  fields: [
    { name: "key", type: "VarChar", isPrimaryKey: true, maxLength: 32 },
    { name: "n", type: "Int32" },
    { name: "vec", type: "FloatVector", dim: DIM },
  ],
};

/** Code point order, written out here apart from the code under test. */
function byCodePoint(a: string, b: string): number {
  const x = [...a].map((c) => c.codePointAt(0)!);
  const y = [...b].map((c) => c.codePointAt(0)!);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}

// characters above U+FFFF (surrogate pairs in UTF-16) beside U+E000..U+FFFF: their UTF-16 order is not
// their code point order
const PREFIXES = ["😀", "\uff61", "\ue000", "𝔸", "\ud7ff", "a", "Z", "é", "~"];

describe("the proxy's merge of shard results", () => {
  it("pages a query over VarChar keys across 2 shards exactly as one list sorted by code point", async () => {
    await using tc = await startTestCluster();
    await tc.client.createCollection({ schema, shardsNum: 2 });
    const keys = PREFIXES.flatMap((p) => Array.from({ length: 34 }, (_, i) => `${p}${i}`));
    const rows = keys.map((key, i) => ({ key, n: i, vec: [i % 7, 1, 0, 0] }));
    // half in flushed segments, half growing
    await tc.client.insert({ collectionName: "pages", rows: rows.slice(0, 150) });
    await tc.client.flush({ collectionNames: ["pages"] });
    await tc.client.loadCollection({ collectionName: "pages", wait: true });
    await tc.client.insert({ collectionName: "pages", rows: rows.slice(150) });

    const sorted = [...keys].sort(byCodePoint);
    // the test means something only if UTF-16 order differs
    expect(sorted).not.toEqual([...keys].sort());
    const nOf = new Map(rows.map((r) => [r.key, r.n]));

    const read = (offset: number, limit: number, filter?: string) =>
      tc.client.query({
        collectionName: "pages",
        limit,
        offset,
        outputFields: ["key", "n"],
        consistencyLevel: "Strong",
        ...(filter ? { filter } : {}),
      });
    const pageSize = 25;
    const seen: string[] = [];
    for (let offset = 0; offset <= keys.length; offset += pageSize) {
      const page = await read(offset, pageSize);
      const want = sorted.slice(offset, offset + pageSize);
      expect(page.rows.map((r) => r.key), `offset ${offset}`).toEqual(want);
      expect(page.rows.map((r) => r.n)).toEqual(want.map((k) => nOf.get(k)));
      seen.push(...page.rows.map((r) => r.key as string));
    }
    expect(seen).toEqual(sorted);
    // pages of a filtered query: the rows of the filter, in the same order
    const filtered = sorted.filter((k) => nOf.get(k)! % 3 === 0);
    for (const offset of [0, 10, 40, 95]) {
      const page = await read(offset, 10, "n % 3 == 0");
      expect(page.rows.map((r) => r.key), `filtered, offset ${offset}`).toEqual(filtered.slice(offset, offset + 10));
    }
    const count = await tc.client.query({ collectionName: "pages", outputFields: ["count(*)"], consistencyLevel: "Strong" });
    expect(count.rows[0]!["count(*)"]).toBe(keys.length);
  });
});
