/**
 * The datanode's write buffer without NATS: segment cutting per partition, the seal policy, deletes and
 * upserts, flush, the checkpoint, and the replay property — a datanode killed at any moment and restarted
 * from its checkpoint with datacoord's segment records ends with every row in exactly one Flushed
 * segment and the same visible data as the stream says.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { DmlMsg } from "../../protocol/dml.ts";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import type { SegmentInfo, SegmentLevel, SegmentState } from "../../protocol/meta.ts";
import type { CollectionSchema } from "../../protocol/schema.ts";
import { computeCheckpoint } from "../../actors/datanode/checkpoint.ts";
import { WriteBuffer, type BufferEvents, type BufferedSegment } from "../../actors/datanode/write_buffer.ts";
import { segmentInfo } from "./segment_fixture.ts";

const SCHEMA: CollectionSchema = {
  name: "c",
  fields: [
    { fieldId: 100, name: "id", type: "Int64", isPrimaryKey: true },
    { fieldId: 101, name: "v", type: "Int32" },
    { fieldId: 102, name: "vec", type: "FloatVector", dim: 2 },
  ],
};
const COLL = 1n;
const VCH = "1v0";
const POLICY = { maxRows: 1_000_000, maxBytes: 1e12, idleMs: 60_000 };

function insert(pks: number[], v: number, partitionId = 10n, k: "insert" | "upsert" = "insert"): DmlMsg {
  return {
    k,
    collectionId: COLL,
    partitionId,
    ts: BigInt(v) * 1000n,
    numRows: pks.length,
    pks: BigInt64Array.from(pks.map(BigInt)),
    columns: [
      { fieldId: 100, data: BigInt64Array.from(pks.map(BigInt)) },
      { fieldId: 101, data: Int32Array.from(pks.map(() => v)) },
      { fieldId: 102, data: Float32Array.from(pks.flatMap((p) => [p, v])) },
    ],
  };
}

function del(pks: number[], partitionId = -1n): DmlMsg {
  return { k: "delete", collectionId: COLL, partitionId, ts: 7n, pks: BigInt64Array.from(pks.map(BigInt)) };
}

function newBuffer(opts: { policy?: typeof POLICY; checkpoint?: bigint; known?: SegmentInfo[] } = {}) {
  return new WriteBuffer({
    collectionId: COLL,
    vchannel: VCH,
    schema: SCHEMA,
    sealPolicy: opts.policy ?? POLICY,
    checkpoint: { position: opts.checkpoint ?? 0n, ts: 0n },
    ...(opts.known ? { known: opts.known } : {}),
  });
}

/** The error `apply` throws for a message it refuses. */
function applyError(buf: WriteBuffer, position: bigint, msg: DmlMsg): VbError | undefined {
  try {
    buf.apply(position, msg, 0);
  } catch (e) {
    return e as VbError;
  }
  return undefined;
}

function rowsOf(buf: WriteBuffer, seg: BufferedSegment): Array<[bigint, number, bigint]> {
  const d = buf.materialize(seg);
  const ids = d.columns[0]!.data as BigInt64Array;
  const vs = d.columns[1]!.data as Int32Array;
  return Array.from(ids, (id, i) => [id, vs[i]!, d.positions[i]!]);
}

describe("checkpoint", () => {
  it("is just before the oldest pending start, or the consumed position when nothing is pending", () => {
    expect(computeCheckpoint([], { position: 9n, ts: 90n })).toEqual({ position: 9n, ts: 90n });
    expect(
      computeCheckpoint(
        [
          { start: 7n, tsBefore: 60n },
          { start: 4n, tsBefore: 30n },
        ],
        { position: 9n, ts: 90n },
      ),
    ).toEqual({ position: 3n, ts: 30n });
  });
});

describe("write buffer", () => {
  it("opens one growing segment per partition at its first insert and buffers rows with their positions", () => {
    const buf = newBuffer();
    const e1 = buf.apply(1n, insert([1, 2], 1, 10n), 0);
    expect(e1.opened.map((s) => [s.partitionId, s.start])).toEqual([[10n, 1n]]);
    const e2 = buf.apply(2n, insert([3], 2, 20n), 0);
    expect(e2.opened.map((s) => [s.partitionId, s.start])).toEqual([[20n, 2n]]);
    const e3 = buf.apply(3n, insert([4], 3, 10n), 0);
    expect(e3.opened).toEqual([]);
    expect(buf.growingCount()).toBe(2);
    expect(buf.bufferedRows()).toBe(4);
    const [p10] = buf.unflushed();
    expect(rowsOf(buf, p10!)).toEqual([
      [1n, 1, 1n],
      [2n, 1, 1n],
      [4n, 3, 3n],
    ]);
    expect(buf.checkpoint()).toEqual({ position: 0n, ts: 0n });
    // a redelivered message changes nothing
    expect(buf.apply(2n, insert([99], 9, 10n), 0)).toEqual({ opened: [], sealed: [] });
    expect(buf.bufferedRows()).toBe(4);
  });

  it("seals by maxRows at the message that reaches it, and the next insert opens a new segment", () => {
    const buf = newBuffer({ policy: { ...POLICY, maxRows: 3 } });
    buf.apply(1n, insert([1, 2], 1), 0);
    const e = buf.apply(2n, insert([3, 4], 2), 0);
    expect(e.sealed.map((s) => [s.start, s.end, s.numRows])).toEqual([[1n, 2n, 4]]);
    const e2 = buf.apply(3n, insert([5], 3), 0);
    expect(e2.opened.map((s) => s.start)).toEqual([3n]);
  });

  it("seals by bytes and by idle time", () => {
    const buf = newBuffer({ policy: { ...POLICY, maxBytes: 100, idleMs: 1_000 } });
    // a row: 16 system bytes + 8 + 4 + 8 = 36 bytes
    expect(buf.apply(1n, insert([1, 2], 1), 0).sealed).toEqual([]);
    expect(buf.apply(2n, insert([3], 1), 0).sealed.map((s) => s.numRows)).toEqual([3]);
    buf.apply(3n, insert([4], 1, 20n), 5_000);
    expect(buf.sealIdle(5_500).sealed).toEqual([]);
    const idle = buf.sealIdle(6_000);
    expect(idle.sealed.map((s) => [s.partitionId, s.start, s.end])).toEqual([[20n, 3n, 3n]]);
  });

  it("drops deleted pks from growing segments, buffers the deletes, and cuts them into an L0 segment on flush", () => {
    const buf = newBuffer();
    buf.apply(1n, insert([1, 2, 3], 1, 10n), 0);
    buf.apply(2n, insert([4], 1, 20n), 0);
    buf.apply(3n, del([2, 4, 77]), 0); // every partition
    buf.apply(4n, del([3], 20n), 0); // partition 20 only: pk 3 lives in 10 and stays
    const ev = buf.requestFlush(4n);
    const l1 = ev.sealed.filter((s) => s.level === "L1");
    const l0 = ev.sealed.filter((s) => s.level === "L0");
    expect(l1.map((s) => [s.partitionId, s.numRows, s.end])).toEqual([
      [10n, 2, 4n],
      [20n, 0, 4n],
    ]);
    expect(rowsOf(buf, l1[0]!).map((r) => r[0])).toEqual([1n, 3n]);
    expect(l0.length).toBe(1);
    expect(ev.opened).toContain(l0[0]);
    expect([l0[0]!.partitionId, l0[0]!.start, l0[0]!.end]).toEqual([-1n, 3n, 4n]);
    const d = buf.materializeDeletes(l0[0]!);
    expect(Array.from(d.pks as BigInt64Array)).toEqual([2n, 4n, 77n, 3n]);
    expect(Array.from(d.positions)).toEqual([3n, 3n, 3n, 4n]);
    expect(Array.from(d.partitionIds)).toEqual([-1n, -1n, -1n, 20n]);
    expect(buf.checkpoint()).toEqual({ position: 0n, ts: 0n });
    for (const s of [...l1, ...l0]) buf.markFlushed(s);
    expect(buf.checkpoint().position).toBe(4n);
  });

  it("applies an upsert's delete before its insert: the pk is held once, with the new values", () => {
    const buf = newBuffer();
    buf.apply(1n, insert([1, 2], 1, 10n), 0);
    buf.apply(2n, insert([3], 1, 20n), 0);
    buf.apply(3n, insert([1, 3], 9, 10n, "upsert"), 0); // pk 3 moves from partition 20 to 10
    const ev = buf.requestFlush(3n);
    const p10 = ev.sealed.find((s) => s.level === "L1" && s.partitionId === 10n)!;
    const p20 = ev.sealed.find((s) => s.level === "L1" && s.partitionId === 20n)!;
    expect(rowsOf(buf, p10)).toEqual([
      [2n, 1, 1n],
      [1n, 9, 3n],
      [3n, 9, 3n],
    ]);
    expect(p20.numRows).toBe(0);
    const l0 = ev.sealed.find((s) => s.level === "L0")!;
    expect(Array.from(buf.materializeDeletes(l0).positions)).toEqual([3n, 3n]);
  });

  it("tells every Int64 key apart, beyond ±2^53 and negative, and deletes each repeat of a key", () => {
    const big = [2n ** 63n - 1n, 2n ** 53n, 2n ** 53n + 1n, -(2n ** 63n), -(2n ** 53n) - 1n, -1n, 0n, 4294967296n, -4294967297n];
    const msg = (pks: bigint[], v: number): DmlMsg => ({
      k: "insert",
      collectionId: COLL,
      partitionId: 10n,
      ts: BigInt(v) * 1000n,
      numRows: pks.length,
      pks: BigInt64Array.from(pks),
      columns: [
        { fieldId: 100, data: BigInt64Array.from(pks) },
        { fieldId: 101, data: Int32Array.from(pks.map(() => v)) },
        { fieldId: 102, data: new Float32Array(pks.length * 2) },
      ],
    });
    const buf = newBuffer();
    buf.apply(1n, msg(big, 1), 0);
    buf.apply(2n, msg([2n ** 53n + 1n, -1n], 2), 0); // repeats of two keys
    buf.apply(3n, { k: "delete", collectionId: COLL, partitionId: -1n, ts: 3000n, pks: BigInt64Array.from([2n ** 53n + 1n, -1n, 2n ** 63n - 1n]) }, 0);
    const ev = buf.requestFlush(3n);
    const seg = ev.sealed.find((s) => s.level === "L1")!;
    expect(rowsOf(buf, seg).map((r) => r[0])).toEqual([2n ** 53n, -(2n ** 63n), -(2n ** 53n) - 1n, 0n, 4294967296n, -4294967297n]);
  });

  it("waits for the flush position before sealing; segments that start after it are left growing", () => {
    const buf = newBuffer();
    buf.apply(1n, insert([1], 1, 10n), 0);
    expect(buf.requestFlush(3n).sealed).toEqual([]);
    expect(buf.pendingFlush).toBe(3n);
    expect(buf.apply(2n, insert([2], 1, 10n), 0).sealed).toEqual([]);
    const ev = buf.apply(3n, insert([3], 1, 20n), 0);
    expect(ev.sealed.map((s) => [s.partitionId, s.end])).toEqual([
      [10n, 3n],
      [20n, 3n],
    ]);
    buf.apply(4n, insert([4], 1, 10n), 0);
    expect(buf.requestFlush(3n).sealed).toEqual([]); // already past 3, and the new segment starts at 4
    expect(buf.growingCount()).toBe(1);
  });

  it("refuses malformed messages with 1100 naming the field, changing nothing; skip moves past them", () => {
    const buf = newBuffer();
    const bad = insert([1, 2], 1);
    (bad as { columns: unknown[] }).columns = [bad.k === "insert" ? bad.columns[0] : null, { fieldId: 101, data: new Int32Array(1) }];
    const err = applyError(buf, 1n, bad);
    expect(err).toBeInstanceOf(VbError);
    expect(err!.code).toBe(ErrorCode.ParameterInvalid);
    expect(err!.message).toMatch(/"v"/);
    expect(buf.consumed).toBe(0n);
    buf.passOver(1n);
    expect(buf.consumed).toBe(1n);
    expect(() => buf.apply(2n, { ...insert([1], 1), collectionId: 5n }, 0)).toThrow(/collectionId/);
    expect(() => buf.apply(3n, { ...insert([1], 1), pks: ["a"] }, 0)).toThrow(/pks/);
    expect(() => buf.apply(4n, { ...insert([1], 1), partitionId: -1n }, 0)).toThrow(/partitionId/);
    expect(() => buf.apply(5n, { k: "nope" } as unknown as DmlMsg, 0)).toThrow(VbError);
    buf.passOver(5n);
    expect(buf.consumed).toBe(5n);
    expect(buf.bufferedRows()).toBe(0);
  });

  it("seals nothing on a malformed message: the seals it would cause come from skip, so they are reported", () => {
    // a Sealed segment being refilled up to 5, and a flush asked at 5 with a growing segment open
    const refill: SegmentInfo = segmentInfo(7n, { state: "Sealed", numRows: 1, endPosition: 5n, endTs: 5000n });
    const buf = newBuffer({ known: [refill] });
    buf.apply(1n, insert([1], 1, 10n), 0);
    buf.apply(4n, insert([4], 4, 20n), 0);
    expect(buf.requestFlush(5n).sealed).toEqual([]);
    const err = applyError(buf, 5n, { ...insert([5], 5, 20n), pks: ["x"] });
    expect(err?.code).toBe(ErrorCode.ParameterInvalid);
    expect(buf.consumed).toBe(4n);
    expect(buf.unflushed().map((s) => s.state)).toEqual(["growing", "growing"]);
    const ev = buf.passOver(5n);
    expect(ev.sealed.map((s) => [s.partitionId, s.end])).toEqual([
      [10n, 5n],
      [20n, 5n],
    ]);
    expect(ev.sealed[0]!.segmentId).toBe(7n);
    expect(buf.consumed).toBe(5n);
  });
});

// ---------------------------------------------------------------------------------------------------
// The replay property: a simulated datanode (write buffer + the same ordered datacoord reports the actor
// makes) against a model of datacoord, killed at a random step and restarted from the checkpoint.

interface DcSegment {
  info: SegmentInfo;
  rows?: Array<[bigint, number, bigint]>;
  deletes?: Array<[bigint, bigint, bigint]>;
}

class DatacoordModel {
  segments = new Map<bigint, DcSegment>();
  checkpoint = 0n;
  private nextId = 1000n;
  alloc(partitionId: bigint, level: SegmentLevel, start: bigint): bigint {
    for (const s of this.segments.values()) {
      const i = s.info;
      if (i.partitionId === partitionId && i.level === level && i.startPosition === start) return i.segmentId;
    }
    const id = this.nextId++;
    this.segments.set(id, { info: segmentInfo(id, { collectionId: COLL, vchannel: VCH, partitionId, level, startPosition: start }) });
    return id;
  }
  sealed(id: bigint, end: bigint): void {
    const s = this.segments.get(id)!;
    if (s.info.state === "Growing") s.info = { ...s.info, state: "Sealed", endPosition: end };
    else expect(s.info.endPosition).toBe(end);
  }
  save(id: bigint, data: Pick<DcSegment, "rows" | "deletes">, checkpoint: bigint): void {
    const s = this.segments.get(id)!;
    expect(["Sealed", "Flushed"]).toContain(s.info.state);
    s.info = { ...s.info, state: "Flushed" as SegmentState };
    Object.assign(s, data);
    if (checkpoint > this.checkpoint) this.checkpoint = checkpoint;
  }
  updateCheckpoint(cp: bigint): void {
    if (cp > this.checkpoint) this.checkpoint = cp;
  }
}

type Op = { k: "alloc" | "sealed" | "save" | "checkpoint"; seg?: BufferedSegment };

/** The datanode's per-channel pipeline, as the actor runs it: one ordered queue of datacoord reports. */
class SimNode {
  ops: Op[] = [];
  constructor(
    readonly buf: WriteBuffer,
    readonly dc: DatacoordModel,
  ) {}
  take(ev: BufferEvents): void {
    for (const s of ev.opened) if (s.segmentId === undefined) this.ops.push({ k: "alloc", seg: s });
    for (const s of ev.sealed) this.ops.push({ k: "sealed", seg: s });
  }
  /** runs the next queued report; a "sealed" report is followed by the write and then a "save" */
  step(): boolean {
    const op = this.ops.shift();
    if (!op) return false;
    const seg = op.seg!;
    switch (op.k) {
      case "alloc":
        seg.segmentId = this.dc.alloc(seg.partitionId, seg.level, seg.start);
        break;
      case "sealed":
        this.dc.sealed(seg.segmentId!, seg.end!);
        this.ops.push({ k: "save", seg });
        break;
      case "save": {
        const data = seg.level === "L1" ? { rows: rowsOf(this.buf, seg) } : { deletes: deletesOf(this.buf, seg) };
        const cp = this.buf.checkpoint(new Set([seg])).position;
        this.dc.save(seg.segmentId!, data, cp);
        this.buf.markFlushed(seg);
        break;
      }
      case "checkpoint":
        this.dc.updateCheckpoint(this.buf.checkpoint().position);
        break;
    }
    return true;
  }
}

function deletesOf(buf: WriteBuffer, seg: BufferedSegment): Array<[bigint, bigint, bigint]> {
  const d = buf.materializeDeletes(seg);
  return Array.from(d.pks as BigInt64Array, (pk, i) => [pk, d.positions[i]!, d.partitionIds[i]!]);
}

/** What the stream says the collection holds at the end: pk → [value, partition]. */
function expected(msgs: DmlMsg[]): Map<bigint, [number, bigint]> {
  const m = new Map<bigint, [number, bigint]>();
  for (const msg of msgs) {
    if (msg.k === "delete" || msg.k === "upsert") {
      for (const pk of msg.pks as BigInt64Array) {
        const cur = m.get(pk);
        if (cur && (msg.k === "upsert" || msg.partitionId === -1n || msg.partitionId === cur[1])) m.delete(pk);
      }
    }
    if (msg.k === "insert" || msg.k === "upsert") {
      const pks = msg.pks as BigInt64Array;
      const vs = msg.columns[1]!.data as Int32Array;
      pks.forEach((pk, i) => m.set(pk, [vs[i]!, msg.partitionId]));
    }
  }
  return m;
}

/** What the Flushed segments say: rows minus the deletes after them (MVCC by position). */
function flushedView(dc: DatacoordModel): { visible: Map<bigint, [number, bigint]>; rowKeys: string[] } {
  const rows: Array<[bigint, number, bigint, bigint]> = [];
  const dels: Array<[bigint, bigint, bigint]> = [];
  for (const s of dc.segments.values()) {
    if (s.info.state !== "Flushed") continue;
    for (const r of s.rows ?? []) rows.push([...r, s.info.partitionId]);
    for (const d of s.deletes ?? []) dels.push(d);
  }
  const visible = new Map<bigint, [number, bigint]>();
  for (const [pk, v, pos, part] of rows) {
    const deleted = dels.some(([dpk, dpos, dpart]) => dpk === pk && dpos > pos && (dpart === -1n || dpart === part));
    if (!deleted) {
      expect(visible.has(pk), `pk ${pk} visible twice`).toBe(false);
      visible.set(pk, [v, part]);
    }
  }
  return { visible, rowKeys: rows.map(([pk, , pos]) => `${pk}@${pos}`) };
}

const msgArb = fc.oneof(
  { weight: 5, arbitrary: fc.record({ k: fc.constant("insert" as const), pks: fc.uniqueArray(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 4 }), part: fc.constantFrom(10n, 20n) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("upsert" as const), pks: fc.uniqueArray(fc.integer({ min: 1000, max: 1030 }), { minLength: 1, maxLength: 3 }), part: fc.constantFrom(10n, 20n) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("delete" as const), pks: fc.uniqueArray(fc.integer({ min: 1000, max: 1030 }), { minLength: 1, maxLength: 3 }), part: fc.constantFrom(-1n, 10n, 20n) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("upsert" as const), pks: fc.uniqueArray(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 3 }), part: fc.constantFrom(10n, 20n) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("delete" as const), pks: fc.uniqueArray(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 3 }), part: fc.constantFrom(-1n, 10n, 20n) }) },
);

/** Drives: for each message, apply it, then run some queued reports; sometimes a flush or an idle tick. */
const scheduleArb = fc.record({
  msgs: fc.array(msgArb, { minLength: 1, maxLength: 40 }),
  stepsAfter: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 40, maxLength: 40 }),
  flushAt: fc.array(fc.boolean(), { minLength: 40, maxLength: 40 }),
  idleAt: fc.array(fc.boolean(), { minLength: 40, maxLength: 40 }),
  maxRows: fc.integer({ min: 1, max: 8 }),
  /** each life ends after this many more messages (then a few more queued reports run, then it dies) */
  lives: fc.array(fc.record({ msgs: fc.integer({ min: 0, max: 15 }), steps: fc.integer({ min: 0, max: 6 }) }), { maxLength: 3 }),
});

describe("replay after a crash (property)", () => {
  it("ends with every row in exactly one Flushed segment and the stream's data visible, wherever the datanode dies", () => {
    fc.assert(
      fc.property(scheduleArb, (s) => {
        // inserts carry fresh keys (a plain insert of an existing key would be a duplicate row, by design);
        // upserts and deletes hit keys that may exist
        let fresh = 100_000;
        const msgs: DmlMsg[] = s.msgs.map((m, i) =>
          m.k === "delete"
            ? del(m.pks, m.part)
            : insert(m.k === "insert" ? m.pks.map(() => fresh++) : m.pks, i + 1, m.part, m.k),
        );
        const policy = { ...POLICY, maxRows: s.maxRows, idleMs: 1 };
        const dc = new DatacoordModel();
        /** a datanode life: starts from datacoord's records, reads from the checkpoint up to `until` */
        const live = (until: number, stepsAtEnd: number, last: boolean): SimNode => {
          const cp = dc.checkpoint;
          const known = [...dc.segments.values()].map((x) => x.info);
          const node = new SimNode(newBuffer({ policy, checkpoint: cp, known }), dc);
          for (let i = Number(cp); i < until; i++) {
            node.take(node.buf.apply(BigInt(i + 1), msgs[i]!, i));
            if (s.flushAt[i]) node.take(node.buf.requestFlush(BigInt(i + 1)));
            if (s.idleAt[i]) node.take(node.buf.sealIdle(i + 1));
            for (let k = 0; k < s.stepsAfter[i]!; k++) node.step();
            if (i % 5 === 4) node.ops.push({ k: "checkpoint" });
          }
          if (last) {
            node.take(node.buf.requestFlush(BigInt(msgs.length)));
            while (node.step());
          } else {
            for (let k = 0; k < stepsAtEnd; k++) node.step();
          }
          // a crash: the buffer and the queued reports are gone; datacoord's records remain
          return node;
        };
        let read = 0;
        for (const life of s.lives) {
          read = Math.min(msgs.length, Math.max(read, Number(dc.checkpoint)) + life.msgs);
          live(read, life.steps, false);
        }
        const node = live(msgs.length, 0, true);

        expect(node.buf.unflushed()).toEqual([]);
        expect(node.buf.checkpoint().position).toBe(BigInt(msgs.length));
        for (const seg of dc.segments.values()) expect(seg.info.state, `segment ${seg.info.segmentId}`).toBe("Flushed");
        const view = flushedView(dc);
        expect(new Set(view.rowKeys).size, "a row stored twice").toBe(view.rowKeys.length);
        expect(view.visible).toEqual(expected(msgs));
      }),
      { numRuns: 500 },
    );
  });
});
