/**
 * Resource groups and manual LoadBalance on a whole cluster (five querynodes in one process, stopped
 * and started as their processes would be): two groups of 2 nodes hold one replica each of a
 * collection; killing both nodes of one group leaves the other replica serving (every search and
 * count answers, counts exact); the nodes come back into their group; a manual LoadBalance moves the
 * named segment and refuses an invalid one with the reason; TransferReplica and TransferNode move what
 * they name and nothing else, while clients keep reading. The Milvus Node SDK's calls for the same
 * through the gRPC door answer with Milvus's status codes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MilvusClient, logger as sdkLogger } from "@zilliz/milvus2-sdk-node";
import { startMilvusFrontDoor } from "../../actors/front/server.ts";
import { spawnQuerynode } from "../../actors/querynode/index.ts";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import type { QuerycoordApi } from "../../protocol/messages/querycoord.ts";
import { ask } from "../../runtime/ask.ts";
import { startTestCluster, type TestCluster } from "../harness/standalone.ts";
import { startReaders, waitFor } from "../harness/index.ts";

const DIM = 8;
const NAME = "rg_books";
const SEGMENTS = 3;
const ROWS = 1_500;
const TOTAL = SEGMENTS * ROWS;

type Status = QuerycoordApi["GetStatus"][1];
type SegmentInfos = QuerycoordApi["GetSegmentInfo"][1]["segments"];

describe("resource groups", () => {
  let tc: TestCluster;
  let collectionId: bigint;
  /** the groups' nodes as they were set up */
  const group: Record<string, string[]> = {};

  const vb = () => tc.client;
  const status = (): Promise<Status> => vb().getStatus({});
  const nodesOf = async (rg: string) => (await vb().describeResourceGroup({ resourceGroup: rg })).resourceGroup.nodes;
  const replicas = async () => (await status()).collections.find((c) => c.collectionId === collectionId)?.replicas ?? [];
  const replicaIn = async (rg: string) => (await replicas()).filter((r) => r.resourceGroup === rg);
  const segments = (): Promise<SegmentInfos> =>
    ask<QuerycoordApi["GetSegmentInfo"][1]>(tc.sa.nc, tc.sa.env.subjects.querycoord(), "querycoord.GetSegmentInfo", { collectionId }, { timeoutMs: 10_000 }).then(
      (r) => r.segments,
    );
  /** segment id → the nodes holding it, as text */
  const placement = async () => Object.fromEntries((await segments()).map((s) => [String(s.segmentId), s.nodeIds.join(",")]));
  /** how many of the collection's segments each node holds */
  const held = async (nodes: string[]) => {
    const segs = await segments();
    return nodes.map((n) => segs.filter((s) => s.nodeIds.includes(n)).length);
  };
  const count = async () => Number((await vb().query({ collectionName: NAME, outputFields: ["count(*)"], consistencyLevel: "Strong" })).rows[0]!["count(*)"]);

  /** clients reading throughout a step: every failure and wrong count is kept */
  const readers = () =>
    startReaders(async () => {
      const n = await count();
      if (n !== TOTAL) return `count ${n}, want ${TOTAL}`;
      const s = await vb().search({ collectionName: NAME, data: [Array.from({ length: DIM }, () => Math.random())], limit: 5 });
      return s.results[0]!.ids.length !== 5 ? `${s.results[0]!.ids.length} hits` : undefined;
    });

  beforeAll(async () => {
    tc = await startTestCluster({ querynodes: 5, cluster: { heartbeatIntervalMs: 200 } });
    await vb().createCollection({
      schema: { name: NAME, fields: [{ name: "id", type: "Int64", isPrimaryKey: true }, { name: "v", type: "FloatVector", dim: DIM }] },
      shardsNum: 1,
    });
    for (let s = 0; s < SEGMENTS; s++) {
      await vb().insert({ collectionName: NAME, rows: Array.from({ length: ROWS }, (_, i) => ({ id: s * ROWS + i, v: Array.from({ length: DIM }, () => Math.random()) })) });
      await vb().flush({ collectionNames: [NAME] });
    }
    collectionId = (await vb().describeCollection({ collectionName: NAME })).collectionId;
  }, 120_000);

  afterAll(async () => {
    await tc?.stop();
  });

  it("creates groups that take their requested nodes from the default group, and loads one replica in each", { timeout: 120_000 }, async () => {
    await waitFor(async () => (await status()).nodes.filter((n) => n.alive).length === 5, { timeoutMs: 30_000, what: "5 querynodes up" });
    await vb().createResourceGroup({ resourceGroup: "rg_a", config: { requests: { nodeNum: 2 }, limits: { nodeNum: 2 } } });
    await vb().createResourceGroup({ resourceGroup: "rg_b", config: { requests: { nodeNum: 2 }, limits: { nodeNum: 2 } } });
    await vb().createResourceGroup({ resourceGroup: "rg_c", config: { requests: { nodeNum: 1 }, limits: { nodeNum: 1 } } });
    await waitFor(async () => (await nodesOf("rg_a")).length === 2 && (await nodesOf("rg_b")).length === 2 && (await nodesOf("rg_c")).length === 1, {
      timeoutMs: 30_000,
      what: "the groups filled",
    });
    for (const g of ["rg_a", "rg_b", "rg_c"]) group[g] = await nodesOf(g);
    expect(await nodesOf("__default_resource_group")).toEqual([]);
    expect(new Set([...group.rg_a!, ...group.rg_b!, ...group.rg_c!]).size).toBe(5);
    expect((await vb().listResourceGroups({})).resourceGroups).toEqual(["__default_resource_group", "rg_a", "rg_b", "rg_c"]);
    // the taking is said: querycoord's status lists the moves with their reasons
    const events = (await status()).resourceGroupEvents ?? [];
    expect(events.some((e) => e.to === "rg_a" && e.from === "__default_resource_group" && e.reason.includes(`"rg_a" has`))).toBe(true);

    await vb().loadCollection({ collectionName: NAME, resourceGroups: ["rg_a", "rg_b"], replicaNumber: 2, wait: true, timeoutMs: 90_000 });
    const [a] = await replicaIn("rg_a");
    const [b] = await replicaIn("rg_b");
    expect(a!.nodes).toEqual(group.rg_a);
    expect(b!.nodes).toEqual(group.rg_b);
    // each replica holds every segment, on its own group's nodes only
    await waitFor(async () => (await held(group.rg_a!)).reduce((x, y) => x + y, 0) === SEGMENTS && (await held(group.rg_b!)).reduce((x, y) => x + y, 0) === SEGMENTS, {
      timeoutMs: 30_000,
      what: "one copy of each segment per replica",
    });
    expect(await held(group.rg_c!)).toEqual([0]);
    expect(await count()).toBe(TOTAL);
    const d = (await vb().describeResourceGroup({ resourceGroup: "rg_a" })).resourceGroup;
    expect(d.numLoadedReplica).toEqual([{ collectionId, collectionName: NAME, count: 1 }]);
    // a group that is too small for the replicas asked of it is refused before anything loads
    const e = await vb()
      .loadCollection({ collectionName: NAME, resourceGroups: ["rg_c"], replicaNumber: 2 })
      .then(() => undefined, (err: unknown) => err as VbError);
    expect(e?.code).toBe(ErrorCode.ParameterInvalid); // loaded already, with other groups
  });

  it("moves the segment a manual LoadBalance names, and refuses an invalid one with the reason", { timeout: 120_000 }, async () => {
    const [b] = await replicaIn("rg_b");
    const [x, y] = b!.nodes;
    const [hx, hy] = await held([x!, y!]);
    // from the node holding more to the other: the balancer has no reason to move it back
    const [src, dst] = hx! >= hy! ? [x!, y!] : [y!, x!];
    const before = await segments();
    const seg = before.find((s) => s.nodeIds.includes(src))!.segmentId;
    const { moves } = await vb().loadBalance({ collectionName: NAME, srcNode: src, dstNodes: [dst], sealedSegmentIds: [seg], wait: true, timeoutMs: 60_000 });
    expect(moves.map((m) => [m.segmentId, m.from, m.to, m.state])).toEqual([[seg, src, dst, "moved"]]);
    const after = await segments();
    expect(after.find((s) => s.segmentId === seg)!.nodeIds).toContain(dst);
    expect(after.find((s) => s.segmentId === seg)!.nodeIds).not.toContain(src);
    // nothing else moved
    for (const s of before) {
      if (s.segmentId !== seg) expect(after.find((t) => t.segmentId === s.segmentId)!.nodeIds).toEqual(s.nodeIds);
    }
    expect(await count()).toBe(TOTAL);

    const refused = (req: Parameters<ReturnType<typeof vb>["loadBalance"]>[0]) => vb().loadBalance(req).then(() => undefined, (err: unknown) => err as VbError);
    // a destination outside the source's replica (the other group's node)
    const outside = await refused({ collectionName: NAME, srcNode: dst, dstNodes: [group.rg_a![0]!], sealedSegmentIds: [seg] });
    expect(outside?.code).toBe(ErrorCode.ParameterInvalid);
    expect(outside?.message).toContain(`destination node ${group.rg_a![0]} is not in replica ${b!.replicaId} of collection "${NAME}"`);
    // a segment the source does not hold
    const notHeld = await refused({ collectionName: NAME, srcNode: src, dstNodes: [dst], sealedSegmentIds: [seg] });
    expect(notHeld?.code).toBe(ErrorCode.SegmentNotFound);
    expect(notHeld?.message).toContain(`node ${src} does not hold segment ${seg}`);
    // a node that is in no group's replica of the collection
    const noReplica = await refused({ collectionName: NAME, srcNode: group.rg_c![0]! });
    expect(noReplica?.code).toBe(ErrorCode.NodeNotFound);
    expect(await placement()).toEqual(Object.fromEntries(after.map((s) => [String(s.segmentId), s.nodeIds.join(",")])));
  });

  it("keeps serving from the other replica when both nodes of one group die, and takes nothing from the other groups", { timeout: 180_000 }, async () => {
    const r = readers();
    for (const n of group.rg_a!) await tc.sa.host.stopActor(tc.sa.env.subjects.querynode(n as never));
    await waitFor(async () => (await status()).nodes.filter((n) => group.rg_a!.includes(n.nodeId) && !n.alive).length === 2, {
      timeoutMs: 30_000,
      intervalMs: 200,
      what: "rg_a's nodes down",
    });
    await waitFor(async () => (await replicaIn("rg_a"))[0]!.nodes.length === 0, { timeoutMs: 30_000, what: "rg_a's replica without nodes" });
    // a few more reads with one replica left
    await new Promise((res) => setTimeout(res, 2_000));
    const { reads, problems } = await r.stop();
    expect(problems).toEqual([]);
    expect(reads).toBeGreaterThan(0);
    expect(await nodesOf("rg_a")).toEqual([]);
    expect(await nodesOf("rg_b")).toEqual(group.rg_b);
    expect(await nodesOf("rg_c")).toEqual(group.rg_c);
    expect((await replicaIn("rg_b"))[0]!.nodes).toEqual(group.rg_b);
    expect(await count()).toBe(TOTAL);

    // they come back with the same ids: into rg_a, which misses them, and its replica loads again
    for (const n of group.rg_a!) await spawnQuerynode(tc.sa.host, tc.sa.env, { nodeId: n });
    await waitFor(async () => JSON.stringify(await nodesOf("rg_a")) === JSON.stringify(group.rg_a), { timeoutMs: 30_000, what: "rg_a's nodes back in rg_a" });
    await waitFor(async () => (await held(group.rg_a!)).reduce((x, y) => x + y, 0) === SEGMENTS && (await replicaIn("rg_a"))[0]!.nodes.length === 2, {
      timeoutMs: 60_000,
      what: "rg_a's replica loaded again",
    });
    expect(await count()).toBe(TOTAL);
  });

  it("moves a replica to another group with TransferReplica, and nothing else", { timeout: 180_000 }, async () => {
    const [a] = await replicaIn("rg_a");
    const [b] = await replicaIn("rg_b");
    await waitFor(async () => ((await status()).moves ?? []).length === 0, { timeoutMs: 60_000, what: "no moves in flight" });
    const aBefore = JSON.stringify(await held(group.rg_a!));
    const r = readers();
    const { replicaIds } = await vb().transferReplica({ collectionName: NAME, sourceResourceGroup: "rg_b", targetResourceGroup: "rg_c", numReplica: 1 });
    expect(replicaIds).toEqual([b!.replicaId]);
    // replica b ends on rg_c's node with every segment; rg_b's nodes hand theirs over and leave
    await waitFor(
      async () => {
        const [moved] = await replicaIn("rg_c");
        return moved?.replicaId === b!.replicaId && JSON.stringify(moved.nodes) === JSON.stringify(group.rg_c) && (await held(group.rg_b!)).every((n) => n === 0);
      },
      { timeoutMs: 90_000, intervalMs: 250, what: "replica b on rg_c's node only" },
    );
    expect(await held(group.rg_c!)).toEqual([SEGMENTS]);
    const { reads, problems } = await r.stop();
    expect(problems).toEqual([]);
    expect(reads).toBeGreaterThan(0);
    // replica a did not move; the groups kept their nodes
    const [aAfter] = await replicaIn("rg_a");
    expect(aAfter!.replicaId).toBe(a!.replicaId);
    expect(aAfter!.nodes).toEqual(group.rg_a);
    expect(JSON.stringify(await held(group.rg_a!))).toBe(aBefore);
    expect(await replicaIn("rg_b")).toEqual([]);
    for (const g of ["rg_a", "rg_b", "rg_c"]) expect(await nodesOf(g)).toEqual(group[g]);
    expect(await count()).toBe(TOTAL);
  });

  it("moves a node to another group with TransferNode: it hands its data to its replica's other node, and nothing else moves", { timeout: 180_000 }, async () => {
    const [a] = await replicaIn("rg_a");
    const [c] = await replicaIn("rg_c");
    const cBefore = await held(group.rg_c!);
    // the group gives its last node by id: make sure it holds something to hand over
    const moved = group.rg_a!.at(-1)!;
    const stays = group.rg_a![0]!;
    if ((await held([moved]))[0] === 0) {
      const { moves } = await vb().loadBalance({ collectionName: NAME, srcNode: stays, dstNodes: [moved], wait: true, timeoutMs: 60_000 });
      expect(moves.every((m) => m.state === "moved")).toBe(true);
    }
    expect((await held([moved]))[0]).toBeGreaterThan(0);
    const r = readers();
    const { transfers } = await vb().transferNode({ sourceResourceGroup: "rg_a", targetResourceGroup: "rg_b", numNode: 1 });
    expect(transfers.map((t) => [t.nodeId, t.from, t.to])).toEqual([[moved, "rg_a", "rg_b"]]);
    expect(await nodesOf("rg_a")).toEqual([stays]);
    expect(await nodesOf("rg_b")).toEqual([...group.rg_b!, moved].sort());
    // the moved node serves replica a until its segments and delegator are on the other node, then leaves it
    await waitFor(
      async () => {
        const [now] = await replicaIn("rg_a");
        return JSON.stringify(now!.nodes) === JSON.stringify([stays]) && (await held([moved]))[0] === 0;
      },
      { timeoutMs: 90_000, intervalMs: 250, what: `${moved} out of replica a` },
    );
    expect(await held([stays])).toEqual([SEGMENTS]);
    const st = await status();
    expect(st.nodes.find((n) => n.nodeId === moved)!.delegators).toBe(0);
    const { reads, problems } = await r.stop();
    expect(problems).toEqual([]);
    expect(reads).toBeGreaterThan(0);
    // the other replica and the other groups are as they were
    const [cAfter] = await replicaIn("rg_c");
    expect([cAfter!.replicaId, cAfter!.nodes]).toEqual([c!.replicaId, c!.nodes]);
    expect(await held(group.rg_c!)).toEqual(cBefore);
    expect((await replicaIn("rg_a"))[0]!.replicaId).toBe(a!.replicaId);
    expect(await nodesOf("rg_c")).toEqual(group.rg_c);
    const cfg = (await vb().describeResourceGroup({ resourceGroup: "rg_b" })).resourceGroup.config;
    expect([cfg.requests.nodeNum, cfg.limits.nodeNum]).toEqual([3, 3]);
    expect(await count()).toBe(TOTAL);
  });

  it("serves the resource-group calls and LoadBalance to the Milvus SDK with Milvus's status codes", { timeout: 60_000 }, async () => {
    sdkLogger.level = "warn";
    const door = await startMilvusFrontDoor({ port: 0, host: "127.0.0.1", nc: tc.sa.nc, prefix: tc.config.prefix, actorHost: tc.sa.host, serverVersion: "test" });
    const milvus = new MilvusClient({ address: `127.0.0.1:${door.port}`, timeout: 30_000 });
    try {
      await milvus.connectPromise;
      const made = await milvus.createResourceGroup({ resource_group: "rg_sdk", config: { requests: { node_num: 0 }, limits: { node_num: 0 } } });
      expect(made.error_code).toBe("Success");
      expect((await milvus.listResourceGroups()).resource_groups).toEqual(["__default_resource_group", "rg_a", "rg_b", "rg_c", "rg_sdk"]);
      const c = await milvus.describeResourceGroup({ resource_group: "rg_c" });
      expect(c.resource_group).toMatchObject({ name: "rg_c", capacity: 1, num_available_node: 1, num_loaded_replica: { [NAME]: 1 } });
      expect(c.resource_group.nodes!.map((n) => String(n.node_id))).toEqual(group.rg_c!.map((n) => n.replace(/^\D+/, "")));
      expect(c.resource_group.config).toMatchObject({ requests: { node_num: 1 }, limits: { node_num: 1 } });
      const missing = await milvus.describeResourceGroup({ resource_group: "nope" });
      expect(missing.status.code).toBe(ErrorCode.ResourceGroupNotFound);
      // rg_b gives a node to rg_sdk, then rg_sdk its limit back
      const moved = await milvus.transferNode({ source_resource_group: "rg_b", target_resource_group: "rg_sdk", num_node: 1 });
      expect(moved.error_code).toBe("Success");
      expect(await nodesOf("rg_sdk")).toHaveLength(1);
      const dropFull = await milvus.dropResourceGroup({ resource_group: "rg_sdk" });
      expect(dropFull.code).toBe(ErrorCode.ParameterInvalid);
      expect(dropFull.reason).toContain("set its requests and limits to 0 first");
      const updated = await milvus.updateResourceGroups({ resource_groups: { rg_sdk: { requests: { node_num: 0 }, limits: { node_num: 0 } } } });
      expect(updated.error_code).toBe("Success");
      expect((await milvus.dropResourceGroup({ resource_group: "rg_sdk" })).error_code).toBe("Success");
      expect((await milvus.dropResourceGroup({ resource_group: "__default_resource_group" })).code).toBe(ErrorCode.ParameterInvalid);
      // a replica that is not in the source group; a LoadBalance to a node of another replica
      const wrongGroup = await milvus.transferReplica({ collection_name: NAME, source_resource_group: "rg_b", target_resource_group: "rg_a", num_replica: 1 });
      expect(wrongGroup.code).toBe(ErrorCode.ParameterInvalid);
      const num = (n: string) => Number(n.replace(/^\D+/, ""));
      const [a] = await replicaIn("rg_a");
      const bad = await milvus.loadBalance({ collectionName: NAME, src_nodeID: num(a!.nodes[0]!), dst_nodeIDs: [num(group.rg_c![0]!)] });
      expect(bad.code).toBe(ErrorCode.ParameterInvalid);
      expect(bad.reason).toContain(`is not in replica ${a!.replicaId} of collection "${NAME}"`);
      const replicas = await milvus.getReplicas({ collectionID: String(collectionId) } as never);
      expect(replicas.replicas.map((r) => r.resource_group_name).sort()).toEqual(["rg_a", "rg_c"]);
    } finally {
      await milvus.closeConnection();
      await door.close();
    }
  });

  it("keeps the groups, their configs and the replicas' groups across a restart (read back from KV)", { timeout: 120_000 }, async () => {
    const before = await Promise.all(["rg_a", "rg_b", "rg_c"].map(async (g) => (await vb().describeResourceGroup({ resourceGroup: g })).resourceGroup));
    const replicasBefore = (await replicas()).map((r) => [r.replicaId, r.resourceGroup]);
    await tc.restart();
    await waitFor(async () => (await status()).nodes.filter((n) => n.alive).length === 5, { timeoutMs: 60_000, what: "5 querynodes up again" });
    expect((await vb().listResourceGroups({})).resourceGroups).toEqual(["__default_resource_group", "rg_a", "rg_b", "rg_c"]);
    for (const b of before) {
      await waitFor(async () => JSON.stringify(await nodesOf(b.name)) === JSON.stringify(b.nodes), { timeoutMs: 30_000, what: `${b.name}'s nodes back` });
      expect((await vb().describeResourceGroup({ resourceGroup: b.name })).resourceGroup.config).toEqual(b.config);
    }
    expect((await replicas()).map((r) => [r.replicaId, r.resourceGroup])).toEqual(replicasBefore);
    await vb().loadCollection({ collectionName: NAME, wait: true, timeoutMs: 60_000 });
    expect(await count()).toBe(TOTAL);
  });
});
