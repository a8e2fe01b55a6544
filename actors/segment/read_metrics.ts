/**
 * A segment actor's reads, observed (`vectorbus_querynode_sq_*`, scope segment, and
 * `vectorbus_querynode_sq_segment_latency` by state), with the test-only search delay applied
 * (test_hooks.ts; production never sets it). Shared by the sealed and the growing segment actors.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { DeferredReply, type Message } from "../../runtime/actor.ts";
import { readMetersOf } from "../metrics.ts";
import { segmentTestHooks } from "./test_hooks.ts";

export function observedSegmentRead(msg: Message, nodeId: string, state: "Sealed" | "Growing", run: () => unknown): unknown {
  const handledAt = performance.now();
  const search = msg.type === "segment.Search";
  const meters = readMetersOf(nodeId, "segment", search ? "search" : "query", state);
  const queued = handledAt - (msg.receivedAt ?? handledAt);
  let reply: unknown;
  try {
    reply = run();
  } catch (err) {
    meters.observe(queued, handledAt, Promise.reject(err));
    throw err;
  }
  const delay = segmentTestHooks.searchDelayMs;
  if (delay > 0 && search && reply instanceof DeferredReply) {
    const work = reply.work as Promise<unknown>;
    reply = new DeferredReply(work.then(async (v) => (await sleep(delay), v)));
  }
  meters.observe(queued, handledAt, reply instanceof DeferredReply ? (reply.work as Promise<unknown>) : Promise.resolve(reply));
  return reply;
}
