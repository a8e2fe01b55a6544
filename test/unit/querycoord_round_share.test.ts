/**
 * A round's share of a large cluster: which collections a round looks at, in turn; what the scheduler
 * keeps of the collections a round did not look at; what their loads are still said to wait on; and
 * the checkers that look at the share only (segments, views, indexes) beside those that look at every
 * collection every round (channels, released collections).
 */
import { describe, expect, it } from "vitest";
import { checkChannels, checkIndexes, checkLeaders, checkSegments, runCheckers } from "../../actors/querycoord/checkers/index.ts";
import { mergeShareBlockers, resumeAt, roundShare, unlookedOutside } from "../../actors/querycoord/round_share.ts";
import { TaskScheduler } from "../../actors/querycoord/task/scheduler.ts";
import { channelKey, Priority, segmentKey, type TaskSpec } from "../../actors/querycoord/task/task.ts";
import { build, COLL, indexInfo, input, load, node, replica, seg, target } from "./querycoord_fixtures.ts";

const coll = (collectionId: bigint, copies: number) => ({ collectionId, copies });

describe("roundShare", () => {
  it("looks at every collection every round while the cluster fits the budget (or there is no budget)", () => {
    const cs = [coll(1n, 100), coll(2n, 100)];
    expect(roundShare(cs, 200, undefined)).toBeUndefined();
    expect(roundShare(cs, 0, undefined)).toBeUndefined();
    expect(roundShare([], 10, undefined)).toBeUndefined();
  });

  it("takes collections in id order from where the last share ended, up to the budget, and wraps around", () => {
    // (given out of order: the share follows the ids)
    const cs = [coll(3n, 100), coll(1n, 100), coll(5n, 100), coll(2n, 100), coll(4n, 100)];
    const shares: bigint[][] = [];
    let from: bigint | undefined;
    for (let i = 0; i < 4; i++) {
      const s = roundShare(cs, 250, from)!;
      shares.push([...s.collections]);
      from = s.next;
    }
    expect(shares).toEqual([
      [1n, 2n],
      [3n, 4n],
      [5n, 1n],
      [2n, 3n],
    ]);
  });

  it("takes a collection larger than the budget alone, and goes on after a collection that is gone", () => {
    const cs = [coll(1n, 50), coll(2n, 1_000), coll(4n, 50)];
    expect([...roundShare(cs, 100, 2n)!.collections]).toEqual([2n]);
    expect(roundShare(cs, 100, 2n)!.next).toBe(4n);
    // 3 was where the next share was to start and has been released since: it starts at 4
    expect([...roundShare(cs, 100, 3n)!.collections]).toEqual([4n, 1n]);
    expect([...roundShare(cs, 100, 9n)!.collections]).toEqual([1n]);
  });

  it("starts the next share at the first collection of this one whose look was cut short", () => {
    const share = new Set([5n, 1n, 2n]);
    expect(resumeAt(share, new Set([2n, 1n]))).toBe(1n);
    // not twice in a row at the same collection: the share moves on
    expect(resumeAt(share, new Set([2n, 1n]), 1n)).toBeUndefined();
    expect(resumeAt(share, new Set([2n]), 1n)).toBe(2n);
    expect(resumeAt(share, new Set([9n]))).toBeUndefined();
    expect(resumeAt(share, new Set())).toBeUndefined();
  });
});

describe("mergeShareBlockers", () => {
  const b = (kind: "segment" | "channel" | "target" | "index", subject: string) => ({ kind, subject, reason: `${kind} ${subject} waits` });

  it("a collection of the share has what this round found; another keeps its segments' and indexes' from its last look", () => {
    const prev = new Map([
      [1n, [b("segment", "11"), b("channel", "1v0")]],
      [2n, [b("segment", "21"), b("index", "22"), b("channel", "2v0")]],
      [3n, [b("segment", "31")]],
    ]);
    const found = new Map([
      [1n, [b("target", "1")]],
      [2n, [b("channel", "2v1")]],
    ]);
    const out = mergeShareBlockers(prev, found, new Set([1n]), [{ collectionId: 1n }, { collectionId: 2n }]);
    expect(out.get(1n)).toEqual([b("target", "1")]);
    // 2's channel blocker is this round's (channels are looked at every round), its segment and index ones its last look's
    expect(out.get(2n)).toEqual([b("segment", "21"), b("index", "22"), b("channel", "2v1")]);
    // 3 is no longer loaded
    expect(out.has(3n)).toBe(false);
  });
});

describe("TaskScheduler with a round's share", () => {
  const params = { capPerNode: 1, distWaitMs: 1_000, retryBaseMs: 100, retryMaxMs: 1_000 };
  const loadOf = (collectionId: bigint, segmentId: bigint): TaskSpec => ({
    key: segmentKey(collectionId, segmentId),
    priority: Priority.Normal,
    action: { kind: "LoadSegment", nodeId: "qn1", collectionId, replicaId: collectionId, segmentId, vchannel: `${collectionId}v0`, rows: 1, memoryBytes: 1 },
  });
  const watchOf = (collectionId: bigint): TaskSpec => ({
    key: channelKey(collectionId, `${collectionId}v0`),
    priority: Priority.High,
    action: { kind: "WatchChannel", nodeId: "qn2", collectionId, replicaId: collectionId, vchannel: `${collectionId}v0` },
  });

  it("keeps what waits for a collection the round did not look at, and drops what a look no longer wants", () => {
    const s = new TaskScheduler(params);
    s.replacePending([loadOf(1n, 10n), loadOf(2n, 20n), loadOf(2n, 21n), watchOf(2n)], 0);
    // qn1 runs one task at a time: 1/10 starts, 2/20 and 2/21 wait; qn2 runs the watch
    expect(s.dispatch(0).map((t) => t.key)).toEqual(["r2/ch/2v0", "r1/seg/10"]);
    const waiting = s.pendingTasks().map((t) => t.id);
    // a round that looked at collection 1 only, wishing for another of its segments: collection 2's loads still wait, as they were
    const loaded = new Set([1n, 2n]);
    s.replacePending([loadOf(1n, 11n)], 1, unlookedOutside(new Set([1n]), loaded));
    expect(s.pendingTasks().map((t) => t.key).sort()).toEqual(["r1/seg/11", "r2/seg/20", "r2/seg/21"]);
    expect(s.pendingTasks().filter((t) => t.key !== "r1/seg/11").map((t) => t.id)).toEqual(waiting);
    // a round that looked at collection 2 and wants only 2/21: 2/20 goes, and 1/11, not looked at, stays
    s.replacePending([loadOf(2n, 21n)], 2, unlookedOutside(new Set([2n]), loaded));
    expect(s.pendingTasks().map((t) => t.key).sort()).toEqual(["r1/seg/11", "r2/seg/21"]);
    // collection 1 released (no longer loaded): its waiting load is not kept
    s.replacePending([loadOf(2n, 21n)], 3, unlookedOutside(new Set([2n]), new Set([2n])));
    expect(s.pendingTasks().map((t) => t.key)).toEqual(["r2/seg/21"]);
    // without a share, a round's wishes replace everything waiting
    s.replacePending([], 4);
    expect(s.pendingTasks()).toEqual([]);
  });

  it("does not keep a waiting release or sync of a collection the round did not look at (the copies it was decided on may have changed)", () => {
    const s = new TaskScheduler(params);
    const release: TaskSpec = {
      key: segmentKey(2n, 20n),
      priority: Priority.Normal,
      action: { kind: "ReleaseSegment", nodeId: "qn1", collectionId: 2n, replicaId: 2n, segmentId: 20n },
    };
    s.replacePending([loadOf(1n, 10n), release, loadOf(2n, 21n)], 0);
    expect(s.dispatch(0).map((t) => t.key)).toEqual(["r1/seg/10"]);
    s.replacePending([], 1, unlookedOutside(new Set([1n]), new Set([1n, 2n])));
    expect(s.pendingTasks().map((t) => t.key)).toEqual(["r2/seg/21"]);
  });

  it("keeps a failure of a collection the round did not look at until a look no longer wants its key", () => {
    const s = new TaskScheduler(params);
    s.replacePending([loadOf(2n, 20n)], 0);
    const [t] = s.dispatch(0);
    s.onReply(t!.id, { ok: false, reason: "node qn1 refused: memory limit" }, 1);
    expect(s.failures().has("r2/seg/20")).toBe(true);
    // its backoff is over, nobody asked for it, but collection 2 was not looked at: it is kept (it says why the load waits)
    s.replacePending([], 5_000, unlookedOutside(new Set([1n]), new Set([1n, 2n])));
    expect(s.failures().get("r2/seg/20")?.reason).toBe("node qn1 refused: memory limit");
    expect(s.failures().get("r2/seg/20")?.kind).toBe("LoadSegment");
    // a round that looked at it and did not want it forgets it
    s.replacePending([], 5_001, unlookedOutside(new Set([2n]), new Set([1n, 2n])));
    expect(s.failures().has("r2/seg/20")).toBe(false);
    // a failure of a collection released meanwhile is forgotten though no share looks there
    s.replacePending([loadOf(2n, 22n)], 6_000);
    const [u] = s.dispatch(6_000);
    s.onReply(u!.id, { ok: false, reason: "node qn1 refused: memory limit" }, 6_001);
    s.replacePending([], 20_000, unlookedOutside(new Set([1n]), new Set([1n])));
    expect(s.failures().has("r2/seg/22")).toBe(false);
  });
});

describe("checkers and a round's share", () => {
  const OTHER = COLL + 1n;
  const dlg = { vchannel: "100v0", replicaId: 1n };
  // COLL: segments 1 and 2 current and held by qn1 (its delegator has no view yet: a sync is due; segment 1 lacks
  // its index: an index load is due), segment 3 in the next target (a load is due); OTHER: a channel to watch
  const twoCollections = (share?: Set<bigint>) => ({
    ...input({
      collections: [load(), load({ collectionId: OTHER })],
      replicas: [replica(1n, ["qn1"]), replica(2n, ["qn1"], OTHER)],
      targets: [
        [COLL, { current: target(1, [seg(1n), seg(2n)]), next: target(2, [seg(1n), seg(2n), seg(3n)]) }],
        [OTHER, { next: target(1, [], [`${OTHER}v0`], OTHER) }],
      ],
      nodes: [node("qn1", { segments: [seg(1n), seg(2n)], delegators: [dlg] })],
      indexes: [[COLL, { indexes: [indexInfo(7n)], builds: [build(1n, 7n)] }]],
    }),
    ...(share ? { share } : {}),
  });
  const kinds = (r: ReturnType<typeof runCheckers>) => r.tasks.map((t) => `${t.action.kind} ${t.action.collectionId}`).sort();

  it("looks at the segments, views and indexes of the share's collections only, and at every collection's channels", () => {
    const everything = [`LoadIndex ${COLL}`, `LoadSegment ${COLL}`, `SyncLeader ${COLL}`, `WatchChannel ${OTHER}`];
    expect(kinds(runCheckers(twoCollections()))).toEqual(everything);
    // COLL is not in this round's share: its loads, its sync and its index load wait; OTHER's channel is watched all the same
    const other = twoCollections(new Set([OTHER]));
    expect(kinds(runCheckers(other))).toEqual([`WatchChannel ${OTHER}`]);
    expect(checkSegments(other).tasks).toEqual([]);
    expect(checkLeaders(other).tasks).toEqual([]);
    expect(checkIndexes(other).tasks).toEqual([]);
    expect(checkChannels(other).tasks.map((t) => t.action.collectionId)).toEqual([OTHER]);
    // and in its turn
    expect(kinds(runCheckers(twoCollections(new Set([COLL]))))).toEqual(everything);
  });
});

describe("LeaderChecker's bound on whole-view walks", () => {
  // two replicas of one node each, one channel of three segments: each delegator's view is walked whole
  const twoDelegators = (leaderWalkBudget?: number, current = target(7, [seg(1n), seg(2n), seg(3n)])) => ({
    ...input({
      collections: [load({ replicaNumber: 2 })],
      replicas: [replica(1n, ["qn1"]), replica(2n, ["qn2"])],
      targets: [[COLL, { current }]],
      nodes: [
        node("qn1", { segments: [seg(1n), seg(2n), seg(3n)], delegators: [{ vchannel: "100v0", replicaId: 1n }] }),
        node("qn2", { segments: [seg(1n), seg(2n), seg(3n)], delegators: [{ vchannel: "100v0", replicaId: 2n }] }),
      ],
    }),
    ...(leaderWalkBudget !== undefined ? { leaderWalkBudget } : {}),
  });
  const syncs = (r: ReturnType<typeof checkLeaders>) => r.tasks.map((t) => `${t.action.kind} ${t.action.nodeId}`);

  it("walks whole views until its bound is spent, at least one a round, and says which collection it left unfinished", () => {
    const all = checkLeaders(twoDelegators());
    expect(syncs(all)).toEqual(["SyncLeader qn1", "SyncLeader qn2"]);
    expect(all.cut).toBeUndefined();
    // a bound of one segment: the first delegator's walk (three segments) spends it, the second waits
    const bounded = checkLeaders(twoDelegators(1));
    expect(syncs(bounded)).toEqual(["SyncLeader qn1"]);
    expect([...(bounded.cut ?? [])]).toEqual([COLL]);
    // a bound the two walks fit in: both, nothing cut
    const enough = checkLeaders(twoDelegators(6));
    expect(syncs(enough)).toEqual(["SyncLeader qn1", "SyncLeader qn2"]);
    expect(enough.cut).toBeUndefined();
    // and runCheckers carries what was cut
    expect([...(runCheckers(twoDelegators(1)).cut ?? [])]).toEqual([COLL]);
  });

  it("gives the delegators their walks in turn when rounds keep being cut short, rather than the same first ones", () => {
    // the same target over rounds whose snapshots remember nothing (made afresh each round)
    const cur = target(7, [seg(1n), seg(2n), seg(3n)]);
    const first = checkLeaders(twoDelegators(1, cur));
    expect(syncs(first)).toEqual(["SyncLeader qn1"]);
    expect([...(first.cut ?? [])]).toEqual([COLL]);
    // the next round passes over qn1's delegator, walked in the round cut short, and walks qn2's
    const second = checkLeaders(twoDelegators(1, cur));
    expect(syncs(second)).toEqual(["SyncLeader qn2"]);
    expect(second.cut).toBeUndefined();
    // every delegator had its walk: the round after starts over
    expect(syncs(checkLeaders(twoDelegators(1, cur)))).toEqual(["SyncLeader qn1"]);
  });
});
