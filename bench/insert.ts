/**
 * The insert benchmark: rows through the native API (client → proxy → DML channels) on a standalone of
 * its own, against a plain JetStream publish of the same encoded InsertMsg batches to a bare stream on
 * the same nats-server, in the same run. Both loads come from a worker thread with its own NATS
 * connection (a client process); the main thread hosts the standalone.
 *
 * `npm run bench -- insert --rows 100000 --dim 128 --json` prints
 * `{insert_rows_per_s, raw_publish_rows_per_s, ratio, ...}`: `insert_rows_per_s` sends columns (typed
 * arrays, as a bulk loader does); `insert_rows_per_s_row_objects` sends the same rows as objects.
 * `pipeline_floor_rows_per_s` is the same path with no work at its ends (the same request bytes to a bare
 * subscriber that publishes pre-encoded messages, and a consumer that drops them): the most the shape of
 * the path (a request hop, the stream, one reader) allows on this machine.
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
    // Raw: the rows, encoded as the proxy encodes them, for the bare stream. The rows themselves are
    // made again in the load generator's thread: this thread (the standalone's) keeps none of them, so
    // its garbage collector does not walk the benchmark's data.
    const norm = normalizeSchema(schema);
    const maxBytes = Math.floor((sa.nc.info?.max_payload ?? 1 << 20) * 0.7);
    const payloads: Uint8Array[] = [];
    const payloadsOfBatch: Uint8Array[][] = [];
    for (let off = 0; off < rows; off += batch) {
      const v = validateRows(norm, randomRows(schema, off, Math.min(batch, rows - off)));
      const parts = splitByShard(norm, v.columns, v.pkIndex, v.numRows, 2, { maxRows: sa.env.config.maxRowsPerMessage, maxBytes });
      const mine = parts.map((p) => {
        const msg: InsertMsg = { k: "insert", collectionId: 1n, partitionId: 1n, ts: 1n, numRows: p.numRows, pks: p.pks, columns: p.columns };
        return encode(msg);
      });
      payloads.push(...mine);
      payloadsOfBatch.push(mine);
    }

    // The pipeline floor: what the path client → request → publish to the DML stream → one consumer costs
    // with no work at either end: a bare subscriber that publishes the batch's pre-encoded InsertMsgs and
    // replies, and a consumer that drops what it reads. Vectorbus cannot insert faster than this.
    const floorStream = "BENCH_FLOOR_INSERT";
    await sa.env.dml.ensureChannel(floorStream, "benchfloor.dml.>");
    const floorSub = sa.nc.subscribe("benchfloor.req.*", {
      callback: (_err, m) => {
        const i = Number(m.subject.slice("benchfloor.req.".length));
        const parts = payloadsOfBatch[i]!;
        void sa.env.dml
          .publishBatch(parts.map((payload, k) => ({ subject: `benchfloor.dml.v${k % 2}`, payload })))
          .then(() => m.respond(encode({ ok: true })));
      },
    });
    const floorReaders = await Promise.all(
      [0, 1].map((k) => sa.env.dml.consume(floorStream, `benchfloor.dml.v${k}`, 0n, () => undefined)),
    );

    // The load generator runs in a worker thread with its own connection, as a client process would;
    // this thread hosts the standalone (proxy, coordinators, datanode, querynode).
    const timings = await new Promise<{ rawS: number; floorS: number; columnsS: number; rowsS: number }>((resolve, reject) => {
      const w = new Worker(new URL("../runtime/ts_worker.mjs", import.meta.url), {
        workerData: {
          module: new URL("./insert_client.ts", import.meta.url).href,
          natsUrl: sa.natsUrl,
          prefix: "bench",
          collectionName: info.name,
          clients,
          rawPayloads: payloads,
          rows,
          dim,
          batch,
        },
      });
      w.once("message", resolve);
      w.once("error", reject);
      w.once("exit", (code) => (code === 0 ? undefined : reject(new Error(`insert client exited with ${code}`))));
    });
    floorSub.unsubscribe();
    await Promise.all(floorReaders.map((r) => r.stop()));
    const rawS = timings.rawS;
    const vbS = timings.columnsS;
    const rowS = timings.rowsS;

    report(args, {
      insert_rows_per_s: round(rows / vbS),
      insert_rows_per_s_row_objects: round(rows / rowS),
      raw_publish_rows_per_s: round(rows / rawS),
      pipeline_floor_rows_per_s: round(rows / timings.floorS),
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
