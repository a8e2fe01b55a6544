/**
 * Following the querynodes' part of the `VB_DIST` feed: every head message is one querynode's
 * distribution, whole or (a large node's) as a delta against a numbered base sent before it in chunks
 * (`DistAssembler`). The follower decodes, puts a node's segments together and hands each distribution
 * on; it never touches querycoord's state.
 */
import { decode } from "../../../protocol/codec.ts";
import { VbError } from "../../../protocol/errors.ts";
import type { QueryNodeDist, QueryNodeDistChunk } from "../../../protocol/messages/querynode.ts";
import { Feed, type FeedFollower } from "../../../runtime/feed.ts";
import type { Logger } from "../../../runtime/logger.ts";
import { isStreamNotFound, jetstreamOf } from "../../../runtime/streams.ts";
import type { ClusterEnv } from "../../env.ts";

/** Creates the feed's stream when nobody has (an existing one is left as its creator made it). */
export async function ensureDistStream(env: ClusterEnv): Promise<void> {
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

export function decodeQueryNodeDist(data: Uint8Array): QueryNodeDist {
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
  return d;
}

type DistSegments = QueryNodeDist["segments"];

interface NodeBase {
  /** chunks of the newest base epoch seen */
  chunkEpoch: number;
  chunks: (DistSegments | undefined)[];
  /** the base in use */
  epoch: number;
  base: Map<bigint, DistSegments[number]> | undefined;
  /** the delta applied last, and the segments it gave (handed on as the same array while unchanged) */
  seq: number;
  segments: DistSegments | undefined;
  /** a head whose base's chunks are not all in yet */
  waiting: QueryNodeDist | undefined;
}

/**
 * Puts large nodes' distributions together: keeps each node's base (from its chunks) and applies the
 * head's delta to it. A head whose delta did not change since the last one (same epoch and `seq`) gets
 * the same segments array as before, which DistSnapshot takes as "segments unchanged".
 */
export class DistAssembler {
  private readonly nodes = new Map<string, NodeBase>();

  /** One feed message; returns a node's whole distribution when there is one to hand on. */
  take(subject: string, data: Uint8Array): QueryNodeDist | undefined {
    const tokens = subject.split(".");
    if (tokens[tokens.length - 2] === "base") return this.chunk(decodeChunk(data));
    const d = decodeQueryNodeDist(data);
    if (!d.base) {
      this.nodes.delete(d.nodeId);
      return d;
    }
    return this.resolve(d);
  }

  private of(nodeId: string): NodeBase {
    let st = this.nodes.get(nodeId);
    if (!st) this.nodes.set(nodeId, (st = { chunkEpoch: 0, chunks: [], epoch: 0, base: undefined, seq: -1, segments: undefined, waiting: undefined }));
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
    if (st.epoch !== epoch) {
      if (st.chunkEpoch !== epoch || st.chunks.length < chunks) {
        st.waiting = d;
        return undefined;
      }
      const base = new Map<bigint, DistSegments[number]>();
      for (let i = 0; i < chunks; i++) {
        const part = st.chunks[i];
        if (!part) {
          st.waiting = d;
          return undefined;
        }
        for (const s of part) base.set(s.segmentId, s);
      }
      Object.assign(st, { epoch, base, seq: -1, segments: undefined, chunks: [] });
    }
    st.waiting = undefined;
    const delta = d.delta ?? { seq: 0, added: [], removed: [] };
    if (st.seq !== delta.seq || !st.segments) {
      let segments: DistSegments;
      if (delta.added.length === 0 && delta.removed.length === 0) segments = [...st.base!.values()];
      else {
        const m = new Map(st.base);
        for (const id of delta.removed) m.delete(id);
        for (const s of delta.added) m.set(s.segmentId, { ...s, indexIds: s.indexIds ?? [] });
        segments = [...m.values()];
      }
      st.seq = delta.seq;
      st.segments = segments;
    }
    return { ...d, segments: st.segments };
  }
}

function decodeChunk(data: Uint8Array): QueryNodeDistChunk {
  const c = decode<QueryNodeDistChunk>(data);
  if (typeof c !== "object" || c === null || typeof c.nodeId !== "string" || typeof c.epoch !== "number" || !Array.isArray(c.segments)) {
    throw VbError.invalid("not a querynode distribution chunk: nodeId, epoch and segments are required");
  }
  for (const s of c.segments) s.indexIds ??= [];
  return c;
}

/**
 * Follows `vb.dist.querynode.>` (heads and base chunks); `onDist` gets each distribution with the time the
 * server stored it (its clock) and whether it is live (came after the feed's initial snapshot).
 */
export async function followQueryNodeDists(
  env: ClusterEnv,
  log: Logger,
  onDist: (dist: QueryNodeDist, storedAt: number, live: boolean) => void,
): Promise<FeedFollower> {
  await ensureDistStream(env);
  const feed = new Feed(env.nc, { log });
  const assembler = new DistAssembler();
  return feed.follow(env.subjects.distStream(), env.subjects.distRoleAllSubjects("querynode"), (m) => {
    let d: QueryNodeDist | undefined;
    try {
      d = assembler.take(m.subject, m.data);
    } catch (err) {
      log.warn({ subject: m.subject, err: (err as Error).message }, "skipped a malformed querynode distribution");
      return;
    }
    if (d) onDist(d, m.timestamp, !m.initial);
  });
}
