import { describe, expect, it } from "vitest";
import { checkIndexes, checkSegments, collectionIndexes, formatBlocker, runCheckers, sameCollectionIndexes } from "../../actors/querycoord/checkers/index.ts";
import { DistSnapshot } from "../../actors/querycoord/dist/dist_snapshot.ts";
import { TaskScheduler } from "../../actors/querycoord/task/scheduler.ts";
import { effectVisible } from "../../actors/querycoord/task/effects.ts";
import { indexKey, Priority, segmentKey, type TaskAction } from "../../actors/querycoord/task/task.ts";
import { build, COLL, failure, indexInfo, input, load, MiB, node, replica, seg, target } from "./querycoord_fixtures.ts";

const actions = (r: { tasks: { action: TaskAction }[] }) => r.tasks.map((t) => t.action);

describe("IndexChecker", () => {
  it("loads the Finished builds of live indexes a loaded copy lacks, below segment loads", () => {
    const r = checkIndexes(
      input({
        replicas: [replica(1n, ["qn1", "qn2"])],
        nodes: [node("qn1", { segments: [{ segmentId: 1n }, { segmentId: 2n, indexIds: [7n] }] }), node("qn2", { segments: [{ segmentId: 3n }] })],
        // segment 3 has no Finished build yet
        indexes: [[COLL, { indexes: [indexInfo(7n)], builds: [build(1n, 7n), build(2n, 7n)] }]],
      }),
    );
    expect(actions(r)).toEqual([
      { kind: "LoadIndex", nodeId: "qn1", collectionId: COLL, replicaId: 1n, segmentId: 1n, indexId: 7n, info: build(1n, 7n) },
    ]);
    expect(r.tasks[0]!.priority).toBe(Priority.Low);
    expect(r.tasks[0]!.key).toBe(indexKey("qn1", 1n, 7n));
    expect(r.blockers.size).toBe(0);
  });

  it("gives every replica's copy the index", () => {
    const r = checkIndexes(
      input({
        collections: [load({ replicaNumber: 2 })],
        replicas: [replica(1n, ["qn1"]), replica(2n, ["qn2"])],
        nodes: [node("qn1", { segments: [{ segmentId: 1n }] }), node("qn2", { segments: [{ segmentId: 1n }] })],
        indexes: [[COLL, { indexes: [indexInfo(7n)], builds: [build(1n, 7n)] }]],
      }),
    );
    expect(actions(r).map((a) => [a.kind, a.nodeId, "replicaId" in a ? a.replicaId : undefined])).toEqual([
      ["LoadIndex", "qn1", 1n],
      ["LoadIndex", "qn2", 2n],
    ]);
  });

  it("releases loaded indexes that are no longer live (dropped), and keeps live ones", () => {
    const r = checkIndexes(
      input({
        nodes: [node("qn1", { segments: [{ segmentId: 1n, indexIds: [6n, 7n] }] })],
        indexes: [[COLL, { indexes: [indexInfo(7n)], builds: [build(1n, 7n)] }]],
      }),
    );
    expect(actions(r)).toEqual([{ kind: "ReleaseIndex", nodeId: "qn1", collectionId: COLL, replicaId: 1n, segmentId: 1n, indexId: 6n }]);
    // every index dropped
    const none = checkIndexes(input({ nodes: [node("qn1", { segments: [{ segmentId: 1n, indexIds: [7n] }] })], indexes: [[COLL, { indexes: [], builds: [] }]] }));
    expect(actions(none).map((a) => a.kind)).toEqual(["ReleaseIndex"]);
  });

  it("leaves a collection alone until datacoord answered for its indexes, and copies outside its replicas", () => {
    expect(checkIndexes(input({ nodes: [node("qn1", { segments: [{ segmentId: 1n, indexIds: [6n] }] })] })).tasks).toEqual([]);
    const r = checkIndexes(
      input({
        replicas: [replica(1n, ["qn1"])],
        nodes: [node("qn1"), node("qn9", { segments: [{ segmentId: 1n, indexIds: [6n] }] })],
        indexes: [[COLL, { indexes: [indexInfo(7n)], builds: [build(1n, 7n)] }]],
      }),
    );
    expect(r.tasks).toEqual([]);
  });

  it("on the same distribution, sees builds that came or went between two answers, and an answer that says the same changes nothing", () => {
    const first = input({
      nodes: [node("qn1", { segments: [{ segmentId: 1n, indexIds: [7n] }, { segmentId: 2n }, { segmentId: 3n }] })],
      indexes: [[COLL, { indexes: [indexInfo(7n)], builds: [build(1n, 7n)] }]],
    });
    expect(checkIndexes(first).tasks).toEqual([]);
    // a later answer: segment 2's build finished, segment 1's was rebuilt (another build id)
    const rebuilt = { ...build(1n, 7n), buildId: 99n };
    const later = { ...first, indexes: new Map([[COLL, collectionIndexes({ indexes: [indexInfo(7n)], builds: [rebuilt, build(2n, 7n)] })]]) };
    expect(actions(checkIndexes(later)).map((a) => [a.kind, "segmentId" in a ? a.segmentId : undefined])).toEqual([["LoadIndex", 2n]]);
    // the same answer again, as a new object
    const same = collectionIndexes({ indexes: [indexInfo(7n)], builds: [rebuilt, build(2n, 7n)] });
    expect(sameCollectionIndexes(later.indexes.get(COLL)!, same)).toBe(true);
    expect(sameCollectionIndexes(first.indexes!.get(COLL)!, same)).toBe(false);
    // segment 2's build is gone from the answer: nothing left to load
    const gone = { ...first, indexes: new Map([[COLL, collectionIndexes({ indexes: [indexInfo(7n)], builds: [rebuilt] })]]) };
    expect(checkIndexes(gone).tasks).toEqual([]);
  });

  it("ignores builds of indexes datacoord does not list as live", () => {
    const r = checkIndexes(
      input({ nodes: [node("qn1", { segments: [{ segmentId: 1n }] })], indexes: [[COLL, { indexes: [indexInfo(7n)], builds: [build(1n, 8n)] }]] }),
    );
    expect(r.tasks).toEqual([]);
  });

  it("reports an index that does not load as a blocker, and does not ask again while the node is loading it", () => {
    const refused = "querynode qn1 cannot load index 7 (HNSW, 2.0 MiB) of segment 1: it needs 2.0 MiB";
    const r = checkIndexes(
      input({
        nodes: [
          node("qn1", {
            segments: [{ segmentId: 1n }, { segmentId: 2n }, { segmentId: 3n }],
            loading: [
              { segmentId: 1n, indexId: 7n, state: "failed", reason: refused },
              { segmentId: 3n, indexId: 7n, state: "loading" },
            ],
          }),
        ],
        failures: [failure(indexKey("qn1", 2n, 7n), "qn1", "node qn1 refused: artifact missing")],
        indexes: [[COLL, { indexes: [indexInfo(7n, "vec_idx")], builds: [build(1n, 7n), build(2n, 7n), build(3n, 7n)] }]],
      }),
    );
    expect(actions(r).map((a) => a.kind === "LoadIndex" && a.segmentId)).toEqual([1n, 2n]);
    expect(r.blockers.get(COLL)!.map(formatBlocker)).toEqual([
      `index 1: index "vec_idx" (7, HNSW) does not load on node qn1: ${refused}; searches of the segment stay exact`,
      `index 2: index "vec_idx" (7, HNSW) does not load on node qn1: node qn1 refused: artifact missing; searches of the segment stay exact`,
    ]);
  });

  it("a failed index load does not count as a failed segment load", () => {
    const snap = new DistSnapshot([node("qn1", { loading: [{ segmentId: 1n, indexId: 7n, state: "failed", reason: "no" }] })]);
    expect(snap.loadFailure("qn1", 1n)).toBeUndefined();
    expect(snap.indexLoadFailure("qn1", 1n, 7n)).toBe("no");
  });
});

describe("SegmentChecker with indexes", () => {
  it("loads a segment with the Finished builds of its live indexes and counts their memory", () => {
    const r = checkSegments(
      input({
        targets: [[COLL, { next: target(1, [seg(1n), seg(2n)]) }]],
        nodes: [node("qn1", { delegators: [{ vchannel: "100v0", replicaId: 1n }] })],
        indexes: [[COLL, { indexes: [indexInfo(7n)], builds: [build(1n, 7n, 3 * MiB)] }]],
      }),
    );
    expect(actions(r)).toEqual([
      {
        kind: "LoadSegment",
        nodeId: "qn1",
        collectionId: COLL,
        replicaId: 1n,
        segmentId: 1n,
        vchannel: "100v0",
        rows: 1000,
        memoryBytes: 4 * MiB,
        indexes: [build(1n, 7n, 3 * MiB)],
      },
      { kind: "LoadSegment", nodeId: "qn1", collectionId: COLL, replicaId: 1n, segmentId: 2n, vchannel: "100v0", rows: 1000, memoryBytes: MiB },
    ]);
  });

  it("runs with the other checkers: a segment load first, its index with it, no separate LoadIndex", () => {
    const r = runCheckers(
      input({
        targets: [[COLL, { current: target(1, [seg(1n)]) }]],
        nodes: [node("qn1", { delegators: [{ vchannel: "100v0", replicaId: 1n }] })],
        indexes: [[COLL, { indexes: [indexInfo(7n)], builds: [build(1n, 7n)] }]],
      }),
    );
    const kinds = actions(r).map((a) => a.kind);
    expect(kinds).toContain("LoadSegment");
    expect(kinds).not.toContain("LoadIndex");
  });
});

describe("index tasks", () => {
  it("finish when the dist shows the change, or when the copy is gone", () => {
    const load: TaskAction = { kind: "LoadIndex", nodeId: "qn1", collectionId: COLL, replicaId: 1n, segmentId: 1n, indexId: 7n, info: build(1n, 7n) };
    const release: TaskAction = { kind: "ReleaseIndex", nodeId: "qn1", collectionId: COLL, replicaId: 1n, segmentId: 1n, indexId: 7n };
    const without = new DistSnapshot([node("qn1", { segments: [{ segmentId: 1n }] })]);
    const withIt = new DistSnapshot([node("qn1", { segments: [{ segmentId: 1n, indexIds: [7n] }] })]);
    const gone = new DistSnapshot([node("qn1")]);
    expect(effectVisible(load, without)).toBe(false);
    expect(effectVisible(load, withIt)).toBe(true);
    expect(effectVisible(load, gone)).toBe(true);
    expect(effectVisible(release, withIt)).toBe(false);
    expect(effectVisible(release, without)).toBe(true);
    expect(effectVisible(release, new DistSnapshot([]))).toBe(true);
  });

  it("run after segment loads and count their memory on the node", () => {
    const s = new TaskScheduler({ capPerNode: 1, distWaitMs: 1000, retryBaseMs: 10, retryMaxMs: 100 });
    s.replacePending(
      [
        { key: indexKey("qn1", 1n, 7n), priority: Priority.Low, action: { kind: "LoadIndex", nodeId: "qn1", collectionId: COLL, replicaId: 1n, segmentId: 1n, indexId: 7n, info: build(1n, 7n) } },
        {
          key: segmentKey(1n, 2n),
          priority: Priority.Normal,
          action: { kind: "LoadSegment", nodeId: "qn1", collectionId: COLL, replicaId: 1n, segmentId: 2n, vchannel: "100v0", rows: 10, memoryBytes: MiB },
        },
      ],
      0,
    );
    expect(s.dispatch(0).map((t) => t.action.kind)).toEqual(["LoadSegment"]);
    s.replacePending(
      [{ key: indexKey("qn2", 1n, 7n), priority: Priority.Low, action: { kind: "LoadIndex", nodeId: "qn2", collectionId: COLL, replicaId: 1n, segmentId: 1n, indexId: 7n, info: build(1n, 7n) } }],
      0,
    );
    expect(s.dispatch(0).map((t) => t.action.kind)).toEqual(["LoadIndex"]);
    expect(s.pendingLoads().get("qn2")).toEqual({ rows: 0, memoryBytes: 2 * MiB, segments: 0, channels: 0 });
  });
});
