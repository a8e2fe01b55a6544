/**
 * Balance: three collections loaded onto 2 querynodes, a third querynode joins. The BalanceChecker
 * moves segments to it (load there, the view switched, release on the source) until no node's score is
 * over 1.2 × the mean, while clients keep searching and counting: no search fails and every count is
 * exact throughout.
 */
import { describe, expect, it } from "vitest";
import { qcSyncEntries } from "../../actors/metrics.ts";
import { spawnQuerynode } from "../../actors/querynode/index.ts";
import { startTestCluster } from "../harness/standalone.ts";
import { waitFor } from "../harness/index.ts";

const DIM = 8;
const COLLECTIONS = ["bal_a", "bal_b", "bal_c"];
const SEGMENTS = 4;
const ROWS = 1_500;

describe("balance", () => {
  it("gives a querynode that joins its share, with no failed search and exact counts during the moves", { timeout: 180_000 }, async () => {
    await using tc = await startTestCluster({ querynodes: 2 });
    const vb = tc.client;
    for (const name of COLLECTIONS) {
      await vb.createCollection({
        schema: { name, fields: [{ name: "id", type: "Int64", isPrimaryKey: true }, { name: "v", type: "FloatVector", dim: DIM }] },
        shardsNum: 1,
      });
      // one flushed segment per batch
      for (let s = 0; s < SEGMENTS; s++) {
        const rows = Array.from({ length: ROWS }, (_, i) => ({ id: s * ROWS + i, v: Array.from({ length: DIM }, () => Math.random()) }));
        await vb.insert({ collectionName: name, rows });
        await vb.flush({ collectionNames: [name] });
      }
      await vb.loadCollection({ collectionName: name, wait: true });
    }
    const total = SEGMENTS * ROWS;

    let stop = false;
    let reads = 0;
    const problems: string[] = [];
    const reader = async () => {
      while (!stop) {
        for (const name of COLLECTIONS) {
          try {
            const c = await vb.query({ collectionName: name, outputFields: ["count(*)"], consistencyLevel: "Strong" });
            const n = Number(c.rows[0]!["count(*)"]);
            if (n !== total) problems.push(`${name}: count ${n}, want ${total}`);
            const s = await vb.search({ collectionName: name, data: [Array.from({ length: DIM }, () => Math.random())], limit: 5 });
            if (s.results[0]!.ids.length !== 5) problems.push(`${name}: ${s.results[0]!.ids.length} hits`);
            reads++;
          } catch (err) {
            problems.push(`${name}: ${(err as Error).message}`);
          }
        }
      }
    };
    const readers = [reader(), reader()];

    const before = await vb.getStatus({});
    expect(before.nodes.map((n) => n.nodeId)).toEqual(["qn1", "qn2"]);
    await spawnQuerynode(tc.sa.host, tc.sa.env, { nodeId: "qn3" });

    const balanced = async () => {
      const st = await vb.getStatus({});
      const up = st.nodes.filter((n) => n.alive);
      if (up.length !== 3 || (st.moves ?? []).length > 0) return false;
      const scores = up.map((n) => n.score ?? 0);
      const mean = scores.reduce((a, b) => a + b, 0) / scores.length;
      return Math.max(...scores) <= 1.2 * mean && up.find((n) => n.nodeId === "qn3")!.segments > 0;
    };
    await waitFor(balanced, { timeoutMs: 120_000, intervalMs: 500, what: "no node over 1.2 × the mean score" });
    // settled: still balanced a few rounds later (no moves back and forth)
    await new Promise((r) => setTimeout(r, 4_000));
    expect(await balanced()).toBe(true);
    stop = true;
    await Promise.all(readers);
    expect(problems).toEqual([]);
    expect(reads).toBeGreaterThan(0);
    const after = await vb.getStatus({});
    expect(after.nodes.reduce((n, x) => n + x.rows, 0)).toBe(COLLECTIONS.length * total);
    // the heartbeats are heard by the feed's pulse, on a thread of its own
    expect(after.feed?.pulse).toBe(true);
    for (const n of after.nodes) expect(Date.now() - n.lastHeartbeatMs).toBeLessThan(10_000);
    // the moves changed the delegators' views by deltas (what changed), not by sending each view whole
    const carried = (await qcSyncEntries.get()).values.find((v) => v.labels.body === "delta")?.value ?? 0;
    expect(carried).toBeGreaterThan(0);
  });

  it("gives a querynode that comes back after it went down its share again", { timeout: 180_000 }, async () => {
    await using tc = await startTestCluster({ querynodes: 2, cluster: { heartbeatIntervalMs: 200 } });
    const vb = tc.client;
    const name = "bal_back";
    await vb.createCollection({
      schema: { name, fields: [{ name: "id", type: "Int64", isPrimaryKey: true }, { name: "v", type: "FloatVector", dim: DIM }] },
      shardsNum: 1,
    });
    for (let s = 0; s < 6; s++) {
      await vb.insert({ collectionName: name, rows: Array.from({ length: ROWS }, (_, i) => ({ id: s * ROWS + i, v: Array.from({ length: DIM }, () => Math.random()) })) });
      await vb.flush({ collectionNames: [name] });
    }
    await vb.loadCollection({ collectionName: name, wait: true });
    const segmentsOn = async (node: string) => (await vb.getStatus({})).nodes.find((n) => n.nodeId === node && n.alive)?.segments ?? 0;
    // qn2 goes away (its actor and everything it holds stop, as its process would): qn1 takes it all
    await tc.sa.host.stopActor(tc.sa.env.subjects.querynode("qn2" as never));
    await waitFor(async () => (await segmentsOn("qn1")) === 6, { timeoutMs: 60_000, intervalMs: 250, what: "qn1 holding every segment" });
    // it comes back empty, with the same id: balance gives it its share
    await spawnQuerynode(tc.sa.host, tc.sa.env, { nodeId: "qn2" });
    await waitFor(async () => (await segmentsOn("qn2")) >= 2 && ((await vb.getStatus({})).moves ?? []).length === 0, {
      timeoutMs: 90_000,
      intervalMs: 500,
      what: "qn2 getting segments back",
    });
    const c = await vb.query({ collectionName: name, outputFields: ["count(*)"], consistencyLevel: "Strong" });
    expect(Number(c.rows[0]!["count(*)"])).toBe(6 * ROWS);
  });
});
