/**
 * The insert benchmark: rows through the native API (client → proxy → DML channels) on a standalone of
 * its own, against a plain JetStream publish of the same encoded InsertMsg batches to a bare stream on
 * the same nats-server, in the same run. Both loads come from a worker thread with its own NATS
 * connection (a client process); the main thread hosts the standalone.
 *
 * `npm run bench -- insert --rows 100000 --dim 128 --json` prints
 * `{insert_rows_per_s, raw_publish_rows_per_s, ratio, ...}`: `insert_rows_per_s` sends columns (typed
 * arrays, as a bulk loader does); `insert_rows_per_s_row_objects` sends the same rows as objects.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encode } from "../protocol/codec.ts";
import type { InsertMsg } from "../protocol/dml.ts";
import { normalizeSchema } from "../protocol/schema.ts";
import { clientOf } from "../actors/control/client.ts";
import { validateRows } from "../actors/proxy/validate.ts";
import { splitByShard } from "../actors/proxy/shard_split.ts";
import { Worker } from "node:worker_threads";
import { defaultConfig } from "../ops/config.ts";
import { startStandalone } from "../ops/standalone.ts";
import { demoSchema, randomRows } from "../ops/random_rows.ts";
import { option, report, round } from "./util.ts";

export async function main(args: string[]): Promise<void> {
  const rows = option(args, "rows", 100_000);
  const dim = option(args, "dim", 128);
  const batch = option(args, "batch", 2_000);
  const clients = option(args, "clients", 4);
  const dir = await mkdtemp(join(tmpdir(), "vbus-bench-"));
  try {
    await using sa = await startStandalone({ ...defaultConfig({}), dataDir: dir, prefix: "bench" });
    const vb = clientOf(sa.nc, { prefix: "bench" });
    const schema = demoSchema("bench_insert", dim);
    const info = await vb.createCollection({ schema, shardsNum: 2 });
    const batches: Record<string, unknown>[][] = [];
    for (let off = 0; off < rows; off += batch) batches.push(randomRows(schema, off, Math.min(batch, rows - off)));

    // Raw: the same rows, encoded as the proxy encodes them, published to a bare stream.
    const norm = normalizeSchema(schema);
    const payloads: Uint8Array[] = [];
    for (const b of batches) {
      const v = validateRows(norm, b);
      const parts = splitByShard(norm, v.columns, v.pkIndex, v.numRows, 2, {
        maxRows: sa.env.config.maxRowsPerMessage,
        maxBytes: Math.floor((sa.nc.info?.max_payload ?? 1 << 20) * 0.7),
      });
      for (const p of parts) {
        const msg: InsertMsg = { k: "insert", collectionId: 1n, partitionId: 1n, ts: 1n, numRows: p.numRows, pks: p.pks, columns: p.columns };
        payloads.push(encode(msg));
      }
    }
    // the same rows as columns: typed arrays for numbers and vectors
    const columnBatches = batches.map((b) => ({
      id: BigInt64Array.from(b, (r) => r.id as bigint),
      title: b.map((r) => r.title as string),
      price: Float32Array.from(b, (r) => r.price as number),
      meta: b.map((r) => r.meta),
      vec: (() => {
        const flat = new Float32Array(b.length * dim);
        b.forEach((r, i) => flat.set(r.vec as Float32Array, i * dim));
        return flat;
      })(),
    }));
    // and as row objects, under other primary keys
    const rowBatches = batches.map((b, k) => b.map((r, i) => ({ ...r, id: BigInt(rows + k * batch + i) })));

    // The load generator runs in a worker thread with its own connection, as a client process would;
    // this thread hosts the standalone (proxy, coordinators, datanode, querynode).
    const timings = await new Promise<{ rawS: number; columnsS: number; rowsS: number }>((resolve, reject) => {
      const w = new Worker(new URL("../runtime/ts_worker.mjs", import.meta.url), {
        workerData: {
          module: new URL("./insert_client.ts", import.meta.url).href,
          natsUrl: sa.natsUrl,
          prefix: "bench",
          collectionName: info.name,
          clients,
          rawPayloads: payloads,
          columnBatches,
          rowBatches,
        },
      });
      w.once("message", resolve);
      w.once("error", reject);
      w.once("exit", (code) => (code === 0 ? undefined : reject(new Error(`insert client exited with ${code}`))));
    });
    const rawS = timings.rawS;
    const vbS = timings.columnsS;
    const rowS = timings.rowsS;

    report(args, {
      insert_rows_per_s: round(rows / vbS),
      insert_rows_per_s_row_objects: round(rows / rowS),
      raw_publish_rows_per_s: round(rows / rawS),
      ratio: round(rows / vbS / (rows / rawS), 3),
      rows,
      dim,
      batch_rows: batch,
      clients,
      messages: payloads.length,
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
