/** Resource groups (ResourceManager), replicas on their groups' nodes, and manual LoadBalance's plan: pure, no NATS. */
import { describe, expect, it } from "vitest";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import { planManualBalance, type ManualBalanceInput } from "../../actors/querycoord/balance/manual_balance.ts";
import { recoverReplicaNodes, type ReplicaNodeView } from "../../actors/querycoord/balance/replica_assign.ts";
import { moveKey } from "../../actors/querycoord/balance/score_balancer.ts";
import { NullWriter, type MetaWriter } from "../../actors/querycoord/meta/kv_writer.ts";
import {
  DEFAULT_RESOURCE_GROUP as DEF,
  resourceGroupConfig as cfg,
  ResourceManager,
  type ResourceGroupRecord,
} from "../../actors/querycoord/meta/resource_manager.ts";
import type { Replica } from "../../actors/querycoord/meta/types.ts";
import { COLL, input, load, node, replica, seg, target } from "./querycoord_fixtures.ts";

/** a writer that remembers what it was asked to store */
class MemoryWriter implements MetaWriter {
  readonly kv = new Map<string, unknown>();
  put(key: string, value: unknown): Promise<void> {
    this.kv.set(key, structuredClone(value));
    return Promise.resolve();
  }
  delete(key: string): Promise<void> {
    this.kv.delete(key);
    return Promise.resolve();
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
}

const nodes = (...ids: string[]) => new Set(ids);
const groups = (rm: ResourceManager) => Object.fromEntries(rm.names().map((n) => [n, rm.nodesOf(n)]));

function refusal(f: () => unknown): VbError {
  try {
    f();
  } catch (err) {
    if (err instanceof VbError) return err;
    throw err;
  }
  throw new Error("expected a refusal");
}

describe("the resource manager", () => {
  it("puts new querynodes in the default group, and a group below its request takes nodes from the default group", async () => {
    const rm = new ResourceManager(new NullWriter());
    const first = rm.recover(nodes("qn1", "qn2", "qn3", "qn4"));
    expect(first.transfers.map((t) => [t.nodeId, t.to])).toEqual([
      ["qn1", DEF],
      ["qn2", DEF],
      ["qn3", DEF],
      ["qn4", DEF],
    ]);
    await rm.create("a", cfg(2, 2));
    await rm.create("b", cfg(2, 2));
    const { transfers } = rm.recover(nodes("qn1", "qn2", "qn3", "qn4"));
    // the group missing the most takes first (the first by name on a tie): they take turns
    expect(groups(rm)).toEqual({ [DEF]: [], a: ["qn2", "qn4"], b: ["qn1", "qn3"] });
    expect(transfers).toHaveLength(4);
    expect(transfers[0]!.reason).toContain(`"a" has 0 of the 2 node(s) it requests; "${DEF}" holds 4, over its request of 0`);
    // settled: another round moves nothing
    expect(rm.recover(nodes("qn1", "qn2", "qn3", "qn4")).transfers).toEqual([]);
  });

  it("takes from groups over their limit before groups over their request, and from transferFrom before others", async () => {
    const rm = new ResourceManager(new NullWriter());
    rm.restore({ name: "over_limit", config: cfg(0, 1), nodes: ["qn1", "qn2", "qn3"] });
    rm.restore({ name: "over_request", config: cfg(1, 5), nodes: ["qn4", "qn5", "qn6"] });
    await rm.create("needy", cfg(1, 1));
    const { transfers } = rm.recover(nodes("qn1", "qn2", "qn3", "qn4", "qn5", "qn6"));
    expect(transfers[0]).toMatchObject({ nodeId: "qn3", from: "over_limit", to: "needy" });
    expect(transfers[0]!.reason).toBe(`"needy" has 0 of the 1 node(s) it requests; "over_limit" holds 3, over its limit of 1`);
    // over_limit's other extra node goes where there is the most room (the default group)
    expect(transfers[1]).toMatchObject({ nodeId: "qn2", from: "over_limit", to: DEF });
    expect(groups(rm)).toEqual({ [DEF]: ["qn2"], needy: ["qn3"], over_limit: ["qn1"], over_request: ["qn4", "qn5", "qn6"] });

    const rm2 = new ResourceManager(new NullWriter());
    rm2.restore({ name: "x", config: cfg(0, 5), nodes: ["qn1", "qn2"] });
    rm2.restore({ name: "y", config: cfg(0, 5), nodes: ["qn3", "qn4", "qn5"] });
    await rm2.create("z", { ...cfg(1, 1), transferFrom: [{ resourceGroup: "x" }] });
    expect(rm2.recover(nodes("qn1", "qn2", "qn3", "qn4", "qn5")).transfers).toEqual([expect.objectContaining({ nodeId: "qn2", from: "x", to: "z" })]);
  });

  it("gives a group's nodes over its limit away (transferTo first), and a node that comes back rejoins the group that misses it", async () => {
    const rm = new ResourceManager(new NullWriter());
    await rm.create("a", cfg(2, 2));
    await rm.create("b", cfg(0, 20));
    rm.recover(nodes("qn1", "qn2", "qn3"));
    expect(groups(rm)).toEqual({ [DEF]: ["qn3"], a: ["qn1", "qn2"], b: [] });
    await rm.update(new Map([["a", { ...cfg(1, 1), transferTo: [{ resourceGroup: "b" }] }]]));
    expect(rm.recover(nodes("qn1", "qn2", "qn3")).transfers).toEqual([expect.objectContaining({ nodeId: "qn2", from: "a", to: "b" })]);

    const rm2 = new ResourceManager(new NullWriter());
    await rm2.create("a", cfg(2, 2));
    rm2.recover(nodes("qn1", "qn2"));
    rm2.recover(nodes("qn2")); // qn1 goes down: it leaves a, and no group has one to spare
    expect(groups(rm2)).toEqual({ [DEF]: [], a: ["qn2"] });
    expect(rm2.recover(nodes("qn1", "qn2")).transfers).toEqual([expect.objectContaining({ nodeId: "qn1", to: "a" })]);
  });

  it("transfers nodes as Milvus's TransferNode does: fewer requested by the source, more by the target", async () => {
    const rm = new ResourceManager(new NullWriter());
    await rm.create("a", cfg(2, 2));
    await rm.create("b", cfg(2, 2));
    rm.recover(nodes("qn1", "qn2", "qn3", "qn4"));
    // new nodes go to the group missing the most, the first by name on a tie
    expect(groups(rm)).toEqual({ [DEF]: [], a: ["qn1", "qn3"], b: ["qn2", "qn4"] });
    await rm.transferNode("a", "b", 1);
    expect(rm.get("a")!.config).toMatchObject({ requests: { nodeNum: 1 }, limits: { nodeNum: 1 } });
    expect(rm.get("b")!.config).toMatchObject({ requests: { nodeNum: 3 }, limits: { nodeNum: 3 } });
    const { transfers } = rm.recover(nodes("qn1", "qn2", "qn3", "qn4"));
    expect(transfers).toEqual([expect.objectContaining({ nodeId: "qn3", from: "a", to: "b" })]);
    expect(groups(rm)).toEqual({ [DEF]: [], a: ["qn1"], b: ["qn2", "qn3", "qn4"] });
    expect(refusal(() => rm.transferNode("a", "b", 2)).code).toBe(ErrorCode.ParameterInvalid);
    expect(refusal(() => rm.transferNode("a", "nope", 1)).code).toBe(ErrorCode.ResourceGroupNotFound);
    expect(refusal(() => rm.transferNode("a", "a", 1)).code).toBe(ErrorCode.ParameterInvalid);
  });

  it("refuses bad configs, names and drops with Milvus's codes, and is idempotent where Milvus is", async () => {
    const rm = new ResourceManager(new NullWriter());
    expect(refusal(() => rm.create("bad name")).code).toBe(ErrorCode.ParameterInvalid);
    expect(refusal(() => rm.create("x", cfg(3, 2))).message).toContain("must not be below requests.node_num");
    expect(refusal(() => rm.create("x", { ...cfg(0, 0), transferFrom: [{ resourceGroup: "nope" }] })).message).toContain('"nope", which does not exist');
    await rm.create("x", cfg(1, 1));
    await rm.create("x", cfg(1, 1)); // the same again: fine
    expect(refusal(() => rm.create("x", cfg(2, 2))).code).toBe(ErrorCode.ParameterInvalid);
    expect(refusal(() => rm.update(new Map([["nope", cfg(0, 0)]]))).code).toBe(ErrorCode.ResourceGroupNotFound);
    expect(refusal(() => rm.drop(DEF)).code).toBe(ErrorCode.ParameterInvalid);
    expect(refusal(() => rm.drop("x")).message).toContain("set its requests and limits to 0 first");
    await rm.create("y", { ...cfg(0, 0), transferFrom: [{ resourceGroup: "x" }] });
    await rm.update(new Map([["x", cfg(0, 0)]]));
    expect(refusal(() => rm.drop("x")).message).toContain(`named in the transfer_from/transfer_to of "y"`);
    rm.drop("y");
    expect(rm.drop("y").transfers).toEqual([]); // gone already: a no-op
    expect(rm.names()).toEqual([DEF, "x"]);
  });

  it("drops a group with limits 0, its nodes going to the default group, and stores every change", async () => {
    const w = new MemoryWriter();
    const rm = new ResourceManager(w);
    await rm.create("a", cfg(2, 2));
    rm.recover(nodes("qn1", "qn2", "qn3"));
    expect((w.kv.get("a") as ResourceGroupRecord).nodes).toEqual(["qn1", "qn2"]);
    await rm.update(new Map([["a", cfg(0, 0)]]));
    const { transfers, stored } = rm.drop("a");
    await stored;
    expect(transfers.map((t) => [t.nodeId, t.from, t.to, t.reason])).toEqual([
      ["qn1", "a", DEF, 'resource group "a" was dropped'],
      ["qn2", "a", DEF, 'resource group "a" was dropped'],
    ]);
    expect(w.kv.has("a")).toBe(false);
    expect((w.kv.get(DEF) as ResourceGroupRecord).nodes).toEqual(["qn1", "qn2", "qn3"]);
  });

  it("restores what it stored", async () => {
    const w = new MemoryWriter();
    const rm = new ResourceManager(w);
    await rm.create("a", { ...cfg(1, 2), transferTo: [{ resourceGroup: DEF }] });
    rm.recover(nodes("qn1", "qn2"));
    const again = new ResourceManager(new NullWriter());
    for (const v of w.kv.values()) again.restore(v as ResourceGroupRecord);
    expect(groups(again)).toEqual(groups(rm));
    expect(again.get("a")!.config).toEqual(rm.get("a")!.config);
    expect(again.recover(nodes("qn1", "qn2")).transfers).toEqual([]);
  });
});

describe("replicas on their resource groups' nodes", () => {
  const view = (over: Partial<ReplicaNodeView> & { group: Record<string, string> }): ReplicaNodeView => ({
    alive: new Set(Object.keys(over.group)),
    stopping: new Set(),
    groupOf: (n) => over.group[n],
    groupNodes: (g) =>
      Object.entries(over.group)
        .filter(([, x]) => x === g)
        .map(([n]) => n),
    holds: () => false,
    ...over,
  });
  const rep = (id: bigint, group: string, ns: string[]): Replica => ({ replicaId: id, collectionId: COLL, resourceGroup: group, nodes: ns });

  it("fills each replica from its own group only, and never borrows across groups", () => {
    const g = { qn1: "a", qn2: "a", qn3: "b", qn4: "b" };
    const { changed } = recoverReplicaNodes([rep(1n, "a", []), rep(2n, "b", [])], view({ group: g }), DEF);
    expect(changed.map((r) => [r.replicaId, r.nodes])).toEqual([
      [1n, ["qn1", "qn2"]],
      [2n, ["qn3", "qn4"]],
    ]);
    // a's nodes die: replica 1 is left with none and takes nothing from b
    const dead = view({ group: { qn3: "b", qn4: "b" } });
    const after = recoverReplicaNodes([rep(1n, "a", ["qn1", "qn2"]), rep(2n, "b", ["qn3", "qn4"])], dead, DEF);
    expect(after.changed.map((r) => [r.replicaId, r.nodes])).toEqual([[1n, []]]);
  });

  it("keeps a node that left the replica's group while it holds the collection (leaving), then lets it go", () => {
    const g = { qn1: "a", qn2: "b", qn3: "b" };
    const holding = recoverReplicaNodes([rep(1n, "a", ["qn1", "qn2"]), rep(2n, "b", ["qn3"])], view({ group: g, holds: (n) => n === "qn2" }), DEF);
    expect(holding.changed).toEqual([]);
    expect([...holding.leaving]).toEqual(["qn2"]);
    const done = recoverReplicaNodes([rep(1n, "a", ["qn1", "qn2"]), rep(2n, "b", ["qn3"])], view({ group: g }), DEF);
    expect(done.changed.map((r) => [r.replicaId, r.nodes])).toEqual([
      [1n, ["qn1"]],
      [2n, ["qn2", "qn3"]],
    ]);
    expect(done.leaving.size).toBe(0);
  });

  it("moves a transferred replica onto its new group's nodes while the old ones serve until their data is elsewhere", () => {
    const g = { qn1: "a", qn2: "a", qn3: "b", qn4: "b" };
    // replica 1 was in a on qn1, qn2 and now belongs to b; replica 2 of the collection is in b on qn3
    const r = recoverReplicaNodes([rep(1n, "b", ["qn1", "qn2"]), rep(2n, "b", ["qn3"])], view({ group: g, holds: (n) => n === "qn1" || n === "qn2" }), DEF);
    expect(r.changed.map((x) => [x.replicaId, x.nodes])).toEqual([[1n, ["qn1", "qn2", "qn4"]]]);
    expect([...r.leaving].sort()).toEqual(["qn1", "qn2"]);
  });

  it("with everything in the default group, behaves as before groups existed", () => {
    const g = { a: DEF, b: DEF, c: DEF, d: DEF };
    const reps = [replica(1n, ["a", "b"]), replica(2n, ["c"])];
    expect(recoverReplicaNodes(reps, view({ group: g }), DEF).changed).toEqual([replica(2n, ["c", "d"])]);
  });
});

describe("manual LoadBalance's plan", () => {
  const dlg = (n: string, replicaId = 1n) => ({ vchannel: "100v0", replicaId, address: `vb.dlg.${COLL}.100v0.${replicaId}.${n}`, targetVersion: 1, serviceable: true });
  const segs = [seg(1n), seg(2n), seg(3n), seg(4n, { numRows: 500 })];
  function base(extra: { stopping?: string[]; down?: string[] } = {}): ManualBalanceInput {
    const all = ["qn1", "qn2", "qn3", "qn4"].filter((n) => !(extra.down ?? []).includes(n));
    const i = input({
      collections: [load({ status: "Loaded", name: "books" })],
      replicas: [replica(1n, ["qn1", "qn2", "qn3"]), replica(2n, ["qn4"])],
      targets: [[COLL, { current: target(1, segs) }]],
      nodes: all.map((n) =>
        node(n, {
          ...(n === "qn1" ? { segments: segs, delegators: [dlg(n)] } : n === "qn4" ? { segments: segs, delegators: [dlg(n, 2n)] } : {}),
          ...((extra.stopping ?? []).includes(n) ? { stopping: true } : {}),
        }),
      ),
    });
    return { ...i, moves: new Map(), groupOf: () => DEF, groupOfReplica: () => DEF };
  }

  it("moves the named segments to the named node, or every sealed segment to the replica's other nodes by score", () => {
    const named = planManualBalance(base(), { collectionId: COLL, sourceNode: "qn1", dstNodes: ["qn3"], segmentIds: [2n] });
    expect(named.map((m) => [m.segmentId, m.from, m.to, m.replicaId])).toEqual([[2n, "qn1", "qn3", 1n]]);
    const all = planManualBalance(base(), { sourceNode: "qn1" });
    expect(all.map((m) => [m.segmentId, m.to])).toEqual([
      [1n, "qn2"],
      [2n, "qn3"],
      [3n, "qn2"],
      [4n, "qn3"],
    ]);
  });

  it("refuses what would break a replica, naming the nodes and the collection", () => {
    const code = (f: () => unknown) => {
      const e = refusal(f);
      return [e.code, e.message];
    };
    expect(code(() => planManualBalance(base(), { collectionId: COLL, sourceNode: "qn1", dstNodes: ["qn4"] }))).toEqual([
      ErrorCode.ParameterInvalid,
      expect.stringContaining(`destination node qn4 is not in replica 1 of collection "books" (${COLL}), the source's`),
    ]);
    expect(code(() => planManualBalance(base({ stopping: ["qn3"] }), { collectionId: COLL, sourceNode: "qn1", dstNodes: ["qn3"] }))[0]).toBe(ErrorCode.NodeNotAvailable);
    expect(code(() => planManualBalance(base({ down: ["qn3"] }), { collectionId: COLL, sourceNode: "qn1", dstNodes: ["qn3"] }))[0]).toBe(ErrorCode.NodeOffline);
    expect(code(() => planManualBalance(base({ down: ["qn2"] }), { collectionId: COLL, sourceNode: "qn2" }))[0]).toBe(ErrorCode.NodeOffline);
    expect(code(() => planManualBalance(base(), { collectionId: COLL, sourceNode: "qn2", segmentIds: [1n] }))).toEqual([
      ErrorCode.SegmentNotFound,
      expect.stringContaining("node qn2 does not hold segment 1"),
    ]);
    expect(code(() => planManualBalance(base(), { collectionId: COLL, sourceNode: "qn1", segmentIds: [99n] }))[0]).toBe(ErrorCode.SegmentNotFound);
    expect(code(() => planManualBalance(base(), { collectionId: COLL, sourceNode: "qn4" }))[0]).toBe(ErrorCode.NodeLack);
    expect(code(() => planManualBalance(base(), { collectionId: 7n, sourceNode: "qn1" }))[0]).toBe(ErrorCode.CollectionNotLoaded);
    const moving = { ...base(), moves: new Map([[moveKey(1n, 2n), { collectionId: COLL, replicaId: 1n, segmentId: 2n, vchannel: "100v0", from: "qn1", to: "qn2", rows: 1000 }]]) };
    expect(code(() => planManualBalance(moving, { collectionId: COLL, sourceNode: "qn1", segmentIds: [2n] }))[1]).toContain("already moving");
    // a shard without a serviceable delegator in the replica: nothing may move
    const b = base();
    const unserved = { ...b, dist: input({ nodes: [...b.dist.nodes.values()].map((d) => ({ ...d, delegators: d.delegators.map((x) => ({ ...x, serviceable: false })) })) }).dist };
    expect(code(() => planManualBalance(unserved, { collectionId: COLL, sourceNode: "qn1" }))[0]).toBe(ErrorCode.ChannelNotAvailable);
    // a destination that is leaving the replica's group
    const leaving = { ...base(), groupOf: (n: string) => (n === "qn3" ? "other" : DEF) };
    expect(code(() => planManualBalance(leaving, { collectionId: COLL, sourceNode: "qn1", dstNodes: ["qn3"] }))[0]).toBe(ErrorCode.NodeNotAvailable);
  });
});
