/**
 * The metric families of Vectorbus's actors, named after Milvus's (`milvus_proxy_req_latency` →
 * `vectorbus_proxy_req_latency`, same labels; latencies in ms with Milvus's buckets). The runtime's own
 * (NATS connections, DML consumer lag, the process) live in runtime/metrics.ts. Every family is read at
 * `/metrics` of the process that records it. Those a search updates (proxy, delegators, segments) are
 * the runtime's hot counters and histograms, a few additions an update.
 */
import { counter, gauge, histogram, hotCounter, hotHistogram, type CounterSeries, type HistogramSeries } from "../runtime/metrics.ts";

export type Door = "native" | "grpc" | "rest";
export type QueryType = "search" | "query";

export const SUCCESS = "success";
export const FAIL = "fail";

// ---- proxy ----

/** Requests per API call, door and status: native calls at the proxy actor, Milvus calls at the gRPC and REST doors. */
export const proxyReqCount = hotCounter("vectorbus_proxy_req_count", "count of requests served, per API call, door and status", [
  "node_id",
  "function_name",
  "status",
  "door",
]);
export const proxyReqLatency = hotHistogram("vectorbus_proxy_req_latency", "latency of each request in ms, per API call and door", ["node_id", "function_name", "door"]);
export const proxySQLatency = hotHistogram("vectorbus_proxy_sq_latency", "latency of search or query that succeeded, in ms", [
  "node_id",
  "query_type",
  "db_name",
  "collection_name",
]);
export const proxySlowQueryCount = counter("vectorbus_proxy_slow_query_count", "count of searches and queries over the slow-query threshold", ["node_id", "msg_type"]);

/** A request's meters at one door, for one API call (looked up once per request). */
interface RequestMeters {
  ok: CounterSeries;
  fail: CounterSeries;
  latency: HistogramSeries;
}
const requestMeters = new Map<string, RequestMeters>();

/** Counts one request and its latency. */
export function observeRequest(nodeId: string, door: Door, functionName: string, ok: boolean, ms: number): void {
  const key = `${nodeId}\u0000${door}\u0000${functionName}`;
  let m = requestMeters.get(key);
  if (!m) {
    const labels = { node_id: nodeId, function_name: functionName, door };
    m = {
      ok: proxyReqCount.child({ ...labels, status: SUCCESS }),
      fail: proxyReqCount.child({ ...labels, status: FAIL }),
      latency: proxyReqLatency.child(labels),
    };
    requestMeters.set(key, m);
  }
  (ok ? m.ok : m.fail).inc();
  m.latency.observe(ms);
}

// ---- querynode: delegators and segments ----

/** request_scope: `delegator` (a shard's read), `segment` (one segment actor's). */
export const qnSQReqCount = hotCounter("vectorbus_querynode_sq_req_count", "count of search and query requests, per scope and status", [
  "node_id",
  "query_type",
  "status",
  "request_scope",
]);
export const qnSQReqLatency = hotHistogram("vectorbus_querynode_sq_req_latency", "latency of search and query requests in ms, from handling to answer", [
  "node_id",
  "query_type",
  "request_scope",
]);
export const qnSQQueueLatency = hotHistogram("vectorbus_querynode_sq_queue_latency", "time search and query requests waited in the actor's mailbox, in ms", [
  "node_id",
  "query_type",
  "request_scope",
]);
export const qnSQWaitTSafe = hotHistogram("vectorbus_querynode_sq_wait_tsafe_latency", "time a read waited at the delegator for tSafe to reach its guarantee, in ms", [
  "node_id",
  "query_type",
]);
export const qnSQSegmentLatency = hotHistogram("vectorbus_querynode_sq_segment_latency", "latency of one segment's search or query in ms", [
  "node_id",
  "query_type",
  "segment_state",
]);
/** Milvus's consume_tt_lag_ms, per vchannel: how far behind the channel the delegator's tSafe is. */
export const qnTSafeLag = gauge(
  "vectorbus_querynode_consume_tt_lag_ms",
  "ms since the last message a delegator applied was stored, while messages of its vchannel are still unread (0 when it has read them all)",
  ["node_id", "channel_name"],
);
export const qnSegmentNum = gauge("vectorbus_querynode_segment_num", "sealed segments a querynode has loaded (segment_state Sealed)", ["node_id", "segment_state"]);
export const qnEntityNum = gauge("vectorbus_querynode_entity_num", "rows a querynode holds: in its loaded sealed segments (Sealed) and its delegators' growing rows (Growing)", ["node_id", "segment_state"]);
export const qnMemoryBytes = gauge("vectorbus_querynode_memory_bytes", "memory a querynode accounts for its segments, indexes and growing rows (bytes)", ["node_id"]);
export const qnDelegatorNum = gauge("vectorbus_querynode_delegator_num", "shard delegators a querynode hosts", ["node_id"]);

/** The meters of reads of one kind at one scope of a node: held by the reader, so an update is a few additions. */
export class ReadMeters {
  private readonly ok: CounterSeries;
  private readonly fail: CounterSeries;
  private readonly latency: HistogramSeries;
  private readonly queue: HistogramSeries;
  /** delegators: the wait for tSafe */
  readonly waitTSafe: HistogramSeries;
  /** segment actors: the time per segment, by state */
  private readonly segment: HistogramSeries | undefined;

  constructor(nodeId: string, scope: "delegator" | "segment", queryType: QueryType, segmentState?: "Sealed" | "Growing") {
    const labels = { node_id: nodeId, query_type: queryType, request_scope: scope };
    this.ok = qnSQReqCount.child({ ...labels, status: SUCCESS });
    this.fail = qnSQReqCount.child({ ...labels, status: FAIL });
    this.latency = qnSQReqLatency.child(labels);
    this.queue = qnSQQueueLatency.child(labels);
    this.waitTSafe = qnSQWaitTSafe.child({ node_id: nodeId, query_type: queryType });
    this.segment = segmentState ? qnSQSegmentLatency.child({ node_id: nodeId, query_type: queryType, segment_state: segmentState }) : undefined;
  }

  /** A read handled at `handledAt` (performance.now()) after `queuedMs` in the mailbox; its outcome is counted when `work` settles. */
  observe(queuedMs: number, handledAt: number, work: Promise<unknown>): void {
    this.queue.observe(queuedMs);
    work.then(
      () => {
        const ms = performance.now() - handledAt;
        this.ok.inc();
        this.latency.observe(ms);
        this.segment?.observe(ms);
      },
      () => {
        this.fail.inc();
        this.latency.observe(performance.now() - handledAt);
      },
    );
  }
}

const readMeters = new Map<string, ReadMeters>();

/** The meters of a node's reads of one kind at one scope (and segment state), made once. */
export function readMetersOf(nodeId: string, scope: "delegator" | "segment", queryType: QueryType, segmentState?: "Sealed" | "Growing"): ReadMeters {
  const key = `${nodeId}\u0000${scope}\u0000${queryType}\u0000${segmentState ?? ""}`;
  let m = readMeters.get(key);
  if (!m) readMeters.set(key, (m = new ReadMeters(nodeId, scope, queryType, segmentState)));
  return m;
}

// ---- querycoord ----

export const qcTaskNum = gauge("vectorbus_querycoord_task_num", "tasks in querycoord's scheduler, per action and state (pending, running)", [
  "querycoord_task_type",
  "task_state",
]);
export const qcTaskLatency = histogram("vectorbus_querycoord_task_latency", "ms from a task's start to its end (done or failed)", ["querycoord_task_type", "status"]);
export const qcTaskFailures = counter("vectorbus_querycoord_task_failed_count", "tasks that failed (an error reply, a node down, a change that never showed)", [
  "querycoord_task_type",
]);
export const qcSyncEntries = counter(
  "vectorbus_querycoord_sync_distribution_entries",
  "view entries SyncDistribution requests carried to delegators, per body (whole: the view; delta: what changed against the view acknowledged)",
  ["body"],
);
export const qcCheckerRound = histogram("vectorbus_querycoord_checker_round_latency", "ms one round of the checkers took", [], [0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]);

// ---- datanode ----

export const dnFlushedSize = counter("vectorbus_datanode_flushed_data_size", "bytes the datanode wrote to the object store, per kind (insert, delta, stats)", [
  "node_id",
  "msg_type",
]);
export const dnFlushedRows = counter("vectorbus_datanode_flushed_data_rows", "rows the datanode wrote to the object store", ["node_id", "msg_type"]);
export const dnSaveLatency = histogram("vectorbus_datanode_save_latency", "ms a sync (a sealed segment or a flush) took to write its objects", ["node_id", "msg_type"]);
export const dnBuildIndexLatency = histogram("vectorbus_indexnode_build_index_latency", "ms an index build took (read, build, write)", ["node_id", "index_type", "status"], [
  1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144,
]);
