import { describe, expect, it } from "vitest";
import type { SegmentInfo } from "../../protocol/meta.ts";
import { readSegment } from "../../actors/storage/index.ts";
import { listAll } from "../../runtime/object_store.ts";
import { demoSchema, randomRows } from "../../ops/random_rows.ts";
import { startS3Server } from "../harness/s3.ts";
import { startTestCluster } from "../harness/standalone.ts";

describe("standalone on an S3 object store", () => {
  it("flushes segments to S3, reads them back exactly, searches them, and keeps them across a restart", async () => {
    await using s3 = await startS3Server();
    await using tc = await startTestCluster({ objectStore: s3.storeSpec("vectorbus", "cluster1") });
    const schema = demoSchema("s3books", 16);
    const info = await tc.client.createCollection({ schema, shardsNum: 2 });
    const rows = randomRows(schema, 0, 3_000);
    await tc.client.insert({ collectionName: "s3books", rows });
    await tc.client.flush({ collectionNames: ["s3books"] });

    const keys = (await listAll(tc.sa.env.objectStore, `insert_log/${info.collectionId}/`)).map((e) => e.key);
    expect(keys.length).toBeGreaterThanOrEqual(2);
    const { segments } = await tc.sa.host.ask<{ segments: SegmentInfo[] }>(tc.sa.env.subjects.datacoord(), "datacoord.ListSegments", {
      collectionId: info.collectionId,
      states: ["Flushed"],
    });
    let total = 0;
    const titles = new Map<bigint, string>();
    for (const seg of segments.filter((s) => s.level === "L1")) {
      const data = await readSegment(tc.sa.env.objectStore, seg, info.schema);
      total += data.numRows;
      const ids = data.columns.find((c) => c.fieldId === info.schema.fields[0]!.fieldId)!.data as BigInt64Array;
      const t = data.columns.find((c) => c.fieldId === info.schema.fields[1]!.fieldId)!.data as string[];
      ids.forEach((id, i) => titles.set(id, t[i]!));
    }
    expect(total).toBe(3_000);
    expect(rows.every((r) => titles.get(r.id as bigint) === r.title)).toBe(true);

    await tc.client.loadCollection({ collectionName: "s3books", wait: true });
    const probe = rows[1234]!;
    const hit = await tc.client.search({ collectionName: "s3books", data: [probe.vec as Float32Array], limit: 1, metricType: "L2" });
    expect(hit.results[0]!.ids[0]).toBe(probe.id);

    await tc.restart();
    const count = await tc.client.query({ collectionName: "s3books", outputFields: ["count(*)"], consistencyLevel: "Strong" });
    expect(count.rows[0]!["count(*)"]).toBe(3_000);
  });
});
