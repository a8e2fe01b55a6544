/**
 * Coordinators are active-standby across processes: a process started with a coordinator role waits
 * while another leads it, takes over when the leader stops (at once on a graceful stop, after the lease
 * TTL when the leader dies), and the coordinator carries on from its KV state (timestamps keep growing).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { startStandalone, type Standalone } from "../../ops/standalone.ts";
import { ask } from "../../runtime/ask.ts";
import { connectTest, natsUrl, uniquePrefix, waitFor } from "../harness/index.ts";

const LEASE_MS = 2_000;

describe("coordinator leases", () => {
  it("runs one rootcoord among contending processes and fails over on a stop and on a crash", async () => {
    const prefix = uniquePrefix("lease");
    const dirs: string[] = [];
    const start = async (holderId: string): Promise<Standalone> => {
      const dataDir = await mkdtemp(join(tmpdir(), "vbus-lease-"));
      dirs.push(dataDir);
      return startStandalone(
        { prefix, dataDir, natsUrl: natsUrl(), maxPayload: 1 << 20, cluster: { coordinatorLeaseMs: LEASE_MS } },
        { roles: { rootcoord: true }, holderId },
      );
    };
    await using nc = await connectTest();
    const running: Standalone[] = [];
    try {
      const a = await start("a");
      running.push(a);
      const address = a.env.subjects.rootcoord();
      const ts = async () => (await ask<{ ts: bigint }>(nc, address, "rootcoord.AllocTimestamp", { count: 1 }, { timeoutMs: 5_000 })).ts;
      const ts1 = await ts();

      // b waits as a standby: it hosts no rootcoord while a leads
      let bStarted: Standalone | undefined;
      const bStarting = start("b").then((s) => {
        running.push(s);
        return (bStarted = s);
      });
      // a negative to show: b has not started after a's lease refreshed more than once (every 500 ms)
      await new Promise((r) => setTimeout(r, 700));
      expect(bStarted).toBeUndefined();
      expect(a.host.has(address)).toBe(true);

      // a graceful stop resigns: b leads at once, with the timestamps going on
      const t0 = Date.now();
      await a.stop();
      running.splice(running.indexOf(a), 1);
      const b = await bStarting;
      expect(Date.now() - t0).toBeLessThan(LEASE_MS);
      expect(b.host.has(address)).toBe(true);
      const ts2 = await ts();
      expect(ts2).toBeGreaterThan(ts1);

      // c waits; b dies without resigning (its connection cut): c leads once the lease expires
      const cStarting = start("c").then((s) => {
        running.push(s);
        return s;
      });
      await b.nc.close();
      const c = await cStarting;
      expect(c.host.has(address)).toBe(true);
      // b, cut off, stopped its rootcoord on its own clock when its lease ran out
      await waitFor(() => !b.host.has(address), { what: "the cut-off leader to stop its rootcoord", timeoutMs: LEASE_MS * 2 });
      expect(await ts()).toBeGreaterThan(ts2);
    } finally {
      for (const s of running) await s.stop().catch(() => undefined);
      for (const d of dirs) await rm(d, { recursive: true, force: true });
    }
  });
});
