/**
 * Checkers and observers that remember what they found between rounds (per snapshot, from its change
 * log) must find what a fresh look finds: a snapshot kept up to date node by node over many rounds of loads, releases,
 * moves and stopping nodes gives the same tasks and blockers as a snapshot built afresh each round.
 */
import { describe, expect, it } from "vitest";
import { checkIndexes, checkLeaders, checkSegments, type CheckInput, type SyncedView } from "../../actors/querycoord/checkers/index.ts";
import { DistSnapshot } from "../../actors/querycoord/dist/dist_snapshot.ts";
import type { SegmentMove } from "../../actors/querycoord/balance/score_balancer.ts";
import { replicaCoverage } from "../../actors/querycoord/observers/collection_observer.ts";
import type { QueryNodeDist } from "../../protocol/messages/querynode.ts";
import { build, COLL, indexInfo, input, load, node, replica, seg, target } from "./querycoord_fixtures.ts";

/** a small deterministic generator (the same rounds every run) */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** qn1 leads both channels for replica 1, qn3 for replica 2, reporting what they acknowledged */
function delegatorsOf(synced: ReadonlyMap<string, SyncedView>, n: string) {
  if (n !== "qn1" && n !== "qn3") return [];
  return ["100v0", "100v1"].map((vchannel) => {
    const address = `vb.dlg.${COLL}.${vchannel}.${n}`;
    const v = synced.get(address);
    return { vchannel, replicaId: n === "qn1" ? 1n : 2n, address, targetVersion: v?.targetVersion ?? 0, sealedSegmentIds: v?.sealed.map((e) => e.segmentId) ?? [] };
  });
}

/** Most syncs asked for are acknowledged (their views become the delegators', and the node tells it); `unacked`: not this one yet. */
function acknowledge(tasks: ReturnType<typeof checkLeaders>["tasks"], synced: Map<string, SyncedView>, told: (nodeId: string) => void, unacked: () => boolean): number {
  let n = 0;
  for (const t of tasks) {
    if (t.action.kind !== "SyncLeader" || unacked()) continue;
    synced.set(t.action.address, { targetVersion: t.action.targetVersion, sealed: t.action.sealed });
    told(t.action.nodeId);
    n++;
  }
  return n;
}

const summary = (r: ReturnType<typeof checkSegments>) => ({
  tasks: r.tasks.map((t) => `${t.key} ${JSON.stringify(t.action, (_k, v) => (typeof v === "bigint" ? `${v}` : v))}`).sort(),
  blockers: [...r.blockers].map(([c, bs]) => [`${c}`, bs.map((b) => `${b.kind} ${b.subject} ${b.reason}`).sort()]),
});

describe("incremental checkers", () => {
  it("find what a fresh look finds, round after round, as the distribution changes", () => {
    const rand = prng(7);
    const nodes = ["qn1", "qn2", "qn3", "qn4"];
    const segs = Array.from({ length: 60 }, (_, i) => seg(BigInt(i + 1), { vchannel: i % 2 ? "100v1" : "100v0" }));
    const cur = target(1, segs.slice(0, 40), ["100v0", "100v1"]);
    let next = target(2, segs.slice(10, 60), ["100v0", "100v1"]);
    let replicas = [replica(1n, ["qn1", "qn2"]), replica(2n, ["qn3", "qn4"])];
    // what each node holds, and the records it last reported (reused when unchanged, as the feed does)
    const held = new Map<string, Map<bigint, QueryNodeDist["segments"][number]>>(nodes.map((n) => [n, new Map()]));
    const stopping = new Set<string>();
    const kept = new DistSnapshot([]);
    // what each delegator acknowledged (its view), and what it reports of it
    const synced = new Map<string, SyncedView>();
    const delegators = (n: string) => delegatorsOf(synced, n);
    const distOf = (n: string): QueryNodeDist => {
      const d = node(n, { delegators: delegators(n), stopping: stopping.has(n) });
      return { ...d, segments: [...held.get(n)!.values()] };
    };
    // the current target loaded once per replica to begin with
    for (const s of segs.slice(0, 40)) {
      for (const members of [["qn1", "qn2"], ["qn3", "qn4"]]) {
        const n = members[Math.floor(rand() * 2)]!;
        held.get(n)!.set(s.segmentId, node(n, { segments: [s] }).segments[0]!);
      }
    }
    for (const n of nodes) kept.put(distOf(n));
    // what datacoord said of the indexes, the same answer every round
    const indexes = input({ indexes: [[COLL, { indexes: [indexInfo(1n)], builds: segs.slice(0, 30).map((x) => build(x.segmentId, 1n)) }]] }).indexes!;
    let compared = 0;
    let syncs = 0;
    let transfers = 0;
    for (let round = 0; round < 80; round++) {
      // a few changes: loads, releases, a node stopping or back, a new next target
      for (let k = 0; k < 1 + Math.floor(rand() * 6); k++) {
        const n = nodes[Math.floor(rand() * nodes.length)]!;
        const s = segs[Math.floor(rand() * segs.length)]!;
        const m = held.get(n)!;
        if (m.has(s.segmentId) && rand() < 0.3) m.delete(s.segmentId);
        // a copy with its index loaded, without it, or with one no longer live
        else m.set(s.segmentId, node(n, { segments: [{ segmentId: s.segmentId, vchannel: s.vchannel, indexIds: [[], [1n], [9n]][Math.floor(rand() * 3)]! }] }).segments[0]!);
        kept.put(distOf(n));
      }
      if (rand() < 0.05) {
        const n = nodes[Math.floor(rand() * nodes.length)]!;
        if (stopping.has(n)) stopping.delete(n);
        else stopping.add(n);
        kept.put(distOf(n));
      }
      if (rand() < 0.05) next = target(next.version + 1, segs.filter(() => rand() < 0.8), ["100v0", "100v1"]);
      if (rand() < 0.08) {
        // a node that is up moves to the other replica with the copies it holds (a transfer between groups)
        const n = ["qn2", "qn4"][Math.floor(rand() * 2)]!;
        replicas = replicas.map((r) => replica(r.replicaId, r.nodes.includes(n) ? r.nodes.filter((x) => x !== n) : [...r.nodes, n]));
        transfers++;
      }
      const moves = new Map<string, SegmentMove>();
      if (rand() < 0.5) {
        const s = segs[Math.floor(rand() * 40)]!;
        moves.set(`1/${s.segmentId}`, { collectionId: COLL, replicaId: 1n, segmentId: s.segmentId, vchannel: s.vchannel, rows: 1000, from: "qn1", to: "qn2" });
      }
      const base = {
        ...input({
          collections: [load({ replicaNumber: 2 })],
          replicas,
          targets: [[COLL, { current: cur, next }]],
        }),
        synced,
        indexes,
      };
      const withDist = (dist: DistSnapshot): CheckInput => ({ ...base, dist, moves });
      const fresh = new DistSnapshot(nodes.map(distOf));
      expect(summary(checkSegments(withDist(kept)))).toEqual(summary(checkSegments(withDist(fresh))));
      for (const t of [cur, next]) {
        for (const r of replicas) expect(replicaCoverage(t, r, kept, 3)).toEqual(replicaCoverage(t, r, fresh, 3));
      }
      expect(summary(checkIndexes(withDist(kept)))).toEqual(summary(checkIndexes(withDist(fresh))));
      const leaders = checkLeaders(withDist(kept));
      expect(summary(leaders)).toEqual(summary(checkLeaders(withDist(fresh))));
      compared++;
      // most syncs are acknowledged (and then reported), some not yet
      syncs += acknowledge(leaders.tasks, synced, (id) => kept.put(distOf(id)), () => rand() < 0.2);
    }
    expect(compared).toBe(80);
    expect(syncs).toBeGreaterThan(10);
    expect(transfers).toBeGreaterThan(2);
  });

  it("find what a fresh look finds while a load fills the replicas, with few loads a round and copies lost on the way", () => {
    const rand = prng(11);
    const nodes = ["qn1", "qn2", "qn3", "qn4"];
    const segs = Array.from({ length: 80 }, (_, i) => seg(BigInt(i + 1), { vchannel: i % 2 ? "100v1" : "100v0" }));
    const cur = target(1, segs, ["100v0", "100v1"]);
    const replicas = [replica(1n, ["qn1", "qn2"]), replica(2n, ["qn3", "qn4"])];
    const held = new Map<string, Map<bigint, QueryNodeDist["segments"][number]>>(nodes.map((n) => [n, new Map()]));
    const synced = new Map<string, SyncedView>();
    const stopping = new Set<string>();
    const delegators = (n: string) => delegatorsOf(synced, n);
    const distOf = (n: string): QueryNodeDist => ({ ...node(n, { delegators: delegators(n), stopping: stopping.has(n) }), segments: [...held.get(n)!.values()] });
    const kept = new DistSnapshot(nodes.map(distOf));
    let syncs = 0;
    for (let round = 0; round < 120; round++) {
      // now and then a copy goes (its node lost it), a node stops or comes back
      if (rand() < 0.3) {
        const n = nodes[Math.floor(rand() * nodes.length)]!;
        const m = held.get(n)!;
        const id = [...m.keys()][Math.floor(rand() * m.size)];
        if (id !== undefined) m.delete(id);
        kept.put(distOf(n));
      }
      if (rand() < 0.03) {
        const n = nodes[Math.floor(rand() * nodes.length)]!;
        if (stopping.has(n)) stopping.delete(n);
        else stopping.add(n);
        kept.put(distOf(n));
      }
      const base = { ...input({ collections: [load({ replicaNumber: 2 })], replicas, targets: [[COLL, { current: cur }]] }), synced, loadsPerRound: 1 + Math.floor(rand() * 4) };
      const fresh = new DistSnapshot(nodes.map(distOf));
      const wanted = checkSegments({ ...base, dist: kept });
      expect(summary(wanted)).toEqual(summary(checkSegments({ ...base, dist: fresh })));
      // most of the loads and releases asked for are done by the next round
      for (const t of wanted.tasks) {
        const a = t.action;
        if (rand() < 0.2 || (a.kind !== "LoadSegment" && a.kind !== "ReleaseSegment")) continue;
        const m = held.get(a.nodeId)!;
        if (a.kind === "ReleaseSegment") m.delete(a.segmentId);
        else m.set(a.segmentId, node(a.nodeId, { segments: [{ segmentId: a.segmentId, vchannel: a.vchannel }] }).segments[0]!);
        kept.put(distOf(a.nodeId));
      }
      const leaders = checkLeaders({ ...base, dist: kept });
      expect(summary(leaders)).toEqual(summary(checkLeaders({ ...base, dist: new DistSnapshot(nodes.map(distOf)) })));
      syncs += acknowledge(leaders.tasks, synced, (id) => kept.put(distOf(id)), () => rand() < 0.3);
    }
    // the delegators waited for their channels' copies, then were synced
    expect(syncs).toBeGreaterThan(0);
  });

  it("find what a fresh look finds as nodes die and new ones join their replicas", () => {
    const rand = prng(23);
    const nodes = ["qn1", "qn2", "qn3", "qn4", "qn5", "qn6"];
    // qn1 and qn3 lead the channels (they stay up); the others die and come back empty
    const mortal = ["qn2", "qn4", "qn5", "qn6"];
    const home = (n: string) => (["qn1", "qn2", "qn5"].includes(n) ? 0 : 1);
    const segs = Array.from({ length: 80 }, (_, i) => seg(BigInt(i + 1), { vchannel: i % 2 ? "100v1" : "100v0" }));
    const cur = target(1, segs, ["100v0", "100v1"]);
    const held = new Map<string, Map<bigint, QueryNodeDist["segments"][number]>>(nodes.map((n) => [n, new Map()]));
    const up = new Set(nodes);
    let replicas = [replica(1n, ["qn1", "qn2", "qn5"]), replica(2n, ["qn3", "qn4", "qn6"])];
    const synced = new Map<string, SyncedView>();
    const distOf = (n: string): QueryNodeDist => ({ ...node(n, { delegators: delegatorsOf(synced, n) }), segments: [...held.get(n)!.values()] });
    // loaded to begin with, and every delegator synced
    for (const s of segs) {
      for (const members of [["qn1", "qn2", "qn5"], ["qn3", "qn4", "qn6"]]) {
        const n = members[Math.floor(rand() * 3)]!;
        held.get(n)!.set(s.segmentId, node(n, { segments: [s] }).segments[0]!);
      }
    }
    const kept = new DistSnapshot(nodes.map(distOf));
    let deaths = 0;
    let syncs = 0;
    for (let round = 0; round < 150; round++) {
      if (rand() < 0.15) {
        const n = mortal[Math.floor(rand() * mortal.length)]!;
        if (up.has(n)) {
          // it dies: its copies go with it, and it leaves its replica
          up.delete(n);
          held.get(n)!.clear();
          kept.remove(n);
          deaths++;
        } else {
          // it comes back empty and joins its replica again
          up.add(n);
          kept.put(distOf(n));
        }
        replicas = replicas.map((r, i) => replica(r.replicaId, nodes.filter((x) => up.has(x) && home(x) === i)));
      }
      const base = { ...input({ collections: [load({ replicaNumber: 2 })], replicas, targets: [[COLL, { current: cur }]] }), synced, loadsPerRound: 1 + Math.floor(rand() * 6) };
      const fresh = () => new DistSnapshot(nodes.filter((n) => up.has(n)).map(distOf));
      const wanted = checkSegments({ ...base, dist: kept });
      expect(summary(wanted)).toEqual(summary(checkSegments({ ...base, dist: fresh() })));
      for (const t of wanted.tasks) {
        const a = t.action;
        if (rand() < 0.2 || (a.kind !== "LoadSegment" && a.kind !== "ReleaseSegment") || !up.has(a.nodeId)) continue;
        const m = held.get(a.nodeId)!;
        if (a.kind === "ReleaseSegment") m.delete(a.segmentId);
        else m.set(a.segmentId, node(a.nodeId, { segments: [{ segmentId: a.segmentId, vchannel: a.vchannel }] }).segments[0]!);
        kept.put(distOf(a.nodeId));
      }
      const leaders = checkLeaders({ ...base, dist: kept });
      expect(summary(leaders)).toEqual(summary(checkLeaders({ ...base, dist: fresh() })));
      syncs += acknowledge(leaders.tasks, synced, (id) => kept.put(distOf(id)), () => rand() < 0.3);
    }
    expect(deaths).toBeGreaterThan(3);
    expect(syncs).toBeGreaterThan(deaths);
  });

  it("logs the segments whose copies changed, and says when its log no longer reaches back", () => {
    const snap = new DistSnapshot([node("qn1", { segments: [{ segmentId: 1n }, { segmentId: 2n }] })]);
    const c0 = snap.changeCursor(COLL);
    const d = snap.nodes.get("qn1")!;
    // the same records, one gone and one new: only those two are logged
    snap.put({ ...d, segments: [d.segments[0]!, ...node("qn1", { segments: [{ segmentId: 3n }] }).segments] });
    expect([...snap.changesSince(COLL, c0)!].sort()).toEqual([2n, 3n]);
    const c1 = snap.changeCursor(COLL);
    snap.remove("qn1");
    expect([...snap.changesSince(COLL, c1)!].sort()).toEqual([1n, 3n]);
    expect(snap.changesSince(COLL, { epoch: -1, at: 0 })).toBeUndefined();
  });
});

describe("the SegmentChecker's budget of new loads", () => {
  it("does not ask again for a segment whose load is in flight, and counts it against the round's budget", () => {
    const segs = [1n, 2n, 3n, 4n, 5n].map((id) => seg(id));
    const base = input({
      targets: [[COLL, { current: target(1, segs) }]],
      nodes: [node("qn1", { delegators: [{ vchannel: "100v0", replicaId: 1n }] })],
    });
    const loads = (i: CheckInput) => checkSegments(i).tasks.map((t) => (t.action.kind === "LoadSegment" ? t.action.segmentId : undefined));
    // 1 node × 3 loads a round: segments 1-3
    expect(loads({ ...base, loadsPerNode: 3 })).toEqual([1n, 2n, 3n]);
    // 1 and 2 in flight: one slot left, for segment 3
    expect(loads({ ...base, loadsPerNode: 3, loading: new Map([[1n, new Set([1n, 2n])]]) })).toEqual([3n]);
  });
});

describe("the SegmentChecker across a promotion", () => {
  it("finds what a fresh look finds when the next target it remembered becomes the current one", () => {
    const segs = [1n, 2n, 3n, 4n, 5n, 6n].map((id) => seg(id));
    const t = target(1, segs);
    const dlg = { vchannel: "100v0", replicaId: 1n };
    const qn1 = (held: bigint[]) => node("qn1", { segments: segs.filter((s) => held.includes(s.segmentId)), delegators: [dlg] });
    const kept = new DistSnapshot([qn1([1n, 2n, 3n, 4n, 5n, 6n]), node("qn2", { segments: [seg(2n), seg(3n)] })]);
    const replicas = [replica(1n, ["qn1", "qn2"])];
    const look = (dist: DistSnapshot, pair: { current?: typeof t; next?: typeof t }) =>
      summary(checkSegments({ ...input({ replicas, targets: [[COLL, pair]] }), dist }));
    // loaded as the next target: the extra copies on qn2 go (no view points anywhere yet: they are kept)
    expect(look(kept, { next: t })).toEqual(look(new DistSnapshot([qn1([1n, 2n, 3n, 4n, 5n, 6n]), node("qn2", { segments: [seg(2n), seg(3n)] })]), { next: t }));
    // the node loses two copies, then the target is promoted: the kept look follows the change
    kept.put(qn1([1n, 2n, 3n, 6n]));
    const fresh = new DistSnapshot([qn1([1n, 2n, 3n, 6n]), node("qn2", { segments: [seg(2n), seg(3n)] })]);
    const promoted = look(kept, { current: t });
    expect(promoted).toEqual(look(fresh, { current: t }));
    expect(promoted.tasks.filter((k) => k.includes("LoadSegment")).length).toBe(2);
  });
});
