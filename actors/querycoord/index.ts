/**
 * The querycoord actor (Milvus's QueryCoord v2): spawn it at `env.subjects.querycoord()` and talk to it
 * with `querycoord.<Verb>` asks (QuerycoordApi in protocol/messages/querycoord.ts).
 */
import type { ActorHost } from "../../runtime/host.ts";
import type { ClusterEnv } from "../env.ts";
import type { QuerycoordParams } from "./params.ts";
import { QuerycoordActor } from "./querycoord_actor.ts";

export { QuerycoordActor } from "./querycoord_actor.ts";
export { BUCKET as QUERYCOORD_BUCKETS } from "./kv_layout.ts";
export { DEFAULT_QUERYCOORD_PARAMS, type QuerycoordParams } from "./params.ts";
export { formatBlocker } from "./checkers/types.ts";

/** Spawns the querycoord actor at its address in `host` and returns the address. */
export function spawnQuerycoord(host: ActorHost, env: ClusterEnv, params: Partial<QuerycoordParams> = {}): Promise<string> {
  return host.spawn({
    address: env.subjects.querycoord(),
    create: () => new QuerycoordActor(env, params),
    logFields: { role: "querycoord" },
  });
}
