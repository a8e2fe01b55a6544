import { AckPolicy, StorageType } from "@nats-io/jetstream";
import { describe, expect, it } from "vitest";
import { decode, encode } from "../../protocol/codec.ts";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import { Subjects } from "../../protocol/subjects.ts";
import { DmlLog, type DmlMessage } from "../../runtime/dml_log.ts";
import { ensureConsumer, ensureStream, jetstreamOf } from "../../runtime/streams.ts";
import { connectTest, uniquePrefix, waitFor } from "../harness/index.ts";

interface Row {
  ch: string;
  i: number;
}

async function newChannel(opts: { maxBytes?: number } = {}) {
  const nc = await connectTest();
  const s = new Subjects(uniquePrefix());
  const log = new DmlLog(nc);
  const stream = s.dmlStream(0);
  await log.ensureChannel(stream, s.dmlStreamSubjects(0), opts);
  return Object.assign(
    { nc, log, stream, a: s.dmlSubject(0, "100v0"), b: s.dmlSubject(0, "100v1") },
    { [Symbol.asyncDispose]: () => nc[Symbol.asyncDispose]() },
  );
}

async function expectVbError(p: Promise<unknown>): Promise<VbError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(VbError);
    return err as VbError;
  }
  throw new Error("expected a VbError");
}

/** Reads `subject` after `from` until `count` messages came, then stops. */
async function readN(log: DmlLog, stream: string, subject: string, from: bigint, count: number): Promise<DmlMessage[]> {
  const got: DmlMessage[] = [];
  if (count === 0) return got;
  const reader = await log.iterate(stream, subject, from);
  for await (const m of reader) {
    got.push(m);
    if (got.length === count) break;
  }
  return got;
}

describe("DML log on JetStream", () => {
  it("publishes 10,000 messages in batches and reads exactly one subject's messages after a position, in order", async () => {
    await using ch = await newChannel();
    // 10,000 rows on vchannel a, interleaved with 2,500 on vchannel b of the same stream
    const items: { subject: string; payload: Uint8Array; row: Row }[] = [];
    let ai = 0;
    let bi = 0;
    for (let k = 0; k < 12_500; k++) {
      const row: Row = k % 5 === 4 ? { ch: "b", i: bi++ } : { ch: "a", i: ai++ };
      items.push({ subject: row.ch === "a" ? ch.a : ch.b, payload: encode(row), row });
    }
    expect(ai).toBe(10_000);
    const positions: bigint[] = [];
    for (let k = 0; k < items.length; k += 1000) {
      positions.push(...(await ch.log.publishBatch(items.slice(k, k + 1000))));
    }
    expect(positions).toHaveLength(items.length);
    // one publisher: positions follow the order of the items exactly
    for (let k = 1; k < positions.length; k++) expect(positions[k]).toBe(positions[k - 1]! + 1n);

    const aPositions = items.map((it, k) => ({ it, pos: positions[k]! })).filter((x) => x.it.row.ch === "a");
    const bPositions = items.map((it, k) => ({ it, pos: positions[k]! })).filter((x) => x.it.row.ch === "b");
    expect(await ch.log.lastPosition(ch.stream, ch.a)).toBe(aPositions.at(-1)!.pos);
    expect(await ch.log.lastPosition(ch.stream, ch.b)).toBe(bPositions.at(-1)!.pos);
    expect(await ch.log.lastPosition(ch.stream, `${ch.a}x`)).toBe(0n);

    // from 0: all of a; from a position in the middle (a b-message's, then an a-message's): what follows it
    for (const from of [0n, bPositions[1234]!.pos, aPositions[6789]!.pos]) {
      const expected = aPositions.filter((x) => x.pos > from);
      const got = await readN(ch.log, ch.stream, ch.a, from, expected.length);
      expect(got.map((m) => m.position)).toEqual(expected.map((x) => x.pos));
      expect(got.map((m) => decode<Row>(m.data))).toEqual(expected.map((x) => x.it.row));
      expect(got.every((m) => m.subject === ch.a && m.timestamp > 0)).toBe(true);
    }
    // subject b from a position: only b's
    const fromB = aPositions[100]!.pos;
    const expectedB = bPositions.filter((x) => x.pos > fromB);
    const gotB = await readN(ch.log, ch.stream, ch.b, fromB, expectedB.length);
    expect(gotB.map((m) => decode<Row>(m.data))).toEqual(expectedB.map((x) => x.it.row));
    // from the last position: nothing until a new message, which then comes
    const last = aPositions.at(-1)!.pos;
    const tail = readN(ch.log, ch.stream, ch.a, last, 1);
    const newPos = await ch.log.publish(ch.a, encode({ ch: "a", i: 10_000 }));
    const [next] = await tail;
    expect(next!.position).toBe(newPos);
    expect(decode<Row>(next!.data)).toEqual({ ch: "a", i: 10_000 });
  });

  it("resumes a killed consumer from its last applied position with no gap and no duplicate while publishing goes on", async () => {
    await using ch = await newChannel();
    const total = 3000;
    // publisher: batches of 100 on a, some noise on b, until `total` rows on a
    const publishing = (async () => {
      for (let i = 0; i < total; i += 100) {
        const batch = [];
        for (let j = i; j < i + 100; j++) {
          batch.push({ subject: ch.a, payload: encode({ ch: "a", i: j }) });
          if (j % 7 === 0) batch.push({ subject: ch.b, payload: encode({ ch: "b", i: j }) });
        }
        await ch.log.publishBatch(batch, { maxInFlight: 64 });
      }
    })();

    // the consumer's durable state: what it applied and the position of the last applied message
    const applied: number[] = [];
    let lastApplied = 0n;
    const runs: number[] = [];
    for (const killAfter of [400, 1100, 1900]) {
      await using nc = await connectTest();
      const log = new DmlLog(nc);
      let killed = false;
      let inRun = 0;
      const c = await log.consume(ch.stream, ch.a, lastApplied, async (m) => {
        if (killed) return; // a dead process applies nothing
        applied.push(decode<Row>(m.data).i);
        lastApplied = m.position;
        inRun++;
        if (applied.length === killAfter) {
          // the process dies here, with messages still buffered and more being published
          killed = true;
          void nc.close();
        }
        if (inRun % 97 === 0) await new Promise((r) => setImmediate(r));
      });
      await waitFor(() => killed, { what: `the consumer to reach ${killAfter} applied`, timeoutMs: 30_000 });
      await Promise.allSettled([c.done]);
      runs.push(inRun);
    }
    // the last incarnation reads to the end
    await using nc = await connectTest();
    const final = await new DmlLog(nc).consume(ch.stream, ch.a, lastApplied, (m) => {
      applied.push(decode<Row>(m.data).i);
      lastApplied = m.position;
    });
    await publishing;
    await waitFor(() => applied.length >= total, { what: "all rows applied", timeoutMs: 30_000 });
    // the killed readers' consumers stay until the server's inactivity threshold; a stopped one deletes its own
    const { jsm } = await jetstreamOf(ch.nc);
    const consumers = async () => (await jsm.consumers.list(ch.stream).next()).length;
    const before = await consumers();
    await final.stop();
    expect(await consumers()).toBe(before - 1);
    expect(final.position).toBe(lastApplied);
    expect(runs).toEqual([400, 700, 800]);
    expect(applied).toEqual(Array.from({ length: total }, (_, i) => i));
    expect(await ch.log.lastPosition(ch.stream, ch.a)).toBe(lastApplied);
  });

  it("reads messages of mixed sizes, some larger than its read-ahead, in order and with no stall", async () => {
    await using ch = await newChannel();
    const log = new DmlLog(ch.nc, { readAheadBytes: 256 * 1024 });
    const sizes = [700_000, 10, 300_000, 100, 250_000, 1_000_000, 1, 130_000, 130_000];
    const items = Array.from({ length: 45 }, (_, i) => ({ subject: ch.a, payload: new Uint8Array(sizes[i % sizes.length]!).fill(i) }));
    const positions = await log.publishBatch(items, { maxInFlight: 4 });
    const got: DmlMessage[] = [];
    const c = await log.consume(ch.stream, ch.a, 0n, (m) => void got.push(m));
    // a pull whose byte budget is smaller than the next message would stall the reader for tens of seconds
    await waitFor(() => got.length === items.length, { what: "every message", timeoutMs: 15_000 });
    await c.stop();
    expect(got.map((m) => m.position)).toEqual(positions);
    expect(got.map((m) => m.data.byteLength)).toEqual(items.map((it) => it.payload.byteLength));
    expect(got.map((m) => m.data[0] ?? 0)).toEqual(items.map((_, i) => i));
  });

  it("has no more than its read-ahead delivered ahead of a reader that does not take it", async () => {
    await using ch = await newChannel();
    const log = new DmlLog(ch.nc, { readAheadBytes: 256 * 1024 });
    await log.publishBatch(Array.from({ length: 40 }, () => ({ subject: ch.a, payload: new Uint8Array(100_000) })));
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let handled = 0;
    const c = await log.consume(ch.stream, ch.a, 0n, async () => {
      handled++;
      if (handled === 1) await held;
    });
    const { jsm } = await jetstreamOf(ch.nc);
    const delivered = async () => {
      const infos = await jsm.consumers.list(ch.stream).next();
      return Math.max(0, ...infos.map((ci) => ci.delivered.stream_seq));
    };
    await waitFor(async () => (await delivered()) >= 1, { what: "the first delivery" });
    // while the first message is held, the server has sent at most one pull's worth (256 KiB: 2 messages)
    const deadline = Date.now() + 500;
    while (Date.now() < deadline) {
      expect(await delivered()).toBeLessThanOrEqual(2);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(handled).toBe(1);
    release();
    await waitFor(() => handled === 40, { what: "the rest once released" });
    await c.stop();
  });

  it("stops delivering at stop() and ends the consumption with the handler's error", async () => {
    await using ch = await newChannel();
    await ch.log.publishBatch(Array.from({ length: 50 }, (_, i) => ({ subject: ch.a, payload: encode({ ch: "a", i }) })));
    const seen: number[] = [];
    const c = await ch.log.consume(ch.stream, ch.a, 0n, (m) => {
      const row = decode<Row>(m.data);
      if (row.i === 20) throw new Error("cannot apply row 20");
      seen.push(row.i);
    });
    await expect(c.done).rejects.toThrow(/cannot apply row 20/);
    expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(c.position).toBe(20n); // row 19 was at position 20: resume from there
    const again: number[] = [];
    const c2 = await ch.log.consume(ch.stream, ch.a, c.position, (m) => void again.push(decode<Row>(m.data).i));
    await waitFor(() => again.length === 30, { what: "the rest" });
    await c2.stop();
    await c2.done;
    await ch.log.publish(ch.a, encode({ ch: "a", i: 50 }));
    expect(again).toEqual(Array.from({ length: 30 }, (_, i) => i + 20));
  });

  it("refuses a payload over the server's max_payload with a clear 1102 error instead of hanging", async () => {
    await using ch = await newChannel();
    const big = new Uint8Array(2 * 1024 * 1024);
    const err = await expectVbError(ch.log.publish(ch.a, big));
    expect(err.code).toBe(ErrorCode.ParameterTooLarge);
    expect(err.message).toMatch(/exceeds the server's max_payload of 1048576 bytes: split it/);
    const batchErr = await expectVbError(
      ch.log.publishBatch([
        { subject: ch.a, payload: encode({ ch: "a", i: 0 }) },
        { subject: ch.a, payload: big },
      ]),
    );
    expect(batchErr.code).toBe(ErrorCode.ParameterTooLarge);
    // a batch with an oversized item publishes nothing
    expect(await ch.log.lastPosition(ch.stream, ch.a)).toBe(0n);
    // just under the limit goes through
    const pos = await ch.log.publish(ch.a, new Uint8Array(1024 * 1024 - 1024));
    expect(await ch.log.lastPosition(ch.stream, ch.a)).toBe(pos);
    // a subject no stream stores is refused at once, not after a timeout
    const nowhere = await expectVbError(ch.log.publish(`${uniquePrefix()}.dml.0.x`, encode(1)));
    expect(nowhere.code).toBe(ErrorCode.MqTopicNotFound);
    expect(nowhere.message).toMatch(/no stream stores/);
  });

  it("refuses to start a reader at a position the stream no longer holds, unless a gap is allowed", async () => {
    await using ch = await newChannel({ maxBytes: 20_000 });
    const positions = await ch.log.publishBatch(
      Array.from({ length: 100 }, (_, i) => ({ subject: ch.a, payload: encode({ ch: "a", i, pad: new Uint8Array(500) }) })),
    );
    const { jsm } = await jetstreamOf(ch.nc);
    const first = BigInt((await jsm.streams.info(ch.stream)).state.first_seq);
    expect(first).toBeGreaterThan(2n);
    const err = await expectVbError(ch.log.iterate(ch.stream, ch.a, 1n));
    expect(err.code).toBe(ErrorCode.MqInternal);
    expect(err.message).toMatch(/no longer holds position 2/);
    const rest = positions.filter((p) => p >= first);
    const got = [];
    const reader = await ch.log.iterate(ch.stream, ch.a, 1n, { allowGap: true });
    for await (const m of reader) {
      got.push(m.position);
      if (got.length === rest.length) break;
    }
    expect(got).toEqual(rest);
    const missing = await expectVbError(ch.log.lastPosition(`${ch.stream}_NOPE`, ch.a));
    expect(missing.code).toBe(ErrorCode.MqTopicNotFound);
  });

  it("ensures streams and consumers idempotently, updates what may change and refuses what cannot", async () => {
    await using ch = await newChannel();
    const { jsm } = await jetstreamOf(ch.nc);
    const subjects = [`${ch.a.slice(0, ch.a.lastIndexOf("."))}.*`];
    // same settings again: nothing changes
    await ch.log.ensureChannel(ch.stream, subjects[0]!);
    // a limit that may change is updated
    await ch.log.ensureChannel(ch.stream, subjects[0]!, { maxBytes: 1_000_000 });
    expect((await jsm.streams.info(ch.stream)).config.max_bytes).toBe(1_000_000);
    // storage cannot change
    const storage = await expectVbError(ensureStream(jsm, { name: ch.stream, subjects, storage: StorageType.Memory }));
    expect(storage.code).toBe(ErrorCode.ParameterInvalid);
    expect(storage.message).toMatch(/storage.*cannot change/);

    const durable = { durable_name: "reader", filter_subject: ch.a, ack_policy: AckPolicy.Explicit, max_ack_pending: 100 } as const;
    const c1 = await ensureConsumer(jsm, ch.stream, durable);
    const c2 = await ensureConsumer(jsm, ch.stream, durable);
    expect(c2.created).toBe(c1.created);
    const updated = await ensureConsumer(jsm, ch.stream, { ...durable, max_ack_pending: 200 });
    expect(updated.config.max_ack_pending).toBe(200);
    const filter = await expectVbError(ensureConsumer(jsm, ch.stream, { ...durable, filter_subject: ch.b }));
    expect(filter.message).toMatch(/filter_subject.*cannot change/);
    const multi = await expectVbError(ensureConsumer(jsm, ch.stream, { durable_name: "multi", filter_subjects: [ch.a, ch.b] }));
    expect(multi.code).toBe(ErrorCode.ParameterInvalid);
    expect(multi.message).toMatch(/one filter_subject per consumer/);
  });
});
