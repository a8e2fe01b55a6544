import { describe, expect, it } from "vitest";
import { ErrorCode } from "../../protocol/errors.ts";
import type { IndexInfo } from "../../protocol/messages/indexes.ts";
import { ask } from "../../runtime/ask.ts";
import { startTestCluster } from "../harness/standalone.ts";
import { connectTest } from "../harness/index.ts";

const DIM = 4;

describe("the proxy's private messages", () => {
  it("refuses proxy.internal.* from a NATS client with 1100 and changes nothing", async () => {
    await using tc = await startTestCluster();
    await tc.client.createCollection({
      schema: {
        name: "priv",
        fields: [
          { name: "id", type: "Int64", isPrimaryKey: true },
          { name: "vec", type: "FloatVector", dim: DIM },
        ],
      },
      shardsNum: 2,
    });
    await tc.client.loadCollection({ collectionName: "priv", wait: true });
    const info = await tc.client.describeCollection({ collectionName: "priv" });
    const rows = Array.from({ length: 20 }, (_, i) => ({ id: BigInt(i), vec: [i, 1, 0, 0] }));
    await tc.client.insert({ collectionName: "priv", rows });

    // what an outsider would send if it could reach the proxy's internals
    const fakeIndex: IndexInfo = {
      indexId: 1n,
      collectionId: info.collectionId,
      fieldId: info.schema.fields.find((f) => f.name === "vec")!.fieldId!,
      fieldName: "vec",
      indexName: "fake",
      indexType: "HNSW",
      metricType: "IP",
      params: { M: 16, efConstruction: 128 },
      createdTs: 1n,
    };
    const far = 1n << 60n;
    const attempts: [string, unknown][] = [
      // a write position no channel reaches: Session reads would wait for it
      ["proxy.internal.Written", info.vchannels.map((v) => [v.name, far])],
      ["proxy.internal.Forget", { name: "priv" }],
      ["proxy.internal.ForgetIndexes", info.collectionId],
      // an IP index in the cache: an L2 search would be refused for its metric
      ["proxy.internal.IndexInfos", { collectionId: info.collectionId, indexes: [fakeIndex], generation: "0:0" }],
      ["proxy.internal.Event", { kind: "database.dropped", dbName: "default" }],
    ];
    await using nc = await connectTest();
    const proxy = tc.sa.env.subjects.proxy();
    for (const [type, body] of attempts) {
      await expect(ask(nc, proxy, type, body, { timeoutMs: 5_000 }), type).rejects.toMatchObject({
        code: ErrorCode.ParameterInvalid,
        message: expect.stringContaining("internal"),
      });
    }

    // the caches and write positions are as they were: Session reads, L2 searches and writes still work
    const q = await tc.client.query({ collectionName: "priv", filter: "id >= 0", outputFields: ["id"], consistencyLevel: "Session" });
    expect(q.rows.map((r) => r.id).sort((a, b) => Number(a) - Number(b))).toEqual(rows.map((r) => r.id));
    const s = await tc.client.search({ collectionName: "priv", data: [[3, 1, 0, 0]], limit: 1, metricType: "L2", consistencyLevel: "Session" });
    expect(Array.from(s.results[0]!.ids as BigInt64Array)).toEqual([3n]);
    const w = await tc.client.insert({ collectionName: "priv", rows: [{ id: 100n, vec: [100, 1, 0, 0] }] });
    expect(w.insertCount).toBe(1);
    const c = await tc.client.query({ collectionName: "priv", outputFields: ["count(*)"], consistencyLevel: "Session" });
    expect(c.rows[0]!["count(*)"]).toBe(21);
  });
});
