/**
 * Delete forwarding (Milvus's delegator `delta_forward.go`): the deletes a delegator consumes, or buffered
 * ones a new sealed entry needs, go to the querynodes holding the sealed segments they may hit as
 * `querynode.ApplyDelete` asks, one per node, chunked to stay under the payload limit.
 */
import type { PkColumn } from "../../protocol/dml.ts";
import { asNodeId } from "../../protocol/ids.ts";
import { QUERYNODE, type SealedEntry } from "../../protocol/messages/querynode.ts";
import type { ActorContext } from "../../runtime/actor.ts";
import type { ClusterEnv } from "../env.ts";
import { chunkDeletes, type DeleteSlice } from "./delete_buffer.ts";

/** Deletes a forward carries at most (estimated bytes), to stay well under the payload limit. */
const FORWARD_CHUNK_BYTES = 256 * 1024;
const FORWARD_TIMEOUT_MS = 15_000;

/** One ApplyDelete ask: the node, the sealed entries it serves there, the body. */
export interface Forward {
  nodeId: string;
  entries: SealedEntry[];
  body: { collectionId: bigint; segmentIds: bigint[]; pks: PkColumn; positions: BigInt64Array };
}

/** The ApplyDelete asks that bring `slice` to `targets`, one per node (chunked). */
export function forwardsOf(collectionId: bigint, slice: DeleteSlice, targets: readonly SealedEntry[]): Forward[] {
  if (targets.length === 0 || slice.positions.length === 0) return [];
  const byNode = new Map<string, SealedEntry[]>();
  for (const e of targets) {
    let l = byNode.get(e.nodeId);
    if (!l) byNode.set(e.nodeId, (l = []));
    l.push(e);
  }
  const out: Forward[] = [];
  for (const [nodeId, entries] of byNode) {
    for (const part of chunkDeletes(slice, FORWARD_CHUNK_BYTES)) {
      out.push({
        nodeId,
        entries,
        body: { collectionId, segmentIds: entries.map((e) => e.segmentId), pks: part.pks, positions: part.positions },
      });
    }
  }
  return out;
}

/** Asks the node of `f` to apply its deletes. */
export function sendForward(ctx: ActorContext, env: ClusterEnv, f: Forward): Promise<unknown> {
  return ctx.ask(env.subjects.querynode(asNodeId(f.nodeId)), `${QUERYNODE}.ApplyDelete`, f.body, { timeoutMs: FORWARD_TIMEOUT_MS });
}
