/**
 * The querynode's heartbeat and distribution on the feed (`VB_DIST`, subject `vb.dist.querynode.<node>`,
 * one message kept per subject): what querycoord's NodeManager and DistManager are made of.
 *
 * The actor asks for a publish every heartbeat interval and at once after a change; publishes never
 * overlap: one asked for while another is in flight goes out after it, with the state as it is then
 * (so a burst of changes makes two messages, not one per change).
 */
import { encode } from "../../protocol/codec.ts";
import { asNodeId } from "../../protocol/ids.ts";
import type { QueryNodeDist } from "../../protocol/messages/querynode.ts";
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
export function encodeDist(dist: QueryNodeDist, log?: Logger): Uint8Array {
  let bytes = encode(dist);
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

export class DistPublisher {
  private readonly feed: Feed;
  readonly subject: string;
  private inFlight = false;
  private again = false;

  constructor(
    private readonly env: ClusterEnv,
    nodeId: string,
    private readonly log: Logger,
  ) {
    this.feed = new Feed(env.nc, { log });
    this.subject = env.subjects.distSubject("querynode", asNodeId(nodeId));
  }

  /**
   * Publishes `build()` now, or right after the publish in flight. `done` is called (in any context) when
   * a publish settles; the actor then calls `settled()` from its mailbox.
   */
  publish(build: () => QueryNodeDist, done: () => void): void {
    if (this.inFlight) {
      this.again = true;
      return;
    }
    this.inFlight = true;
    let payload: Uint8Array;
    try {
      payload = encodeDist(build(), this.log);
    } catch (err) {
      this.inFlight = false;
      this.log.error({ err }, "could not encode the dist");
      return;
    }
    this.feed.publish(this.subject, payload).then(
      () => done(),
      (err: unknown) => {
        this.log.warn({ err: (err as Error).message }, "publishing the dist failed; the next heartbeat retries");
        done();
      },
    );
  }

  /** Publishes once and waits for the ack (the first dist, before the node takes requests). */
  async publishNow(dist: QueryNodeDist): Promise<void> {
    await this.feed.publish(this.subject, encodeDist(dist, this.log));
  }

  /** The publish in flight settled: returns true when another one was asked for meanwhile. */
  settled(): boolean {
    this.inFlight = false;
    const again = this.again;
    this.again = false;
    return again;
  }
}
