/**
 * Following the querynodes' part of the `VB_DIST` feed: every message is one querynode's whole
 * distribution. The follower decodes and hands each one on; it never touches querycoord's state.
 */
import { decode } from "../../../protocol/codec.ts";
import { VbError } from "../../../protocol/errors.ts";
import type { QueryNodeDist } from "../../../protocol/messages/querynode.ts";
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

/**
 * Follows `vb.dist.querynode.*`; `onDist` gets each distribution with the time the server stored it
 * (the age of a snapshot message) or, for live ones, the time it arrived.
 */
export async function followQueryNodeDists(
  env: ClusterEnv,
  log: Logger,
  onDist: (dist: QueryNodeDist, seenAt: number) => void,
): Promise<FeedFollower> {
  await ensureDistStream(env);
  const feed = new Feed(env.nc, { log });
  return feed.follow(env.subjects.distStream(), env.subjects.distRoleSubjects("querynode"), (m) => {
    let d: QueryNodeDist;
    try {
      d = decodeQueryNodeDist(m.data);
    } catch (err) {
      log.warn({ subject: m.subject, err: (err as Error).message }, "skipped a malformed querynode distribution");
      return;
    }
    onDist(d, m.initial ? m.timestamp : Math.max(m.timestamp, Date.now()));
  });
}
