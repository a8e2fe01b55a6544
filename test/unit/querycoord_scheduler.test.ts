import { describe, expect, it } from "vitest";
import { TaskScheduler } from "../../actors/querycoord/task/scheduler.ts";
import { channelKey, Priority, segmentKey, type TaskSpec } from "../../actors/querycoord/task/task.ts";
import { effectVisible } from "../../actors/querycoord/task/effects.ts";
import { DistSnapshot } from "../../actors/querycoord/dist/dist_snapshot.ts";
import { COLL, node, seg } from "./querycoord_fixtures.ts";

const params = { capPerNode: 4, distWaitMs: 1_000, retryBaseMs: 100, retryMaxMs: 1_000 };

function load(segmentId: bigint, nodeId = "qn1", replicaId = 1n): TaskSpec {
  return {
    key: segmentKey(replicaId, segmentId),
    priority: Priority.Normal,
    action: { kind: "LoadSegment", nodeId, collectionId: COLL, replicaId, segmentId, vchannel: "100v0", rows: 10, memoryBytes: 10 },
  };
}

function watch(vchannel: string, nodeId = "qn1", replicaId = 1n): TaskSpec {
  return {
    key: channelKey(replicaId, vchannel),
    priority: Priority.High,
    action: { kind: "WatchChannel", nodeId, collectionId: COLL, replicaId, vchannel },
  };
}

describe("TaskScheduler", () => {
  it("runs one task per key, channels before segments, at most the cap per node", () => {
    const s = new TaskScheduler(params);
    s.replacePending([load(1n), load(1n), load(2n), load(3n), load(4n), watch("100v0"), watch("100v1"), load(5n, "qn2")], 0);
    const started = s.dispatch(0);
    expect(started.map((t) => t.key)).toEqual(["r1/ch/100v0", "r1/ch/100v1", "r1/seg/1", "r1/seg/2", "r1/seg/5"]);
    // the same wishes again: nothing new starts while qn1 is at its cap and keys are in flight
    s.replacePending([load(1n), load(2n), load(3n), load(4n), watch("100v0"), watch("100v1"), load(5n, "qn2")], 1);
    expect(s.dispatch(1)).toEqual([]);
    expect(s.pendingTasks().map((t) => t.key)).toEqual(["r1/seg/3", "r1/seg/4"]);
  });

  it("finishes a task only when the reply came back and the distribution shows the change", () => {
    const s = new TaskScheduler(params);
    s.replacePending([load(1n)], 0);
    const [t] = s.dispatch(0);
    const before = new DistSnapshot([node("qn1")]);
    const after = new DistSnapshot([node("qn1", { segments: [seg(1n)] })]);
    // visible before the reply: still running
    expect(s.confirm((x) => effectVisible(x.action, after), 1).done).toEqual([]);
    s.onReply(t!.id, { ok: true }, 2);
    expect(s.confirm((x) => effectVisible(x.action, before), 3).done).toEqual([]);
    expect(s.isInflight(t!.key)).toBe(true);
    expect(s.confirm((x) => effectVisible(x.action, after), 4).done.map((x) => x.key)).toEqual([t!.key]);
    expect(s.isInflight(t!.key)).toBe(false);
  });

  it("looks for a task's change again only when its node's distribution changed, and still fails it after the wait", () => {
    const s = new TaskScheduler(params);
    s.replacePending([load(1n), load(2n, "qn2")], 0);
    const tasks = s.dispatch(0);
    for (const t of tasks) s.onReply(t.id, { ok: true }, 1);
    const revisions = new Map([["qn1", 1], ["qn2", 1]]);
    const asked: string[] = [];
    let shows = false;
    const visible = (t: { action: { nodeId: string } }) => {
      asked.push(t.action.nodeId);
      return shows;
    };
    s.confirm(visible, 2, undefined, (n) => revisions.get(n)!);
    expect(asked).toEqual(["qn1", "qn2"]);
    // nothing new from either node: not asked again, even though it would show now
    shows = true;
    expect(s.confirm(visible, 3, undefined, (n) => revisions.get(n)!).done).toEqual([]);
    expect(asked).toEqual(["qn1", "qn2"]);
    // qn1's distribution changed: its task is looked at and done; qn2's waits on
    revisions.set("qn1", 2);
    expect(s.confirm(visible, 4, undefined, (n) => revisions.get(n)!).done.map((t) => t.action.nodeId)).toEqual(["qn1"]);
    expect(asked).toEqual(["qn1", "qn2", "qn1"]);
    // past the wait with nothing new from qn2: it fails without being looked at again
    shows = false;
    expect(s.confirm(visible, 2_000, undefined, (n) => revisions.get(n)!).failed.map((t) => t.action.nodeId)).toEqual(["qn2"]);
    expect(s.runningPerNode().size).toBe(0);
    expect(s.loadingSegments().size).toBe(0);
    expect(s.pendingLoads().size).toBe(0);
  });

  it("looks at a node with nothing new only for a task that replied since, and fails the tasks whose wait ran out oldest first", () => {
    const s = new TaskScheduler(params);
    s.replacePending([load(1n), load(2n, "qn2")], 0);
    for (const t of s.dispatch(0)) s.onReply(t.id, { ok: true }, 10);
    const revision = () => 1;
    const asked: bigint[] = [];
    const visible = (t: { action: { kind: string } }) => {
      if (t.action.kind === "LoadSegment") asked.push((t.action as unknown as { segmentId: bigint }).segmentId);
      return false;
    };
    s.confirm(visible, 20, undefined, revision);
    expect(asked).toEqual([1n, 2n]);
    // a new task on qn1 replies: only it is looked at, not the one that waits under the same revision
    s.replacePending([load(3n)], 30);
    for (const t of s.dispatch(30)) s.onReply(t.id, { ok: true }, 500);
    s.confirm(visible, 600, undefined, revision);
    expect(asked).toEqual([1n, 2n, 3n]);
    // at 1,011 the two that replied at 10 have waited past 1,000; the one that replied at 500 has not
    const { failed } = s.confirm(visible, 1_011, undefined, revision);
    expect(failed.map((t) => (t.action as { segmentId: bigint }).segmentId).sort()).toEqual([1n, 2n]);
    expect(asked).toEqual([1n, 2n, 3n]);
    expect(s.confirm(visible, 1_600, undefined, revision).failed.map((t) => (t.action as { segmentId: bigint }).segmentId)).toEqual([3n]);
    expect(s.inflightTasks()).toEqual([]);
  });

  it("keeps what the tasks in flight add up to as they start and end", () => {
    const s = new TaskScheduler(params);
    s.replacePending([load(1n), load(2n), watch("100v0", "qn2"), load(3n, "qn2", 2n)], 0);
    const started = s.dispatch(0);
    expect(Object.fromEntries(s.runningPerNode())).toEqual({ qn1: 2, qn2: 2 });
    expect([...s.loadingSegments()].map(([r, ids]) => [r, [...ids]])).toEqual([
      [1n, [1n, 2n]],
      [2n, [3n]],
    ]);
    expect(s.pendingLoads().get("qn1")).toEqual({ rows: 20, memoryBytes: 20, segments: 2, channels: 0 });
    expect(s.pendingLoads().get("qn2")).toEqual({ rows: 10, memoryBytes: 10, segments: 1, channels: 1 });
    const one = started.find((t) => t.key === segmentKey(1n, 1n))!;
    s.onReply(one.id, { ok: false, reason: "refused" }, 1);
    expect(s.runningPerNode().get("qn1")).toBe(1);
    expect([...s.loadingSegments().get(1n)!]).toEqual([2n]);
    expect(s.pendingLoads().get("qn1")).toEqual({ rows: 10, memoryBytes: 10, segments: 1, channels: 0 });
    s.failNodes(new Map([["qn2", "node qn2 is down"]]), 2);
    expect(s.pendingLoads().has("qn2")).toBe(false);
    expect(s.loadingSegments().has(2n)).toBe(false);
    expect(s.runningPerNode().has("qn2")).toBe(false);
  });

  it("backs off a failed key, keeps its reason, and forgets it after a success", () => {
    const s = new TaskScheduler(params);
    s.replacePending([load(1n)], 0);
    let [t] = s.dispatch(0);
    s.onReply(t!.id, { ok: false, reason: "node qn1 refused: memory limit" }, 10);
    expect(s.failures().get(t!.key)).toMatchObject({ reason: "node qn1 refused: memory limit", attempts: 1, nodeId: "qn1", retryAt: 110 });
    s.replacePending([load(1n)], 50);
    expect(s.dispatch(50)).toEqual([]);
    s.replacePending([load(1n)], 110);
    [t] = s.dispatch(110);
    expect(t!.attempt).toBe(2);
    s.onReply(t!.id, { ok: false, reason: "again" }, 120);
    expect(s.failures().get(t!.key)).toMatchObject({ attempts: 2, retryAt: 320 });
    s.replacePending([load(1n)], 320);
    [t] = s.dispatch(320);
    s.onReply(t!.id, { ok: true }, 321);
    s.confirm(() => true, 322);
    expect(s.failures().size).toBe(0);
  });

  it("fails a task whose change does not show in time, and the tasks of a node that went down", () => {
    const s = new TaskScheduler(params);
    s.replacePending([load(1n), load(2n, "qn2")], 0);
    const [a, b] = s.dispatch(0);
    s.onReply(a!.id, { ok: true }, 0);
    expect(s.confirm(() => false, 500).failed).toEqual([]);
    expect(s.confirm(() => false, 1_001).failed.map((t) => t.key)).toEqual([a!.key]);
    expect(s.failures().get(a!.key)!.reason).toMatch(/did not show the change within 1000 ms/);
    s.failNodes(new Map([["qn2", "node qn2 is down"]]), 5);
    expect(s.failures().get(b!.key)!.reason).toBe("node qn2 is down");
    expect(s.inflightTasks()).toEqual([]);
    // a reply that comes after its task failed is ignored
    expect(s.onReply(b!.id, { ok: true }, 6)).toBeUndefined();
  });

  it("waits for a distribution the node published after its reply before it fails the task, up to a cap", () => {
    const s = new TaskScheduler(params);
    s.replacePending([load(1n), load(2n, "qn2")], 0);
    const [a, b] = s.dispatch(0);
    s.onReply(a!.id, { ok: true }, 100);
    s.onReply(b!.id, { ok: true }, 100);
    const distAt = new Map([
      ["qn1", 50],
      ["qn2", 50],
    ]);
    const seen = { distAt: (n: string) => distAt.get(n) ?? 0, afterMs: 200, maxMs: 5_000 };
    // past distWaitMs, but nothing of either node published after the reply was read yet (the feed is behind)
    expect(s.confirm(() => false, 2_000, seen).failed).toEqual([]);
    // qn1's distribution of 900 ms (well after its reply at 100) is read and does not show the load: it failed
    distAt.set("qn1", 900);
    const failed = s.confirm(() => false, 2_100, seen).failed;
    expect(failed.map((t) => t.key)).toEqual([a!.key]);
    expect(s.failures().get(a!.key)!.reason).toMatch(/distribution published 800 ms later does not show the change/);
    // qn2's never comes: it fails at the cap
    expect(s.confirm(() => false, 5_100, seen).failed).toEqual([]);
    expect(s.confirm(() => false, 5_101, seen).failed.map((t) => t.key)).toEqual([b!.key]);
    expect(s.failures().get(b!.key)!.reason).toMatch(/within 5000 ms/);
  });

  it("replaces the wishes that have not started and forgets failures nobody wants any more", () => {
    const s = new TaskScheduler({ ...params, capPerNode: 1 });
    s.replacePending([load(1n), load(2n)], 0);
    const [t] = s.dispatch(0);
    expect(s.pendingTasks().map((x) => x.key)).toEqual(["r1/seg/2"]);
    s.onReply(t!.id, { ok: false, reason: "x" }, 1);
    s.replacePending([load(3n)], 200);
    expect(s.pendingTasks().map((x) => x.key)).toEqual(["r1/seg/3"]);
    expect(s.failures().size).toBe(0);
  });

  it("confirms a delegator sync by its reported version and segments (the version alone when the report omits segments)", () => {
    const entry = { segmentId: 1n, partitionId: 1n, nodeId: "qn1", startPosition: 10n, endPosition: 19n, numRows: 1000 };
    const sync = {
      kind: "SyncLeader" as const,
      nodeId: "qn1",
      collectionId: COLL,
      replicaId: 1n,
      vchannel: "100v0",
      address: `vb.dlg.${COLL}.100v0.1`,
      targetVersion: 7,
      sealed: [entry],
    };
    const at = (targetVersion: number, sealedSegmentIds: bigint[]) =>
      new DistSnapshot([node("qn1", { delegators: [{ vchannel: "100v0", replicaId: 1n, targetVersion, sealedSegmentIds }] })]);
    expect(effectVisible(sync, at(6, [1n]))).toBe(false);
    expect(effectVisible(sync, at(7, [1n, 2n]))).toBe(false);
    expect(effectVisible(sync, at(7, [1n]))).toBe(true);
    expect(effectVisible(sync, at(7, []))).toBe(true);
    expect(effectVisible({ ...sync, sealed: [] }, at(7, [1n]))).toBe(false);
  });

  it("counts the loads in flight per node for node choice", () => {
    const s = new TaskScheduler(params);
    s.replacePending([load(1n), load(2n), watch("100v0", "qn2")], 0);
    s.dispatch(0);
    expect(s.pendingLoads().get("qn1")).toEqual({ rows: 20, memoryBytes: 20, segments: 2, channels: 0 });
    expect(s.pendingLoads().get("qn2")).toEqual({ rows: 0, memoryBytes: 0, segments: 0, channels: 1 });
  });
});
