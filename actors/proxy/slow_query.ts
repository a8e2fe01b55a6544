/**
 * Reads at the proxy, observed: every Search and Query runs under a trace (the caller's, when its
 * envelope carried a traceparent, else a root started here), so the hops of the delegators and segment
 * actors it reached come back with the results. A read slower than the threshold (`slowQueryMs`,
 * `VB_SLOW_QUERY_MS`, default 1000 ms) is logged as one JSON line (pino, `"msg":"slow query"`) with the
 * time spent at each hop; it also counts in `vectorbus_proxy_slow_query_count`.
 */
import { VbError } from "../../protocol/errors.ts";
import type { Message } from "../../runtime/actor.ts";
import { createLogger, type Logger } from "../../runtime/logger.ts";
import { roundMs, startTrace, type Hop, type Trace } from "../../runtime/trace.ts";
import { proxySlowQueryCount, proxySQLatency, type QueryType } from "../metrics.ts";

let logger: Logger | undefined;

/** Where slow-query lines go (default: the process's pino log at level warn, whatever the log level). */
export function setSlowQueryLogger(l: Logger | undefined): void {
  logger = l;
}

function slowLog(): Logger {
  return (logger ??= createLogger({ log: "slow_query" }, "warn"));
}

export interface ObservedRead {
  kind: "Search" | "Query";
  msg: Message;
  /** reads at least this long are logged; negative: none is */
  thresholdMs: number;
  nodeId: string;
  address: string;
}

/** Runs a read under a trace, records its latency, and logs it when it is slow. */
export async function observedRead<T>(o: ObservedRead, run: (trace: Trace) => Promise<T>): Promise<T> {
  const started = performance.now();
  const own = o.msg.trace === undefined;
  const trace = o.msg.trace ?? startTrace(o.msg.type, undefined, { "vectorbus.actor": o.address, "vectorbus.node": o.nodeId }, { startedAt: o.msg.receivedAt ?? started });
  const body = (o.msg.body ?? {}) as { collectionName?: unknown; dbName?: unknown };
  const collection = typeof body.collectionName === "string" ? body.collectionName : "";
  const db = typeof body.dbName === "string" ? body.dbName : "default";
  const queryType: QueryType = o.kind === "Search" ? "search" : "query";
  let error: unknown;
  try {
    return await run(trace);
  } catch (err) {
    error = err;
    throw err;
  } finally {
    const end = performance.now();
    const receivedAt = o.msg.receivedAt ?? started;
    const ms = end - receivedAt;
    if (error === undefined) proxySQLatency.observe({ node_id: o.nodeId, query_type: queryType, db_name: db, collection_name: collection }, ms);
    if (own) trace.end(error, end);
    if (o.thresholdMs >= 0 && ms >= o.thresholdMs) {
      proxySlowQueryCount.inc({ node_id: o.nodeId, msg_type: o.kind });
      const self: Hop = { actor: o.address, type: o.msg.type, span: trace.spanId, parent: trace.parentSpanId, queueMs: roundMs(started - receivedAt), ms: roundMs(ms) };
      slowLog().warn(
        {
          slowQuery: {
            type: o.kind,
            collection,
            db,
            traceId: trace.traceId,
            ms: roundMs(ms),
            thresholdMs: o.thresholdMs,
            status: error === undefined ? "ok" : `error ${VbError.from(error).code}`,
            hops: [self, ...trace.hops],
          },
        },
        "slow query",
      );
    }
  }
}
