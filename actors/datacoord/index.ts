/** The datacoord actor: spawn one per cluster at `env.subjects.datacoord()`. */
import type { ActorHost } from "../../runtime/host.ts";
import type { ClusterEnv } from "../env.ts";
import { DatacoordActor } from "./datacoord_actor.ts";

export { DatacoordActor } from "./datacoord_actor.ts";
export { SEGMENTS_BUCKET, SEGMENT_STATES, canTransition, transition, segmentKey } from "./segment_meta.ts";
export { CHANNEL_WATCH_BUCKET, planAssignments, type ChannelRecord } from "./channel_manager.ts";
export { CHECKPOINTS_BUCKET } from "./channel_checkpoints.ts";
export { isFlushed, segmentsToFlush } from "./flush.ts";

/** Spawns datacoord in `host` and returns its address. */
export function spawnDatacoord(host: ActorHost, env: ClusterEnv): Promise<string> {
  return host.spawn({
    address: env.subjects.datacoord(),
    create: () => new DatacoordActor(env),
    logFields: { role: "datacoord" },
  });
}
