/**
 * `/metrics` of a standalone, read on its HTTP port (the Milvus front door's): after inserts, a flush,
 * an index build, a load and searches through the native API, gRPC and REST, the text parses strictly
 * as Prometheus's exposition format, the families count what was done, and the Grafana dashboard
 * (ops/grafana/vectorbus.json) charts only families that exist.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFile } from "node:fs/promises";
import { MilvusClient, logger as sdkLogger } from "@zilliz/milvus2-sdk-node";
import { startMilvusFrontDoor, type MilvusFrontDoor } from "../../actors/front/server.ts";
import { startMetricsServer } from "../../runtime/metrics.ts";
import type { CollectionSchema } from "../../protocol/schema.ts";
import { startTestCluster, type TestCluster } from "../harness/standalone.ts";
import { waitFor } from "../harness/index.ts";
import { embeddingVectors } from "../harness/sealed.ts";

const DIM = 8;
const ROWS = 500;

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Exposition {
  types: Map<string, string>;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\["\\n])*)"(,|$)/;

/** A strict reading of the Prometheus text format (0.0.4): anything it does not know is an error. */
function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  const lines = text.split("\n");
  expect(lines.at(-1)).toBe("");
  for (const line of lines.slice(0, -1)) {
    if (line === "") continue; // empty lines are ignored (the format allows them between families)
    if (line.startsWith("# HELP ")) {
      expect(line.split(" ")[2]).toMatch(NAME);
      continue;
    }
    if (line.startsWith("# TYPE ")) {
      const [, , name, type] = line.split(" ");
      expect(name).toMatch(NAME);
      expect(["counter", "gauge", "histogram", "summary", "untyped"]).toContain(type);
      expect(types.has(name!)).toBe(false);
      types.set(name!, type!);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    let rest = m[3] ?? "";
    while (rest.length > 0) {
      const l = LABEL.exec(rest);
      if (!l) throw new Error(`bad labels in ${JSON.stringify(line)}`);
      labels[l[1]!] = l[2]!;
      rest = rest.slice(l[0].length);
    }
    // values are Go floats (strconv.ParseFloat, as Prometheus reads them): NaN and Inf in any case
    const raw = m[4]!.toLowerCase();
    const value = raw === "+inf" || raw === "inf" ? Infinity : raw === "-inf" ? -Infinity : raw === "nan" ? NaN : Number(raw);
    if (!["+inf", "inf", "-inf", "nan"].includes(raw)) expect(Number.isFinite(value), `value of ${line}`).toBe(true);
    const name = m[1]!;
    const family = [name, name.replace(/_(bucket|sum|count|total|created)$/, "")].find((f) => types.has(f));
    expect(family, `sample ${name} has a TYPE line`).toBeDefined();
    samples.push({ name, labels, value });
  }
  return { types, samples };
}

/** The sum of the samples of `name` whose labels include `labels`. */
function total(e: Exposition, name: string, labels: Record<string, string> = {}): number {
  return e.samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);
}

const schema = (name: string): CollectionSchema => ({
  name,
  fields: [
    { name: "id", type: "Int64", isPrimaryKey: true },
    { name: "vec", type: "FloatVector", dim: DIM },
  ],
});

describe("/metrics of a standalone", () => {
  let tc: TestCluster;
  let door: MilvusFrontDoor;
  let milvus: MilvusClient;

  beforeAll(async () => {
    sdkLogger.level = "warn";
    tc = await startTestCluster();
    door = await startMilvusFrontDoor({ port: 0, host: "127.0.0.1", nc: tc.sa.nc, prefix: tc.config.prefix, actorHost: tc.sa.host, serverVersion: "test" }); // as the standalone serves it
    milvus = new MilvusClient({ address: `127.0.0.1:${door.port}`, timeout: 60_000 });
    await milvus.connectPromise;
  });

  afterAll(async () => {
    await milvus?.closeConnection();
    await door?.close();
    await tc?.stop();
  });

  it("exposes request, query-plane, querycoord, datanode, DML and NATS families counting what was done, in a strict text format", async () => {
    const name = "watched";
    await tc.client.createCollection({ schema: schema(name), shardsNum: 1 });
    const vecs = embeddingVectors(ROWS, DIM, 7);
    await tc.client.insert({ collectionName: name, columns: { id: BigInt64Array.from({ length: ROWS }, (_, i) => BigInt(i)), vec: vecs } });
    await tc.client.flush({ collectionNames: [name] });
    await tc.client.createIndex({ collectionName: name, fieldName: "vec", indexType: "HNSW", metricType: "L2", params: { M: 8, efConstruction: 32 } });
    await waitFor(
      async () => {
        const x = (await tc.client.describeIndex({ collectionName: name })).indexes[0];
        return x?.state === "Finished" && x.indexedRows === ROWS;
      },
      { timeoutMs: 60_000, what: "the index build" },
    );
    await tc.client.loadCollection({ collectionName: name, wait: true });

    const query = vecs.slice(0, DIM);
    for (let i = 0; i < 3; i++) {
      const res = await tc.client.search({ collectionName: name, data: query, limit: 5, metricType: "L2", consistencyLevel: "Strong" });
      expect(res.results[0]!.ids[0]).toBe(0n);
    }
    const grpc = await milvus.search({ collection_name: name, data: Array.from(query), limit: 5, metric_type: "L2" });
    expect(grpc.status.error_code).toBe("Success");
    expect(String(grpc.results[0]!.id)).toBe("0");
    const rest = (await (
      await fetch(`http://127.0.0.1:${door.port}/v2/vectordb/entities/search`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ collectionName: name, data: [Array.from(query)], limit: 5 }),
      })
    ).json()) as { code: number; data: { id: number | string }[] };
    expect(rest.code).toBe(0);
    expect(String(rest.data[0]!.id)).toBe("0");
    const count = await tc.client.query({ collectionName: name, outputFields: ["count(*)"], consistencyLevel: "Strong" });
    expect(count.rows[0]!["count(*)"]).toBe(ROWS);

    const res = await fetch(`http://127.0.0.1:${door.port}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/plain");
    const e = parseExposition(await res.text());

    // the proxy, per API call and door
    expect(total(e, "vectorbus_proxy_req_count", { door: "native", function_name: "Search", status: "success" })).toBeGreaterThanOrEqual(5);
    expect(total(e, "vectorbus_proxy_req_count", { door: "native", function_name: "Insert", status: "success" })).toBe(1);
    expect(total(e, "vectorbus_proxy_req_count", { door: "grpc", function_name: "Search", status: "success" })).toBe(1);
    expect(total(e, "vectorbus_proxy_req_count", { door: "rest", function_name: "entities/search", status: "success" })).toBe(1);
    expect(total(e, "vectorbus_proxy_req_latency_count", { door: "grpc", function_name: "Search" })).toBe(1);
    expect(total(e, "vectorbus_proxy_req_latency_count", { door: "native", function_name: "Query" })).toBe(1);
    expect(total(e, "vectorbus_proxy_sq_latency_count", { query_type: "search", collection_name: name })).toBeGreaterThanOrEqual(5);
    expect(total(e, "vectorbus_proxy_sq_latency_count", { query_type: "query", collection_name: name })).toBe(1);

    // delegators and segments: latency, mailbox wait, tSafe wait, per segment
    expect(total(e, "vectorbus_querynode_sq_req_count", { request_scope: "delegator", query_type: "search", status: "success" })).toBeGreaterThanOrEqual(5);
    expect(total(e, "vectorbus_querynode_sq_req_count", { request_scope: "segment", query_type: "search", status: "success" })).toBeGreaterThanOrEqual(5);
    expect(total(e, "vectorbus_querynode_sq_req_count", { request_scope: "delegator", query_type: "query" })).toBe(1);
    expect(total(e, "vectorbus_querynode_sq_req_latency_count", { request_scope: "delegator" })).toBeGreaterThanOrEqual(6);
    expect(total(e, "vectorbus_querynode_sq_queue_latency_count", { request_scope: "segment" })).toBeGreaterThanOrEqual(5);
    expect(total(e, "vectorbus_querynode_sq_wait_tsafe_latency_count", { query_type: "search" })).toBeGreaterThanOrEqual(5);
    expect(total(e, "vectorbus_querynode_sq_segment_latency_count", { segment_state: "Sealed", query_type: "search" })).toBeGreaterThanOrEqual(5);
    const lag = e.samples.filter((s) => s.name === "vectorbus_querynode_consume_tt_lag_ms");
    expect(lag.length).toBe(1);
    expect(lag[0]!.labels.channel_name).toMatch(/v0$/);

    // what the node holds
    expect(total(e, "vectorbus_querynode_segment_num", { node_id: "qn1", segment_state: "Sealed" })).toBeGreaterThanOrEqual(1);
    expect(total(e, "vectorbus_querynode_entity_num", { node_id: "qn1", segment_state: "Sealed" })).toBe(ROWS);
    expect(total(e, "vectorbus_querynode_memory_bytes", { node_id: "qn1" })).toBeGreaterThan(0);
    expect(total(e, "vectorbus_querynode_delegator_num", { node_id: "qn1" })).toBe(1);

    // querycoord: tasks done, checker rounds; the queue gauge and the failure counter exist
    expect(total(e, "vectorbus_querycoord_task_latency_count", { querycoord_task_type: "WatchChannel", status: "success" })).toBeGreaterThanOrEqual(1);
    expect(total(e, "vectorbus_querycoord_task_latency_count", { querycoord_task_type: "LoadSegment", status: "success" })).toBeGreaterThanOrEqual(1);
    expect(total(e, "vectorbus_querycoord_checker_round_latency_count")).toBeGreaterThan(0);
    expect(e.types.get("vectorbus_querycoord_task_num")).toBe("gauge");
    expect(e.types.get("vectorbus_querycoord_task_failed_count")).toBe("counter");

    // datanode: the flush and the index build
    expect(total(e, "vectorbus_datanode_flushed_data_size", { node_id: "dn1", msg_type: "insert" })).toBeGreaterThan(0);
    expect(total(e, "vectorbus_datanode_flushed_data_rows", { node_id: "dn1", msg_type: "insert" })).toBe(ROWS);
    expect(total(e, "vectorbus_datanode_save_latency_count", { node_id: "dn1", msg_type: "insert" })).toBeGreaterThanOrEqual(1);
    expect(total(e, "vectorbus_indexnode_build_index_latency_count", { node_id: "dn1", index_type: "HNSW", status: "success" })).toBeGreaterThanOrEqual(1);

    // DML consumers: the datanode's and the delegator's reads of the vchannel
    const readers = new Set(e.samples.filter((s) => s.name === "vectorbus_dml_consumer_lag_msgs").map((s) => s.labels.reader));
    expect([...readers].some((r) => r?.includes(".dn.dn1"))).toBe(true);
    expect([...readers].some((r) => r?.includes(".dlg."))).toBe(true);
    expect(e.types.get("vectorbus_dml_consumer_lag_bytes")).toBe("gauge");
    const datanodeReader = [...readers].find((r) => r?.includes(".dn.dn1"))!;
    expect(total(e, "vectorbus_dml_consume_msg_count", { reader: datanodeReader })).toBeGreaterThanOrEqual(1);
    expect(total(e, "vectorbus_dml_consume_bytes_count", { reader: datanodeReader })).toBeGreaterThan(ROWS * DIM * 4);

    // NATS connections: counted from the start (none reconnected here)
    expect(e.samples.some((s) => s.name === "vectorbus_nats_reconnects_total" && s.labels.connection === "vbus-standalone")).toBe(true);
    expect(e.samples.some((s) => s.name === "vectorbus_nats_slow_consumer_total" && s.labels.connection === "vbus-standalone-data")).toBe(true);
    // the process's own figures
    expect(e.types.get("vectorbus_process_cpu_seconds_total")).toBe("counter");

    // every family the Grafana dashboard charts is one this process exposes
    const dashboard = await readFile(new URL("../../ops/grafana/vectorbus.json", import.meta.url), "utf8");
    const charted = new Set([...dashboard.matchAll(/vectorbus_[a-z_]+/g)].map((m) => m[0].replace(/_bucket$/, "")));
    expect(charted.size).toBeGreaterThan(20);
    for (const name of charted) expect(e.types.has(name), `${name} (ops/grafana/vectorbus.json)`).toBe(true);
  });

  it("serves the same families on a port of its own (--metrics-port), and nothing else there", async () => {
    await using server = await startMetricsServer(0, "127.0.0.1");
    const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
    expect(res.status).toBe(200);
    const own = parseExposition(await res.text());
    const atDoor = parseExposition(await (await fetch(`http://127.0.0.1:${door.port}/metrics`)).text());
    expect(own.types.get("vectorbus_querynode_sq_req_latency")).toBe("histogram");
    expect([...own.types].sort()).toEqual([...atDoor.types].sort());
    expect((await fetch(`http://127.0.0.1:${server.port}/`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${server.port}/metrics`, { method: "POST" })).status).toBe(404);
  });
});
