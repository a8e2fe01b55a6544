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

/**
 * Counters and histograms for hot paths (a search touches several per actor it crosses): prom-client's
 * own take ~1 µs an update (a closure, label validation and a hash string per call); these keep one
 * series object per label set, which callers hold (`child`) or find by a key built once, so an update is
 * a few additions. They register in the same registry and print in the same text format.
 */
abstract class HotMetric<L extends string, S> {
  readonly aggregator = "sum";
  protected readonly series = new Map<string, { labels: Record<L, string>; s: S }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly L[],
  ) {
    registry.registerMetric(this as never);
  }

  protected abstract make(): S;

  /** The series of a label set: hold it, and update it without looking it up again. */
  child(labels: Record<L, string>): S {
    let key = "";
    for (const n of this.labelNames) key += `${labels[n]}\u0000`;
    let e = this.series.get(key);
    if (!e) this.series.set(key, (e = { labels: { ...labels }, s: this.make() }));
    return e.s;
  }

  reset(): void {
    this.series.clear();
  }
}

export class CounterSeries {
  value = 0;
  inc(n = 1): void {
    this.value += n;
  }
}

export class HotCounter<L extends string> extends HotMetric<L, CounterSeries> {
  readonly type = "counter";
  protected make(): CounterSeries {
    return new CounterSeries();
  }
  inc(labels: Record<L, string>, n = 1): void {
    this.child(labels).inc(n);
  }
  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: { labels: Record<string, string>; value: number }[] }> {
    const values = [...this.series.values()].map((e) => ({ labels: e.labels as Record<string, string>, value: e.s.value }));
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

export class HistogramSeries {
  /** per bucket (not cumulative); the last is +Inf */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }
  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }
}

export class HotHistogram<L extends string> extends HotMetric<L, HistogramSeries> {
  readonly type = "histogram";
  constructor(name: string, help: string, labelNames: readonly L[], readonly bounds: readonly number[] = MS_BUCKETS) {
    super(name, help, labelNames);
  }
  protected make(): HistogramSeries {
    return new HistogramSeries(this.bounds);
  }
  observe(labels: Record<L, string>, v: number): void {
    this.child(labels).observe(v);
  }
  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: { labels: Record<string, string | number>; value: number; metricName: string }[] }> {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    for (const { labels, s } of this.series.values()) {
      let acc = 0;
      for (let i = 0; i <= this.bounds.length; i++) {
        acc += s.counts[i]!;
        values.push({ metricName: `${this.name}_bucket`, labels: { le: i < this.bounds.length ? this.bounds[i]! : "+Inf", ...labels }, value: acc });
      }
      values.push({ metricName: `${this.name}_sum`, labels, value: s.sum });
      values.push({ metricName: `${this.name}_count`, labels, value: s.count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

export function hotCounter<L extends string>(name: string, help: string, labelNames: readonly L[]): HotCounter<L> {
  const m = registry.getSingleMetric(name) as unknown;
  return m instanceof HotCounter ? (m as HotCounter<L>) : new HotCounter(name, help, labelNames);
}

export function hotHistogram<L extends string>(name: string, help: string, labelNames: readonly L[], bounds: readonly number[] = MS_BUCKETS): HotHistogram<L> {
  const m = registry.getSingleMetric(name) as unknown;
  return m instanceof HotHistogram ? (m as HotHistogram<L>) : new HotHistogram(name, help, labelNames, bounds);
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
  "slow-consumer notices a NATS connection got (a server error naming a slow consumer, or an iterator subscription over its pending limit); a server that cuts a slow consumer off shows as a disconnect and a reconnect",
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
