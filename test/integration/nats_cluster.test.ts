import { describe, expect, it } from "vitest";
import { StorageType } from "@nats-io/jetstream";
import { connectNats } from "../../runtime/transport.ts";
import { DmlLog } from "../../runtime/dml_log.ts";
import { ensureStream, jetstreamOf } from "../../runtime/streams.ts";
import { startNatsCluster, waitFor } from "../harness/index.ts";

describe("a 3-node NATS cluster from the harness", () => {
  it("replicates a DML channel three ways and keeps serving it when one server stops", async () => {
    await using cluster = await startNatsCluster(3);
    const nc = await connectNats(cluster.urls);
    try {
      // JetStream needs a meta leader before it answers and takes a replicated stream
      const jsm = await waitFor(
        async () => {
          try {
            const { jsm } = await jetstreamOf(nc);
            await ensureStream(jsm, { name: "R3", subjects: ["r3.>"], num_replicas: 3, storage: StorageType.File });
            return jsm;
          } catch {
            return undefined;
          }
        },
        { timeoutMs: 30_000, what: "a replicated stream" },
      );
      const dml = new DmlLog(nc);
      const positions = await dml.publishBatch(Array.from({ length: 200 }, (_, i) => ({ subject: "r3.v0", payload: new Uint8Array([i]) })));
      expect(positions.at(-1)).toBe(200n);
      const info = await jsm.streams.info("R3");
      expect(info.cluster?.replicas?.length).toBe(2);

      await cluster.servers[2]!.stop();
      const more = await waitFor(
        async () => {
          try {
            return await dml.publish("r3.v0", new Uint8Array([9]));
          } catch {
            return undefined;
          }
        },
        { timeoutMs: 30_000, what: "publishing with one server down" },
      );
      expect(more).toBe(201n);
      const seen: number[] = [];
      // the stream may still be electing a new leader: reading is retriable, so retry it
      const reader = await waitFor(
        async () => {
          try {
            return await dml.iterate("R3", "r3.v0", 0n);
          } catch {
            return undefined;
          }
        },
        { timeoutMs: 30_000, what: "a reader on the replicated stream" },
      );
      for await (const m of reader) {
        seen.push(m.data[0]!);
        if (seen.length === 201) break;
      }
      await reader.stop();
      expect(seen.slice(0, 200)).toEqual(Array.from({ length: 200 }, (_, i) => i));
      expect(seen[200]).toBe(9);
    } finally {
      await nc.close();
    }
  });
});
