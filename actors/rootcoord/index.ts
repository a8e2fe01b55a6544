/** The rootcoord actor: spawn it at `env.subjects.rootcoord()` and talk to it with `rootcoord.<Verb>` asks. */
import type { ActorHost } from "../../runtime/host.ts";
import type { ClusterEnv } from "../env.ts";
import { RootcoordActor } from "./rootcoord_actor.ts";

export { RootcoordActor } from "./rootcoord_actor.ts";
export { BUCKET as ROOTCOORD_BUCKETS } from "./kv_layout.ts";

/** Spawns the rootcoord actor at its address in `host` and returns the address. */
export function spawnRootcoord(host: ActorHost, env: ClusterEnv): Promise<string> {
  return host.spawn({
    address: env.subjects.rootcoord(),
    create: () => new RootcoordActor(env),
    logFields: { role: "rootcoord" },
  });
}
