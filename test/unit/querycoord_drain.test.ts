/**
 * A querynode that drains before it stops (SIGTERM): querycoord places its work on the replica's other
 * nodes first, moves the views, and only then releases it on the stopping node. Pure checkers and the
 * replica assignment, fed by hand.
 */
import { describe, expect, it } from "vitest";
import { checkChannels, checkLeaders, checkSegments } from "../../actors/querycoord/checkers/index.ts";
import { rebalanceReplicaNodes } from "../../actors/querycoord/balance/replica_assign.ts";
import { DistManager } from "../../actors/querycoord/dist/dist_manager.ts";
import type { TaskAction } from "../../actors/querycoord/task/task.ts";
import { COLL, input, node, onWire, replica, seg, target } from "./querycoord_fixtures.ts";

const actions = (r: { tasks: { action: TaskAction }[] }) => r.tasks.map((t) => t.action);
const at = (n: string) => `vb.dlg.${COLL}.100v0.1.${n}`;
const entry = (id: bigint, nodeId: string) => ({ segmentId: id, partitionId: 1n, nodeId, startPosition: id * 10n, endPosition: id * 10n + 9n, numRows: 1000 });

describe("a draining querynode's channels", () => {
  it("watches a replacement on another node of the replica while the stopping one still serves", () => {
    const r = checkChannels(
      input({
        replicas: [replica(1n, ["qn1", "qn2"])],
        targets: [[COLL, { current: target(1, []) }]],
        nodes: [node("qn1", { stopping: true, delegators: [{ vchannel: "100v0", replicaId: 1n, address: at("qn1"), targetVersion: 1 }] }), node("qn2")],
      }),
    );
    expect(actions(r)).toEqual([{ kind: "WatchChannel", nodeId: "qn2", collectionId: COLL, replicaId: 1n, vchannel: "100v0" }]);
  });

  it("unwatches the stopping one only once the replacement is serviceable and synced", () => {
    const setup = (serviceable: boolean) =>
      checkChannels(
        input({
          replicas: [replica(1n, ["qn1", "qn2"])],
          targets: [[COLL, { current: target(1, []) }]],
          nodes: [
            node("qn1", { stopping: true, delegators: [{ vchannel: "100v0", replicaId: 1n, address: at("qn1"), targetVersion: 1 }] }),
            node("qn2", { delegators: [{ vchannel: "100v0", replicaId: 1n, address: at("qn2"), serviceable, targetVersion: 1 }] }),
          ],
        }),
      );
    expect(actions(setup(false))).toEqual([]);
    expect(actions(setup(true))).toEqual([{ kind: "UnsubChannel", nodeId: "qn1", collectionId: COLL, replicaId: 1n, vchannel: "100v0" }]);
  });

  it("keeps a stopping node's delegator when the replica has nowhere else to put it, and says so", () => {
    const r = checkChannels(
      input({
        replicas: [replica(1n, ["qn1"])],
        targets: [[COLL, { current: target(1, []) }]],
        nodes: [node("qn1", { stopping: true, delegators: [{ vchannel: "100v0", replicaId: 1n, address: at("qn1"), targetVersion: 1 }] })],
      }),
    );
    expect(actions(r)).toEqual([]);
  });
});

describe("a draining querynode's segments", () => {
  const base = (pointAt: string) =>
    input({
      replicas: [replica(1n, ["qn1", "qn2"])],
      targets: [[COLL, { current: target(1, [seg(1n)]) }]],
      nodes: [
        node("qn1", { stopping: true, segments: [seg(1n)] }),
        node("qn2", { segments: [seg(1n)], delegators: [{ vchannel: "100v0", replicaId: 1n, address: at("qn2"), targetVersion: 1, sealedSegmentIds: [1n] }] }),
      ],
      synced: [[at("qn2"), { targetVersion: 1, sealed: [entry(1n, pointAt)] }]],
    });

  it("loads a copy on another node of the replica when the only copy is on a stopping node", () => {
    const r = checkSegments(
      input({
        replicas: [replica(1n, ["qn1", "qn2"])],
        targets: [[COLL, { current: target(1, [seg(1n)]) }]],
        nodes: [node("qn1", { stopping: true, segments: [seg(1n)], delegators: [{ vchannel: "100v0", replicaId: 1n, address: at("qn1") }] }), node("qn2")],
      }),
    );
    expect(actions(r)).toEqual([
      expect.objectContaining({ kind: "LoadSegment", nodeId: "qn2", replicaId: 1n, segmentId: 1n }),
    ]);
  });

  it("keeps both copies while the view points at the stopping node's, and releases it once the view moved", () => {
    expect(actions(checkSegments(base("qn1")))).toEqual([]);
    expect(actions(checkSegments(base("qn2")))).toEqual([{ kind: "ReleaseSegment", nodeId: "qn1", collectionId: COLL, replicaId: 1n, segmentId: 1n }]);
  });

  it("moves a view off a stopping node's copy when another copy exists", () => {
    const r = checkLeaders(
      input({
        replicas: [replica(1n, ["qn1", "qn2"])],
        targets: [[COLL, { current: target(1, [seg(1n)]) }]],
        nodes: [
          node("qn1", { stopping: true, segments: [seg(1n)] }),
          node("qn2", { segments: [seg(1n)], delegators: [{ vchannel: "100v0", replicaId: 1n, address: at("qn2"), targetVersion: 1, sealedSegmentIds: [1n] }] }),
        ],
        synced: [[at("qn2"), { targetVersion: 1, sealed: [entry(1n, "qn1")] }]],
      }),
    );
    const a = actions(r)[0]!;
    expect(a.kind === "SyncLeader" && onWire(a.sealed)).toEqual([entry(1n, "qn2")]);
  });
});

describe("replica nodes when a node drains", () => {
  it("lends a node to a replica whose only node is stopping, from the replica with the most nodes", () => {
    const changed = rebalanceReplicaNodes(
      [replica(1n, ["qn1", "qn3"]), replica(2n, ["qn2"])],
      new Set(["qn1", "qn2", "qn3"]),
      () => undefined,
      new Set(["qn2"]),
    );
    expect(changed.map((r) => [r.replicaId, r.nodes])).toEqual([
      [1n, ["qn1"]],
      [2n, ["qn2", "qn3"]],
    ]);
  });

  it("never takes a replica's last node, and a stopping node joins no replica", () => {
    expect(rebalanceReplicaNodes([replica(1n, ["qn1"]), replica(2n, ["qn2"])], new Set(["qn1", "qn2"]), () => undefined, new Set(["qn2"]))).toEqual([]);
    expect(rebalanceReplicaNodes([replica(1n, ["qn1"])], new Set(["qn1", "qn9"]), () => undefined, new Set(["qn9"]))).toEqual([]);
  });
});

describe("node liveness", () => {
  it("marks a node down at once when a probe finds its process gone, and back up on its next heartbeat", () => {
    const d = new DistManager(3_000);
    d.update(node("qn1", { segments: [seg(1n)] }), 1_000);
    d.refreshLiveness(1_000);
    expect(d.late(2_600, 1_500)).toEqual(["qn1"]);
    d.gone("qn1", 2_600);
    expect(d.refreshLiveness(2_700)).toEqual({ down: ["qn1"], up: [] });
    const st = d.statuses()[0]!;
    expect([st.state, st.rows, st.segments]).toEqual(["down", 0, 0]);
    d.update(node("qn1"), 5_000);
    expect(d.refreshLiveness(5_000)).toEqual({ down: [], up: ["qn1"] });
  });

  it("keeps a node whose probe answers up while its heartbeats are late, and drops it when neither comes", () => {
    const d = new DistManager(3_000);
    d.update(node("qn1"), 1_000);
    d.refreshLiveness(1_000);
    d.probed("qn1", 3_500);
    expect(d.refreshLiveness(5_000).down).toEqual([]);
    expect(d.refreshLiveness(6_600).down).toEqual(["qn1"]);
  });

  it("shows a draining node as stopping", () => {
    const d = new DistManager(3_000);
    d.update(node("qn1", { stopping: true }), 1_000);
    d.refreshLiveness(1_000);
    expect(d.statuses()[0]!.state).toBe("stopping");
  });
});
