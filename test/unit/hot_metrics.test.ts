/** The runtime's hot counters and histograms print as prom-client's do (runtime/metrics.ts). */
import { describe, expect, it } from "vitest";
import { Histogram, Registry } from "prom-client";
import { hotCounter, hotHistogram, registry } from "../../runtime/metrics.ts";

describe("hot counters and histograms", () => {
  it("print the same text as prom-client's histogram for the same observations", async () => {
    const bounds = [1, 2, 4, 8];
    const hot = hotHistogram("unit_hot_latency", "a latency", ["node_id", "kind"], bounds);
    const own = new Registry();
    const reference = new Histogram({ name: "unit_hot_latency", help: "a latency", labelNames: ["node_id", "kind"], buckets: bounds, registers: [own] });
    const values = [0, 1, 1.5, 2, 3, 4, 7.9, 8, 8.1, 1e9];
    const held = hot.child({ node_id: "n1", kind: "b" });
    for (const v of values) {
      hot.observe({ node_id: "n1", kind: "a" }, v);
      held.observe(v * 2);
      reference.observe({ node_id: "n1", kind: "a" }, v);
      reference.observe({ node_id: "n1", kind: "b" }, v * 2);
    }
    const text = await registry.getSingleMetricAsString("unit_hot_latency");
    // the same lines (series may come in another order)
    const lines = (t: string) => t.split("\n").sort();
    expect(lines(text)).toEqual(lines(await own.getSingleMetricAsString("unit_hot_latency")));
    expect(text).toContain('unit_hot_latency_bucket{le="2",node_id="n1",kind="a"} 4');
    expect(text).toContain('unit_hot_latency_bucket{le="+Inf",node_id="n1",kind="a"} 10');
  });

  it("counts per label set, one series per set however the labels are ordered", async () => {
    const c = hotCounter("unit_hot_count", "a count", ["status", "door"]);
    c.inc({ status: "success", door: "grpc" });
    c.inc({ door: "grpc", status: "success" }, 2);
    c.child({ status: "fail", door: "rest" }).inc();
    expect(hotCounter("unit_hot_count", "a count", ["status", "door"])).toBe(c);
    const text = await registry.getSingleMetricAsString("unit_hot_count");
    expect(text.split("\n")).toEqual([
      "# HELP unit_hot_count a count",
      "# TYPE unit_hot_count counter",
      'unit_hot_count{status="success",door="grpc"} 3',
      'unit_hot_count{status="fail",door="rest"} 1',
    ]);
  });
});
