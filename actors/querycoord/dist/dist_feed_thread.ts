/**
 * Following the querynodes' distributions on a worker thread (dist_feed_worker.ts), so that reading the
 * feed — decoding heads and base chunks, putting a large node's segments together, reading starved
 * heads directly — costs querycoord's own thread nothing, and a querycoord busy with a long round
 * still reads its feed at the feed's pace (a follower that reads behind never comes to the heads of
 * its liveliest nodes: each is replaced before it gets there).
 *
 * The worker hands on batches: per node, the newest distribution with how its segments changed since
 * the batch before (records that came, ids that went); a batch not taken yet gathers what comes
 * meanwhile. This side keeps each node's list and hands `onDist` the same things
 * `followQueryNodeDists` does: the new list, with a `SegmentsChange` from the list before.
 */
import { Worker } from "node:worker_threads";
import type { DistSegment, QueryNodeDist, SegmentIds } from "../../../protocol/messages/querynode.ts";
import type { Logger } from "../../../runtime/logger.ts";
import type { FeedFollower } from "../../../runtime/feed.ts";
import { ensureDistStream, SharedValues, type DistFeedEnv, type SegmentsChange } from "./dist_feed.ts";
import { CopyShapes } from "./dist_snapshot.ts";

const BOOT = new URL("../../../runtime/ts_worker.mjs", import.meta.url);
const MODULE = new URL("./dist_feed_worker.ts", import.meta.url).href;

/** One node in a batch: its newest distribution (segments left out) and how its segments changed. */
export interface DistBatchItem {
  /** `segments` empty; a delegator's `sealedSegmentIds` null when unchanged since the batch before */
  dist: QueryNodeDist;
  storedAt: number;
  lagSample: boolean;
  /** how many of the node's distributions read from the feed were merged into this one */
  heard: number;
  /** the node's first: `added` is its whole list */
  whole: boolean;
  added: DistSegment[];
  /** ids of segments that went, or whose record was replaced by one in `added` */
  removed: bigint[];
}

export type DistWorkerMsg = { type: "dists"; items: DistBatchItem[] } | { type: "ready" } | { type: "failed"; error: string };
export type DistThreadMsg = { type: "taken" };

/**
 * Follows the feed as `followQueryNodeDists` does, on a worker thread with a connection of its own to
 * the server `env.nc` is connected to.
 */
export async function followQueryNodeDistsOffThread(
  env: DistFeedEnv,
  log: Logger,
  /** `heard`: how many distributions of the node read from the feed this one stands for */
  onDist: (dist: QueryNodeDist, storedAt: number, lagSample: boolean, change: SegmentsChange | undefined, heard: number) => void,
): Promise<FeedFollower & { threadActiveMs(): number }> {
  await ensureDistStream(env);
  const worker = new Worker(BOOT, {
    workerData: { module: MODULE, servers: [env.nc.getServer()], prefix: env.subjects.prefix, heartbeatIntervalMs: env.config.heartbeatIntervalMs },
    name: "vb-dist-feed",
  });
  worker.unref();
  /** each node's list as handed on, and its delegators' lists */
  const lists = new Map<string, DistSegment[]>();
  const sealed = new Map<string, Map<string, SegmentIds>>();
  /** (the records come from another thread: each repeats its ids and names, held once here) */
  const shared = new SharedValues();
  const shapes = new CopyShapes();
  let stopped = false;

  const apply = (item: DistBatchItem): void => {
    const d = item.dist;
    const before = lists.get(d.nodeId);
    for (let i = 0; i < item.added.length; i++) item.added[i] = shapes.copy(shared.record(item.added[i]!), d.nodeId);
    let segments: DistSegment[];
    let change: SegmentsChange | undefined;
    if (item.whole || !before) {
      segments = item.added;
    } else if (item.added.length === 0 && item.removed.length === 0) {
      segments = before;
    } else {
      const gone = new Set(item.removed);
      const removed: DistSegment[] = [];
      segments = [];
      for (const s of before) {
        if (gone.has(s.segmentId)) removed.push(s);
        else segments.push(s);
      }
      for (const s of item.added) segments.push(s);
      change = { from: before, added: item.added, removed };
    }
    lists.set(d.nodeId, segments);
    const held = sealed.get(d.nodeId);
    const now = new Map<string, SegmentIds>();
    for (const g of d.delegators) {
      const key = `${g.vchannel}/${g.replicaId}`;
      if ((g.sealedSegmentIds as unknown) === null) g.sealedSegmentIds = held?.get(key) ?? [];
      now.set(key, g.sealedSegmentIds);
    }
    sealed.set(d.nodeId, now);
    d.loading ??= [];
    onDist({ ...d, segments }, item.storedAt, item.lagSample, change, item.heard);
  };

  let resolveReady!: () => void;
  let rejectReady!: (err: Error) => void;
  const ready = new Promise<void>((res, rej) => ((resolveReady = res), (rejectReady = rej)));
  let resolveDone!: () => void;
  let rejectDone!: (err: Error) => void;
  const done = new Promise<void>((res, rej) => ((resolveDone = res), (rejectDone = rej)));
  ready.catch(() => undefined);
  done.catch(() => undefined);
  const fail = (why: string) => {
    if (stopped) return;
    stopped = true;
    const err = new Error(`following the distribution feed on its thread: ${why}`);
    rejectReady(err);
    rejectDone(err);
    void worker.terminate();
  };
  worker.on("message", (m: DistWorkerMsg) => {
    if (stopped) return;
    if (m.type === "dists") {
      for (const item of m.items) {
        try {
          apply(item);
        } catch (err) {
          log.warn({ node: item.dist.nodeId, err: (err as Error).message }, "skipped a querynode distribution from the feed's thread");
        }
      }
      worker.postMessage({ type: "taken" } satisfies DistThreadMsg);
    } else if (m.type === "ready") {
      resolveReady();
    } else {
      fail(m.error);
    }
  });
  worker.on("error", (err) => fail(err.message));
  worker.on("exit", (code) => fail(`its worker exited (${code})`));

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    resolveDone();
    await worker.terminate();
  };
  // (how long the thread has been busy since it started: ms, read from here without asking it)
  const threadActiveMs = () => worker.performance.eventLoopUtilization().active;
  return { ready, done, stop, threadActiveMs, [Symbol.asyncDispose]: stop };
}
