/**
 * `npm run bench -- segment_fanout [--segments 8] [--rows 10000] [--dim 128] [--clients 8] [--seconds 8] [--json]`
 *
 * How a delegator should reach the sealed segments of a querynode in another process: one ask per node
 * (`querynode.SearchSegments` with every segment id; the querynode hands the read to its segment actors
 * in process, without re-encoding) or one ask per segment (`segment.Search` at each `vb.seg.<node>.<id>`,
 * merged by the asker). A standalone without querynodes plus one querynode as a process of its own
 * (`vbus serve --role querynode`); the same queries both ways, from this process's own connection;
 * beside them, the floor: empty request/reply round trips on the same connection.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { clientOf } from "../actors/control/client.ts";
import { reduceSearchResults } from "../actors/search/reduce.ts";
import type { QueryNodeDist, SearchResult } from "../protocol/messages/querynode.ts";
import { ask } from "../runtime/ask.ts";
import { defaultConfig } from "../ops/config.ts";
import { startNatsServer } from "../ops/nats_server.ts";
import { startStandalone } from "../ops/standalone.ts";
import { option, report } from "./util.ts";

const VBUS = fileURLToPath(new URL("../ops/vbus.mjs", import.meta.url));

export async function main(args: string[]): Promise<void> {
  const segments = option(args, "segments", 8);
  const rowsPer = option(args, "rows", 10000);
  const dim = option(args, "dim", 128);
  const clients = option(args, "clients", 8);
  const seconds = option(args, "seconds", 8);
  const dir = await mkdtemp(join(tmpdir(), "vbus-fanout-"));
  const nats = await startNatsServer({ maxPayload: 8 * 1024 * 1024 });
  const config = { ...defaultConfig({}), natsUrl: nats.url, dataDir: dir, prefix: "fan" };
  const sa = await startStandalone(config, { roles: { rootcoord: true, datacoord: true, datanodes: ["dn1"], querycoord: true, querynodes: [], proxy: true } });
  const qn = spawn(process.execPath, [VBUS, "serve", "--role", "querynode", "--node-id", "qn1", "--nats", nats.url, "--prefix", "fan", "--data", dir], {
    stdio: "ignore",
    env: { ...process.env, VB_LOG_LEVEL: "warn" },
  });
  try {
    const vb = clientOf(sa.nc, { prefix: "fan" });
    await vb.createCollection({ schema: { name: "fan", fields: [{ name: "id", type: "Int64", isPrimaryKey: true }, { name: "v", type: "FloatVector", dim }] }, shardsNum: 1 });
    for (let s = 0; s < segments; s++) {
      const rows = Array.from({ length: rowsPer }, (_, i) => ({ id: s * rowsPer + i, v: Array.from({ length: dim }, () => Math.random() * 2 - 1) }));
      await vb.insert({ collectionName: "fan", rows });
      await vb.flush({ collectionNames: ["fan"] });
    }
    for (let i = 0; i < 600; i++) {
      const st = await vb.getStatus({});
      if (st.nodes.some((n) => n.nodeId === "qn1" && n.alive)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await vb.loadCollection({ collectionName: "fan", wait: true });
    const info = await vb.describeCollection({ collectionName: "fan" });
    const qnAddress = sa.env.subjects.querynode("qn1" as never);
    const dist = await ask<QueryNodeDist>(sa.nc, qnAddress, "querynode.GetDist", {});
    const segIds = dist.segments.filter((s) => s.collectionId === info.collectionId).map((s) => s.segmentId);
    const segAddress = (id: bigint) => `fan.seg.qn1.${id}`;
    const spec = (q: Float32Array) => ({
      collectionId: info.collectionId,
      annsFieldId: info.schema.fields.find((f) => f.name === "v")!.fieldId!,
      metric: "L2" as const,
      queries: q,
      nq: 1,
      topk: 10,
      partitionIds: [],
      outputFieldIds: [],
    });
    const readPosition = 1n << 60n;
    const query = () => Float32Array.from({ length: dim }, () => Math.random() * 2 - 1);
    const merge = (rs: SearchResult[]) => reduceSearchResults(rs, { nq: 1, k: 10, offset: 0, metric: "L2", outputFieldIds: [], int64Pk: true });

    const perNode = async () =>
      merge([await ask<SearchResult>(sa.nc, qnAddress, "querynode.SearchSegments", { segmentIds: segIds, spec: spec(query()), readPosition }, { timeoutMs: 30_000 })]);
    const perSegment = async () => {
      const s = spec(query());
      return merge(await Promise.all(segIds.map((id) => ask<SearchResult>(sa.nc, segAddress(id), "segment.Search", { spec: s, readPosition }, { timeoutMs: 30_000 }))));
    };
    // the two ways answer the same: the same query, the same top 10
    const q0 = query();
    const a = merge([await ask<SearchResult>(sa.nc, qnAddress, "querynode.SearchSegments", { segmentIds: segIds, spec: spec(q0), readPosition })]);
    const b = merge(await Promise.all(segIds.map((id) => ask<SearchResult>(sa.nc, segAddress(id), "segment.Search", { spec: spec(q0), readPosition }))));
    const same = JSON.stringify(Array.from(a.hits[0]!.ids as ArrayLike<bigint>, String)) === JSON.stringify(Array.from(b.hits[0]!.ids as ArrayLike<bigint>, String));

    const run = async (fn: () => Promise<unknown>) => {
      const end = Date.now() + seconds * 1000;
      let n = 0;
      await Promise.all(
        Array.from({ length: clients }, async () => {
          while (Date.now() < end) {
            await fn();
            n++;
          }
        }),
      );
      return Math.round(n / seconds);
    };
    await run(perNode); // warm both paths
    const perNodeQps = await run(perNode);
    const perSegmentQps = await run(perSegment);
    const perNodeQps2 = await run(perNode);
    // the floor: an empty round trip to the querynode's process (answered by its host, not a mailbox)
    const floorQps = await run(() => ask(sa.nc, qnAddress, "actor.Probe", null));
    report(args, {
      segments: segIds.length,
      rows_per_segment: rowsPer,
      dim,
      clients,
      same_results: same,
      per_node_qps: Math.max(perNodeQps, perNodeQps2),
      per_node_qps_runs: [perNodeQps, perNodeQps2],
      per_segment_qps: perSegmentQps,
      per_segment_over_per_node: Number((perSegmentQps / Math.max(perNodeQps, perNodeQps2)).toFixed(3)),
      messages_per_search: { per_node: 2, per_segment: 2 * segIds.length },
      empty_round_trip_qps: floorQps,
    });
  } finally {
    qn.kill("SIGKILL");
    await sa.stop();
    await nats.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
