/**
 * Following the querynodes' distributions on a worker thread: what querycoord's thread is handed is
 * each node's list as the node published it, with how it changed, merged while it was busy.
 */
import { describe, expect, it } from "vitest";
import { ensureDistStream, type SegmentsChange } from "../../actors/querycoord/dist/dist_feed.ts";
import { followQueryNodeDistsOffThread } from "../../actors/querycoord/dist/dist_feed_thread.ts";
import { DistEncoder } from "../../actors/querynode/dist_publisher.ts";
import { asNodeId } from "../../protocol/ids.ts";
import type { DistSegment, QueryNodeDist } from "../../protocol/messages/querynode.ts";
import { Subjects } from "../../protocol/subjects.ts";
import { Feed } from "../../runtime/feed.ts";
import { createLogger } from "../../runtime/logger.ts";
import { connectTest, uniquePrefix, waitFor } from "../harness/index.ts";

const seg = (id: number, rows = 1_000): DistSegment => ({
  segmentId: BigInt(id),
  collectionId: 7n,
  partitionId: 8n,
  vchannel: `7v${id % 2}`,
  rows,
  memoryBytes: 4_096,
  indexIds: [],
});
const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

function dist(nodeId: string, segments: DistSegment[], sealed: bigint[] = []): QueryNodeDist {
  return {
    nodeId,
    at: Date.now(),
    memoryBytes: 0,
    memoryLimitBytes: 1 << 30,
    rows: 0,
    segments,
    delegators: sealed.length === 0 ? [] : [{ collectionId: 7n, vchannel: "7v0", replicaId: 1n, address: `a.${nodeId}`, serviceable: true, targetVersion: 3, tSafe: 0n, sealedSegmentIds: sealed }],
    loading: [],
  };
}

const ids = (list: readonly DistSegment[]) => list.map((s) => Number(s.segmentId)).sort((a, b) => a - b);
const rowsOf = (list: readonly DistSegment[]) => Object.fromEntries(list.map((s) => [String(s.segmentId), s.rows]));

describe("the querynodes' distributions followed on a worker thread", () => {
  it("hands on each node's list as published, with how it changed, a large node's bases and deltas put together", async () => {
    const s = new Subjects(uniquePrefix());
    await using nc = await connectTest();
    const feed = new Feed(nc);
    const env = { nc, subjects: s, config: { heartbeatIntervalMs: 200 } };
    await ensureDistStream(env);
    const encoders = new Map<string, DistEncoder>();
    const publish = async (d: QueryNodeDist) => {
      let e = encoders.get(d.nodeId);
      if (!e) encoders.set(d.nodeId, (e = new DistEncoder(s.distSubject("querynode", asNodeId(d.nodeId)), (i) => s.distBaseSubject("querynode", asNodeId(d.nodeId), i))));
      for (const m of e.encode(d)) await feed.publish(m.subject, m.payload);
    };
    // before the follower starts: a large node (a base in chunks) and a small one (whole)
    let big = range(1, 3_000).map((i) => seg(i));
    await publish(dist("big", big));
    await publish(dist("small", range(90_000, 5).map((i) => seg(i)), [90_000n, 90_001n]));

    const held = new Map<string, { list: readonly DistSegment[]; sealed: bigint[] }>();
    const changes: { nodeId: string; change: SegmentsChange; list: readonly DistSegment[] }[] = [];
    let heard = 0;
    await using follower = await followQueryNodeDistsOffThread(env, createLogger({ module: "test" }), (d, _storedAt, _live, change, n) => {
      heard += n;
      if (change) changes.push({ nodeId: d.nodeId, change, list: d.segments });
      held.set(d.nodeId, { list: d.segments, sealed: [...(d.delegators[0]?.sealedSegmentIds ?? [])] });
    });
    await follower.ready;
    await waitFor(() => held.get("big")?.list.length === 3_000 && held.has("small"), { what: "both nodes' first lists" });
    expect(ids(held.get("big")!.list)).toEqual(range(1, 3_000));
    expect(held.get("small")!.sealed).toEqual([90_000n, 90_001n]);

    // the large node loads and releases in bursts (new bases on the way), one record changes in place
    for (let beat = 0; beat < 30; beat++) {
      big = [...big.filter((x) => Number(x.segmentId) % 97 !== beat), ...range(10_000 + beat * 40, 40).map((i) => seg(i))];
      if (beat === 10) big = big.map((x) => (x.segmentId === 5n ? seg(5, 77) : x));
      await publish(dist("big", big));
    }
    await publish(dist("small", range(90_000, 6).map((i) => seg(i)), [90_000n, 90_001n, 90_005n]));
    const want = ids(big);
    await waitFor(() => JSON.stringify(ids(held.get("big")!.list)) === JSON.stringify(want), { what: "the large node's newest list", timeoutMs: 20_000 });
    expect(rowsOf(held.get("big")!.list)).toEqual(rowsOf(big));
    await waitFor(() => held.get("small")!.list.length === 6, { what: "the small node's newest list" });
    expect(held.get("small")!.sealed).toEqual([90_000n, 90_001n, 90_005n]);
    // each change leads from the list before to the new one
    for (const { change, list } of changes) {
      const gone = new Set(change.removed);
      const rebuilt = [...change.from.filter((x) => !gone.has(x)), ...change.added];
      expect(ids(rebuilt)).toEqual(ids(list));
    }
    expect(changes.some((c) => c.nodeId === "big" && c.change.removed.length > 0 && c.change.added.length > 0)).toBe(true);
    expect(heard).toBeGreaterThanOrEqual(changes.length + 2);
  });

  it("stops when asked: its worker ends and `done` resolves", async () => {
    const s = new Subjects(uniquePrefix());
    await using nc = await connectTest();
    const env = { nc, subjects: s, config: { heartbeatIntervalMs: 200 } };
    const follower = await followQueryNodeDistsOffThread(env, createLogger({ module: "test" }), () => undefined);
    await follower.ready;
    await follower.stop();
    await expect(follower.done).resolves.toBeUndefined();
  });
});
