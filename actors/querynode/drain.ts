/**
 * Graceful stop of a querynode process (a pod on SIGTERM): the querynode drains (`querynode.Drain`:
 * `stopping` in its distribution), querycoord loads its segments and delegators on other nodes,
 * switches the shard leaders and releases them here; the process stops once the node holds nothing,
 * or when `timeoutMs` runs out (it stops anyway: querycoord then places the rest as after a crash).
 * It does not wait when there is nowhere to go: no other querynode is up (the whole cluster stops, or
 * this is the last one), or querycoord does not answer.
 */
import { asNodeId } from "../../protocol/ids.ts";
import { QUERYNODE, type QuerynodeApi } from "../../protocol/messages/querynode.ts";
import { QUERYCOORD, type QuerycoordApi } from "../../protocol/messages/querycoord.ts";
import type { ActorHost } from "../../runtime/host.ts";
import type { Logger } from "../../runtime/logger.ts";
import type { ClusterEnv } from "../env.ts";

export const DEFAULT_DRAIN_TIMEOUT_MS = 60_000;

type Held = QuerynodeApi["Drain"][1];

export async function drainQuerynodes(
  host: ActorHost,
  env: ClusterEnv,
  nodeIds: readonly string[],
  opts: { timeoutMs?: number; log: Logger; pollMs?: number },
): Promise<{ drained: boolean; ms: number }> {
  const started = Date.now();
  const deadline = started + (opts.timeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS);
  const pollMs = opts.pollMs ?? 200;
  /** true when another querynode is up to take this one's work, else why not */
  const otherNodesUp = async (nodeId: string): Promise<true | string> => {
    try {
      const st = await host.ask<QuerycoordApi["GetStatus"][1]>(env.subjects.querycoord(), `${QUERYCOORD}.GetStatus`, {}, { timeoutMs: 2_000 });
      return st.nodes.some((n) => n.nodeId !== nodeId && !nodeIds.includes(n.nodeId) && n.state === "up") ? true : "no other querynode is up to take its work";
    } catch (err) {
      return `querycoord does not answer (${(err as Error).message})`;
    }
  };
  const drainOne = async (nodeId: string): Promise<boolean> => {
    const address = env.subjects.querynode(asNodeId(nodeId));
    let last: Held | undefined;
    let lastLog = 0;
    while (Date.now() < deadline) {
      try {
        last = await host.ask<Held>(address, `${QUERYNODE}.Drain`, {}, { timeoutMs: 5_000 });
      } catch (err) {
        opts.log.warn({ err, node: nodeId }, "drain: the querynode did not answer");
        return false;
      }
      if (last.segments === 0 && last.delegators === 0) return true;
      const elsewhere = await otherNodesUp(nodeId);
      if (elsewhere !== true) {
        opts.log.info({ node: nodeId, segments: last.segments, delegators: last.delegators }, `not draining: ${elsewhere}`);
        return false;
      }
      if (Date.now() - lastLog > 2_000) {
        lastLog = Date.now();
        opts.log.info({ node: nodeId, segments: last.segments, delegators: last.delegators }, "draining: waiting for querycoord to move what this node holds");
      }
      await new Promise((r) => setTimeout(r, pollMs));
    }
    opts.log.warn(
      { node: nodeId, segments: last?.segments, delegators: last?.delegators, timeoutMs: opts.timeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS },
      "drain timed out: stopping with what is left (querycoord places it again, as after a crash)",
    );
    return false;
  };
  const results = await Promise.all(nodeIds.map(drainOne));
  return { drained: results.every(Boolean), ms: Date.now() - started };
}
