/**
 * Resource groups under real process deaths: four querynodes, each a `vbus serve --role querynode`
 * process of its own; two groups of 2 nodes hold one replica each of a collection. Both processes of
 * one group are killed (SIGKILL) while clients search and count: every read answers from the other
 * group's replica with the exact count, and no group takes a node of the other to make up for them.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { QuerycoordApi } from "../../protocol/messages/querycoord.ts";
import { startTestCluster, type TestCluster } from "../harness/standalone.ts";
import { startReaders, waitFor } from "../harness/index.ts";

const DIM = 8;
const NAME = "rg_kill";
const ROWS = 3_000;

type Status = QuerycoordApi["GetStatus"][1];

describe("resource groups: a group whose nodes are killed", () => {
  let tc: TestCluster;

  beforeAll(async () => {
    tc = await startTestCluster({ querynodeProcesses: 4 });
    await tc.client.createCollection({
      schema: { name: NAME, fields: [{ name: "id", type: "Int64", isPrimaryKey: true }, { name: "v", type: "FloatVector", dim: DIM }] },
      shardsNum: 1,
    });
    for (let part = 0; part < 2; part++) {
      const rows = Array.from({ length: ROWS / 2 }, (_, i) => ({ id: part * (ROWS / 2) + i, v: Array.from({ length: DIM }, () => Math.random()) }));
      await tc.client.insert({ collectionName: NAME, rows });
      await tc.client.flush({ collectionNames: [NAME] });
    }
  }, 180_000);

  afterAll(async () => {
    await tc?.stop();
  });

  it("keeps every read answered from the other group's replica, counts exact, and moves no node between groups", { timeout: 240_000 }, async () => {
    const vb = tc.client;
    const status = (): Promise<Status> => vb.getStatus({});
    const nodesOf = async (rg: string) => (await vb.describeResourceGroup({ resourceGroup: rg })).resourceGroup.nodes;
    await vb.createResourceGroup({ resourceGroup: "rg_a", config: { requests: { nodeNum: 2 }, limits: { nodeNum: 2 } } });
    await vb.createResourceGroup({ resourceGroup: "rg_b", config: { requests: { nodeNum: 2 }, limits: { nodeNum: 2 } } });
    await waitFor(async () => (await nodesOf("rg_a")).length === 2 && (await nodesOf("rg_b")).length === 2, { timeoutMs: 30_000, what: "both groups filled" });
    const a = await nodesOf("rg_a");
    const b = await nodesOf("rg_b");
    await vb.loadCollection({ collectionName: NAME, resourceGroups: ["rg_a", "rg_b"], replicaNumber: 2, wait: true, timeoutMs: 120_000 });
    const count = async () => Number((await vb.query({ collectionName: NAME, outputFields: ["count(*)"], consistencyLevel: "Strong" })).rows[0]!["count(*)"]);
    expect(await count()).toBe(ROWS);

    // clients read throughout; every failure and wrong answer is kept
    let started = 0;
    const readers = startReaders(async () => {
      started++;
      const n = await count();
      if (n !== ROWS) return `count ${n}, want ${ROWS}`;
      const s = await vb.search({ collectionName: NAME, data: [Array.from({ length: DIM }, () => Math.random())], limit: 5, consistencyLevel: "Strong" });
      return s.results[0]!.ids.length !== 5 ? `${s.results[0]!.ids.length} hits` : undefined;
    });
    await waitFor(() => started >= 4, { timeoutMs: 30_000, what: "reads before the kill" });
    const before = started;
    for (const n of a) {
      const child = tc.querynodeProcess(n);
      expect(child, `the process of ${n}`).toBeDefined();
      child!.kill("SIGKILL");
    }
    await waitFor(async () => (await status()).nodes.filter((n) => a.includes(n.nodeId) && !n.alive).length === 2, {
      timeoutMs: 30_000,
      intervalMs: 200,
      what: "rg_a's nodes down",
    });
    // reads go on with one replica left
    const atDown = started;
    await waitFor(() => started >= atDown + 10, { timeoutMs: 30_000, what: "reads with one replica left" });
    const { reads, problems } = await readers.stop();
    expect(problems).toEqual([]);
    expect(reads).toBeGreaterThan(before);
    expect(await nodesOf("rg_b")).toEqual(b);
    expect(await nodesOf("rg_a")).toEqual([]);
    const { collectionId } = await vb.describeCollection({ collectionName: NAME });
    const replicas = (await status()).collections.find((c) => c.collectionId === collectionId)!.replicas;
    expect(replicas.find((r) => r.resourceGroup === "rg_b")!.nodes).toEqual(b);
    expect(await count()).toBe(ROWS);
  });
});
