import { performance } from "node:perf_hooks";
import { describe, expect, it } from "vitest";
import { LeaderLease, type Demotion } from "../../runtime/lease.ts";
import type { NatsConnection } from "../../runtime/transport.ts";
import { connectTest, uniquePrefix, waitFor } from "../harness/index.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Tenure extends Demotion {
  holder: string;
}

/** Every contender's tenures, as each measured them on its own clock. */
class Tenures {
  readonly done: Tenure[] = [];
  readonly all: LeaderLease[] = [];

  contender(nc: NatsConnection, bucket: string, holderId: string, ttlMs: number): LeaderLease {
    const lease = new LeaderLease(nc, {
      bucket,
      holderId,
      ttlMs,
      onDemoted: (d) => this.done.push({ ...d, holder: holderId }),
    });
    this.all.push(lease);
    return lease;
  }

  leaders(): LeaderLease[] {
    return this.all.filter((l) => l.isLeader());
  }

  /** No two tenures overlap, and the fencing term grows strictly from one tenure to the next. */
  check(): void {
    const sorted = [...this.done].sort((a, b) => a.since - b.since);
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1]!;
      const next = sorted[i]!;
      expect(prev.until, `tenure ${prev.holder}#${prev.term} overlaps ${next.holder}#${next.term}`).toBeLessThanOrEqual(next.since);
      expect(next.term).toBeGreaterThan(prev.term);
    }
    for (const t of sorted) expect(t.until).toBeGreaterThanOrEqual(t.since);
  }

  async stopAll(): Promise<void> {
    for (const l of this.all) await l.stop();
  }
}

describe("leader lease on a KV bucket with a TTL", () => {
  it("keeps a refreshing leader, and a standby takes over within TTL + poll interval once the leader stops", async () => {
    const ttl = 400;
    const bucket = uniquePrefix("lease_");
    const t = new Tenures();
    await using nc1 = await connectTest();
    await using nc2 = await connectTest();
    const a = t.contender(nc1, bucket, "a", ttl);
    const b = t.contender(nc2, bucket, "b", ttl);
    try {
      const termA = (await a.campaign())!.term;
      expect(a.isLeader()).toBe(true);
      void b.campaign();
      // several refreshes go by: the key stays a's and b stays a standby
      await waitFor(() => (a.revision ?? 0) >= termA + 4, { what: "a to refresh several times" });
      expect(b.isLeader()).toBe(false);
      expect(await b.currentHolder()).toMatchObject({ holderId: "a" });

      await a.stop(); // no resign: the key has to expire
      expect(a.isLeader()).toBe(false);
      await waitFor(() => b.isLeader(), { what: "b to take over", timeoutMs: ttl + ttl / 4 + 1500 });
      expect(b.term).toBeGreaterThan(termA);
      expect(await a.currentHolder()).toMatchObject({ holderId: "b" });
      const [ta] = t.done;
      expect(ta).toMatchObject({ holder: "a", term: termA, reason: "stopped" });
    } finally {
      await t.stopAll();
    }
    t.check();
  });

  it("lets a restarted holder (same id, new instance) take its unexpired lease back at once, and no one else", async () => {
    const ttl = 3_000;
    const bucket = uniquePrefix("lease_");
    await using nc = await connectTest();
    const first = new LeaderLease(nc, { bucket, holderId: "coord-a", ttlMs: ttl });
    const termA = (await first.campaign())!.term;
    await first.stop(); // a crash: the key stays until the TTL
    const other = new LeaderLease(nc, { bucket, holderId: "coord-b", ttlMs: ttl, reclaimOwnIdentity: true });
    const again = new LeaderLease(nc, { bucket, holderId: "coord-a", ttlMs: ttl, reclaimOwnIdentity: true });
    try {
      void other.campaign();
      const t0 = performance.now();
      const term = await again.campaign();
      expect(performance.now() - t0).toBeLessThan(ttl / 2);
      expect(term!.term).toBeGreaterThan(termA);
      expect(other.isLeader()).toBe(false);
      expect(await other.currentHolder()).toMatchObject({ holderId: "coord-a" });
    } finally {
      await again.stop();
      await other.stop();
    }
  });

  it("hands over at once on resign, long before the TTL would expire", async () => {
    const ttl = 6000;
    const bucket = uniquePrefix("lease_");
    const t = new Tenures();
    await using nc1 = await connectTest();
    await using nc2 = await connectTest();
    const a = t.contender(nc1, bucket, "a", ttl);
    const b = t.contender(nc2, bucket, "b", ttl);
    try {
      await a.campaign();
      const bElected = b.campaign();
      await a.resign();
      expect(a.isLeader()).toBe(false);
      await waitFor(() => b.isLeader(), { what: "b to take over after the resign", timeoutMs: ttl / 3 });
      expect((await bElected)!.term).toBe(b.term);
      // a contends again and stays a standby until b resigns in turn
      const aBack = a.campaign();
      await sleep(ttl / 20);
      expect(a.isLeader()).toBe(false);
      const termB = b.term!;
      await b.resign();
      expect((await aBack)!.term).toBeGreaterThan(termB);
      expect(a.isLeader()).toBe(true);
    } finally {
      await t.stopAll();
    }
    t.check();
    expect(t.done.map((d) => [d.holder, d.reason])).toEqual([
      ["a", "resigned"],
      ["b", "resigned"],
      ["a", "stopped"],
    ]);
  });

  it("makes a leader cut off from NATS step down on its own clock before a standby takes over", async () => {
    const ttl = 400;
    const bucket = uniquePrefix("lease_");
    const t = new Tenures();
    const nc1 = await connectTest();
    await using nc2 = await connectTest();
    const a = t.contender(nc1, bucket, "a", ttl);
    const b = t.contender(nc2, bucket, "b", ttl);
    try {
      const termA = (await a.campaign())!.term;
      void b.campaign();
      await nc1.close(); // a is partitioned away: its refreshes fail, its key expires on the server
      await waitFor(() => b.isLeader(), { what: "b to take over", timeoutMs: ttl * 2 + 2000 });
      expect(a.isLeader()).toBe(false);
      expect(t.done[0]).toMatchObject({ holder: "a", term: termA, reason: "expired" });
      expect(b.term).toBeGreaterThan(termA);
    } finally {
      await t.stopAll();
    }
    t.check();
  });

  it("never has two leaders at once over 50 takeovers with leaders stopping, resigning or cut off at random times", async () => {
    const ttl = 300;
    const bucket = uniquePrefix("lease_");
    const t = new Tenures();
    const conns: Array<NatsConnection & AsyncDisposable> = [];
    const connect = async () => {
      const nc = await connectTest();
      conns.push(nc);
      return nc;
    };
    let n = 0;
    const live: Array<{ lease: LeaderLease; nc: NatsConnection }> = [];
    const spawn = async (nc?: NatsConnection) => {
      const conn = nc ?? (await connect());
      const lease = t.contender(conn, bucket, `c${n++}`, ttl);
      void lease.campaign();
      live.push({ lease, nc: conn });
    };
    for (let i = 0; i < 3; i++) await spawn();

    // watch, on every tick, how many contenders believe they lead
    let samples = 0;
    let maxLeaders = 0;
    const sampler = setInterval(() => {
      samples++;
      maxLeaders = Math.max(maxLeaders, t.leaders().length);
    }, 1);
    const events: string[] = [];
    try {
      for (let trial = 0; trial < 50; trial++) {
        const leader = await waitFor(() => live.find((c) => c.lease.isLeader()), { what: `a leader (trial ${trial})` });
        await sleep(Math.random() * ttl);
        live.splice(live.indexOf(leader), 1);
        const how = trial % 5 === 3 ? "resign" : trial % 5 === 4 ? "cut" : "stop";
        events.push(how);
        if (how === "resign") {
          await leader.lease.resign();
          await leader.lease.stop();
          await spawn(leader.nc);
        } else if (how === "cut") {
          await leader.nc.close(); // stopped only at the end: until then it must notice on its own
          await spawn();
        } else {
          await leader.lease.stop();
          await spawn(leader.nc);
        }
        await waitFor(() => live.some((c) => c.lease.isLeader()), { what: `a new leader after ${how} (trial ${trial})` });
      }
    } finally {
      clearInterval(sampler);
      await t.stopAll();
      for (const nc of conns) await nc[Symbol.asyncDispose]();
    }
    expect(samples).toBeGreaterThan(100);
    expect(maxLeaders).toBe(1);
    expect(t.done.length).toBeGreaterThanOrEqual(51);
    t.check();
    expect(new Set(events)).toEqual(new Set(["stop", "resign", "cut"]));
  });
});
