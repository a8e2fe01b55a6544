import { describe, expect, it } from "vitest";
import { DistSnapshot } from "../../actors/querycoord/dist/dist_snapshot.ts";
import { loadProgress } from "../../actors/querycoord/observers/collection_observer.ts";
import { fetchRecoveryInfo, promotionReadiness } from "../../actors/querycoord/observers/target_observer.ts";
import { pickSegmentNode, scoreOf, SegmentPlacer } from "../../actors/querycoord/balance/node_load.ts";
import { rebalanceReplicaNodes, splitNodes } from "../../actors/querycoord/balance/replica_assign.ts";
import { targetFromRecovery, sameTargetContent } from "../../actors/querycoord/meta/target.ts";
import { TargetManager } from "../../actors/querycoord/meta/target_manager.ts";
import { NullWriter } from "../../actors/querycoord/meta/kv_writer.ts";
import { COLL, node, replica, seg, target } from "./querycoord_fixtures.ts";

const dlg = (replicaId: bigint, extra: object = {}) => ({ vchannel: "100v0", replicaId, ...extra });

describe("promotion (the handoff)", () => {
  const next = target(2, [seg(1n), seg(2n)]);
  const replicas = [replica(1n, ["qn1"]), replica(2n, ["qn2"])];

  it("waits until every replica has every next segment and a serviceable delegator", () => {
    const partial = new DistSnapshot([
      node("qn1", { segments: [seg(1n), seg(2n)], delegators: [dlg(1n)] }),
      node("qn2", { segments: [seg(1n)], delegators: [dlg(2n)] }),
    ]);
    const r = promotionReadiness(replicas, next, partial);
    expect(r.ready).toBe(false);
    expect(r.waiting).toEqual(["replica 2: segment 2 not loaded"]);
    const notServing = new DistSnapshot([
      node("qn1", { segments: [seg(1n), seg(2n)], delegators: [dlg(1n)] }),
      node("qn2", { segments: [seg(1n), seg(2n)], delegators: [dlg(2n, { serviceable: false })] }),
    ]);
    expect(promotionReadiness(replicas, next, notServing).ready).toBe(false);
    const all = new DistSnapshot([
      node("qn1", { segments: [seg(1n), seg(2n)], delegators: [dlg(1n)] }),
      node("qn2", { segments: [seg(1n), seg(2n)], delegators: [dlg(2n)] }),
    ]);
    expect(promotionReadiness(replicas, next, all).ready).toBe(true);
  });

  it("does not wait on a replica with no alive querynode, but needs one ready replica", () => {
    const one = new DistSnapshot([node("qn1", { segments: [seg(1n), seg(2n)], delegators: [dlg(1n)] })]);
    expect(promotionReadiness(replicas, next, one).ready).toBe(true);
    expect(promotionReadiness(replicas, next, new DistSnapshot([])).ready).toBe(false);
  });
});

describe("load progress", () => {
  it("is the loaded share of the target across replicas, 100 only once every delegator serves the current version", () => {
    const replicas = [replica(1n, ["qn1"]), replica(2n, ["qn2"])];
    const t = target(5, [seg(1n), seg(2n), seg(3n)]);
    // first load: nothing current yet, the next target is what loads
    let d = new DistSnapshot([node("qn1", { segments: [seg(1n)], delegators: [dlg(1n)] }), node("qn2")]);
    expect(loadProgress(replicas, { next: t }, d)).toEqual({ progress: 25, loaded: false, loadedSegments: 1, targetSegments: 6 });
    d = new DistSnapshot([
      node("qn1", { segments: [seg(1n), seg(2n), seg(3n)], delegators: [dlg(1n, { targetVersion: 5 })] }),
      node("qn2", { segments: [seg(1n), seg(2n), seg(3n)], delegators: [dlg(2n, { targetVersion: 4 })] }),
    ]);
    expect(loadProgress(replicas, { next: t }, d).progress).toBe(99);
    expect(loadProgress(replicas, { current: t }, d).loaded).toBe(false);
    d = new DistSnapshot([
      node("qn1", { segments: [seg(1n), seg(2n), seg(3n)], delegators: [dlg(1n, { targetVersion: 5 })] }),
      node("qn2", { segments: [seg(1n), seg(2n), seg(3n)], delegators: [dlg(2n, { targetVersion: 5 })] }),
    ]);
    expect(loadProgress(replicas, { current: t }, d)).toEqual({ progress: 100, loaded: true, loadedSegments: 6, targetSegments: 6 });
  });

  it("counts only a target made for every partition of the load, and not a delegator about to be watched again", () => {
    const t = target(5, [seg(1n)]); // partitions [1]
    const d = new DistSnapshot([node("qn1", { segments: [seg(1n)], delegators: [dlg(1n, { targetVersion: 5 })] })]);
    const reps = [replica(1n, ["qn1"])];
    expect(loadProgress(reps, { current: t }, d, [1n]).loaded).toBe(true);
    expect(loadProgress(reps, { current: t }, d, [1n, 2n])).toEqual({ progress: 0, loaded: false, loadedSegments: 0, targetSegments: 0 });
    const wider = { ...target(6, [seg(1n)]), partitionIds: [1n, 2n] };
    expect(loadProgress(reps, { current: t, next: wider }, d, [1n, 2n]).progress).toBe(99);
    expect(loadProgress(reps, { current: t }, d, [1n], () => true).loaded).toBe(false);
  });

  it("an empty collection is loaded once every channel has a serviceable delegator at the current version", () => {
    const t = target(3, [], ["100v0", "100v1"]);
    const d = new DistSnapshot([node("qn1", { delegators: [dlg(1n, { targetVersion: 3 }), { vchannel: "100v1", replicaId: 1n, targetVersion: 3 }] })]);
    expect(loadProgress([replica(1n, ["qn1"])], { current: t }, d).loaded).toBe(true);
  });
});

describe("targets", () => {
  const info = {
    collectionId: COLL,
    channels: [{ vchannel: "100v0", pchannel: 0, seekPosition: 42n, checkpointTs: 7n }],
    segments: [
      seg(1n),
      seg(2n, { partitionId: 2n }),
      seg(3n, { level: "L0", partitionId: -1n }),
      seg(4n, { state: "Flushing" }),
    ],
  };
  const loadInfo = { collectionId: COLL, partitionIds: [1n], vchannels: [{ name: "100v0", shard: 0, pchannel: 0 }, { name: "100v1", shard: 1, pchannel: 1 }] };

  it("take Flushed L1 segments of the loaded partitions, L0 segments, every vchannel with its seek position", () => {
    const t = targetFromRecovery(info, loadInfo, 9);
    expect([...t.segments.keys()]).toEqual([1n]);
    expect([...t.l0Segments.keys()]).toEqual([3n]);
    // what a load needs of a segment, not datacoord's times or end timestamp
    const { createdAt: _c, updatedAt: _u, endTs: _e, ...kept } = info.segments[0]!;
    expect(t.segments.get(1n)).toEqual(kept);
    expect(Object.keys(t.segments.get(1n)!)).not.toContain("createdAt");
    expect([...t.channels.values()]).toEqual([
      { vchannel: "100v0", pchannel: 0, seekPosition: 42n, checkpointTs: 7n },
      { vchannel: "100v1", pchannel: 1, seekPosition: 0n, checkpointTs: 0n },
    ]);
  });

  it("a fresh target becomes next only when it differs from the current one; promotion moves it", () => {
    const tm = new TargetManager(new NullWriter());
    const { version: _v, ...a } = targetFromRecovery(info, loadInfo, 0);
    const n1 = tm.offerNext(a)!;
    expect(tm.promote(COLL)!.target.version).toBe(n1.version);
    expect(tm.offerNext(a)).toBeUndefined();
    const { version: _w, ...b } = targetFromRecovery({ ...info, segments: [...info.segments, seg(5n)] }, loadInfo, 0);
    const n2 = tm.offerNext(b)!;
    expect(n2.version).toBeGreaterThan(n1.version);
    expect(sameTargetContent(tm.next(COLL), { ...b, version: 0 })).toBe(true);
    expect(tm.current(COLL)!.segments.has(5n)).toBe(false);
    // datacoord says the segments did not change: the next target takes the channels' newer seek positions in place
    const next = tm.next(COLL)!;
    tm.takeSeekPositions(COLL, [{ vchannel: "100v0", pchannel: 0, seekPosition: 50n, checkpointTs: 9n }, { vchannel: "gone", pchannel: 3, seekPosition: 1n, checkpointTs: 1n }]);
    expect(tm.next(COLL)).toBe(next);
    expect([...next.channels.keys()]).toEqual(["100v0", "100v1"]);
    expect(next.channels.get("100v0")).toEqual({ vchannel: "100v0", pchannel: 0, seekPosition: 50n, checkpointTs: 9n });
  });

  it("are read in pages, and not again while datacoord's revision of the segments is the one named", async () => {
    type Ask = Parameters<typeof fetchRecoveryInfo>[0];
    const asked: Parameters<Ask>[0][] = [];
    let revision = "r1";
    const all = [seg(1n), seg(2n), seg(3n)];
    const ask: Ask = async (body) => {
      asked.push(body);
      const channels = info.channels;
      if (body.unlessRevision === revision && body.afterSegmentId === undefined) return { collectionId: COLL, channels, segments: [], revision, unchanged: true };
      const rest = all.filter((s) => body.afterSegmentId === undefined || s.segmentId > body.afterSegmentId);
      const page = rest.slice(0, 2);
      const r = { collectionId: COLL, channels, segments: page, revision, ...(rest.length > page.length ? { more: true } : {}) };
      revision = "r2"; // (changed while the pages are read: the first page's revision is the one kept)
      return r;
    };
    const whole = await fetchRecoveryInfo(ask, COLL, [1n]);
    expect([whole.segments.map((s) => s.segmentId), whole.revision, whole.unchanged]).toEqual([[1n, 2n, 3n], "r1", undefined]);
    expect(asked.map((b) => [b.afterSegmentId, b.unlessRevision])).toEqual([[undefined, undefined], [2n, undefined]]);
    // r1 is no longer datacoord's: the pages again
    asked.length = 0;
    const again = await fetchRecoveryInfo(ask, COLL, [1n], whole.revision);
    expect([again.segments.length, again.revision]).toEqual([3, "r2"]);
    // r2 still is: one ask, no segments
    asked.length = 0;
    const same = await fetchRecoveryInfo(ask, COLL, [1n], "r2");
    expect([same.unchanged, same.segments, same.channels, asked.length]).toEqual([true, [], info.channels, 1]);
  });
});

describe("balance and replicas", () => {
  it("splits alive nodes into replicas of (almost) equal size, least loaded spread first", () => {
    expect(splitNodes(["a", "b", "c"], 2)).toEqual([["a", "c"], ["b"]]);
    expect(splitNodes(["a"], 2)).toBeNull();
  });

  it("takes a dead node out of its replica and gives a new node to the smallest replica or the one it served", () => {
    const reps = [replica(1n, ["a", "b"]), replica(2n, ["c"])];
    expect(rebalanceReplicaNodes(reps, new Set(["a", "c"]))).toEqual([replica(1n, ["a"])]);
    expect(rebalanceReplicaNodes(reps, new Set(["a", "b", "c", "d"]))).toEqual([replica(2n, ["c", "d"])]);
    expect(rebalanceReplicaNodes(reps, new Set(["a", "b", "c", "d"]), () => 1n)).toEqual([replica(1n, ["a", "b", "d"])]);
  });

  it("scores rows against memory capacity and prefers nodes with room", () => {
    const big = { nodeId: "big", rows: 2000, memoryBytes: 0, memoryLimitBytes: 200, segments: 2, channels: 0 };
    const small = { nodeId: "small", rows: 1500, memoryBytes: 90, memoryLimitBytes: 100, segments: 1, channels: 0 };
    expect(scoreOf(big, 200)).toBe(2000);
    expect(scoreOf(small, 200)).toBe(3000);
    expect(pickSegmentNode([big, small], { rows: 10, memoryBytes: 5 })!.nodeId).toBe("big");
    expect(pickSegmentNode([small], { rows: 10, memoryBytes: 50 })!.nodeId).toBe("small");
    expect(pickSegmentNode([big, small], { rows: 10, memoryBytes: 5 }, new Set(["big"]))!.nodeId).toBe("small");
  });

  it("places many segments as pickSegmentNode would one at a time, with a node to avoid and with full nodes", () => {
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) % n);
    for (let trial = 0; trial < 20; trial++) {
      const mk = () =>
        Array.from({ length: 1 + rnd(12) }, (_, i) => ({
          nodeId: `n${i}`,
          rows: rnd(5_000),
          memoryBytes: rnd(900),
          memoryLimitBytes: 500 + rnd(2) * 500,
          segments: rnd(5),
          channels: 0,
        }));
      const a = mk();
      const b = a.map((l) => ({ ...l }));
      const placer = new SegmentPlacer(a);
      for (let k = 0; k < 40; k++) {
        const need = { rows: 1 + rnd(300), memoryBytes: rnd(120) };
        const avoid = rnd(3) === 0 ? new Set([`n${rnd(a.length)}`]) : undefined;
        const want = pickSegmentNode(b, need, avoid)!;
        want.rows += need.rows;
        want.memoryBytes += need.memoryBytes;
        want.segments += 1;
        expect(placer.place(need, avoid)!.nodeId).toBe(want.nodeId);
      }
    }
  });

  it("passes over a node with no task slot left this round, counts slots down as it places, and places nothing once every node is busy", () => {
    const load = (nodeId: string, rows: number) => ({ nodeId, rows, memoryBytes: 0, memoryLimitBytes: 1 << 30, segments: 0, channels: 0 });
    // n0 is the emptiest but already runs as many tasks as it may; n1 has 2 slots, n2 has 1
    const slots = new Map([["n0", 0], ["n1", 2], ["n2", 1]]);
    const placer = new SegmentPlacer([load("n0", 0), load("n1", 1_000), load("n2", 5_000)], slots);
    const need = { rows: 100, memoryBytes: 0 };
    expect([1, 2, 3].map(() => placer.place(need)!.nodeId)).toEqual(["n1", "n1", "n2"]);
    expect(placer.place(need)).toBeUndefined();
    expect([...slots.values()]).toEqual([0, 0, 0]);
    // without slots, scores alone: the emptiest node
    expect(new SegmentPlacer([load("n0", 0), load("n1", 1_000)]).place(need)!.nodeId).toBe("n0");
  });
});
