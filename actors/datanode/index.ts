/** The datanode actor: spawn one per node id at `env.subjects.datanode(nodeId)`. */
import { VbError } from "../../protocol/errors.ts";
import { asNodeId, isValidNodeId } from "../../protocol/ids.ts";
import type { ActorHost } from "../../runtime/host.ts";
import type { ClusterEnv } from "../env.ts";
import { DatanodeActor, type DatanodeOptions } from "./datanode_actor.ts";

export { DatanodeActor, DATANODE, type DatanodeOptions } from "./datanode_actor.ts";
export { WriteBuffer, type BufferedSegment, type BufferEvents } from "./write_buffer.ts";
export { computeCheckpoint } from "./checkpoint.ts";

/** Spawns the datanode `nodeId` in `host` and returns its address. */
export async function spawnDatanode(host: ActorHost, env: ClusterEnv, opts: DatanodeOptions): Promise<string> {
  if (!isValidNodeId(opts.nodeId)) throw VbError.invalid(`nodeId "${opts.nodeId}": use letters, digits, _ and - only`);
  return await host.spawn({
    address: env.subjects.datanode(asNodeId(opts.nodeId)),
    create: () => new DatanodeActor(env, opts),
    logFields: { role: "datanode", node: opts.nodeId },
  });
}
