/**
 * A standalone restarted over a DML backlog it never flushed: its datanode and its delegator start by
 * reading all of it. The nats-server here queues at most 12 MiB for a client before it drops it as a slow
 * consumer (64 MiB by default), so a backlog of ~30 MB does what ~0.5 GB does with the defaults: readers
 * that pull more than that at once get the process's connection cut, and its control traffic with it.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { startNatsServer, waitFor } from "../harness/index.ts";
import { startTestCluster } from "../harness/standalone.ts";

const ROWS = 60_000;
const DIM = 128;
const BATCH = 1_000;
const MAX_PENDING = 12 * 1024 * 1024;

async function slowConsumerLines(file: string): Promise<string[]> {
  const text = await readFile(file, "utf8").catch(() => "");
  return text.split("\n").filter((l) => l.includes("Slow Consumer"));
}

describe("a standalone restarted over an unflushed DML backlog", () => {
  it("answers status, loads, flushes and counts every row, and the server drops no connection as a slow consumer", async () => {
    const logDir = await mkdtemp(join(tmpdir(), "vbus-backlog-"));
    const logFile = join(logDir, "nats-server.log");
    await using server = await startNatsServer({ maxPending: MAX_PENDING, logFile });
    await using tc = await startTestCluster({ natsUrl: server.url });
    try {
      await tc.client.createCollection({
        schema: {
          name: "backlog",
          fields: [
            { name: "id", type: "Int64", isPrimaryKey: true },
            { name: "vector", type: "FloatVector", dim: DIM },
          ],
        },
        shardsNum: 1,
      });
      for (let off = 0; off < ROWS; off += BATCH) {
        const id = BigInt64Array.from({ length: BATCH }, (_, i) => BigInt(off + i));
        const vector = Float32Array.from({ length: BATCH * DIM }, () => Math.random() * 2 - 1);
        await tc.client.insert({ collectionName: "backlog", columns: { id, vector } });
      }

      // the whole backlog is read again at start: by the datanode from its checkpoint, by the delegator on load
      await tc.restart();
      await waitFor(() => tc.client.getStatus({}, { timeoutMs: 2_000 }), { timeoutMs: 15_000, what: "GetStatus to answer" });
      await tc.client.loadCollection({ collectionName: "backlog", replicaNumber: 1 });
      await waitFor(
        async () => (await tc.client.getLoadingProgress({ collectionName: "backlog" }, { timeoutMs: 5_000 })).state === "Loaded",
        { timeoutMs: 40_000, intervalMs: 100, what: "the collection to load" },
      );
      const flushed = await tc.client.flush({ collectionNames: ["backlog"] }, { timeoutMs: 30_000 });
      expect(flushed.collections.backlog!.segmentIds.length).toBeGreaterThan(0);
      const r = await tc.client.query({ collectionName: "backlog", outputFields: ["count(*)"], consistencyLevel: "Strong" }, { timeoutMs: 30_000 });
      expect(Number(r.rows[0]!["count(*)"])).toBe(ROWS);
      expect(await slowConsumerLines(logFile)).toEqual([]);
    } finally {
      await rm(logDir, { recursive: true, force: true });
    }
  }, 90_000);
});
