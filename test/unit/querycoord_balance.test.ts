/** BalanceChecker's planner and how the checkers carry a move out (pure, fed by hand). */
import { describe, expect, it } from "vitest";
import {
  channelMoveKey,
  DEFAULT_BALANCE_OPTIONS,
  DEFAULT_CHANNEL_BALANCE_OPTIONS,
  holdsBalanceBack,
  moveKey,
  planBalance,
  planChannelBalance,
  type ChannelMove,
  type SegmentMove,
} from "../../actors/querycoord/balance/score_balancer.ts";
import { checkChannels, checkLeaders, checkSegments, type CheckInput } from "../../actors/querycoord/checkers/index.ts";
import { DistSnapshot } from "../../actors/querycoord/dist/dist_snapshot.ts";
import type { TargetPair } from "../../actors/querycoord/meta/target_manager.ts";
import type { TaskAction } from "../../actors/querycoord/task/task.ts";
import type { QuerycoordCore } from "../../actors/querycoord/core.ts";
import { getShardLeaders } from "../../actors/querycoord/services.ts";
import { COLL, input, load, node, onWire, replica, seg, target } from "./querycoord_fixtures.ts";

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

  it("plans no more moves once its time is spent, and the same moves while time remains", () => {
    const opts = { ...DEFAULT_BALANCE_OPTIONS, maxMovesPerReplica: 100 };
    const unbounded = planBalance(skewed([1n, 2n, 3n, 4n, 5n, 6n]), new Map(), opts);
    expect(unbounded.length).toBe(4);
    expect(planBalance(skewed([1n, 2n, 3n, 4n, 5n, 6n]), new Map(), { ...opts, deadline: performance.now() - 1 })).toEqual([]);
    expect(planBalance(skewed([1n, 2n, 3n, 4n, 5n, 6n]), new Map(), { ...opts, deadline: performance.now() + 60_000 })).toEqual(unbounded);
  });

  it("plans nothing without a clear gain, for a collection still loading, or past the moves a replica may have in flight", () => {
    expect(planBalance(skewed([1n]), new Map())).toEqual([]); // 2,000 rows: moving it would only swap the order
    const loading = skewed([1n, 2n, 3n]);
    expect(planBalance({ ...loading, collections: [load({ status: "Loading" })] }, new Map())).toEqual([]);
    // a replica with as many moves in flight as it may have plans none; with one fewer, one
    const inFlight = new Map<string, SegmentMove>(
      [9n, 10n].map((id) => [moveKey(1n, id), { collectionId: COLL, replicaId: 1n, segmentId: id, vchannel: "100v0", from: "qn1", to: "qn2", rows: 2_000 }]),
    );
    expect(planBalance(skewed([1n, 2n, 3n, 4n, 5n, 6n]), inFlight)).toEqual([]);
    inFlight.delete(moveKey(1n, 10n));
    expect(planBalance(skewed([1n, 2n, 3n, 4n, 5n, 6n]), inFlight).map((m) => [m.segmentId, m.from, m.to])).toEqual([[1n, "qn1", "qn3"]]);
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

  it("gives only a segment of the current target whose one copy in the replica is on the giver", () => {
    // qn1 holds 1..6; 7 is on qn1 but not in the target (a stray), 1 and 2 also have a copy on qn2
    const segs = [1n, 2n, 3n, 4n, 5n, 6n].map((id) => seg(id, { numRows: 2_000 }));
    const stray = seg(7n, { numRows: 50_000 });
    const state = input({
      collections: [load({ status: "Loaded" })],
      replicas: [replica(1n, ["qn1", "qn2", "qn3"])],
      targets: [[COLL, { current: target(1, segs) }]],
      nodes: [node("qn1", { segments: [...segs, stray], delegators: [dlg("qn1")] }), node("qn2", { segments: segs.slice(0, 2) }), node("qn3")],
    });
    const moves = planBalance(state, new Map(), { ...DEFAULT_BALANCE_OPTIONS, maxMovesPerReplica: 100 });
    expect(moves.length).toBeGreaterThan(0);
    for (const m of moves) {
      expect(m.from).toBe("qn1");
      expect([3n, 4n, 5n, 6n]).toContain(m.segmentId);
    }
  });

  it("is held back by the checkers' own loads, watches and index loads, not by the steps of moves in flight", () => {
    const moves = new Map<string, SegmentMove>([[moveKey(1n, 1n), { collectionId: COLL, replicaId: 1n, segmentId: 1n, vchannel: "100v0", from: "qn1", to: "qn2", rows: 1000 }]]);
    const channelMoves = new Map<string, ChannelMove>([[channelMoveKey(1n, "100v0"), { collectionId: COLL, replicaId: 1n, vchannel: "100v0", from: "qn1", to: "qn3" }]]);
    const held = (a: TaskAction) => holdsBalanceBack(a, moves, channelMoves);
    const loadOf = (segmentId: bigint, nodeId: string): TaskAction => ({ kind: "LoadSegment", nodeId, collectionId: COLL, replicaId: 1n, segmentId, vchannel: "100v0", rows: 1000, memoryBytes: 0 });
    const watchOf = (vchannel: string, nodeId: string): TaskAction => ({ kind: "WatchChannel", nodeId, collectionId: COLL, replicaId: 1n, vchannel });
    // a move's own steps
    expect(held(loadOf(1n, "qn2"))).toBe(false);
    expect(held(watchOf("100v0", "qn3"))).toBe(false);
    expect(held({ kind: "ReleaseSegment", nodeId: "qn1", collectionId: COLL, replicaId: 1n, segmentId: 1n })).toBe(false);
    expect(held({ kind: "SyncLeader", nodeId: "qn1", collectionId: COLL, replicaId: 1n, vchannel: "100v0", address: at("qn1"), targetVersion: 1, sealed: [] })).toBe(false);
    // a load or a watch elsewhere (a recovery, a load, a failed move's copy placed anew), an index load
    expect(held(loadOf(1n, "qn3"))).toBe(true);
    expect(held(loadOf(2n, "qn2"))).toBe(true);
    expect(held(watchOf("100v1", "qn3"))).toBe(true);
    expect(held({ kind: "LoadIndex", nodeId: "qn2", collectionId: COLL, replicaId: 1n, segmentId: 1n, indexId: 9n, info: {} as never })).toBe(true);
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
    expect(sync.kind === "SyncLeader" && onWire(sync.sealed)).toEqual([entry(1n, "qn2")]);
  });

  it("then releases the source copy", () => {
    expect(actions(checkSegments({ ...state(true, "qn2"), moves }))).toEqual([
      { kind: "ReleaseSegment", nodeId: "qn1", collectionId: COLL, replicaId: 1n, segmentId: 1n },
    ]);
  });
});

describe("channel balance", () => {
  const chans = ["100v0", "100v1", "100v2", "100v3"];
  const addr = (v: string, n: string, r = 1n) => `vb.dlg.${COLL}.${v}.${r}.${n}`;
  const lead = (v: string, n: string, opts: { serviceable?: boolean; targetVersion?: number } = {}) => ({
    vchannel: v,
    replicaId: 1n,
    address: addr(v, n),
    targetVersion: opts.targetVersion ?? 1,
    serviceable: opts.serviceable ?? true,
  });
  /** a Loaded collection of 4 channels (no segments) whose delegators are placed as `on` says */
  function placed(on: Record<string, string[]>, nodes = ["qn1", "qn2", "qn3"], extra: { stopping?: string[] } = {}) {
    return input({
      collections: [load({ status: "Loaded" })],
      replicas: [replica(1n, nodes)],
      targets: [[COLL, { current: target(1, [], chans) }]],
      nodes: nodes.map((n) => node(n, { delegators: (on[n] ?? []).map((v) => lead(v, n)), stopping: extra.stopping?.includes(n) ?? false })),
    });
  }
  const plan = (i: CheckInput, opts = DEFAULT_CHANNEL_BALANCE_OPTIONS) => planChannelBalance(i, new Map(), opts).map((m) => [m.vchannel, m.from, m.to]);

  it("moves a delegator from the node over its share to the one with the fewest, one per replica and round", () => {
    expect(plan(placed({ qn1: chans }))).toEqual([["100v0", "qn1", "qn2"]]);
    // unbounded: 4 delegators over 3 nodes end 2, 1, 1
    expect(plan(placed({ qn1: chans }), { maxMovesPerRound: 10, maxMovesPerReplica: 10 })).toEqual([
      ["100v0", "qn1", "qn2"],
      ["100v1", "qn1", "qn3"],
    ]);
  });

  it("plans nothing without a gain: a difference of one delegator stays", () => {
    expect(plan(placed({ qn1: ["100v0", "100v1"], qn2: ["100v2"], qn3: ["100v3"] }))).toEqual([]);
    expect(plan(placed({ qn1: ["100v0", "100v1"], qn2: ["100v2", "100v3"] }, ["qn1", "qn2"]))).toEqual([]);
  });

  it("never moves while a shard lacks one serviceable leader, onto a stopping node, or while a move of the collection is in flight", () => {
    const unserviceable = placed({ qn1: chans });
    const n1 = unserviceable.dist.nodes.get("qn1")!;
    const dist = new DistSnapshot([{ ...n1, delegators: n1.delegators.map((d, i) => (i === 3 ? { ...d, serviceable: false } : d)) }, node("qn2"), node("qn3")]);
    expect(plan({ ...unserviceable, dist })).toEqual([]);
    const twice = new DistSnapshot([n1, node("qn2", { delegators: [lead("100v0", "qn2")] }), node("qn3")]);
    expect(plan({ ...unserviceable, dist: twice })).toEqual([]);
    // stopping nodes take nothing: qn2 is skipped, qn3 takes
    expect(plan(placed({ qn1: chans }, ["qn1", "qn2", "qn3"], { stopping: ["qn2"] }))).toEqual([["100v0", "qn1", "qn3"]]);
    expect(plan(placed({ qn1: chans }, ["qn1", "qn2"], { stopping: ["qn2"] }))).toEqual([]);
    const busy: ChannelMove = { collectionId: COLL, replicaId: 1n, vchannel: "100v3", from: "qn1", to: "qn3" };
    expect(planChannelBalance(placed({ qn1: chans }), new Map([[channelMoveKey(1n, "100v3"), busy]]))).toEqual([]);
    const segMove: SegmentMove = { collectionId: COLL, replicaId: 1n, segmentId: 9n, vchannel: "100v0", from: "qn1", to: "qn2", rows: 2_000 };
    expect(planChannelBalance({ ...placed({ qn1: chans }), moves: new Map([[moveKey(1n, 9n), segMove]]) }, new Map())).toEqual([]);
    // and the segment balancer leaves a collection with a channel move in flight alone
    expect(planBalance({ ...skewed([1n, 2n, 3n, 4n, 5n, 6n]), channelMoves: new Map([[channelMoveKey(1n, "100v0"), busy]]) }, new Map())).toEqual([]);
  });

  it("breaks ties deterministically and counts delegators of every collection", () => {
    expect(plan(placed({ qn1: ["100v3", "100v2", "100v1", "100v0"] }, ["qn3", "qn2", "qn1"]))).toEqual([["100v0", "qn1", "qn2"]]);
    // qn2 leads another collection's shard: qn3 is the emptier one
    const other = placed({ qn1: chans });
    const dist = new DistSnapshot([
      other.dist.nodes.get("qn1")!,
      node("qn2", { delegators: [{ ...lead("200v0", "qn2"), collectionId: 200n, address: `vb.dlg.200.200v0.7.qn2`, replicaId: 7n }] }),
      node("qn3"),
    ]);
    expect(plan({ ...other, dist })).toEqual([["100v0", "qn1", "qn3"]]);
  });

  it("is bounded per round across collections", () => {
    const colls = [100n, 101n, 102n, 103n, 104n, 105n];
    const i = input({
      collections: colls.map((c) => load({ collectionId: c, status: "Loaded" })),
      replicas: colls.map((c, k) => replica(BigInt(k + 1), ["qn1", "qn2"], c)),
      targets: colls.map((c) => [c, { current: target(1, [], [`${c}v0`, `${c}v1`], c) }] as [bigint, TargetPair]),
      nodes: [
        node("qn1", {
          delegators: colls.flatMap((c, k) =>
            [`${c}v0`, `${c}v1`].map((v) => ({ collectionId: c, vchannel: v, replicaId: BigInt(k + 1), address: `vb.dlg.${c}.${v}.${k + 1}.qn1`, targetVersion: 1, serviceable: true })),
          ),
        }),
        node("qn2"),
      ],
    });
    const moves = planChannelBalance(i, new Map());
    expect(moves.length).toBe(DEFAULT_CHANNEL_BALANCE_OPTIONS.maxMovesPerRound);
    expect(moves.map((m) => m.collectionId)).toEqual([100n, 101n, 102n, 103n]);
  });
});

describe("a channel move carried out by the checkers", () => {
  const move: ChannelMove = { collectionId: COLL, replicaId: 1n, vchannel: "100v0", from: "qn1", to: "qn2" };
  const channelMoves = new Map([[channelMoveKey(1n, "100v0"), move]]);
  const state = (onQn2?: { serviceable: boolean; targetVersion: number }) =>
    input({
      collections: [load({ status: "Loaded" })],
      replicas: [replica(1n, ["qn1", "qn2"])],
      targets: [[COLL, { current: target(1, [seg(1n)]) }]],
      nodes: [
        node("qn1", { segments: [seg(1n)], delegators: [{ ...dlg("qn1"), sealedSegmentIds: [1n] }] }),
        node("qn2", onQn2 ? { delegators: [{ ...dlg("qn2"), ...onQn2 }] } : {}),
      ],
      synced: [[at("qn1"), { targetVersion: 1, sealed: [entry(1n, "qn1")] }]],
    });

  it("watches the channel on the target node first", () => {
    expect(actions(checkChannels({ ...state(), channelMoves }))).toEqual([
      { kind: "WatchChannel", nodeId: "qn2", collectionId: COLL, replicaId: 1n, vchannel: "100v0" },
    ]);
  });

  it("keeps the old leader until the new one serves the current version, and syncs the new one's view", () => {
    const starting = { ...state({ serviceable: true, targetVersion: 0 }), channelMoves };
    expect(actions(checkChannels(starting))).toEqual([]);
    const sync = actions(checkLeaders(starting)).find((a) => a.kind === "SyncLeader" && a.nodeId === "qn2");
    expect(sync && sync.kind === "SyncLeader" && onWire(sync.sealed)).toEqual([entry(1n, "qn1")]);
  });

  it("then unwatches the old leader", () => {
    expect(actions(checkChannels({ ...state({ serviceable: true, targetVersion: 1 }), channelMoves }))).toEqual([
      { kind: "UnsubChannel", nodeId: "qn1", collectionId: COLL, replicaId: 1n, vchannel: "100v0" },
    ]);
  });
});

describe("GetShardLeaders during a channel move", () => {
  // what getShardLeaders reads of querycoord's state, as plain data
  const coreWith = (nodes: ReturnType<typeof node>[], moves: ChannelMove[]) =>
    ({
      meta: { collection: () => load({ status: "Loaded" }), replicasOf: () => [replica(1n, ["qn1", "qn2"])] },
      targets: { get: () => ({ current: target(3, [seg(1n)]) }) },
      snapshot: new DistSnapshot(nodes),
      channelMoves: new Map(moves.map((m) => [channelMoveKey(m.replicaId, m.vchannel), m])),
    }) as unknown as QuerycoordCore;
  const move: ChannelMove = { collectionId: COLL, replicaId: 1n, vchannel: "100v0", from: "qn1", to: "qn2" };
  const leaderNodes = (core: QuerycoordCore) => getShardLeaders(core, COLL).shards[0]!.leaders.map((l) => l.nodeId);

  it("sends reads to the new delegator alone once it serves the version the old one does", () => {
    const old = node("qn1", { delegators: [{ vchannel: "100v0", replicaId: 1n, address: at("qn1"), targetVersion: 3 }] });
    const behind = node("qn2", { delegators: [{ vchannel: "100v0", replicaId: 1n, address: at("qn2"), targetVersion: 2 }] });
    const caughtUp = node("qn2", { delegators: [{ vchannel: "100v0", replicaId: 1n, address: at("qn2"), targetVersion: 3 }] });
    // the new one behind: both serve
    expect(leaderNodes(coreWith([old, behind], [move])).sort()).toEqual(["qn1", "qn2"]);
    // caught up: the new one alone
    expect(leaderNodes(coreWith([old, caughtUp], [move]))).toEqual(["qn2"]);
    // no move in flight: both, as any two delegators of a replica
    expect(leaderNodes(coreWith([old, caughtUp], [])).sort()).toEqual(["qn1", "qn2"]);
  });
});
