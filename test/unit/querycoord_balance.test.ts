/** BalanceChecker's planner and how the checkers carry a move out (pure, fed by hand). */
import { describe, expect, it } from "vitest";
import { planBalance, moveKey, DEFAULT_BALANCE_OPTIONS, type SegmentMove } from "../../actors/querycoord/balance/score_balancer.ts";
import { checkLeaders, checkSegments } from "../../actors/querycoord/checkers/index.ts";
import type { TaskAction } from "../../actors/querycoord/task/task.ts";
import { COLL, input, load, node, replica, seg, target } from "./querycoord_fixtures.ts";

const actions = (r: { tasks: { action: TaskAction }[] }) => r.tasks.map((t) => t.action);
const at = (n: string) => `vb.dlg.${COLL}.100v0.1.${n}`;
const entry = (id: bigint, nodeId: string, rows = 1000) => ({ segmentId: id, partitionId: 1n, nodeId, startPosition: id * 10n, endPosition: id * 10n + 9n, numRows: rows });
const dlg = (n: string) => ({ vchannel: "100v0", replicaId: 1n, address: at(n), targetVersion: 1, serviceable: true });

/** a Loaded collection of `ids` (2,000 rows each), all on qn1; qn2 and qn3 empty */
function skewed(ids: bigint[], nodes = ["qn1", "qn2", "qn3"]) {
  const segs = ids.map((id) => seg(id, { numRows: 2_000 }));
  return input({
    collections: [load({ status: "Loaded" })],
    replicas: [replica(1n, nodes)],
    targets: [[COLL, { current: target(1, segs) }]],
    nodes: nodes.map((n, i) => node(n, i === 0 ? { segments: segs, delegators: [dlg(n)] } : {})),
  });
}

describe("the score-based balancer", () => {
  it("moves segments from the fullest node to the emptiest until no move is a clear gain, bounded per replica", () => {
    const moves = planBalance(skewed([1n, 2n, 3n, 4n, 5n, 6n]), new Map());
    expect(moves.map((m) => [m.segmentId, m.from, m.to])).toEqual([
      [1n, "qn1", "qn2"],
      [2n, "qn1", "qn3"],
    ]);
    const all = planBalance(skewed([1n, 2n, 3n, 4n, 5n, 6n]), new Map(), { ...DEFAULT_BALANCE_OPTIONS, maxMovesPerReplica: 100 });
    // 6 × 2,000 rows over 3 nodes: 2 segments each (qn1 also carries its delegator's overhead)
    const count = (n: string) => (n === "qn1" ? 6 : 0) - all.filter((m) => m.from === n).length + all.filter((m) => m.to === n).length;
    expect(["qn1", "qn2", "qn3"].map(count)).toEqual([2, 2, 2]);
  });

  it("plans nothing without a clear gain, for a collection still loading, or while a move of it is in flight", () => {
    expect(planBalance(skewed([1n]), new Map())).toEqual([]); // 2,000 rows: moving it would only swap the order
    const loading = skewed([1n, 2n, 3n]);
    expect(planBalance({ ...loading, collections: [load({ status: "Loading" })] }, new Map())).toEqual([]);
    const inFlight = new Map<string, SegmentMove>([[moveKey(1n, 9n), { collectionId: COLL, replicaId: 1n, segmentId: 9n, vchannel: "100v0", from: "qn1", to: "qn2", rows: 2_000 }]]);
    expect(planBalance(skewed([1n, 2n, 3n]), inFlight)).toEqual([]);
  });

  it("never moves a segment whose shard has no serviceable delegator, nor onto a stopping node", () => {
    const base = skewed([1n, 2n, 3n, 4n]);
    const unserviceable = input({
      collections: [load({ status: "Loaded" })],
      replicas: [replica(1n, ["qn1", "qn2"])],
      targets: [[COLL, { current: target(1, [1n, 2n, 3n, 4n].map((id) => seg(id, { numRows: 2_000 }))) }]],
      nodes: [node("qn1", { segments: [1n, 2n, 3n, 4n].map((id) => seg(id, { numRows: 2_000 })), delegators: [{ ...dlg("qn1"), serviceable: false }] }), node("qn2")],
    });
    expect(planBalance(unserviceable, new Map())).toEqual([]);
    const stopping = input({
      collections: [load({ status: "Loaded" })],
      replicas: [replica(1n, ["qn1", "qn2"])],
      targets: [[COLL, { current: target(1, [1n, 2n, 3n, 4n].map((id) => seg(id, { numRows: 2_000 }))) }]],
      nodes: [node("qn1", { segments: [1n, 2n, 3n, 4n].map((id) => seg(id, { numRows: 2_000 })), delegators: [dlg("qn1")] }), node("qn2", { stopping: true })],
    });
    expect(planBalance(stopping, new Map())).toEqual([]);
    expect(planBalance(base, new Map()).length).toBeGreaterThan(0);
  });

  it("breaks ties deterministically", () => {
    const a = planBalance(skewed([1n, 2n, 3n, 4n, 5n, 6n]), new Map());
    const b = planBalance(skewed([6n, 5n, 4n, 3n, 2n, 1n]), new Map());
    expect(a).toEqual(b);
  });
});

describe("a balance move carried out by the checkers", () => {
  const move: SegmentMove = { collectionId: COLL, replicaId: 1n, segmentId: 1n, vchannel: "100v0", from: "qn1", to: "qn2", rows: 1000 };
  const moves = new Map([[moveKey(1n, 1n), move]]);
  const state = (qn2Has: boolean, pointAt: string) =>
    input({
      replicas: [replica(1n, ["qn1", "qn2"])],
      targets: [[COLL, { current: target(1, [seg(1n)]) }]],
      nodes: [node("qn1", { segments: [seg(1n)], delegators: [{ ...dlg("qn1"), sealedSegmentIds: [1n] }] }), node("qn2", qn2Has ? { segments: [seg(1n)] } : {})],
      synced: [[at("qn1"), { targetVersion: 1, sealed: [entry(1n, pointAt)] }]],
    });

  it("loads the segment on the target first", () => {
    const r = checkSegments({ ...state(false, "qn1"), moves });
    expect(actions(r)).toEqual([expect.objectContaining({ kind: "LoadSegment", nodeId: "qn2", segmentId: 1n })]);
  });

  it("then moves the view to the new copy, keeping both copies meanwhile", () => {
    expect(actions(checkSegments({ ...state(true, "qn1"), moves }))).toEqual([]);
    const sync = actions(checkLeaders({ ...state(true, "qn1"), moves }))[0]!;
    expect(sync.kind === "SyncLeader" && sync.sealed).toEqual([entry(1n, "qn2")]);
  });

  it("then releases the source copy", () => {
    expect(actions(checkSegments({ ...state(true, "qn2"), moves }))).toEqual([
      { kind: "ReleaseSegment", nodeId: "qn1", collectionId: COLL, replicaId: 1n, segmentId: 1n },
    ]);
  });
});
