/**
 * Following the querynodes' part of the `VB_DIST` feed: every head message is one querynode's
 * distribution, whole or (a large node's) as a delta against a numbered base sent before it in chunks
 * (`DistAssembler`). The follower decodes, puts a node's segments together and hands each distribution
 * on with how its segments changed; it never touches querycoord's state.
 */
import { decode } from "../../../protocol/codec.ts";
import { VbError } from "../../../protocol/errors.ts";
import type { NodeId } from "../../../protocol/ids.ts";
import { sameDistSegment, unpackIds, type DistSegment, type QueryNodeDist, type QueryNodeDistChunk } from "../../../protocol/messages/querynode.ts";
import { Feed, type FeedFollower } from "../../../runtime/feed.ts";
import type { Logger } from "../../../runtime/logger.ts";
import { errorText, isStreamNotFound, jetstreamOf } from "../../../runtime/streams.ts";
import type { ClusterEnv } from "../../env.ts";
import { Interner } from "../interner.ts";

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

/** A node's delegators' segment lists as last read: packed bytes and their ids (DistAssembler). */
type SealedLists = Map<string, { bytes: Uint8Array; ids: bigint[] }>;

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
    if (o && Buffer.from(o.bytes.buffer, o.bytes.byteOffset, o.bytes.byteLength).equals(packed)) {
      g.sealedSegmentIds = o.ids;
      lists.set(key, o);
      continue;
    }
    try {
      g.sealedSegmentIds = unpackIds(packed);
    } catch (err) {
      throw VbError.invalid(`querynode ${d.nodeId}: delegator ${g.vchannel}: ${(err as Error).message}`);
    }
    // (a copy: the bytes are a view into the message, which a kept view would keep whole)
    lists.set(key, { bytes: Uint8Array.prototype.slice.call(packed), ids: g.sealedSegmentIds });
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

interface NodeBase {
  /** chunks of the newest base epoch seen */
  chunkEpoch: number;
  chunks: (DistSegments | undefined)[];
  /** the base in use */
  epoch: number;
  base: Map<bigint, DistSegment> | undefined;
  /** the delta applied last (its records by id), and the segments it gave (handed on as the same array while unchanged) */
  seq: number;
  added: Map<bigint, DistSegment>;
  removed: Set<bigint>;
  segments: DistSegments | undefined;
  /** a head whose base's chunks are not all in yet */
  waiting: QueryNodeDist | undefined;
}

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

/** A node's record of a segment in the view `st` holds (base − removed + added). */
function recordOf(st: Pick<NodeBase, "base" | "added" | "removed">, id: bigint): DistSegment | undefined {
  return st.added.get(id) ?? (st.removed.has(id) ? undefined : st.base?.get(id));
}

/**
 * Puts large nodes' distributions together: keeps each node's base (from its chunks) and applies the
 * head's delta to it. A head whose delta did not change since the last one (same epoch and `seq`) gets
 * the same segments array as before, which DistSnapshot takes as "segments unchanged".
 *
 * A record that says the same as the one handed on before for its segment is handed on as that very
 * object, even across a new base: what querycoord holds of a node stays put while the node loads and
 * rebases, and only what changed is new (a million records replaced on every rebase would be garbage
 * for the old generation). With each new list comes its `SegmentsChange` (`changeOf`), computed from
 * the deltas alone while the base stays.
 */
export class DistAssembler {
  private readonly nodes = new Map<string, NodeBase>();
  private readonly changes = new WeakMap<QueryNodeDist, SegmentsChange>();
  /** one value for what many records repeat */
  private readonly shared = new SharedValues();
  /** each node's delegators' segment lists as last read (an unchanged one is not decoded again) */
  private readonly sealed = new Map<string, SealedLists>();

  /** One feed message; returns a node's whole distribution when there is one to hand on. */
  take(subject: string, data: Uint8Array): QueryNodeDist | undefined {
    if (isChunkSubject(subject)) return this.chunk(decodeChunk(data));
    return this.takeHead(this.decodeHead(data));
  }

  /** A head message, decoded (decodeQueryNodeDist, with the node's lists as last read). */
  decodeHead(data: Uint8Array): QueryNodeDist {
    return decodeQueryNodeDist(data, this.sealed);
  }

  /** How the segments of `d` (handed on by this assembler) changed from the node's list before, when known. */
  changeOf(d: QueryNodeDist): SegmentsChange | undefined {
    return this.changes.get(d);
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
  takeHead(d: QueryNodeDist): QueryNodeDist | undefined {
    if (!d.base) {
      this.nodes.delete(d.nodeId);
      return d;
    }
    return this.resolve(d);
  }

  private of(nodeId: string): NodeBase {
    let st = this.nodes.get(nodeId);
    if (!st) {
      st = { chunkEpoch: 0, chunks: [], epoch: 0, base: undefined, seq: -1, added: new Map(), removed: new Set(), segments: undefined, waiting: undefined };
      this.nodes.set(nodeId, st);
    }
    return st;
  }

  private chunk(c: QueryNodeDistChunk): QueryNodeDist | undefined {
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

  private resolve(d: QueryNodeDist): QueryNodeDist | undefined {
    const st = this.of(d.nodeId);
    const { epoch, chunks } = d.base!;
    const delta = d.delta ?? { seq: 0, added: [], removed: [] };
    const rebase = st.epoch !== epoch;
    if (!rebase && st.seq === delta.seq && st.segments) {
      st.waiting = undefined;
      return { ...d, segments: st.segments };
    }
    const before = { base: st.base, added: st.added, removed: st.removed };
    const from = st.segments;
    /** the record handed on before for the segment when it says the same as `s`, else `s` */
    const kept = (s: DistSegment): DistSegment => {
      const old = from ? recordOf(before, s.segmentId) : undefined;
      return old && sameDistSegment(old, s) ? old : this.shared.record(s);
    };
    const held = d.base!.from;
    if (rebase && held && from && st.epoch === held.epoch && st.seq === held.seq) {
      // the new base is the list handed on last (the node says so): made of the records held, no chunks read
      const base = new Map<bigint, DistSegment>();
      for (const s of from) base.set(s.segmentId, s);
      Object.assign(st, { epoch, base, chunks: [], chunkEpoch: Math.max(st.chunkEpoch, epoch) });
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
      const base = new Map<bigint, DistSegment>();
      for (let i = 0; i < chunks; i++) for (const s of st.chunks[i]!) base.set(s.segmentId, kept(s));
      Object.assign(st, { epoch, base, chunks: [] });
    }
    st.waiting = undefined;
    st.seq = delta.seq;
    st.added = new Map(delta.added.map((s) => [s.segmentId, kept({ ...s, indexIds: s.indexIds ?? [] })]));
    st.removed = new Set(delta.removed);

    const view = (): DistSegments => {
      const out: DistSegments = [];
      for (const [id, s] of st.base!) {
        const a = st.added.get(id);
        if (a || !st.removed.has(id)) out.push(a ?? s);
      }
      for (const [id, s] of st.added) if (!st.base!.has(id)) out.push(s);
      return out;
    };
    if (!from) {
      st.segments = view();
      return { ...d, segments: st.segments };
    }

    // what changed since the list handed on before: from the deltas alone while the base stays
    const added: DistSegment[] = [];
    const removed: DistSegment[] = [];
    const compare = (id: bigint) => {
      const o = recordOf(before, id);
      const n = recordOf(st, id);
      if (o === n) return;
      if (o) removed.push(o);
      if (n) added.push(n);
    };
    let segments: DistSegments | undefined;
    if (rebase) {
      segments = view();
      for (const s of from) if (!recordOf(st, s.segmentId)) removed.push(s);
      for (const s of segments) if (recordOf(before, s.segmentId) !== s) compare(s.segmentId);
    } else {
      for (const id of new Set<bigint>([...before.added.keys(), ...before.removed, ...st.added.keys(), ...st.removed])) compare(id);
    }
    if (added.length === 0 && removed.length === 0) return { ...d, segments: from };
    segments ??= view();
    st.segments = segments;
    const out = { ...d, segments };
    this.changes.set(out, { from, added, removed });
    return out;
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
 * Follows `vb.dist.querynode.>` (heads and base chunks); `onDist` gets each distribution with the time the
 * server stored its head (its clock) and whether that message is a sample of how far behind the feed
 * querycoord reads (a live message the follower came to in stream order).
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
  onDist: (dist: QueryNodeDist, storedAt: number, lagSample: boolean, change: SegmentsChange | undefined) => void,
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
    let d: QueryNodeDist | undefined;
    try {
      if (isChunkSubject(subject)) d = assembler.take(subject, data);
      else {
        const head = assembler.decodeHead(data);
        headAt.set(head.nodeId, storedAt);
        d = assembler.takeHead(head);
        if (!d) void readChunks(head.nodeId);
      }
    } catch (err) {
      log.warn({ subject, err: (err as Error).message }, "skipped a malformed querynode distribution");
      return;
    }
    if (!d) return;
    chases.delete(d.nodeId);
    onDist(d, headAt.get(d.nodeId) ?? storedAt, lagSample, assembler.changeOf(d));
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
