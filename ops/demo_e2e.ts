/**
 * `vbus demo e2e`: a standalone of its own with 2 querynodes. Loads a collection with 2 shards and 2
 * replicas, checks search against brute force and filters against plain JS, runs read-your-writes with
 * Strong reads, then a handoff run (a writer inserting and flushing while a reader counts), and reports.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { clientOf } from "../actors/control/client.ts";
import type { CollectionSchema } from "../protocol/schema.ts";
import { defaultConfig } from "./config.ts";
import { startStandalone } from "./standalone.ts";
import { rng } from "./random_rows.ts";

export interface DemoE2eResult {
  rows: number;
  exact_match: boolean;
  filters_ok: boolean;
  strong_reads_ok: boolean;
  handoff_flushes: number;
  handoff_anomalies: number;
  count_ok: boolean;
}

const DIM = 32;

function row(i: number) {
  const r = rng(7 + i);
  return {
    id: BigInt(i),
    category: i % 10,
    price: Math.fround(((i * 37) % 1000) / 10),
    vec: Float32Array.from({ length: DIM }, () => r() * 2 - 1),
  };
}

export async function demoE2e(opts: { rows: number; flushes: number }): Promise<DemoE2eResult> {
  const dir = await mkdtemp(join(tmpdir(), "vbus-demo-"));
  try {
    await using sa = await startStandalone({ ...defaultConfig({}), dataDir: dir, prefix: "demo", querynodes: 2 });
    const vb = clientOf(sa.nc, { prefix: "demo" });
    const schema: CollectionSchema = {
      name: "demo_e2e",
      fields: [
        { name: "id", type: "Int64", isPrimaryKey: true },
        { name: "category", type: "Int32" },
        { name: "price", type: "Float" },
        { name: "vec", type: "FloatVector", dim: DIM },
      ],
    };
    await vb.createCollection({ schema, shardsNum: 2 });
    const rows = Array.from({ length: opts.rows }, (_, i) => row(i));
    const half = Math.floor(rows.length / 2);
    for (let off = 0; off < half; off += 5_000) await vb.insert({ collectionName: schema.name, rows: rows.slice(off, Math.min(half, off + 5_000)) });
    await vb.flush({ collectionNames: [schema.name] });
    await vb.loadCollection({ collectionName: schema.name, replicaNumber: 2, wait: true });
    for (let off = half; off < rows.length; off += 5_000) await vb.insert({ collectionName: schema.name, rows: rows.slice(off, off + 5_000) });

    // exact search: ids equal brute force, for each metric
    let exact = true;
    for (const metric of ["L2", "IP", "COSINE"] as const) {
      for (let qi = 0; qi < 3; qi++) {
        const r = rng(500 + qi);
        const q = Float32Array.from({ length: DIM }, () => r() * 2 - 1);
        const res = await vb.search({ collectionName: schema.name, data: [q], limit: 10, metricType: metric, consistencyLevel: "Strong" });
        const want = rows
          .map((x) => {
            let dot = 0, l2 = 0, nq = 0, nv = 0;
            for (let j = 0; j < DIM; j++) {
              dot += q[j]! * x.vec[j]!;
              l2 += (q[j]! - x.vec[j]!) ** 2;
              nq += q[j]! ** 2;
              nv += x.vec[j]! ** 2;
            }
            return { id: x.id, s: metric === "L2" ? l2 : metric === "IP" ? dot : dot / Math.sqrt(nq * nv) };
          })
          .sort((a, b) => (metric === "L2" ? a.s - b.s : b.s - a.s))
          .slice(0, 10)
          .map((x) => x.id);
        exact &&= JSON.stringify(Array.from(res.results[0]!.ids as BigInt64Array, String)) === JSON.stringify(want.map(String));
      }
    }
    // filters: query results equal the same predicate in JS
    let filtersOk = true;
    const filters: [string, (r: ReturnType<typeof row>) => boolean][] = [
      ["category in [2, 4]", (r) => r.category === 2 || r.category === 4],
      ["price >= 10 and price < 30.5", (r) => r.price >= 10 && r.price < 30.5],
      ["id % 7 == 0 or category == 9", (r) => Number(r.id) % 7 === 0 || r.category === 9],
    ];
    for (const [expr, pred] of filters) {
      const res = await vb.query({ collectionName: schema.name, filter: expr, outputFields: ["count(*)"], consistencyLevel: "Strong" });
      filtersOk &&= res.rows[0]!["count(*)"] === rows.filter(pred).length;
    }
    // read-your-writes
    let strongOk = true;
    let next = opts.rows;
    for (let i = 0; i < 200; i++) {
      const x = row(next++);
      await vb.insert({ collectionName: schema.name, rows: [x] });
      const q = await vb.query({ collectionName: schema.name, ids: [x.id], outputFields: ["id"], consistencyLevel: "Strong" });
      strongOk &&= q.rows.length === 1;
    }
    // handoff: a writer inserting and flushing, a reader counting with Strong reads
    let acked = next;
    let sent = next;
    let flushes = 0;
    let anomalies = 0;
    let done = false;
    const writer = (async () => {
      while (flushes < opts.flushes) {
        const batch = Array.from({ length: 100 }, () => row(next++));
        sent += batch.length;
        await vb.insert({ collectionName: schema.name, rows: batch });
        acked += batch.length;
        await vb.flush({ collectionNames: [schema.name] });
        flushes++;
      }
      done = true;
    })();
    while (!done) {
      const low = acked;
      const res = await vb.query({ collectionName: schema.name, outputFields: ["count(*)"], consistencyLevel: "Strong" });
      const n = res.rows[0]!["count(*)"] as number;
      if (n < low || n > sent) anomalies++;
    }
    await writer;
    const final = await vb.query({ collectionName: schema.name, outputFields: ["count(*)"], consistencyLevel: "Strong" });
    return {
      rows: acked,
      exact_match: exact,
      filters_ok: filtersOk,
      strong_reads_ok: strongOk,
      handoff_flushes: flushes,
      handoff_anomalies: anomalies,
      count_ok: final.rows[0]!["count(*)"] === acked,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
