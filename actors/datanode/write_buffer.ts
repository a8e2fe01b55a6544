/**
 * The write buffer of one vchannel: how a datanode cuts the channel into segments as it reads it. Pure:
 * no I/O, no clocks of its own (callers pass `now`), so that replay after a crash can be unit-tested.
 *
 * Segments are position ranges per (vchannel, partition). The first insert of a partition with no open
 * growing segment opens one starting at that message's position; rows are buffered in it with their
 * position and ts until it is sealed (by the seal policy, or a flush) at an end position. Deletes (and
 * the delete half of an upsert, which applies before its insert half) drop the same pk from growing
 * segments (so a sealed segment never holds a pk twice) and are buffered per vchannel; they are cut into
 * L0 segments (partition -1) whenever an L1 segment seals, a flush asks, or by the seal policy.
 *
 * Replay: the buffer starts at the vchannel's checkpoint with the segments datacoord knows. Inserts inside
 * a Flushed segment's range (per partition) are skipped; Sealed-but-not-Flushed segments are refilled
 * within their recorded ranges and sealed again at their recorded end; a Growing one is re-opened by the
 * first insert at its start (AllocSegment with the same start returns the same id). Deletes inside a
 * Flushed L0 range are not buffered again (they still drop rows from segments being refilled, as they
 * did the first time). So a replay cuts the same segments with the same rows.
 */
import { ALL_PARTITIONS, type DmlMsg, type PkColumn } from "../../protocol/dml.ts";
import { VbError } from "../../protocol/errors.ts";
import type { SegmentInfo, SegmentLevel } from "../../protocol/meta.ts";
import type { SealPolicy } from "../../protocol/messages/datacoord.ts";
import type { CollectionSchema, Column, FieldSchema } from "../../protocol/schema.ts";
import { batchRowBytes, concatColumns, pkKey, pkKeyReader, type PkKey } from "../storage/columns.ts";
import type { DeltaData } from "../storage/delta_log.ts";
import { checkDml } from "../storage/dml_decode.ts";
import type { SegmentData } from "../storage/insert_log.ts";
import { computeCheckpoint, type Checkpoint, type Pending } from "./checkpoint.ts";

/** Rows of one message in one segment. */
interface Chunk {
  position: bigint;
  ts: bigint;
  numRows: number;
  /** in schema order */
  columns: Column[];
  pks: PkColumn;
  /** 1 = the row is kept, 0 = a later delete dropped it */
  alive: Uint8Array;
  rowBytes: Float64Array;
}

export interface DeleteEntry {
  pk: bigint | string;
  position: bigint;
  ts: bigint;
  partitionId: bigint;
}

export type BufferedState = "growing" | "sealed" | "flushed";

export interface BufferedSegment {
  /** local handle, unique in this buffer */
  readonly localId: number;
  /** known once datacoord allocated it (or from replay) */
  segmentId?: bigint;
  readonly collectionId: bigint;
  readonly vchannel: string;
  readonly partitionId: bigint;
  readonly level: SegmentLevel;
  readonly start: bigint;
  readonly tsBefore: bigint;
  end?: bigint;
  endTs?: bigint;
  /** a Sealed segment being refilled after a restart: seal it again exactly here */
  readonly replayEnd?: bigint;
  state: BufferedState;
  /** L1: rows kept */
  numRows: number;
  /** L1: estimated bytes of the rows kept */
  bytes: number;
  /** `now` of the last row (L1) or delete (L0) added */
  lastAddAt: number;
  /** L1 */
  chunks: Chunk[];
  /** L1: key of a pk (`pkKey`) → the refs (`chunk index * 2^24 + row`) of its live rows: one number, or a list for repeats */
  pkIndex: Map<PkKey, number | number[]>;
  /** L0 */
  deletes: DeleteEntry[];
}

/** What applying a message (or a policy check) changed, for the actor to report to datacoord. */
export interface BufferEvents {
  /** segments opened: they need a segment id (AllocSegment) */
  opened: BufferedSegment[];
  /** segments sealed: report them (SegmentSealed), then write them */
  sealed: BufferedSegment[];
}

export interface WriteBufferOptions {
  collectionId: bigint;
  vchannel: string;
  schema: CollectionSchema;
  sealPolicy: SealPolicy;
  /** the checkpoint the channel resumes after */
  checkpoint: Checkpoint;
  /** the vchannel's segments as datacoord knows them (replay) */
  known?: readonly SegmentInfo[];
}

interface Range {
  start: bigint;
  end: bigint;
}

function inRanges(ranges: readonly Range[] | undefined, p: bigint): boolean {
  if (!ranges) return false;
  for (const r of ranges) if (r.start <= p && p <= r.end) return true;
  return false;
}

export class WriteBuffer {
  readonly collectionId: bigint;
  readonly vchannel: string;
  sealPolicy: SealPolicy;
  private readonly schema: CollectionSchema;
  private readonly pkFieldPos: number;
  consumed: bigint;
  consumedTs: bigint;
  /** every segment not yet flushed, in the order they were opened */
  private readonly segments: BufferedSegment[] = [];
  /** the open growing L1 segment of each partition (not the ones being refilled) */
  private readonly growing = new Map<bigint, BufferedSegment>();
  /** L1 segments being refilled after a restart, per partition */
  private readonly refilling = new Map<bigint, BufferedSegment[]>();
  /** L0 segments being refilled after a restart */
  private readonly refillingL0: BufferedSegment[] = [];
  /** ranges of Flushed L1 segments per partition, and of Flushed L0 segments (skipped on replay) */
  private readonly flushedL1 = new Map<bigint, Range[]>();
  private readonly flushedL0: Range[] = [];
  /** deletes not yet cut into an L0 segment */
  private deleteBuffer: DeleteEntry[] = [];
  private deleteBufferTsBefore = 0n;
  private deleteBufferSince = 0;
  /** seal every growing segment that starts at or before this, once consumed reaches it */
  private flushTarget: bigint | undefined;
  private nextLocalId = 1;

  constructor(opts: WriteBufferOptions) {
    this.collectionId = opts.collectionId;
    this.vchannel = opts.vchannel;
    this.sealPolicy = opts.sealPolicy;
    this.schema = opts.schema;
    this.pkFieldPos = opts.schema.fields.findIndex((f) => f.isPrimaryKey);
    if (this.pkFieldPos < 0) throw VbError.invalid(`schema "${opts.schema.name}" has no primary key`);
    this.consumed = opts.checkpoint.position;
    this.consumedTs = opts.checkpoint.ts;
    for (const s of opts.known ?? []) this.learn(s, opts.checkpoint);
    for (const list of this.refilling.values()) list.sort((a, b) => (a.start < b.start ? -1 : 1));
    this.refillingL0.sort((a, b) => (a.start < b.start ? -1 : 1));
  }

  get collectionSchema(): CollectionSchema {
    return this.schema;
  }

  private learn(s: SegmentInfo, cp: Checkpoint): void {
    if (s.vchannel !== this.vchannel || s.state === "Dropped") return;
    const end = s.endPosition;
    if (s.state === "Flushed") {
      if (end === undefined) return;
      const range = { start: s.startPosition, end };
      if (s.level === "L0") this.flushedL0.push(range);
      else {
        let list = this.flushedL1.get(s.partitionId);
        if (!list) this.flushedL1.set(s.partitionId, (list = []));
        list.push(range);
      }
      return;
    }
    // Sealed or Flushing: refill it within its recorded range, seal it again at its end
    if ((s.state === "Sealed" || s.state === "Flushing") && end !== undefined && end > cp.position) {
      const seg = this.newSegment(s.partitionId, s.level, s.startPosition, cp.ts, end);
      seg.segmentId = s.segmentId;
      if (s.endTs !== undefined) seg.endTs = s.endTs;
      if (s.level === "L0") this.refillingL0.push(seg);
      else {
        let list = this.refilling.get(s.partitionId);
        if (!list) this.refilling.set(s.partitionId, (list = []));
        list.push(seg);
      }
    }
    // Growing: re-opened by the first insert at its start (same start → same id)
  }

  private newSegment(partitionId: bigint, level: SegmentLevel, start: bigint, tsBefore: bigint, replayEnd?: bigint): BufferedSegment {
    const seg: BufferedSegment = {
      localId: this.nextLocalId++,
      collectionId: this.collectionId,
      vchannel: this.vchannel,
      partitionId,
      level,
      start,
      tsBefore,
      ...(replayEnd === undefined ? {} : { replayEnd }),
      state: "growing",
      numRows: 0,
      bytes: 0,
      lastAddAt: 0,
      chunks: [],
      pkIndex: new Map(),
      deletes: [],
    };
    this.segments.push(seg);
    return seg;
  }

  // ---- applying messages ----

  /**
   * Applies the DML message at `position`. A message at or before the consumed position is ignored (a
   * redelivery). A message the shared rules refuse (storage/dml_decode.ts, as the delegator does) throws
   * VbError 1100 before anything changes (no segment is sealed, the consumed position stays): move past it
   * with `passOver`, which returns what that seals.
   */
  apply(position: bigint, raw: DmlMsg, now: number): BufferEvents {
    const ev: BufferEvents = { opened: [], sealed: [] };
    if (position <= this.consumed) return ev;
    // every check comes before the first seal: a throw never leaves sealed segments nobody reports
    const msg = checkDml(raw, this.collectionId, this.schema);
    this.sealRefilled(position - 1n, ev);
    if (msg.k === "delete" || msg.k === "upsert") {
      const partition = msg.k === "delete" ? msg.partitionId : ALL_PARTITIONS;
      this.applyDelete(position, msg.ts, msg.pks, partition, now);
    }
    if ((msg.k === "insert" || msg.k === "upsert") && msg.numRows > 0) {
      this.applyInsert(position, msg.ts, msg.partitionId, msg, now, ev);
    }
    this.advance(position, msg.ts);
    this.afterMessage(ev);
    return ev;
  }

  /** Moves past a message that cannot be read at all (it holds no rows this buffer could keep). */
  passOver(position: bigint): BufferEvents {
    const ev: BufferEvents = { opened: [], sealed: [] };
    if (position <= this.consumed) return ev;
    this.sealRefilled(position - 1n, ev);
    this.advance(position, this.consumedTs);
    this.afterMessage(ev);
    return ev;
  }

  private advance(position: bigint, ts: bigint): void {
    this.consumed = position;
    this.consumedTs = ts;
  }

  private afterMessage(ev: BufferEvents): void {
    this.sealRefilled(this.consumed, ev);
    this.checkFlushTarget(ev);
  }

  private applyDelete(position: bigint, ts: bigint, pks: PkColumn, partitionId: bigint, now: number): void {
    // drop the keys from the segments still taking rows (growing, or refilling up to their end)
    const targets = this.segments.filter(
      (s) => s.level === "L1" && s.state === "growing" && (partitionId === ALL_PARTITIONS || s.partitionId === partitionId),
    );
    for (let i = 0; i < pks.length; i++) {
      const pk = pks[i]!;
      for (const seg of targets) dropPk(seg, pk, position);
    }
    if (pks.length === 0 || inRanges(this.flushedL0, position)) return;
    const entries = Array.from({ length: pks.length }, (_, i) => ({ pk: pks[i]!, position, ts, partitionId }));
    const refill = this.refillingL0.find((s) => s.state === "growing" && s.start <= position && position <= s.replayEnd!);
    if (refill) {
      refill.deletes.push(...entries);
      refill.lastAddAt = now;
      return;
    }
    if (this.deleteBuffer.length === 0) {
      this.deleteBufferTsBefore = this.consumedTs;
      this.deleteBufferSince = now;
    }
    for (const e of entries) this.deleteBuffer.push(e);
  }

  private applyInsert(
    position: bigint,
    ts: bigint,
    partitionId: bigint,
    rows: { columns: Column[]; pks: PkColumn; numRows: number },
    now: number,
    ev: BufferEvents,
  ): void {
    if (inRanges(this.flushedL1.get(partitionId), position)) return;
    let seg = this.refilling.get(partitionId)?.find((s) => s.state === "growing" && s.start <= position && position <= s.replayEnd!);
    if (!seg) {
      seg = this.growing.get(partitionId);
      if (!seg) {
        seg = this.newSegment(partitionId, "L1", position, this.consumedTs);
        this.growing.set(partitionId, seg);
        ev.opened.push(seg);
      }
    }
    const rowBytes = batchRowBytes(this.schema.fields, rows.columns, rows.numRows);
    const chunk: Chunk = {
      position,
      ts,
      numRows: rows.numRows,
      columns: rows.columns,
      pks: rows.pks,
      alive: new Uint8Array(rows.numRows).fill(1),
      rowBytes,
    };
    const ci = seg.chunks.length;
    seg.chunks.push(chunk);
    let bytes = 0;
    for (let r = 0; r < rows.numRows; r++) bytes += rowBytes[r]!;
    const index = seg.pkIndex;
    const base = ci * REF_CHUNK;
    const keys = pkKeyReader(rows.pks);
    for (let r = 0; r < rows.numRows; r++) {
      const key = keys(r);
      const refs = index.get(key);
      if (refs === undefined) index.set(key, base + r);
      else if (typeof refs === "number") index.set(key, [refs, base + r]);
      else refs.push(base + r);
    }
    seg.numRows += rows.numRows;
    seg.bytes += bytes;
    seg.lastAddAt = now;
    if (seg.replayEnd === undefined && (seg.numRows >= this.sealPolicy.maxRows || seg.bytes >= this.sealPolicy.maxBytes)) {
      this.seal(seg, position, ts, ev);
      this.cutDeletes(position, ts, ev);
    }
  }

  // ---- sealing ----

  private seal(seg: BufferedSegment, end: bigint, endTs: bigint, ev: BufferEvents): void {
    if (seg.state !== "growing") return;
    seg.state = "sealed";
    seg.end = end;
    seg.endTs = endTs;
    if (this.growing.get(seg.partitionId) === seg) this.growing.delete(seg.partitionId);
    ev.sealed.push(seg);
  }

  /** Seals refilled segments whose recorded end is at or before `upTo`. */
  private sealRefilled(upTo: bigint, ev: BufferEvents): void {
    for (const list of [...this.refilling.values(), this.refillingL0]) {
      for (const seg of list) {
        if (seg.state === "growing" && seg.replayEnd! <= upTo) this.seal(seg, seg.replayEnd!, seg.endTs ?? this.consumedTs, ev);
      }
    }
  }

  /** Cuts the buffered deletes into an L0 segment ending at `end`. */
  private cutDeletes(end: bigint, endTs: bigint, ev: BufferEvents): void {
    if (this.deleteBuffer.length === 0) return;
    const first = this.deleteBuffer[0]!;
    const seg = this.newSegment(ALL_PARTITIONS, "L0", first.position, this.deleteBufferTsBefore);
    seg.deletes = this.deleteBuffer;
    seg.lastAddAt = this.deleteBufferSince;
    this.deleteBuffer = [];
    ev.opened.push(seg);
    this.seal(seg, end, endTs, ev);
  }

  /**
   * Asks to seal every growing segment (and cut the deletes) holding data at or before `position`, once
   * the channel has consumed it: at once if it already has.
   */
  requestFlush(position: bigint): BufferEvents {
    const ev: BufferEvents = { opened: [], sealed: [] };
    if (this.flushTarget === undefined || position > this.flushTarget) this.flushTarget = position;
    this.checkFlushTarget(ev);
    return ev;
  }

  private checkFlushTarget(ev: BufferEvents): void {
    const target = this.flushTarget;
    if (target === undefined || this.consumed < target) return;
    this.flushTarget = undefined;
    for (const seg of [...this.growing.values()]) {
      if (seg.start <= target) this.seal(seg, this.consumed, this.consumedTs, ev);
    }
    if (this.deleteBuffer.length > 0 && this.deleteBuffer[0]!.position <= target) this.cutDeletes(this.consumed, this.consumedTs, ev);
  }

  /** The flush position still waiting for the channel to reach it. */
  get pendingFlush(): bigint | undefined {
    return this.flushTarget;
  }

  /** The seal policy's time part: growing segments and deletes idle for `idleMs`, deletes over maxRows. */
  sealIdle(now: number): BufferEvents {
    const ev: BufferEvents = { opened: [], sealed: [] };
    const idle = this.sealPolicy.idleMs;
    let sealedAny = false;
    for (const seg of [...this.growing.values()]) {
      if (now - seg.lastAddAt >= idle) {
        this.seal(seg, this.consumed, this.consumedTs, ev);
        sealedAny = true;
      }
    }
    if (
      this.deleteBuffer.length > 0 &&
      (sealedAny || now - this.deleteBufferSince >= idle || this.deleteBuffer.length >= this.sealPolicy.maxRows)
    ) {
      this.cutDeletes(this.consumed, this.consumedTs, ev);
    }
    return ev;
  }

  // ---- after the write ----

  /** The segment's objects are written and datacoord recorded it Flushed: forget its rows. */
  markFlushed(seg: BufferedSegment): void {
    seg.state = "flushed";
    const i = this.segments.indexOf(seg);
    if (i >= 0) this.segments.splice(i, 1);
    if (seg.end !== undefined) {
      if (seg.level === "L0") this.flushedL0.push({ start: seg.start, end: seg.end });
      else {
        let list = this.flushedL1.get(seg.partitionId);
        if (!list) this.flushedL1.set(seg.partitionId, (list = []));
        list.push({ start: seg.start, end: seg.end });
      }
    }
    const list = seg.level === "L0" ? this.refillingL0 : this.refilling.get(seg.partitionId);
    if (list) {
      const j = list.indexOf(seg);
      if (j >= 0) list.splice(j, 1);
    }
    seg.chunks = [];
    seg.pkIndex = new Map();
    seg.deletes = [];
    this.pruneRanges();
  }

  /** Ranges wholly at or before the consumed position can no longer be met again. */
  private pruneRanges(): void {
    const keep = (r: Range) => r.end > this.consumed;
    for (const [p, list] of this.flushedL1) {
      const kept = list.filter(keep);
      if (kept.length === 0) this.flushedL1.delete(p);
      else this.flushedL1.set(p, kept);
    }
    const l0 = this.flushedL0.filter(keep);
    this.flushedL0.length = 0;
    this.flushedL0.push(...l0);
  }

  // ---- reading state ----

  /** Every segment not yet flushed (growing, refilling, sealed and being written). */
  unflushed(): readonly BufferedSegment[] {
    return this.segments;
  }

  growingCount(): number {
    return this.segments.filter((s) => s.state === "growing" && s.level === "L1").length;
  }

  bufferedRows(): number {
    let n = this.deleteBuffer.length;
    for (const s of this.segments) n += s.level === "L1" ? s.numRows : s.deletes.length;
    return n;
  }

  /** The checkpoint if the segments in `flushing` were flushed too. */
  checkpoint(flushing?: ReadonlySet<BufferedSegment>): Checkpoint {
    const pending: Pending[] = [];
    for (const s of this.segments) {
      if (s.state !== "flushed" && !flushing?.has(s)) pending.push({ start: s.start, tsBefore: s.tsBefore });
    }
    if (this.deleteBuffer.length > 0) pending.push({ start: this.deleteBuffer[0]!.position, tsBefore: this.deleteBufferTsBefore });
    return computeCheckpoint(pending, { position: this.consumed, ts: this.consumedTs });
  }

  /** The rows a sealed L1 segment holds, column by column in schema order, with their pks. */
  materialize(seg: BufferedSegment): SegmentData & { pks: PkColumn } {
    const fields = this.schema.fields;
    const parts = seg.chunks.map((c) => {
      let rows: number[] | undefined;
      if (c.alive.includes(0)) {
        rows = [];
        for (let r = 0; r < c.numRows; r++) if (c.alive[r]) rows.push(r);
      }
      return { c, rows };
    });
    const columns = fields.map((f: FieldSchema, i) =>
      concatColumns(
        f,
        parts.map(({ c, rows }) => ({ col: c.columns[i]!, numRows: c.numRows, ...(rows === undefined ? {} : { rows }) })),
      ),
    );
    let n = 0;
    for (const { c, rows } of parts) n += rows === undefined ? c.numRows : rows.length;
    const positions = new BigInt64Array(n);
    const timestamps = new BigInt64Array(n);
    let at = 0;
    for (const { c, rows } of parts) {
      const k = rows === undefined ? c.numRows : rows.length;
      positions.fill(c.position, at, at + k);
      timestamps.fill(c.ts, at, at + k);
      at += k;
    }
    const pks = columns[this.pkFieldPos]!.data as PkColumn;
    return { numRows: n, columns, positions, timestamps, pks };
  }

  /** The deletes an L0 segment holds. */
  materializeDeletes(seg: BufferedSegment): DeltaData {
    const d = seg.deletes;
    const isInt = this.schema.fields[this.pkFieldPos]!.type === "Int64";
    return {
      numRows: d.length,
      pks: isInt ? BigInt64Array.from(d, (e) => e.pk as bigint) : d.map((e) => e.pk as string),
      positions: BigInt64Array.from(d, (e) => e.position),
      timestamps: BigInt64Array.from(d, (e) => e.ts),
      partitionIds: BigInt64Array.from(d, (e) => e.partitionId),
    };
  }
}

/** A row ref in a segment's pk index: chunk index × 2^24 + row (a message holds far fewer than 2^24 rows). */
const REF_CHUNK = 1 << 24;

function dropPk(seg: BufferedSegment, pk: bigint | string, position: bigint): void {
  const key = pkKey(pk);
  const found = seg.pkIndex.get(key);
  if (found === undefined) return;
  const refs = typeof found === "number" ? [found] : found;
  let kept: number[] | undefined;
  for (const ref of refs) {
    const chunk = seg.chunks[Math.floor(ref / REF_CHUNK)]!;
    const r = ref % REF_CHUNK;
    if (chunk.position >= position) {
      (kept ??= []).push(ref);
      continue;
    }
    if (chunk.alive[r]) {
      chunk.alive[r] = 0;
      seg.numRows--;
      seg.bytes -= chunk.rowBytes[r]!;
    }
  }
  if (!kept) seg.pkIndex.delete(key);
  else seg.pkIndex.set(key, kept.length === 1 ? kept[0]! : kept);
}
