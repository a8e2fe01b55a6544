import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { SegmentInfo } from "../../protocol/meta.ts";
import { readSegment } from "../../actors/storage/index.ts";
import { demoSchema, randomRows } from "../../ops/random_rows.ts";
import { startTestCluster } from "../harness/standalone.ts";

const VBUS = fileURLToPath(new URL("../../ops/vbus.mjs", import.meta.url));

/** Starts `vbus serve --role datanode` in a process of its own and waits for its ready line. */
async function startDatanodeProcess(args: { nats: string; prefix: string; data: string; nodeId: string }): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [VBUS, "serve", "--role", "datanode", "--node-id", args.nodeId, "--nats", args.nats, "--prefix", args.prefix, "--data", args.data],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, VB_LOG_LEVEL: "warn" } },
  );
  let out = "";
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`datanode process did not get ready: ${err}`)), 30_000);
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("ready")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`datanode process exited with ${code}: ${err}`));
    });
  });
  return child;
}

describe("datanode killed with SIGKILL mid-stream", () => {
  it("resumes from its checkpoint after a restart: after flush every pk is present exactly once", async () => {
    await using tc = await startTestCluster({
      roles: { rootcoord: true, datacoord: true, proxy: true },
      cluster: { sealPolicy: { maxRows: 3_000, maxBytes: 64 << 20, idleMs: 600_000 } },
    });
    const proc = { nats: tc.config.natsUrl!, prefix: tc.config.prefix, data: tc.dataDir, nodeId: "dnk" };
    let child = await startDatanodeProcess(proc);
    try {
      const schema = demoSchema("chaos", 16);
      const info = await tc.client.createCollection({ schema, shardsNum: 2 });
      const batches = 24;
      const batch = 1_000;
      for (let b = 0; b < batches; b++) {
        const sending = tc.client.insert({ collectionName: "chaos", rows: randomRows(schema, b * batch, batch) });
        if (b === 9) {
          // kill it while rows stream in and segments are being sealed: no goodbye, no flush
          await new Promise((r) => setTimeout(r, 3));
          child.kill("SIGKILL");
          await once(child, "exit");
        }
        await sending;
        if (b === 14) child = await startDatanodeProcess(proc);
      }
      const res = await tc.client.flush({ collectionNames: ["chaos"], timeoutMs: 90_000 });
      expect(res.collections.chaos!.flushed).toBe(true);

      const { segments } = await tc.sa.host.ask<{ segments: SegmentInfo[] }>(tc.sa.env.subjects.datacoord(), "datacoord.ListSegments", {
        collectionId: info.collectionId,
        states: ["Flushed"],
      });
      const seen = new Map<bigint, number>();
      for (const seg of segments.filter((s) => s.level === "L1")) {
        const data = await readSegment(tc.sa.env.objectStore, seg, info.schema);
        const pkCol = data.columns.find((c) => c.fieldId === info.schema.fields[0]!.fieldId)!.data as BigInt64Array;
        for (const pk of pkCol) seen.set(pk, (seen.get(pk) ?? 0) + 1);
      }
      expect(seen.size).toBe(batches * batch);
      const twice = [...seen].filter(([, n]) => n !== 1);
      expect(twice).toEqual([]);
      for (let pk = 0n; pk < BigInt(batches * batch); pk++) expect(seen.has(pk)).toBe(true);
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        await once(child, "exit");
      }
    }
  });
});
