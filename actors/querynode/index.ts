import { QUERYNODE } from "../../protocol/messages/querynode.ts";
import { asNodeId, isValidNodeId } from "../../protocol/ids.ts";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import type { ActorHost } from "../../runtime/host.ts";
import type { ClusterEnv } from "../env.ts";
import { defaultMemoryLimit } from "./memory.ts";
import { QuerynodeActor } from "./querynode_actor.ts";
import { defaultSearchThreads } from "../segment/search_threads.ts";

export { QuerynodeActor, type QuerynodeOptions } from "./querynode_actor.ts";
export { defaultMemoryLimit } from "./memory.ts";
export { defaultSearchThreads } from "../segment/search_threads.ts";
export { ensureDistStream, encodeDist } from "./dist_publisher.ts";

/**
 * Spawns a querynode at `vb.qn.<nodeId>`; the delegators it is told to start live in the same host at
 * their own addresses. `memoryLimitBytes` defaults to `VB_QN_MEMORY_LIMIT`, else 80 % of the machine's
 * memory; `searchThreads` to `VB_QN_SEARCH_THREADS`, else one a core (0: searches run on the actor's
 * thread). Returns its address.
 */
export async function spawnQuerynode(
  host: ActorHost,
  env: ClusterEnv,
  opts: { nodeId: string; memoryLimitBytes?: number; searchThreads?: number },
): Promise<string> {
  if (!isValidNodeId(opts.nodeId)) throw new VbError(ErrorCode.ParameterInvalid, `invalid querynode id "${opts.nodeId}": use letters, digits, _ and -`);
  const memoryLimitBytes = opts.memoryLimitBytes ?? defaultMemoryLimit();
  if (!Number.isFinite(memoryLimitBytes) || memoryLimitBytes <= 0) {
    throw new VbError(ErrorCode.ParameterInvalid, `memoryLimitBytes must be a positive number of bytes, got ${memoryLimitBytes}`);
  }
  const searchThreads = opts.searchThreads ?? defaultSearchThreads();
  if (!Number.isInteger(searchThreads) || searchThreads < 0) {
    throw new VbError(ErrorCode.ParameterInvalid, `searchThreads must be an integer ≥ 0, got ${searchThreads}`);
  }
  return host.spawn({
    address: env.subjects.querynode(asNodeId(opts.nodeId)),
    kind: QUERYNODE,
    create: () => new QuerynodeActor(env, { nodeId: opts.nodeId, memoryLimitBytes, searchThreads }),
    logFields: { role: QUERYNODE, node: opts.nodeId },
  });
}
