/**
 * Following the querynodes' part of the `VB_DIST` feed: every head message is one querynode's
 * distribution, whole or (a large node's) as a delta against a numbered base sent before it in chunks
 * (`DistAssembler`). The follower decodes, puts a node's segments together and hands each distribution
 * on with how its segments changed; it never touches querycoord's state.
 */
import { decode } from "../../../protocol/codec.ts";
import { VbError } from "../../../protocol/errors.ts";
import type { NodeId } from "../../../protocol/ids.ts";
import { packedIds, sameDistSegment, type DistSegment, type QueryNodeDist, type QueryNodeDistChunk } from "../../../protocol/messages/querynode.ts";
import { Feed, type FeedFollower } from "../../../runtime/feed.ts";
import type { Logger } from "../../../runtime/logger.ts";
import { errorText, isStreamNotFound, jetstreamOf } from "../../../runtime/streams.ts";
import type { ClusterEnv } from "../../env.ts";
import { Interner } from "../interner.ts";
import { SegmentShapes, SegmentTable } from "./segment_table.ts";

/** What following the feed needs of the cluster's environment (a worker thread builds it of its own connection). */
export type DistFeedEnv = Pick<ClusterEnv, "nc" | "subjects"> & { config: Pick<ClusterEnv["config"], "heartbeatIntervalMs"> };

/** Creates the feed's stream when nobody has (an existing one is left as its creator made it). */
export async function ensureDistStream(env: DistFeedEnv): Promise<void> {
  const { jsm } = await jetstreamOf(env.nc);
  try {
    await jsm.streams.info(env.subjects.distStream());
    return;
  } catch (err) {
    if (!isStreamNotFound(err)) throw err;
  }
  try {
    await new Feed(env.nc).ensure(env.subjects.distStream(), env.subjects.distStreamSubjects());
  } catch (err) {
    // created meanwhile by a querynode or datanode with settings of its own: that one is fine
    await jsm.streams.info(env.subjects.distStream()).catch(() => Promise.reject(err));
  }
}

/** A node's delegators' segment lists as last read: their packed bytes, as int64s (DistAssembler). */
type SealedLists = Map<string, BigInt64Array>;

/**
 * A head message of the feed. A delegator's `sealedSegmentIds` come packed (`packIds`); `before`, the
 * node's lists as last read, gives back the very same array for a list whose bytes did not change, and
 * is replaced by this message's.
 */
export function decodeQueryNodeDist(data: Uint8Array, before?: { get(nodeId: string): SealedLists | undefined; set(nodeId: string, lists: SealedLists): void }): QueryNodeDist {
  const d = decode<QueryNodeDist>(data);
  if (
    typeof d !== "object" ||
    d === null ||
    typeof d.nodeId !== "string" ||
    !Array.isArray(d.segments) ||
    !Array.isArray(d.delegators)
  ) {
    throw VbError.invalid("not a querynode distribution: nodeId, segments and delegators are required");
  }
  d.loading ??= [];
  for (const s of d.segments) s.indexIds ??= [];
  for (const s of d.delta?.added ?? []) s.indexIds ??= [];
  const old = before?.get(d.nodeId);
  const lists: SealedLists = new Map();
  for (const g of d.delegators) {
    const packed = g.sealedSegmentIds as unknown;
    if (!(packed instanceof Uint8Array)) {
      if (!Array.isArray(packed)) throw VbError.invalid(`querynode ${d.nodeId}: delegator ${g.vchannel} has no sealedSegmentIds`);
      continue;
    }
    const key = `${g.vchannel}/${g.replicaId}`;
    const o = old?.get(key);
    if (o && Buffer.from(o.buffer, o.byteOffset, o.byteLength).equals(packed)) {
      g.sealedSegmentIds = o;
      lists.set(key, o);
      continue;
    }
    let ids: BigInt64Array;
    try {
      ids = packedIds(packed);
    } catch (err) {
      throw VbError.invalid(`querynode ${d.nodeId}: delegator ${g.vchannel}: ${(err as Error).message}`);
    }
    g.sealedSegmentIds = ids;
    lists.set(key, ids);
  }
  before?.set(d.nodeId, lists);
  return d;
}

type DistSegments = QueryNodeDist["segments"];

/**
 * How a node's segments changed from the list handed on before (`from`) to the one handed on with it:
 * the records that went (or were replaced) and the ones that came. A record that did not change is the
 * same object in both lists, so that whoever indexed `from` applies this instead of comparing the lists.
 */
export interface SegmentsChange {
  from: readonly DistSegment[];
  added: DistSegment[];
  removed: DistSegment[];
}

/**
 * How a node's segments changed since the assembler handed the node on before: the records that came
 * (new, or in place of the segment's record before) and the ids of the segments that went or whose
 * record was replaced. `whole`: the node's first hand-on, and `added` is its whole list.
 */
export interface SegmentsDelta {
  whole: boolean;
  added: DistSegment[];
  removed: bigint[];
}

/** A node's distribution put together: `dist` without its segments (`segments` empty), and how they changed. */
export interface AssembledDist {
  dist: QueryNodeDist;
  change: SegmentsDelta;
}

/** A node's segments as the assembler holds them: base − `removed` + `added`. */
interface NodeView {
  /** the base (a small node's whole list), as columns */
  base: SegmentTable;
  /** the delta's records (new, or in place of the base's), by id */
  added: Map<bigint, DistSegment>;
  removed: Set<bigint>;
}

interface NodeBase extends NodeView {
  /** chunks of the newest base epoch seen */
  chunkEpoch: number;
  chunks: (DistSegments | undefined)[];
  /** the base in use (`SMALL`: a small node's whole list) and the delta applied last */
  epoch: number;
  seq: number;
  /** what `base`, `added` and `removed` make was handed on */
  handed: boolean;
  /** a head whose base's chunks are not all in yet */
  waiting: QueryNodeDist | undefined;
}

/** The epoch of a small node's list, sent whole (a base's epoch is a positive number). */
const SMALL = -1;

/** No indexes: one array for every record without any (never changed in place). */
const NO_INDEXES: bigint[] = [];
/** One object for each collection id, partition id and channel name the records repeat, and one empty index list. */
export class SharedValues {
  private readonly ids = new Interner<bigint>();
  private readonly names = new Interner<string>();

  record(s: DistSegment): DistSegment {
    s.collectionId = this.ids.of(s.collectionId);
    s.partitionId = this.ids.of(s.partitionId);
    s.vchannel = this.names.of(s.vchannel);
    if (s.indexIds === undefined || s.indexIds.length === 0) s.indexIds = NO_INDEXES;
    return s;
  }
}

/** Where a node's view has a segment: a delta's record, a place in the base, or nowhere (-1). */
function find(v: NodeView, id: bigint): DistSegment | number {
  const a = v.added.get(id);
  if (a) return a;
  return v.removed.has(id) ? -1 : v.base.indexOf(id);
}

function sameFound(va: NodeView, a: DistSegment | number, vb: NodeView, b: DistSegment | number): boolean {
  if (typeof a === "number") {
    if (typeof b === "number") return a < 0 || b < 0 ? a === b : va.base.sameAs(a, vb.base, b);
    return a >= 0 && va.base.same(a, b);
  }
  if (typeof b === "number") return b >= 0 && vb.base.same(b, a);
  return a === b || sameDistSegment(a, b);
}

/** The records of a node's view, made anew from the base's columns. */
function recordsOf(v: NodeView): DistSegment[] {
  const out: DistSegment[] = [];
  for (let i = 0; i < v.base.length; i++) {
    const id = v.base.idAt(i);
    if (!v.added.has(id) && !v.removed.has(id)) out.push(v.base.record(i));
  }
  for (const s of v.added.values()) out.push(s);
  return out;
}

/**
 * What changed from one view of a node to the next: the segments the deltas name are looked up, and
 * when the base changed too, both bases are walked side by side in id order (column against column).
 */
function changeBetween(before: NodeView, now: NodeView): SegmentsDelta {
  const added: DistSegment[] = [];
  const removed: bigint[] = [];
  const named = new Set<bigint>([...before.added.keys(), ...before.removed, ...now.added.keys(), ...now.removed]);
  for (const id of named) {
    const o = find(before, id);
    const n = find(now, id);
    if (sameFound(before, o, now, n)) continue;
    if (o !== -1) removed.push(id);
    if (typeof n !== "number") added.push(n);
    else if (n >= 0) added.push(now.base.record(n));
  }
  if (before.base !== now.base) {
    const a = before.base;
    const b = now.base;
    let i = 0;
    let j = 0;
    while (i < a.length || j < b.length) {
      const x = i < a.length ? a.idAt(i) : undefined;
      const y = j < b.length ? b.idAt(j) : undefined;
      if (y === undefined || (x !== undefined && x < y)) {
        if (!named.has(x!)) removed.push(x!);
        i++;
      } else if (x === undefined || y < x) {
        if (!named.has(y)) added.push(b.record(j));
        j++;
      } else {
        if (!named.has(x) && !a.sameAs(i, b, j)) {
          removed.push(x);
          added.push(b.record(j));
        }
        i++;
        j++;
      }
    }
  }
  return { whole: false, added, removed };
}

/**
 * Puts nodes' distributions together: keeps each node's base (from its chunks) and applies the head's
 * delta to it, and hands each node on with how its segments changed since it handed it on before
 * (`SegmentsDelta`): computed from the deltas alone while the base stays, and by walking the old base
 * and the new one side by side when it changes. A small node's whole list is kept the same way.
 *
 * What it keeps of a node is columns (`SegmentTable`) plus its delta's records: a record is made again
 * only when it is handed on. (It held each record as an object before: about 210 bytes a copy on the
 * feed's thread, beside querycoord's own records of the same copies.)
 */
export class DistAssembler {
  private readonly nodes = new Map<string, NodeBase>();
  /** (the records handed on are copied to querycoord's thread, which holds one value for what they repeat) */
  private readonly shapes = new SegmentShapes();
  /** each node's delegators' segment lists as last read (an unchanged one is not decoded again) */
  private readonly sealed = new Map<string, SealedLists>();

  /** One feed message; returns a node's distribution when there is one to hand on. */
  take(subject: string, data: Uint8Array): AssembledDist | undefined {
    if (isChunkSubject(subject)) return this.chunk(decodeChunk(data));
    return this.takeHead(this.decodeHead(data));
  }

  /** A head message, decoded (decodeQueryNodeDist, with the node's lists as last read). */
  decodeHead(data: Uint8Array): QueryNodeDist {
    return decodeQueryNodeDist(data, this.sealed);
  }

  /** The chunks (indexes) the node's head waits for: none when it waits for nothing. */
  missingChunks(nodeId: string): number[] {
    const st = this.nodes.get(nodeId);
    const w = st?.waiting;
    if (!st || !w) return [];
    const { epoch, chunks } = w.base!;
    const out: number[] = [];
    for (let i = 0; i < chunks; i++) if (st.chunkEpoch !== epoch || !st.chunks[i]) out.push(i);
    return out;
  }

  /** A decoded head message. */
  takeHead(d: QueryNodeDist): AssembledDist | undefined {
    return d.base ? this.resolve(d) : this.whole(d);
  }

  private of(nodeId: string): NodeBase {
    let st = this.nodes.get(nodeId);
    if (!st) {
      st = {
        chunkEpoch: 0,
        chunks: [],
        epoch: 0,
        base: SegmentTable.empty(this.shapes),
        seq: -1,
        added: new Map(),
        removed: new Set(),
        handed: false,
        waiting: undefined,
      };
      this.nodes.set(nodeId, st);
    }
    return st;
  }

  private chunk(c: QueryNodeDistChunk): AssembledDist | undefined {
    const st = this.of(c.nodeId);
    if (c.epoch < st.chunkEpoch || c.epoch === st.epoch) return undefined;
    if (c.epoch > st.chunkEpoch) {
      st.chunkEpoch = c.epoch;
      st.chunks = [];
    }
    st.chunks[c.index] = c.segments;
    const w = st.waiting;
    return w && w.base!.epoch === c.epoch ? this.resolve(w) : undefined;
  }

  /** A small node's list, sent whole. */
  private whole(d: QueryNodeDist): AssembledDist {
    const st = this.of(d.nodeId);
    const before: NodeView | undefined = st.handed ? { base: st.base, added: st.added, removed: st.removed } : undefined;
    Object.assign(st, {
      chunkEpoch: 0,
      chunks: [],
      epoch: SMALL,
      base: SegmentTable.of(this.shapes, [d.segments]),
      seq: -1,
      added: new Map(),
      removed: new Set(),
      handed: true,
      waiting: undefined,
    } satisfies NodeBase);
    return { dist: { ...d, segments: [] }, change: before ? changeBetween(before, st) : { whole: true, added: d.segments, removed: [] } };
  }

  private resolve(d: QueryNodeDist): AssembledDist | undefined {
    const st = this.of(d.nodeId);
    const { epoch, chunks } = d.base!;
    const delta = d.delta ?? { seq: 0, added: [], removed: [] };
    const rebase = st.epoch !== epoch;
    if (!rebase && st.seq === delta.seq && st.handed) {
      st.waiting = undefined;
      return { dist: { ...d, segments: [] }, change: { whole: false, added: [], removed: [] } };
    }
    const before: NodeView | undefined = st.handed ? { base: st.base, added: st.added, removed: st.removed } : undefined;
    const held = d.base!.from;
    if (rebase && held && before && st.epoch === held.epoch && st.seq === held.seq) {
      // the new base is the list handed on last (the node says so): made of what is held, no chunks read
      Object.assign(st, { base: SegmentTable.of(this.shapes, [recordsOf(before)]), chunks: [], chunkEpoch: Math.max(st.chunkEpoch, epoch) });
    } else if (rebase) {
      if (st.chunkEpoch !== epoch || st.chunks.length < chunks) {
        st.waiting = d;
        return undefined;
      }
      for (let i = 0; i < chunks; i++) {
        if (!st.chunks[i]) {
          st.waiting = d;
          return undefined;
        }
      }
      Object.assign(st, { base: SegmentTable.of(this.shapes, st.chunks.slice(0, chunks) as DistSegments[]), chunks: [] });
    }
    st.epoch = epoch;
    st.waiting = undefined;
    st.seq = delta.seq;
    st.added = new Map(delta.added.map((s) => [s.segmentId, s]));
    st.removed = new Set(delta.removed);
    st.handed = true;
    return { dist: { ...d, segments: [] }, change: before ? changeBetween(before, st) : { whole: true, added: recordsOf(st), removed: [] } };
  }
}

function isChunkSubject(subject: string): boolean {
  const tokens = subject.split(".");
  return tokens[tokens.length - 2] === "base";
}

function decodeChunk(data: Uint8Array): QueryNodeDistChunk {
  const c = decode<QueryNodeDistChunk>(data);
  if (typeof c !== "object" || c === null || typeof c.nodeId !== "string" || typeof c.epoch !== "number" || !Array.isArray(c.segments)) {
    throw VbError.invalid("not a querynode distribution chunk: nodeId, epoch and segments are required");
  }
  for (const s of c.segments) s.indexIds ??= [];
  return c;
}

/** A head subject as the follower last took it: where, when stored, and when it may be read directly next. */
interface HeadSeen {
  position: bigint;
  storedAt: number;
  readAfter: number;
  misses: number;
}

/** At most this many direct reads of starved heads at once, and as many nodes' base chunks (see followQueryNodeDists). */
const CATCH_UP_READS = 64;
/** Heads of one node read directly in a row to catch up with its newest base (see readChunks). */
const MAX_CHASES = 3;
/** A silent node's head is read directly at most this seldom. */
const MAX_READ_BACKOFF_MS = 30_000;

/**
 * Follows `vb.dist.querynode.>` (heads and base chunks); `onDist` gets each distribution (its segments
 * left out) with how its segments changed since the node's distribution before, the time the server
 * stored its head (its clock) and whether that message is a sample of how far behind the feed querycoord
 * reads (a live message the follower came to in stream order).
 *
 * The feed keeps one message per subject, so a follower that reads `L` ms behind never comes to a head
 * that its node replaces more often than every `L` ms: each one is gone before the follower gets there,
 * and a busy querycoord (behind by seconds, its nodes beating every second) would hear nothing from
 * exactly its liveliest nodes. So a head the follower has not come to for two heartbeat intervals past
 * where it reads (its node should have spoken since) is read from the server directly (with the base
 * chunks it needs): that node is heard as soon as the server holds a newer head, and only a node the
 * server holds nothing newer from is silent.
 */
export async function followQueryNodeDists(
  env: DistFeedEnv,
  log: Logger,
  onDist: (dist: QueryNodeDist, storedAt: number, lagSample: boolean, change: SegmentsDelta) => void,
): Promise<FeedFollower> {
  await ensureDistStream(env);
  const stream = env.subjects.distStream();
  const feed = new Feed(env.nc, { log });
  const assembler = new DistAssembler();
  const intervalMs = env.config.heartbeatIntervalMs;
  /**
   * per head subject: the newest head taken; when it may be read directly next (local time), and how
   * many direct reads in a row found nothing newer (a silent node is read less and less often)
   */
  const heads = new Map<string, HeadSeen>();
  /** per node: when the server stored the newest head taken (a distribution completed by a chunk is that head's) */
  const headAt = new Map<string, number>();
  /** when the server stored the newest message the follower came to: where it reads */
  let readingAt = 0;
  /** per node: heads read directly in a row because its chunks had moved on to a newer base */
  const chases = new Map<string, number>();
  const headSubjectOf = (nodeId: string) => env.subjects.distSubject("querynode", nodeId as NodeId);

  const take = (subject: string, data: Uint8Array, storedAt: number, lagSample: boolean): void => {
    let r: AssembledDist | undefined;
    try {
      if (isChunkSubject(subject)) r = assembler.take(subject, data);
      else {
        const head = assembler.decodeHead(data);
        headAt.set(head.nodeId, storedAt);
        r = assembler.takeHead(head);
        if (!r) void readChunks(head.nodeId);
      }
    } catch (err) {
      log.warn({ subject, err: (err as Error).message }, "skipped a malformed querynode distribution");
      return;
    }
    if (!r) return;
    const nodeId = r.dist.nodeId;
    chases.delete(nodeId);
    onDist(r.dist, headAt.get(nodeId) ?? storedAt, lagSample, r.change);
  };

  const follower = await feed.follow(stream, env.subjects.distRoleAllSubjects("querynode"), (m) => {
    if (m.timestamp > readingAt) readingAt = m.timestamp;
    if (!isChunkSubject(m.subject)) {
      const h = heads.get(m.subject);
      if (h && h.position >= m.position) return; // read directly already
      heads.set(m.subject, { position: m.position, storedAt: m.timestamp, readAfter: 0, misses: 0 });
    }
    take(m.subject, m.data, m.timestamp, !m.initial);
  });

  let reads = 0;
  let stopped = false;
  /** reads a starved head (and, when its base is not in, the chunks it needs) */
  const readHead = async (subject: string): Promise<void> => {
    const e = await feed.last(stream, subject);
    const h = heads.get(subject);
    if (stopped || !h) return;
    if (!e || e.position <= h.position) {
      // nothing newer: the node is silent; read it again later, less often while it stays so
      h.misses++;
      h.readAfter = Date.now() + Math.min(MAX_READ_BACKOFF_MS, intervalMs * 2 ** h.misses);
      return;
    }
    h.misses = 0;
    h.position = e.position;
    h.storedAt = e.timestamp;
    take(subject, e.data, e.timestamp, false);
  };
  /** readHead, counted among the reads in flight; a failure waits for the next try */
  const readHeadCounted = (subject: string): Promise<void> => {
    reads++;
    return readHead(subject)
      .catch((err: unknown) => log.debug({ subject, err: errorText(err) }, "reading a head directly failed; trying again later"))
      .finally(() => {
        reads--;
        refill();
      });
  };
  /** a head waits for base chunks the follower has not come to (replaced as fast as the heads): read them */
  const chunkReads = new Set<string>();
  const readChunks = async (nodeId: string): Promise<void> => {
    // (bounded apart from the heads' reads, which may take every slot of theirs: a head read directly
    // that waits for its base must get it, or reading it was for nothing)
    if (chunkReads.has(nodeId) || chunkReads.size >= CATCH_UP_READS) return;
    const missing = assembler.missingChunks(nodeId);
    if (missing.length === 0) return;
    chunkReads.add(nodeId);
    let behind = false;
    try {
      for (const i of missing) {
        if (stopped) return;
        const subject = env.subjects.distBaseSubject("querynode", nodeId as NodeId, i);
        const c = await feed.last(stream, subject);
        if (c) take(subject, c.data, c.timestamp, false);
      }
      behind = !stopped && assembler.missingChunks(nodeId).length > 0;
    } catch (err) {
      log.debug({ node: nodeId, err: errorText(err) }, "reading a base chunk directly failed; the feed brings it later");
    } finally {
      chunkReads.delete(nodeId);
    }
    // the node rebased again meanwhile: its chunks are of a newer base than the head waits for; the
    // newest head goes with them (a few times in a row at most: a node rebasing faster than this is read
    // is left to the feed and the next catch-up)
    const chased = chases.get(nodeId) ?? 0;
    if (behind && chased < MAX_CHASES && heads.has(headSubjectOf(nodeId))) {
      chases.set(nodeId, chased + 1);
      await readHeadCounted(headSubjectOf(nodeId));
    }
  };
  /**
   * Reads the starved heads, `CATCH_UP_READS` at a time: a read that ends makes room for the next one at
   * once (a querycoord far behind, with hundreds of nodes starved, hears each of them within a few
   * reads' time, not `CATCH_UP_READS` nodes a heartbeat interval); each node is read at most once an
   * interval. The heads are walked from where the walk before stopped, so that every starved node gets
   * its turn.
   */
  let walk: Iterator<[string, HeadSeen]> | undefined;
  let walked = 0;
  const catchUp = (): void => {
    if (stopped) return;
    const now = Date.now();
    walked = 0;
    while (reads < CATCH_UP_READS && walked < heads.size) {
      walk ??= heads.entries();
      const next = walk.next();
      if (next.done) {
        walk = undefined;
        if (heads.size === 0) return;
        continue;
      }
      walked++;
      const [subject, h] = next.value;
      if (readingAt - h.storedAt <= 2 * intervalMs || now < h.readAfter) continue;
      h.readAfter = now + intervalMs;
      void readHeadCounted(subject);
    }
  };
  /** another read may start: looked for once the reads that end together have ended */
  let refillQueued = false;
  const refill = (): void => {
    if (refillQueued || stopped) return;
    refillQueued = true;
    setImmediate(() => {
      refillQueued = false;
      catchUp();
    });
  };
  const timer = setInterval(catchUp, intervalMs);
  timer.unref();
  const stop = async (): Promise<void> => {
    stopped = true;
    clearInterval(timer);
    await follower.stop();
  };
  void follower.done.finally(() => clearInterval(timer)).catch(() => undefined);
  return { ready: follower.ready, done: follower.done, stop, [Symbol.asyncDispose]: stop };
}
