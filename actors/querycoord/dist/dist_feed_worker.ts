/**
 * The worker of `followQueryNodeDistsOffThread` (dist_feed_thread.ts): follows the querynodes' part of
 * the feed on a connection of its own (`followQueryNodeDists`: heads, base chunks, direct reads of
 * starved heads), puts each node's segments together, and hands querycoord what changed per node since
 * what it handed on before, node by node, one batch at a time: while querycoord has not taken a batch,
 * what comes meanwhile is merged into the next one (a node heard ten times is handed on once, with the
 * net change).
 */
import { parentPort, workerData } from "node:worker_threads";
import type { DistSegment, QueryNodeDist } from "../../../protocol/messages/querynode.ts";
import { sameDistSegment } from "../../../protocol/messages/querynode.ts";
import { Subjects } from "../../../protocol/subjects.ts";
import { createLogger } from "../../../runtime/logger.ts";
import { errorText } from "../../../runtime/streams.ts";
import { connectNats } from "../../../runtime/transport.ts";
import { followQueryNodeDists, type SegmentsChange } from "./dist_feed.ts";
import type { DistBatchItem, DistThreadMsg, DistWorkerMsg } from "./dist_feed_thread.ts";

const { servers, prefix, heartbeatIntervalMs } = workerData as { servers: string[]; prefix: string; heartbeatIntervalMs: number };
const port = parentPort!;
const post = (m: DistWorkerMsg) => port.postMessage(m);
const log = createLogger({ module: "dist-feed-worker" });

interface NodeState {
  /** the segments as handed on last (what querycoord holds), and the delegators' lists handed on last */
  posted: readonly DistSegment[] | undefined;
  sealed: Map<string, readonly bigint[]>;
  /** the newest distribution, not handed on yet */
  dist: QueryNodeDist | undefined;
  storedAt: number;
  lagSample: boolean;
  /** distributions read since the last hand-on */
  heard: number;
  /**
   * how the newest segments differ from `posted`, merged from the follower's changes while each one
   * went on from the list before (empty after a hand-on; undefined once a list came that no change led
   * to: compared whole when handed on)
   */
  added: Map<bigint, DistSegment> | undefined;
  removed: Map<bigint, DistSegment> | undefined;
  /** the list the merged change leads to */
  at: readonly DistSegment[] | undefined;
}

const nodes = new Map<string, NodeState>();
/** nodes with something not handed on yet */
const dirty = new Set<string>();
/** a batch handed on that querycoord has not taken yet */
let inFlight = false;

const stateOf = (nodeId: string): NodeState => {
  let st = nodes.get(nodeId);
  if (!st) {
    st = { posted: undefined, sealed: new Map(), dist: undefined, storedAt: 0, lagSample: false, heard: 0, added: undefined, removed: undefined, at: undefined };
    nodes.set(nodeId, st);
  }
  return st;
};

/** One distribution from the follower: merged into what the node has not handed on yet. */
function take(d: QueryNodeDist, storedAt: number, lagSample: boolean, change: SegmentsChange | undefined): void {
  const st = stateOf(d.nodeId);
  if (d.segments !== st.at) {
    if (change && st.added && st.removed && change.from === st.at) {
      for (const r of change.removed) {
        if (st.added.get(r.segmentId) === r) st.added.delete(r.segmentId);
        else st.removed.set(r.segmentId, r);
      }
      for (const a of change.added) {
        if (st.removed.get(a.segmentId) === a) st.removed.delete(a.segmentId);
        else st.added.set(a.segmentId, a);
      }
    } else {
      st.added = st.removed = undefined;
    }
    st.at = d.segments;
  }
  st.dist = d;
  st.storedAt = Math.max(st.storedAt, storedAt);
  st.lagSample ||= lagSample;
  st.heard++;
  dirty.add(d.nodeId);
  flush();
}

/** What the node's segments changed by since `posted`: nothing (the same list), merged, or compared record by record. */
function changeOf(st: NodeState, segments: readonly DistSegment[]): { added: DistSegment[]; removed: bigint[] } {
  if (segments === st.posted) return { added: [], removed: [] };
  if (st.added && st.removed) return { added: [...st.added.values()], removed: [...st.removed.keys()] };
  const before = new Map((st.posted ?? []).map((s) => [s.segmentId, s]));
  const added: DistSegment[] = [];
  const seen = new Set<bigint>();
  for (const s of segments) {
    seen.add(s.segmentId);
    const b = before.get(s.segmentId);
    if (b === s || (b && sameDistSegment(b, s))) continue;
    if (b) seen.delete(s.segmentId); // (replaced: removed, then added)
    added.push(s);
  }
  const removed: bigint[] = [];
  for (const id of before.keys()) if (!seen.has(id)) removed.push(id);
  return { added, removed };
}

/** Hands on what is dirty, when querycoord took the batch before. */
function flush(): void {
  if (inFlight || dirty.size === 0) return;
  const items: DistBatchItem[] = [];
  for (const nodeId of dirty) {
    const st = nodes.get(nodeId)!;
    const d = st.dist!;
    const first = st.posted === undefined;
    const { added, removed } = first ? { added: [...d.segments], removed: [] } : changeOf(st, d.segments);
    // a delegator's list handed on before and unchanged (the follower keeps the same array) goes as null
    const sealed = new Map<string, readonly bigint[]>();
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
      whole: first,
      added,
      removed,
    });
    st.posted = d.segments;
    st.dist = undefined;
    st.lagSample = false;
    st.heard = 0;
    // (nothing pending: the changes that come are merged from here)
    st.added = new Map();
    st.removed = new Map();
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
