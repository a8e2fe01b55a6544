import type { ActorHost } from "../../runtime/host.ts";
import type { ClusterEnv } from "../env.ts";
import { ProxyActor } from "./proxy_actor.ts";

export { ProxyActor } from "./proxy_actor.ts";

/** Spawns a proxy at the shared proxy address, in the proxies' queue group; returns its address. */
export async function spawnProxy(host: ActorHost, env: ClusterEnv): Promise<string> {
  return host.spawn({
    address: env.subjects.proxy(),
    queue: env.subjects.proxyQueue(),
    create: () => new ProxyActor(env),
    logFields: { role: "proxy" },
  });
}
