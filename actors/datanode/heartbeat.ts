/**
 * The datanode's heartbeat on the dist feed (`VB_DIST`, subject `vb.dist.datanode.<nodeId>`, one message
 * kept per subject): who it is (node id and session), and per vchannel what it consumed, its checkpoint
 * and what it buffers. datacoord follows the feed to know live datanodes and what each one watches.
 */
import { decode, encode } from "../../protocol/codec.ts";
import { VbError } from "../../protocol/errors.ts";
import { asNodeId } from "../../protocol/ids.ts";
import type { DatanodeHeartbeat } from "../../protocol/messages/datacoord.ts";
import type { Subjects } from "../../protocol/subjects.ts";
import { Feed } from "../../runtime/feed.ts";
import { isStreamNotFound, jetstreamOf } from "../../runtime/streams.ts";
import type { ClusterEnv } from "../env.ts";

const ensured = new WeakMap<ClusterEnv, Promise<void>>();

/**
 * Creates the dist feed stream if it does not exist (file storage, one message per subject). An existing
 * stream is left as it is: querynodes and querycoord share it and may have set it up their way.
 */
export function ensureDistStream(env: ClusterEnv): Promise<void> {
  let p = ensured.get(env);
  if (!p) {
    p = (async () => {
      const { jsm } = await jetstreamOf(env.nc);
      try {
        await jsm.streams.info(env.subjects.distStream());
        return;
      } catch (err) {
        if (!isStreamNotFound(err)) throw err;
      }
      await new Feed(env.nc).ensure(env.subjects.distStream(), env.subjects.distStreamSubjects());
    })();
    p.catch(() => ensured.delete(env));
    ensured.set(env, p);
  }
  return p;
}

export function heartbeatSubject(subjects: Subjects, nodeId: string): string {
  return subjects.distSubject("datanode", asNodeId(nodeId));
}

/** The filter subject matching every datanode's heartbeat (`vb.dist.datanode.*`). */
export function heartbeatFilter(subjects: Subjects): string {
  return subjects.distRoleSubjects("datanode");
}

export function encodeHeartbeat(hb: DatanodeHeartbeat): Uint8Array {
  return encode(hb);
}

/** Decodes a heartbeat; anything that is not one is a VbError 1100. */
export function decodeHeartbeat(data: Uint8Array): DatanodeHeartbeat {
  const hb = decode<DatanodeHeartbeat>(data);
  if (typeof hb !== "object" || hb === null || typeof hb.nodeId !== "string" || !Array.isArray(hb.channels)) {
    throw VbError.invalid("not a datanode heartbeat: nodeId and channels are required");
  }
  return hb;
}
