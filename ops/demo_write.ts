/**
 * `vbus demo write`: a standalone of its own in a temporary directory; creates a collection (Int64 pk,
 * VarChar, Float, JSON, FloatVector), inserts rows in batches, flushes, and reports what was written.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { clientOf } from "../actors/control/client.ts";
import { defaultConfig } from "./config.ts";
import { startStandalone } from "./standalone.ts";
import { demoSchema, randomRows } from "./random_rows.ts";

export interface DemoWriteResult {
  rows_inserted: number;
  rows_flushed: number;
  segments_flushed: number;
  insert_rows_per_s: number;
  flush_s: number;
}

export async function demoWrite(opts: { rows: number; dim: number; batch?: number }): Promise<DemoWriteResult> {
  const dir = await mkdtemp(join(tmpdir(), "vbus-demo-"));
  try {
    await using sa = await startStandalone({ ...defaultConfig({}), dataDir: dir, prefix: "demo" });
    const vb = clientOf(sa.nc, { prefix: "demo" });
    const schema = demoSchema("demo_write", opts.dim);
    await vb.createCollection({ schema, shardsNum: 2 });
    const batch = opts.batch ?? 5_000;
    const t0 = performance.now();
    let inserted = 0;
    for (let off = 0; off < opts.rows; off += batch) {
      const res = await vb.insert({ collectionName: schema.name, rows: randomRows(schema, off, Math.min(batch, opts.rows - off)) });
      inserted += res.insertCount;
    }
    const insertS = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    await vb.flush({ collectionNames: [schema.name] });
    const flushS = (performance.now() - t1) / 1000;
    const stats = await vb.getCollectionStatistics({ collectionName: schema.name });
    return {
      rows_inserted: inserted,
      rows_flushed: stats.flushedRows,
      segments_flushed: stats.segments,
      insert_rows_per_s: Math.round(inserted / insertS),
      flush_s: Number(flushS.toFixed(3)),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
