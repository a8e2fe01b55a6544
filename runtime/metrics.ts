/**
 * Prometheus metrics of a process (prom-client): one registry per process, read at `/metrics` (the
 * standalone's HTTP port, or `--metrics-port` for a process of one role). Families are created once by
 * name (`counter`, `gauge`, `histogram` return the existing one when the name is taken), so every
 * module that records a family may declare it. What the runtime itself records: NATS reconnects and
 * slow-consumer events per connection, DML consumer lag, the process's own figures (CPU, memory, event
 * loop lag) once a metrics endpoint is served.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

export const registry = new Registry();

/** Milvus's latency buckets (ms): 1, 2, 4, ... 131072. */
export const MS_BUCKETS: number[] = Array.from({ length: 18 }, (_, i) => 2 ** i);

type Labels<L extends string> = readonly L[];

export function counter<L extends string>(name: string, help: string, labelNames: Labels<L>): Counter<L> {
  return (registry.getSingleMetric(name) as Counter<L> | undefined) ?? new Counter({ name, help, labelNames, registers: [registry] });
}

export function gauge<L extends string>(name: string, help: string, labelNames: Labels<L>): Gauge<L> {
  return (registry.getSingleMetric(name) as Gauge<L> | undefined) ?? new Gauge({ name, help, labelNames, registers: [registry] });
}

export function histogram<L extends string>(name: string, help: string, labelNames: Labels<L>, buckets = MS_BUCKETS): Histogram<L> {
  return (registry.getSingleMetric(name) as Histogram<L> | undefined) ?? new Histogram({ name, help, labelNames, buckets, registers: [registry] });
}

/** The node id metrics of process-wide actors (proxy, coordinators) carry as `node_id`. */
let processNode = `pid-${process.pid}`;

export function setMetricsNode(nodeId: string): void {
  processNode = nodeId;
}

export function metricsNode(): string {
  return processNode;
}

let defaultsOn = false;

/** The Prometheus text of every family of this process. */
export async function metricsText(): Promise<{ contentType: string; body: string }> {
  return { contentType: registry.contentType, body: await registry.metrics() };
}

/** Turns on the process's own figures (`vectorbus_process_*`, `vectorbus_nodejs_*`): once, when an endpoint serves them. */
export function collectProcessMetrics(): void {
  if (defaultsOn) return;
  defaultsOn = true;
  collectDefaultMetrics({ register: registry, prefix: "vectorbus_" });
}

/** Answers `GET /metrics` on a node:http request; false when the request is for something else. */
export function serveMetricsRequest(req: IncomingMessage, res: ServerResponse): boolean {
  const path = (req.url ?? "/").split("?")[0];
  if (path !== "/metrics" || (req.method !== "GET" && req.method !== "HEAD")) return false;
  collectProcessMetrics();
  req.resume();
  metricsText().then(
    ({ contentType, body }) => {
      res.writeHead(200, { "content-type": contentType, "content-length": Buffer.byteLength(body) });
      res.end(req.method === "HEAD" ? undefined : body);
    },
    (err: unknown) => {
      res.writeHead(500, { "content-type": "text/plain" });
      res.end(`metrics failed: ${String(err)}\n`);
    },
  );
  return true;
}

export interface MetricsServer extends AsyncDisposable {
  readonly port: number;
  close(): Promise<void>;
}

/** Serves `/metrics` on a port of its own (`--metrics-port`; 0 picks a free one). */
export async function startMetricsServer(port: number, host?: string): Promise<MetricsServer> {
  collectProcessMetrics();
  const server: Server = createServer((req, res) => {
    if (serveMetricsRequest(req, res)) return;
    req.resume();
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("the metrics are at /metrics\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  const bound = typeof address === "object" && address ? address.port : port;
  const close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return { port: bound, close, [Symbol.asyncDispose]: close };
}

const natsReconnects = counter("vectorbus_nats_reconnects_total", "reconnections of a NATS connection to a server", ["connection"]);
const natsDisconnects = counter("vectorbus_nats_disconnects_total", "times a NATS connection lost its server", ["connection"]);
const natsSlowConsumers = counter(
  "vectorbus_nats_slow_consumer_total",
  "slow-consumer events of a NATS connection: a subscription over its pending limit, or the server cutting the connection off as a slow consumer",
  ["connection"],
);

/** Counts the status events of a NATS connection under `connection` until it closes. */
export function watchConnection(status: AsyncIterable<{ type: string; error?: unknown }>, connection: string): void {
  natsReconnects.inc({ connection }, 0);
  natsDisconnects.inc({ connection }, 0);
  natsSlowConsumers.inc({ connection }, 0);
  void (async () => {
    for await (const s of status) {
      if (s.type === "reconnect") natsReconnects.inc({ connection });
      else if (s.type === "disconnect") natsDisconnects.inc({ connection });
      else if (s.type === "slowConsumer" || (s.type === "error" && /slow consumer/i.test(String(s.error)))) natsSlowConsumers.inc({ connection });
    }
  })().catch(() => undefined);
}

const dmlLagMessages = gauge("vectorbus_dml_consumer_lag_msgs", "DML messages a reader has yet to read of its subject (the consumer's pending count)", ["reader", "subject"]);
const dmlLagBytes = gauge(
  "vectorbus_dml_consumer_lag_bytes",
  "DML bytes a reader has yet to read of its subject (pending messages × the mean size of those it read)",
  ["reader", "subject"],
);
const dmlConsumed = counter("vectorbus_dml_consume_msg_count", "DML messages a reader read", ["reader", "subject"]);
const dmlConsumedBytes = counter("vectorbus_dml_consume_bytes_count", "DML bytes a reader read", ["reader", "subject"]);

/** The lag figures of one DML reader; `close` removes its series. */
export class DmlLagMeter {
  private count = 0;
  private bytes = 0;
  private readonly labels: { reader: string; subject: string };

  constructor(reader: string, subject: string) {
    this.labels = { reader, subject };
    dmlLagMessages.set(this.labels, 0);
    dmlLagBytes.set(this.labels, 0);
  }

  /** A message read, with the consumer's pending count after it. */
  read(size: number, pending: number): void {
    this.count++;
    this.bytes += size;
    dmlConsumed.inc(this.labels);
    dmlConsumedBytes.inc(this.labels, size);
    dmlLagMessages.set(this.labels, pending);
    dmlLagBytes.set(this.labels, Math.round((pending * this.bytes) / this.count));
  }

  close(): void {
    dmlLagMessages.remove(this.labels);
    dmlLagBytes.remove(this.labels);
  }
}
