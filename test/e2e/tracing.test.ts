/**
 * Traces and the slow-query log, on a standalone with its Milvus front door:
 * - a search through gRPC by the Milvus Node SDK with its OpenTelemetry interceptor on (it sends a W3C
 *   `traceparent`) makes one trace whose spans cover the front door, the proxy, the delegator, the
 *   querynode and the segment actors, each a child of the hop that asked it; spans are collected by an
 *   in-memory exporter registered through the OpenTelemetry API, as any exporter would be;
 * - a search made slow on purpose (the segment actors' test-only delay), with no tracer provider as in
 *   production by default, is logged as one JSON line with the time spent at each hop.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Writable } from "node:stream";
import { pino } from "pino";
import {
  context,
  propagation,
  ROOT_CONTEXT,
  trace,
  type Context,
  type ContextManager,
  type TextMapPropagator,
} from "@opentelemetry/api";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { MilvusClient, logger as sdkLogger } from "@zilliz/milvus2-sdk-node";
import { startMilvusFrontDoor, type MilvusFrontDoor } from "../../actors/front/server.ts";
import { setSlowQueryLogger } from "../../actors/proxy/slow_query.ts";
import { segmentTestHooks } from "../../actors/segment/test_hooks.ts";
import type { CollectionSchema } from "../../protocol/schema.ts";
import type { Hop } from "../../protocol/envelope.ts";
import { formatTraceparent } from "../../runtime/trace.ts";
import { startTestCluster, type TestCluster } from "../harness/standalone.ts";
import { waitFor } from "../harness/index.ts";
import { embeddingVectors } from "../harness/sealed.ts";

const DIM = 8;
const ROWS = 300;
const NAME = "traced";

/** The active context as a stack: enough for the SDK's interceptor, which injects inside `startActiveSpan`. */
class StackContextManager implements ContextManager {
  private stack: Context[] = [];
  active(): Context {
    return this.stack.at(-1) ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(ctx: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F> {
    this.stack.push(ctx);
    try {
      return fn.call(thisArg, ...args);
    } finally {
      this.stack.pop();
    }
  }
  bind<T>(_ctx: Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.stack = [];
    return this;
  }
}

/** Writes the active span's W3C traceparent (what the SDK's interceptor puts in the gRPC metadata). */
const traceparentPropagator: TextMapPropagator = {
  inject(ctx, carrier, setter) {
    const sc = trace.getSpanContext(ctx);
    if (sc && trace.isSpanContextValid(sc)) setter.set(carrier, "traceparent", formatTraceparent({ traceId: sc.traceId, spanId: sc.spanId, flags: sc.traceFlags }));
  },
  extract: (ctx) => ctx,
  fields: () => ["traceparent"],
};

const schema: CollectionSchema = {
  name: NAME,
  fields: [
    { name: "id", type: "Int64", isPrimaryKey: true },
    { name: "vec", type: "FloatVector", dim: DIM },
  ],
};

describe("traces across actors and the slow-query log", () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const vecs = embeddingVectors(ROWS, DIM, 11);
  let tc: TestCluster;
  let door: MilvusFrontDoor;
  let milvus: MilvusClient;

  beforeAll(async () => {
    sdkLogger.level = "warn";
    trace.setGlobalTracerProvider(provider);
    propagation.setGlobalPropagator(traceparentPropagator);
    context.setGlobalContextManager(new StackContextManager());
    tc = await startTestCluster({ cluster: { slowQueryMs: 250 } });
    door = await startMilvusFrontDoor({ port: 0, host: "127.0.0.1", nc: tc.sa.nc, prefix: tc.config.prefix, actorHost: tc.sa.host, serverVersion: "test" }); // as the standalone serves it
    milvus = new MilvusClient({ address: `127.0.0.1:${door.port}`, timeout: 60_000, trace: true });
    await milvus.connectPromise;
    await tc.client.createCollection({ schema, shardsNum: 1 });
    await tc.client.insert({ collectionName: NAME, columns: { id: BigInt64Array.from({ length: ROWS }, (_, i) => BigInt(i)), vec: vecs } });
    await tc.client.flush({ collectionNames: [NAME] });
    await tc.client.loadCollection({ collectionName: NAME, wait: true });
  });

  afterAll(async () => {
    segmentTestHooks.searchDelayMs = 0;
    setSlowQueryLogger(undefined);
    await milvus?.closeConnection();
    await door?.close();
    await tc?.stop();
    await provider.shutdown();
    trace.disable();
    propagation.disable();
    context.disable();
  });

  it("follows a gRPC search with a traceparent from the front door through proxy, delegator and querynode to the segment actors", async () => {
    exporter.reset();
    const res = await milvus.search({ collection_name: NAME, data: Array.from(vecs.subarray(5 * DIM, 6 * DIM)), limit: 3, metric_type: "L2" });
    expect(res.status.error_code).toBe("Success");
    expect(String(res.results[0]!.id)).toBe("5");

    const spans = await waitFor(
      () => {
        const proxy = exporter.getFinishedSpans().find((s) => s.name === "proxy.Search");
        if (!proxy) return undefined;
        const all = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === proxy.spanContext().traceId);
        return all.some((s) => s.name === "grpc Search") && all.some((s) => s.name === "grpc-intercept") ? all : undefined;
      },
      { what: "the search's spans" },
    );
    const byName = (n: string) => spans.filter((s) => s.name === n);
    const one = (n: string): ReadableSpan => {
      const l = byName(n);
      expect(l.length, n).toBe(1);
      return l[0]!;
    };
    const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;
    // the SDK's span is the root; the rest hang under it, each under the hop that asked it
    const root = one("grpc-intercept");
    expect(parentOf(root)).toBeUndefined();
    const front = one("grpc Search");
    expect(parentOf(front)).toBe(root.spanContext().spanId);
    const proxy = one("proxy.Search");
    expect(parentOf(proxy)).toBe(front.spanContext().spanId);
    const delegator = one("delegator.Search");
    expect(parentOf(delegator)).toBe(proxy.spanContext().spanId);
    const querynode = one("querynode.SearchSegments");
    expect(parentOf(querynode)).toBe(delegator.spanContext().spanId);
    const segments = byName("segment.Search");
    expect(segments.length).toBeGreaterThanOrEqual(1);
    for (const s of segments) expect(parentOf(s)).toBe(querynode.spanContext().spanId);
    // every span of the trace has its parent in the trace
    const ids = new Set(spans.map((s) => s.spanContext().spanId));
    for (const s of spans) if (s !== root) expect(ids.has(parentOf(s)!), s.name).toBe(true);
    // the actors' hops name their actor and their mailbox wait
    for (const s of [proxy, delegator, querynode, ...segments]) {
      expect(typeof s.attributes["vectorbus.actor"]).toBe("string");
      expect(typeof s.attributes["vectorbus.queue_ms"]).toBe("number");
    }
    expect(String(delegator.attributes["vectorbus.actor"])).toContain(".dlg.");
    expect(String(segments[0]!.attributes["vectorbus.actor"])).toContain(".seg.qn1.");
  });

  it("honours a traceparent header on REST the same way", async () => {
    exporter.reset();
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const parent = "00f067aa0ba902b7";
    const res = (await (
      await fetch(`http://127.0.0.1:${door.port}/v2/vectordb/entities/search`, {
        method: "POST",
        headers: { "content-type": "application/json", traceparent: `00-${traceId}-${parent}-01` },
        body: JSON.stringify({ collectionName: NAME, data: [Array.from(vecs.subarray(7 * DIM, 8 * DIM))], limit: 3 }),
      })
    ).json()) as { code: number; data: { id: string }[] };
    expect(res.code).toBe(0);
    expect(String(res.data[0]!.id)).toBe("7");
    const spans = await waitFor(() => {
      const all = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
      return all.some((s) => s.name === "rest entities/search") && all.some((s) => s.name === "segment.Search") ? all : undefined;
    });
    const front = spans.find((s) => s.name === "rest entities/search")!;
    expect(front.parentSpanContext?.spanId).toBe(parent);
    const proxy = spans.find((s) => s.name === "proxy.Search")!;
    expect(proxy.parentSpanContext?.spanId).toBe(front.spanContext().spanId);
    expect(spans.map((s) => s.name)).toEqual(expect.arrayContaining(["delegator.Search", "querynode.SearchSegments", "segment.Search"]));
  });

  it("logs a search made slow on purpose as one JSON line with the time spent at each hop", async () => {
    // as in production by default: no tracer provider, so the read's hops time themselves and record no span
    trace.disable();
    exporter.reset();
    const lines: string[] = [];
    setSlowQueryLogger(
      pino(
        { level: "info" },
        new Writable({
          write(chunk: Buffer, _enc, done) {
            lines.push(chunk.toString("utf8"));
            done();
          },
        }),
      ),
    );
    segmentTestHooks.searchDelayMs = 400;
    try {
      const res = await tc.client.search({ collectionName: NAME, data: vecs.subarray(9 * DIM, 10 * DIM), limit: 3, metricType: "L2", consistencyLevel: "Strong" });
      expect(res.results[0]!.ids[0]).toBe(9n);
    } finally {
      segmentTestHooks.searchDelayMs = 0;
    }
    const slow = await waitFor(() => {
      const l = lines.filter((x) => x.includes('"slow query"'));
      return l.length > 0 ? l : undefined;
    });
    expect(slow.length).toBe(1);
    const line = slow[0]!;
    expect(line.endsWith("\n")).toBe(true);
    expect(line.trimEnd().includes("\n")).toBe(false);
    const entry = JSON.parse(line) as {
      msg: string;
      slowQuery: { type: string; collection: string; traceId: string; ms: number; thresholdMs: number; status: string; hops: Hop[] };
    };
    expect(entry.msg).toBe("slow query");
    const q = entry.slowQuery;
    expect(q).toMatchObject({ type: "Search", collection: NAME, thresholdMs: 250, status: "ok" });
    expect(q.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(typeof q.ms).toBe("number");
    for (const h of q.hops) {
      expect(typeof h.queueMs).toBe("number");
      expect(typeof h.ms).toBe("number");
      expect(h.span).toMatch(/^[0-9a-f]{16}$/);
    }
    // the hops form the request's tree: proxy → delegator → querynode → segment actors
    const hop = (type: string) => q.hops.filter((h) => h.type === type);
    const [proxy] = hop("proxy.Search");
    const [delegator] = hop("delegator.Search");
    const [querynode] = hop("querynode.SearchSegments");
    const segments = hop("segment.Search");
    expect(q.hops[0]).toBe(proxy);
    expect(proxy!.actor).toMatch(/\.proxy$/);
    expect(delegator!.parent).toBe(proxy!.span);
    expect(querynode!.parent).toBe(delegator!.span);
    expect(segments.length).toBeGreaterThanOrEqual(1);
    for (const s of segments) {
      expect(s.parent).toBe(querynode!.span);
      expect(s.actor).toContain(".seg.qn1.");
    }
    expect(exporter.getFinishedSpans()).toEqual([]);
  });
});
