import { describe, expect, it } from "vitest";
import { checkChannels, checkLeaders, checkReleased, checkSegments, formatBlocker, runCheckers } from "../../actors/querycoord/checkers/index.ts";
import { channelKey, segmentKey, type TaskAction } from "../../actors/querycoord/task/task.ts";
import { COLL, failure, input, load, node, onWire, replica, seg, target } from "./querycoord_fixtures.ts";

const actions = (r: { tasks: { action: TaskAction }[] }) => r.tasks.map((t) => t.action);

describe("ChannelChecker", () => {
  it("puts one delegator per vchannel in every replica, on the replica's own node", () => {
    const r = checkChannels(
      input({
        collections: [load({ replicaNumber: 2 })],
        replicas: [replica(1n, ["qn1"]), replica(2n, ["qn2"])],
        targets: [[COLL, { next: target(1, [], ["100v0", "100v1"]) }]],
        nodes: [node("qn1"), node("qn2")],
      }),
    );
    expect(actions(r)).toEqual([
      { kind: "WatchChannel", nodeId: "qn1", collectionId: COLL, replicaId: 1n, vchannel: "100v0" },
      { kind: "WatchChannel", nodeId: "qn1", collectionId: COLL, replicaId: 1n, vchannel: "100v1" },
      { kind: "WatchChannel", nodeId: "qn2", collectionId: COLL, replicaId: 2n, vchannel: "100v0" },
      { kind: "WatchChannel", nodeId: "qn2", collectionId: COLL, replicaId: 2n, vchannel: "100v1" },
    ]);
    expect(r.blockers.size).toBe(0);
  });

  it("spreads a replica's channels over its nodes", () => {
    const r = checkChannels(
      input({
        replicas: [replica(1n, ["qn1", "qn2"])],
        targets: [[COLL, { next: target(1, [], ["100v0", "100v1"]) }]],
        nodes: [node("qn1"), node("qn2")],
      }),
    );
    expect(actions(r).map((a) => a.nodeId)).toEqual(["qn1", "qn2"]);
  });

  it("does nothing before the collection has a target", () => {
    const r = checkChannels(input({ nodes: [node("qn1")] }));
    expect(r.tasks).toEqual([]);
  });

  it("says what a replica without an alive querynode waits on", () => {
    const r = checkChannels(
      input({
        collections: [load({ replicaNumber: 2 })],
        replicas: [replica(1n, ["qn1"]), replica(2n, [])],
        targets: [[COLL, { next: target(1, [], ["45v0"]) }]],
        nodes: [node("qn1", { delegators: [{ vchannel: "45v0", replicaId: 1n }] })],
      }),
    );
    expect(r.tasks).toEqual([]);
    expect(r.blockers.get(COLL)!.map(formatBlocker)).toEqual([
      "replica 2: needs a node, 2 replicas asked for but 1 querynode alive",
      "channel 45v0: no alive querynode in replica 2",
    ]);
  });

  it("unwatches a duplicate (keeping the serviceable one) and delegators of unknown replicas", () => {
    const r = checkChannels(
      input({
        replicas: [replica(1n, ["qn1", "qn2"])],
        targets: [[COLL, { current: target(1, []) }]],
        nodes: [
          node("qn1", { delegators: [{ vchannel: "100v0", replicaId: 1n, serviceable: false }] }),
          node("qn2", { delegators: [{ vchannel: "100v0", replicaId: 1n }, { vchannel: "100v0", replicaId: 9n }] }),
        ],
      }),
    );
    expect(actions(r)).toEqual([
      { kind: "UnsubChannel", nodeId: "qn2", collectionId: COLL, replicaId: 9n, vchannel: "100v0" },
      { kind: "UnsubChannel", nodeId: "qn1", collectionId: COLL, replicaId: 1n, vchannel: "100v0" },
    ]);
  });

  it("unwatches a delegator on a node that left the replica before watching its replacement", () => {
    const r = checkChannels(
      input({
        replicas: [replica(1n, ["qn2"])],
        targets: [[COLL, { current: target(1, []) }]],
        nodes: [node("qn1", { delegators: [{ vchannel: "100v0", replicaId: 1n }] }), node("qn2")],
      }),
    );
    expect(actions(r)).toEqual([{ kind: "UnsubChannel", nodeId: "qn1", collectionId: COLL, replicaId: 1n, vchannel: "100v0" }]);
  });

  it("watches a delegator again when the load's partitions changed, one replica at a time", () => {
    const base = {
      collections: [load({ loadType: "Partition", partitionIds: [1n, 2n], replicaNumber: 2 })],
      replicas: [replica(1n, ["qn1"]), replica(2n, ["qn2"])],
      targets: [[COLL, { current: target(1, []) }]] as [bigint, { current: ReturnType<typeof target> }][],
      nodes: [node("qn1", { delegators: [{ vchannel: "100v0", replicaId: 1n }] }), node("qn2", { delegators: [{ vchannel: "100v0", replicaId: 2n }] })],
    };
    const both = input({ ...base });
    both.watched = new Map([
      [`vb.dlg.${COLL}.100v0.1`, "1"],
      [`vb.dlg.${COLL}.100v0.2`, "1"],
    ]);
    expect(actions(checkChannels(both))).toEqual([{ kind: "UnsubChannel", nodeId: "qn1", collectionId: COLL, replicaId: 1n, vchannel: "100v0" }]);
    const oneDone = input({ ...base });
    oneDone.watched = new Map([
      [`vb.dlg.${COLL}.100v0.1`, "1,2"],
      [`vb.dlg.${COLL}.100v0.2`, "1"],
    ]);
    expect(actions(checkChannels(oneDone))).toEqual([{ kind: "UnsubChannel", nodeId: "qn2", collectionId: COLL, replicaId: 2n, vchannel: "100v0" }]);
  });

  it("reports a failed watch and tries another node", () => {
    const r = checkChannels(
      input({
        replicas: [replica(1n, ["qn1", "qn2"])],
        targets: [[COLL, { next: target(1, []) }]],
        nodes: [node("qn1"), node("qn2")],
        failures: [failure(channelKey(1n, "100v0"), "qn1", "node qn1 did not answer within 30000 ms")],
      }),
    );
    expect(actions(r)).toEqual([{ kind: "WatchChannel", nodeId: "qn2", collectionId: COLL, replicaId: 1n, vchannel: "100v0" }]);
    expect(r.blockers.get(COLL)!.map(formatBlocker)).toEqual(["channel 100v0: node qn1 did not answer within 30000 ms"]);
  });
});

describe("SegmentChecker", () => {
  const dlg = { vchannel: "100v0", replicaId: 1n };

  it("loads the union of the current and next targets once per replica, least loaded node first", () => {
    const r = checkSegments(
      input({
        replicas: [replica(1n, ["qn1", "qn2"])],
        targets: [[COLL, { current: target(1, [seg(1n)]), next: target(2, [seg(1n), seg(2n), seg(3n), seg(4n)]) }]],
        nodes: [node("qn1", { delegators: [dlg] }), node("qn2", { rows: 1500 })],
      }),
    );
    const loads = actions(r).filter((a) => a.kind === "LoadSegment");
    // qn2 starts with 1,500 rows: qn1 takes 1 and 2 (0 → 2,000), then qn2 takes 3 (→ 2,500), qn1 takes 4
    expect(loads.map((a) => [a.kind === "LoadSegment" && a.segmentId, a.nodeId])).toEqual([
      [1n, "qn1"],
      [2n, "qn1"],
      [3n, "qn2"],
      [4n, "qn1"],
    ]);
  });

  it("weights rows by memory capacity: a node with twice the memory takes twice the rows", () => {
    const segs = [1n, 2n, 3n, 4n, 5n, 6n].map((id) => seg(id));
    const r = checkSegments(
      input({
        replicas: [replica(1n, ["big", "small"])],
        targets: [[COLL, { next: target(1, segs) }]],
        nodes: [node("big", { delegators: [dlg], memoryLimitBytes: 2048 * 1024 * 1024 }), node("small", { memoryLimitBytes: 1024 * 1024 * 1024 })],
      }),
    );
    const by = (n: string) => actions(r).filter((a) => a.nodeId === n).length;
    expect([by("big"), by("small")]).toEqual([4, 2]);
  });

  it("waits for the segment's channel to have a delegator in the replica", () => {
    const r = checkSegments(
      input({
        replicas: [replica(1n, ["qn1"])],
        targets: [[COLL, { next: target(1, [seg(1n)]) }]],
        nodes: [node("qn1")],
      }),
    );
    expect(r.tasks).toEqual([]);
  });

  it("says why a load is refused and tries another node", () => {
    const reason = "node qn1 refused: memory limit (needs 40 MB, 12 MB free)";
    const r = checkSegments(
      input({
        replicas: [replica(1n, ["qn1", "qn2"])],
        targets: [[COLL, { next: target(1, [seg(123n)]) }]],
        nodes: [node("qn1", { delegators: [dlg] }), node("qn2")],
        failures: [failure(segmentKey(1n, 123n), "qn1", reason)],
      }),
    );
    expect(actions(r).map((a) => a.nodeId)).toEqual(["qn2"]);
    expect(r.blockers.get(COLL)!.map(formatBlocker)).toEqual([`segment 123: ${reason}`]);
  });

  it("reports a failed load past the round's budget, and loads only what the budget allows", () => {
    const reason = "node qn1 refused: memory limit (needs 40 MB, 12 MB free)";
    const r = checkSegments({
      ...input({
        replicas: [replica(1n, ["qn1", "qn2"])],
        targets: [[COLL, { next: target(1, [seg(1n), seg(2n), seg(3n), seg(4n)]) }]],
        nodes: [node("qn1", { delegators: [dlg] }), node("qn2")],
        failures: [failure(segmentKey(1n, 4n), "qn1", reason)],
      }),
      loadsPerRound: 1,
    });
    // one load (the first segment), and the failure of the last one still said
    expect(actions(r).map((a) => ("segmentId" in a ? a.segmentId : undefined))).toEqual([1n]);
    expect(r.blockers.get(COLL)!.map(formatBlocker)).toEqual([`segment 4: ${reason}`]);
  });

  it("releases a segment of neither target only once no delegator view holds it", () => {
    const base = {
      replicas: [replica(1n, ["qn1"])],
      targets: [[COLL, { current: target(2, [seg(2n)]) }]] as [bigint, { current: ReturnType<typeof target> }][],
    };
    const address = `vb.dlg.${COLL}.100v0.1`;
    // the delegator still reports segment 1 in its view: keep it
    let r = checkSegments(
      input({
        ...base,
        nodes: [node("qn1", { segments: [seg(1n), seg(2n)], delegators: [{ ...dlg, sealedSegmentIds: [1n, 2n], targetVersion: 1 }] })],
        synced: [[address, { targetVersion: 1, sealed: [] }]],
      }),
    );
    expect(actions(r).filter((a) => a.kind === "ReleaseSegment")).toEqual([]);
    // the view moved on: release it
    r = checkSegments(
      input({
        ...base,
        nodes: [node("qn1", { segments: [seg(1n), seg(2n)], delegators: [{ ...dlg, sealedSegmentIds: [2n], targetVersion: 2 }] })],
        synced: [[address, { targetVersion: 2, sealed: [] }]],
      }),
    );
    expect(actions(r)).toEqual([{ kind: "ReleaseSegment", nodeId: "qn1", collectionId: COLL, replicaId: 1n, segmentId: 1n }]);
  });

  it("releases the extra copy in a replica, not the one the delegator points at", () => {
    const address = `vb.dlg.${COLL}.100v0.1`;
    const r = checkSegments(
      input({
        replicas: [replica(1n, ["qn1", "qn2"])],
        targets: [[COLL, { current: target(1, [seg(1n)]) }]],
        nodes: [node("qn1", { segments: [seg(1n)], delegators: [{ ...dlg, sealedSegmentIds: [1n] }] }), node("qn2", { segments: [seg(1n)] })],
        synced: [
          [address, { targetVersion: 1, sealed: [{ segmentId: 1n, partitionId: 1n, nodeId: "qn2", startPosition: 10n, endPosition: 19n, numRows: 1000 }] }],
        ],
      }),
    );
    expect(actions(r)).toEqual([{ kind: "ReleaseSegment", nodeId: "qn1", collectionId: COLL, replicaId: 1n, segmentId: 1n }]);
  });

  it("releases copies on a node that left every replica of the collection", () => {
    const address = `vb.dlg.${COLL}.100v0.1`;
    const r = checkSegments(
      input({
        replicas: [replica(1n, ["qn1"])],
        targets: [[COLL, { current: target(1, [seg(1n)]) }]],
        nodes: [node("qn1", { segments: [seg(1n)], delegators: [{ ...dlg, sealedSegmentIds: [1n] }] }), node("qn9", { segments: [seg(1n)] })],
        synced: [
          [address, { targetVersion: 1, sealed: [{ segmentId: 1n, partitionId: 1n, nodeId: "qn1", startPosition: 10n, endPosition: 19n, numRows: 1000 }] }],
        ],
      }),
    );
    expect(actions(r)).toEqual([{ kind: "ReleaseSegment", nodeId: "qn9", collectionId: COLL, replicaId: -1n, segmentId: 1n }]);
  });
});

describe("LeaderChecker", () => {
  const address = `vb.dlg.${COLL}.100v0.1`;
  const entry = (id: bigint, nodeId: string) => ({
    segmentId: id,
    partitionId: 1n,
    nodeId,
    startPosition: id * 10n,
    endPosition: id * 10n + 9n,
    numRows: 1000,
  });

  it("syncs each delegator with the current target's sealed segments loaded in its replica, once every one has a copy", () => {
    const setup = (qn2Segments: ReturnType<typeof seg>[]) =>
      input({
        replicas: [replica(1n, ["qn1", "qn2"])],
        targets: [[COLL, { current: target(7, [seg(1n), seg(2n), seg(3n)]), next: target(8, [seg(1n), seg(2n), seg(3n), seg(4n)]) }]],
        nodes: [
          node("qn1", { segments: [seg(1n), seg(4n)], delegators: [{ vchannel: "100v0", replicaId: 1n }] }),
          node("qn2", { segments: qn2Segments }),
        ],
      });
    // segment 3 has no copy in the replica yet: a view without it would hide its rows
    expect(actions(checkLeaders(setup([seg(1n), seg(2n)])))).toEqual([]);
    expect(onWire(actions(checkLeaders(setup([seg(1n), seg(2n), seg(3n)]))))).toEqual([
      {
        kind: "SyncLeader",
        nodeId: "qn1",
        collectionId: COLL,
        replicaId: 1n,
        vchannel: "100v0",
        address,
        targetVersion: 7,
        sealed: [entry(1n, "qn1"), entry(2n, "qn2"), entry(3n, "qn2")],
      },
    ]);
  });

  it("passes over a delegator with a sync in flight, tells one again whose report does not show its view, and follows copies that move after a sync", () => {
    const dlg = (extra: object = {}) => ({ vchannel: "100v0", replicaId: 1n, ...extra });
    const base = input({
      replicas: [replica(1n, ["qn1", "qn2"])],
      targets: [[COLL, { current: target(7, [seg(1n), seg(2n), seg(3n)]) }]],
      nodes: [node("qn1", { segments: [seg(1n)], delegators: [dlg()] }), node("qn2", { segments: [seg(2n), seg(3n)] })],
    });
    const dist = base.dist;
    expect(checkLeaders({ ...base, inflight: () => true }).tasks).toEqual([]);
    const first = checkLeaders(base).tasks[0]!.action as Extract<TaskAction, { kind: "SyncLeader" }>;
    expect(onWire(first.sealed)).toEqual([entry(1n, "qn1"), entry(2n, "qn2"), entry(3n, "qn2")]);
    // acknowledged, but the delegator's report does not show it yet: the same view again
    const synced = new Map([[address, { targetVersion: 7, sealed: first.sealed }]]);
    const again = checkLeaders({ ...base, synced }).tasks.map((t) => t.action as Extract<TaskAction, { kind: "SyncLeader" }>);
    expect(onWire(again.map((a) => a.sealed))).toEqual(onWire([first.sealed]));
    // reported: nothing to do, round after round
    dist.put(node("qn1", { segments: [seg(1n)], delegators: [dlg({ targetVersion: 7, sealedSegmentIds: [1n, 2n, 3n] })] }));
    expect(checkLeaders({ ...base, synced }).tasks).toEqual([]);
    expect(checkLeaders({ ...base, synced }).tasks).toEqual([]);
    // segment 3 moves from qn2 to qn1: the view follows it
    dist.put(node("qn2", { segments: [seg(2n)] }));
    dist.put(node("qn1", { segments: [seg(1n), seg(3n)], delegators: [dlg({ targetVersion: 7, sealedSegmentIds: [1n, 2n, 3n] })] }));
    const moved = checkLeaders({ ...base, synced }).tasks.map((t) => t.action as Extract<TaskAction, { kind: "SyncLeader" }>);
    expect(onWire(moved.map((a) => a.sealed))).toEqual([[entry(1n, "qn1"), entry(2n, "qn2"), entry(3n, "qn1")]]);
  });

  it("leaves an up-to-date delegator alone and waits for a current target", () => {
    const nodes = [node("qn1", { segments: [seg(1n)], delegators: [{ vchannel: "100v0", replicaId: 1n, targetVersion: 7, sealedSegmentIds: [1n] }] })];
    expect(
      checkLeaders(input({ targets: [[COLL, { current: target(7, [seg(1n)]) }]], nodes, synced: [[address, { targetVersion: 7, sealed: [entry(1n, "qn1")] }]] }))
        .tasks,
    ).toEqual([]);
    expect(checkLeaders(input({ targets: [[COLL, { next: target(7, [seg(1n)]) }]], nodes })).tasks).toEqual([]);
  });

  it("keeps pointing at a copy whose node died until a new copy is loaded", () => {
    const r = checkLeaders(
      input({
        replicas: [replica(1n, ["qn1"])],
        targets: [[COLL, { current: target(8, [seg(1n), seg(2n)]) }]],
        nodes: [node("qn1", { segments: [seg(1n)], delegators: [{ vchannel: "100v0", replicaId: 1n, targetVersion: 7, sealedSegmentIds: [1n, 2n] }] })],
        synced: [[address, { targetVersion: 7, sealed: [entry(1n, "qn1"), entry(2n, "qn2")] }]],
      }),
    );
    const a = actions(r)[0]!;
    expect(a.kind === "SyncLeader" && onWire(a.sealed)).toEqual([entry(1n, "qn1"), entry(2n, "qn2")]);
    expect(a.kind === "SyncLeader" && a.targetVersion).toBe(8);
  });
});

describe("released collections", () => {
  it("tells every node holding a collection that is not loaded to release it", () => {
    const r = checkReleased(
      input({
        collections: [],
        replicas: [],
        nodes: [node("qn1", { segments: [seg(1n)] }), node("qn2", { delegators: [{ vchannel: "100v0", replicaId: 1n }] }), node("qn3")],
      }),
    );
    expect(actions(r)).toEqual([
      { kind: "ReleaseCollection", nodeId: "qn1", collectionId: COLL },
      { kind: "ReleaseCollection", nodeId: "qn2", collectionId: COLL },
    ]);
  });

  it("leaves loaded collections alone", () => {
    const r = runCheckers(
      input({
        targets: [[COLL, { current: target(1, [seg(1n)]) }]],
        nodes: [node("qn1", { segments: [seg(1n)], delegators: [{ vchannel: "100v0", replicaId: 1n }] })],
      }),
    );
    expect(actions(r).map((a) => a.kind)).toEqual(["SyncLeader"]);
  });
});
