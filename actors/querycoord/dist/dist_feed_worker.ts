/**
 * The worker of `followQueryNodeDistsOffThread` (dist_feed_thread.ts): follows the querynodes' part of
 * the feed on a connection of its own (`followQueryNodeDists`: heads, base chunks, direct reads of
 * starved heads), puts each node's segments together, and hands querycoord what changed per node since
 * what it handed on before, node by node, one batch at a time: while querycoord has not taken a batch,
 * what comes meanwhile is merged into the next one (a node heard ten times is handed on once, with the
 * net change).
 */
import { parentPort, workerData } from "node:worker_threads";
import type { DistSegment, QueryNodeDist, SegmentIds } from "../../../protocol/messages/querynode.ts";
import { Subjects } from "../../../protocol/subjects.ts";
import { createLogger } from "../../../runtime/logger.ts";
import { errorText } from "../../../runtime/streams.ts";
import { connectNats } from "../../../runtime/transport.ts";
import { followQueryNodeDists, type SegmentsDelta } from "./dist_feed.ts";
import type { DistBatchItem, DistThreadMsg, DistWorkerMsg } from "./dist_feed_thread.ts";

const { servers, prefix, heartbeatIntervalMs } = workerData as { servers: string[]; prefix: string; heartbeatIntervalMs: number };
const port = parentPort!;
const post = (m: DistWorkerMsg) => port.postMessage(m);
const log = createLogger({ module: "dist-feed-worker" });

interface NodeState {
  /** the delegators' lists handed on last */
  sealed: Map<string, SegmentIds>;
  /** the newest distribution, not handed on yet */
  dist: QueryNodeDist | undefined;
  storedAt: number;
  lagSample: boolean;
  /** distributions read since the last hand-on */
  heard: number;
  /**
   * how the segments changed since the last hand-on, merged from the follower's changes: the node's
   * first (`added` is then its whole list), the records that came (by id), the ids that went
   */
  whole: boolean;
  added: Map<bigint, DistSegment>;
  removed: Set<bigint>;
}

const nodes = new Map<string, NodeState>();
/** nodes with something not handed on yet */
const dirty = new Set<string>();
/** a batch handed on that querycoord has not taken yet */
let inFlight = false;

const stateOf = (nodeId: string): NodeState => {
  let st = nodes.get(nodeId);
  if (!st) {
    st = { sealed: new Map(), dist: undefined, storedAt: 0, lagSample: false, heard: 0, whole: false, added: new Map(), removed: new Set() };
    nodes.set(nodeId, st);
  }
  return st;
};

/** One distribution from the follower: merged into what the node has not handed on yet. */
function take(d: QueryNodeDist, storedAt: number, lagSample: boolean, change: SegmentsDelta): void {
  const st = stateOf(d.nodeId);
  if (change.whole) {
    st.whole = true;
    st.added = new Map(change.added.map((s) => [s.segmentId, s]));
    st.removed = new Set();
  } else {
    for (const id of change.removed) {
      // a record that came since the last hand-on goes as if it never came; one querycoord holds goes
      if (!st.added.delete(id) && !st.whole) st.removed.add(id);
    }
    for (const s of change.added) st.added.set(s.segmentId, s);
  }
  st.dist = d;
  st.storedAt = Math.max(st.storedAt, storedAt);
  st.lagSample ||= lagSample;
  st.heard++;
  dirty.add(d.nodeId);
  flush();
}

/** Hands on what is dirty, when querycoord took the batch before. */
function flush(): void {
  if (inFlight || dirty.size === 0) return;
  const items: DistBatchItem[] = [];
  for (const nodeId of dirty) {
    const st = nodes.get(nodeId)!;
    const d = st.dist!;
    // a delegator's list handed on before and unchanged (the follower keeps the same array) goes as null
    const sealed = new Map<string, SegmentIds>();
    const delegators = d.delegators.map((g) => {
      const key = `${g.vchannel}/${g.replicaId}`;
      sealed.set(key, g.sealedSegmentIds);
      return st.sealed.get(key) === g.sealedSegmentIds ? { ...g, sealedSegmentIds: null } : g;
    });
    st.sealed = sealed;
    items.push({
      dist: { ...d, segments: [], delegators: delegators as unknown as QueryNodeDist["delegators"] },
      storedAt: st.storedAt,
      lagSample: st.lagSample,
      heard: st.heard,
      whole: st.whole,
      added: [...st.added.values()],
      removed: [...st.removed],
    });
    st.dist = undefined;
    st.lagSample = false;
    st.heard = 0;
    // (nothing pending: the changes that come are merged from here)
    st.whole = false;
    st.added = new Map();
    st.removed = new Set();
  }
  dirty.clear();
  inFlight = true;
  post({ type: "dists", items });
}

port.on("message", (m: DistThreadMsg) => {
  if (m.type === "taken") {
    inFlight = false;
    flush();
  }
});

try {
  const nc = await connectNats(servers, { name: "vb-dist-feed" });
  const follower = await followQueryNodeDists({ nc, subjects: new Subjects(prefix), config: { heartbeatIntervalMs } }, log, take);
  follower.ready.then(
    () => post({ type: "ready" }),
    () => undefined,
  );
  follower.done.then(
    () => post({ type: "failed", error: "following stopped" }),
    (err: unknown) => post({ type: "failed", error: errorText(err) }),
  );
} catch (err) {
  post({ type: "failed", error: errorText(err) });
}
