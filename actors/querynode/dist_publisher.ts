/**
 * The querynode's heartbeat and distribution on the feed (`VB_DIST`, subject `vb.dist.querynode.<node>`,
 * one message kept per subject): what querycoord's NodeManager and DistManager are made of.
 *
 * The actor asks for a publish every heartbeat interval and at once after a change; publishes never
 * overlap: one asked for while another is in flight goes out after it, with the state as it is then
 * (so a burst of changes makes two messages, not one per change).
 *
 * A large node (one whose whole dist would take more than `deltaAboveBytes`, 16 KiB: a few hundred segments) sends its segments as a
 * numbered base, split into chunks under the payload limit on subjects of their own
 * (`vb.dist.querynode.<node>.base.<i>`), and then heads that carry only what changed since the base
 * (`DistEncoder`); a new base goes out when the delta grows past about √(2 × the base's size) segments,
 * or once the delta has not changed for `settleMs`. A heartbeat of a node at rest is then a few hundred
 * bytes whatever it holds.
 */
import { encode } from "../../protocol/codec.ts";
import { asNodeId } from "../../protocol/ids.ts";
import { packIds, sameDistSegment, type QueryNodeDist, type QueryNodeDistChunk } from "../../protocol/messages/querynode.ts";
import { Feed } from "../../runtime/feed.ts";
import type { Logger } from "../../runtime/logger.ts";
import { isStreamNotFound, jetstreamOf } from "../../runtime/streams.ts";
import type { ClusterEnv } from "../env.ts";

/** Bytes a dist message may take: under the 1 MiB payload limit with room for the headers. */
export const MAX_DIST_BYTES = 900 * 1024;

/**
 * Creates the dist feed stream if it does not exist (file storage, one message per subject). An existing
 * stream is left as it is: datanodes, querynodes and querycoord share it.
 */
export async function ensureDistStream(env: ClusterEnv): Promise<void> {
  const { jsm } = await jetstreamOf(env.nc);
  try {
    await jsm.streams.info(env.subjects.distStream());
    return;
  } catch (err) {
    if (!isStreamNotFound(err)) throw err;
  }
  await new Feed(env.nc).ensure(env.subjects.distStream(), env.subjects.distStreamSubjects());
}

/**
 * Encodes a dist under `MAX_DIST_BYTES`: when the full one does not fit, the per-delegator segment lists
 * go first (querycoord can rebuild them from the segments), then the per-segment list is cut (its
 * totals stay in `rows` and `memoryBytes`).
 */
/** A distribution as it goes on the feed: the delegators' segment ids packed (`packIds`). */
function onWire(dist: QueryNodeDist): unknown {
  return { ...dist, delegators: dist.delegators.map((d) => ({ ...d, sealedSegmentIds: packIds(d.sealedSegmentIds) })) };
}

export function encodeDist(dist: QueryNodeDist, log?: Logger): Uint8Array {
  let bytes = encode(onWire(dist));
  if (bytes.byteLength <= MAX_DIST_BYTES) return bytes;
  const slim: QueryNodeDist = { ...dist, delegators: dist.delegators.map((d) => ({ ...d, sealedSegmentIds: [] })) };
  bytes = encode(slim);
  if (bytes.byteLength <= MAX_DIST_BYTES) {
    log?.warn({ bytes: bytes.byteLength }, "dist too large: published without the delegators' segment lists");
    return bytes;
  }
  const perSeg = Math.max(1, bytes.byteLength / Math.max(1, slim.segments.length + slim.loading.length));
  const keep = Math.max(0, Math.floor((MAX_DIST_BYTES * 0.9) / perSeg));
  slim.segments = slim.segments.slice(0, keep);
  slim.loading = slim.loading.slice(0, Math.max(0, keep - slim.segments.length));
  log?.warn({ segments: dist.segments.length, kept: slim.segments.length }, "dist too large: published a cut segment list");
  return encode(slim);
}

type DistSegments = QueryNodeDist["segments"];

/** One message to publish on the feed. */
export interface DistPayload {
  subject: string;
  payload: Uint8Array;
}

export interface DistEncoderOptions {
  /** a dist whose whole message would be larger than this goes as a base and deltas */
  deltaAboveBytes: number;
  /** bytes of one message at most */
  maxBytes: number;
  /**
   * A delta unchanged for this long goes into a new base at the next heartbeat, so that a node at rest
   * beats with an empty delta (a few hundred bytes) instead of repeating its last changes every beat.
   */
  settleMs: number;
}

export const DEFAULT_DIST_ENCODER_OPTIONS: DistEncoderOptions = { deltaAboveBytes: 16 * 1024, maxBytes: MAX_DIST_BYTES, settleMs: 5_000 };

/**
 * Changes a delta may hold before a new base: about √(2 × base × r), `r` the changes a message brings
 * (a running mean), which keeps what a run of changes costs the feed and its readers near its least:
 * every head repeats the delta (k/2 records on average) and every k/r messages the base goes again (base
 * records), so k/2 + base × r/k per message, least at k = √(2 × base × r). A node at rest (r ≈ 1: a change
 * now and then) rebases after √(2 × base); one loading 32 segments a beat waits 8 times longer, instead
 * of resending its whole base every other beat. At least 64, and never more than half the base.
 */
export function rebaseAfter(baseSize: number, changesPerMessage = 1): number {
  const k = Math.ceil(Math.sqrt(2 * baseSize * Math.max(1, changesPerMessage)));
  return Math.max(64, Math.min(k, Math.ceil(baseSize / 2)));
}

/** how much a message's changes weigh in the running mean of changes per message */
const RATE_WEIGHT = 0.2;

let epochCounter = 0;

/**
 * Turns a node's dist into the messages that carry it (see the module's comment). Keeps the base it
 * sent last; `encode` returns the base's chunks (when a new base is due) followed by the head.
 */
export class DistEncoder {
  private base: { epoch: number; chunks: number; segs: Map<bigint, DistSegments[number]>; from?: { epoch: number; seq: number } } | undefined;
  private delta: { seq: number; added: DistSegments; removed: bigint[] } = { seq: 0, added: [], removed: [] };
  private mode: "full" | "delta" | undefined;
  /** bytes a segment takes in a message, as last measured */
  private perSegment = 64;
  /** when the delta last changed */
  private deltaAt = 0;
  /** changes a message brings: a running mean over the messages (a beat with nothing changed counts 0) */
  private changeRate = 1;

  constructor(
    private readonly headSubject: string,
    private readonly chunkSubject: (index: number) => string,
    private readonly opts: DistEncoderOptions = DEFAULT_DIST_ENCODER_OPTIONS,
    private readonly log?: Logger,
  ) {}

  /**
   * The messages for `dist`, in the order they must be stored. `segmentsChanged: false` tells that the
   * segments are those of the last call: they are then neither compared nor encoded again.
   */
  encode(dist: QueryNodeDist, segmentsChanged = true, now = Date.now()): DistPayload[] {
    const out: DistPayload[] = [];
    const settled =
      this.mode === "delta" && (this.delta.added.length > 0 || this.delta.removed.length > 0) && now - this.deltaAt >= this.opts.settleMs;
    if (this.mode === "delta" && !segmentsChanged) this.changeRate *= 1 - RATE_WEIGHT;
    if (settled && !segmentsChanged) {
      // (the segments are those of the last head: a reader that holds it needs no chunks)
      out.push(...this.newBase(dist, this.heldAs()));
    } else if (segmentsChanged || this.mode === undefined) {
      if (this.mode !== "delta") {
        const full = encode(onWire(dist));
        if (full.byteLength <= this.opts.deltaAboveBytes) {
          this.mode = "full";
          return [{ subject: this.headSubject, payload: full }];
        }
        out.push(...this.newBase(dist));
      } else if (dist.segments.length * this.perSegment < this.opts.deltaAboveBytes / 2) {
        this.mode = "full";
        this.base = undefined;
        return [{ subject: this.headSubject, payload: encodeDist(dist, this.log) }];
      } else {
        const base = this.base!;
        const added: DistSegments = [];
        const seen = new Set<bigint>();
        for (const s of dist.segments) {
          seen.add(s.segmentId);
          const b = base.segs.get(s.segmentId);
          if (!b || !sameDistSegment(b, s)) added.push(s);
        }
        const removed: bigint[] = [];
        if (seen.size !== base.segs.size || added.length > 0) for (const id of base.segs.keys()) if (!seen.has(id)) removed.push(id);
        const grew = Math.max(0, added.length + removed.length - (this.delta.added.length + this.delta.removed.length));
        this.changeRate = (1 - RATE_WEIGHT) * this.changeRate + RATE_WEIGHT * grew;
        // (and never a delta that would not fit in half a message)
        const most = Math.min(rebaseAfter(base.segs.size, this.changeRate), Math.floor((0.5 * this.opts.maxBytes) / this.perSegment));
        if (settled && sameDelta(this.delta, added, removed)) {
          out.push(...this.newBase(dist, this.heldAs()));
        } else if (added.length + removed.length > most) {
          out.push(...this.rebaseOnLast(dist, most, now));
        } else if (!sameDelta(this.delta, added, removed)) {
          this.delta = { seq: this.delta.seq + 1, added, removed };
          this.deltaAt = now;
        }
      }
    }
    if (this.mode === "full") return [{ subject: this.headSubject, payload: encodeDist(dist, this.log) }];
    const base = this.base!;
    const head: QueryNodeDist = {
      ...dist,
      segments: [],
      base: { epoch: base.epoch, chunks: base.chunks, segments: base.segs.size, ...(base.from ? { from: base.from } : {}) },
      delta: this.delta,
    };
    let bytes = encode(onWire(head));
    if (bytes.byteLength > this.opts.maxBytes) {
      bytes = encode({ ...head, delegators: head.delegators.map((d) => ({ ...d, sealedSegmentIds: [] })) });
      this.log?.warn({ bytes: bytes.byteLength }, "dist head too large: published without the delegators' segment lists");
    }
    out.push({ subject: this.headSubject, payload: bytes });
    return out;
  }

  /** What the last head told: its base's epoch and its delta's seq. */
  private heldAs(): { epoch: number; seq: number } | undefined {
    return this.base ? { epoch: this.base.epoch, seq: this.delta.seq } : undefined;
  }

  /**
   * The delta outgrew its bound: the segments as the last head told them become the new base (`from`
   * it, so that a reader that holds them makes the base itself, as a querycoord that keeps up does, and
   * decodes only the changes), and what changed since is its first delta. When even that is too much,
   * the segments as they are now become the base.
   */
  private rebaseOnLast(dist: QueryNodeDist, most: number, now: number): DistPayload[] {
    const base = this.base!;
    const from = this.heldAs()!;
    const gone = new Set(this.delta.removed);
    const replaced = new Map(this.delta.added.map((s) => [s.segmentId, s]));
    const last: DistSegments = [];
    for (const [id, s] of base.segs) if (!gone.has(id)) last.push(replaced.get(id) ?? s);
    for (const s of this.delta.added) if (!base.segs.has(s.segmentId)) last.push(s);
    const byId = new Map(last.map((s) => [s.segmentId, s]));
    const added: DistSegments = [];
    const seen = new Set<bigint>();
    for (const s of dist.segments) {
      seen.add(s.segmentId);
      const b = byId.get(s.segmentId);
      if (!b || !sameDistSegment(b, s)) added.push(s);
    }
    const removed: bigint[] = [];
    for (const id of byId.keys()) if (!seen.has(id)) removed.push(id);
    if (this.delta.seq === 0 || added.length + removed.length > most) return this.newBase(dist);
    const out = this.newBase({ ...dist, segments: last }, from);
    this.delta = { seq: 1, added, removed };
    this.deltaAt = now;
    return out;
  }

  /** Splits the segments into chunks under the limit and numbers them as a new base (made of what the node held as of `from`, when given). */
  private newBase(dist: QueryNodeDist, from?: { epoch: number; seq: number }): DistPayload[] {
    const epoch = Date.now() * 1_000 + (epochCounter++ % 1_000);
    const segs = dist.segments;
    const sample = segs.slice(0, 256);
    this.perSegment = Math.max(16, encode(sample).byteLength / Math.max(1, sample.length));
    let per = Math.max(1, Math.floor((this.opts.maxBytes * 0.8) / this.perSegment));
    for (;;) {
      const parts: DistSegments[] = [];
      for (let i = 0; i < segs.length; i += per) parts.push(segs.slice(i, i + per));
      if (parts.length === 0) parts.push([]);
      const payloads = parts.map((p, index) =>
        encode({ nodeId: dist.nodeId, epoch, index, count: parts.length, segments: p } satisfies QueryNodeDistChunk),
      );
      if (per > 1 && payloads.some((p) => p.byteLength > this.opts.maxBytes)) {
        per = Math.floor(per / 2);
        continue;
      }
      this.mode = "delta";
      this.base = { epoch, chunks: parts.length, segs: new Map(segs.map((s) => [s.segmentId, s])), ...(from ? { from } : {}) };
      this.delta = { seq: 0, added: [], removed: [] };
      return payloads.map((payload, i) => ({ subject: this.chunkSubject(i), payload }));
    }
  }
}

function sameDelta(d: { added: DistSegments; removed: bigint[] }, added: DistSegments, removed: bigint[]): boolean {
  return (
    d.added.length === added.length &&
    d.removed.length === removed.length &&
    d.added.every((s, i) => s.segmentId === added[i]!.segmentId && sameDistSegment(s, added[i]!)) &&
    d.removed.every((id, i) => id === removed[i])
  );
}

export class DistPublisher {
  private readonly feed: Feed;
  readonly subject: string;
  private readonly encoder: DistEncoder;
  private inFlight = false;
  private again = false;

  constructor(
    private readonly env: ClusterEnv,
    nodeId: string,
    private readonly log: Logger,
  ) {
    this.feed = new Feed(env.nc, { log });
    this.subject = env.subjects.distSubject("querynode", asNodeId(nodeId));
    this.encoder = new DistEncoder(this.subject, (i) => env.subjects.distBaseSubject("querynode", asNodeId(nodeId), i), DEFAULT_DIST_ENCODER_OPTIONS, log);
  }

  /** Stores the messages one after the other (a base's chunks before the head that names it). */
  private async send(payloads: DistPayload[]): Promise<void> {
    for (const p of payloads) await this.feed.publish(p.subject, p.payload);
  }

  /**
   * Publishes `build()` now, or right after the publish in flight. `done` is called (in any context) when
   * a publish settles; the actor then calls `settled()` from its mailbox. `segmentsChanged: false`
   * tells that the segments are those of the last publish (see `DistEncoder.encode`).
   */
  publish(build: () => QueryNodeDist, done: () => void, segmentsChanged = true): void {
    if (this.inFlight) {
      this.again = true;
      return;
    }
    this.inFlight = true;
    let payloads: DistPayload[];
    try {
      payloads = this.encoder.encode(build(), segmentsChanged);
    } catch (err) {
      this.inFlight = false;
      this.log.error({ err }, "could not encode the dist");
      return;
    }
    this.send(payloads).then(
      () => done(),
      (err: unknown) => {
        this.log.warn({ err: (err as Error).message }, "publishing the dist failed; the next heartbeat retries");
        done();
      },
    );
  }

  /** Publishes once and waits for the ack (the first dist, before the node takes requests). */
  async publishNow(dist: QueryNodeDist): Promise<void> {
    await this.send(this.encoder.encode(dist));
  }

  /** The publish in flight settled: returns true when another one was asked for meanwhile. */
  settled(): boolean {
    this.inFlight = false;
    const again = this.again;
    this.again = false;
    return again;
  }
}
