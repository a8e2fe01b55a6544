/**
 * The events stream (`VB_EVENTS`, subjects `vb.events.<kind>`): collection, segment and index events published
 * after the change is in KV, so that caches and observers react without polling.
 */
import { decode, encode } from "../protocol/codec.ts";
import type { DdlEvent } from "../protocol/messages/rootcoord.ts";
import type { SegmentEvent } from "../protocol/messages/datacoord.ts";
import type { IndexEvent } from "../protocol/messages/indexes.ts";
import type { DmlConsumption, DmlMessage } from "../runtime/dml_log.ts";
import { createLogger, type Logger } from "../runtime/logger.ts";
import { jetstreamOf } from "../runtime/streams.ts";
import type { ClusterEnv } from "./env.ts";

export type VbEvent = DdlEvent | SegmentEvent | IndexEvent;

const ensured = new WeakMap<ClusterEnv, Promise<void>>();

export function ensureEventsStream(env: ClusterEnv): Promise<void> {
  let p = ensured.get(env);
  if (!p) {
    p = env.dml.ensureChannel(env.subjects.eventsStream(), env.subjects.eventsStreamSubjects(), {
      maxAgeMs: 7 * 24 * 3_600_000,
    });
    p.catch(() => ensured.delete(env));
    ensured.set(env, p);
  }
  return p;
}

function eventSubject(env: ClusterEnv, ev: VbEvent): string {
  return env.subjects.eventSubject(ev.kind.replace(".", "_"));
}

/** Publishes one event and returns its position in the events stream. */
export async function publishEvent(env: ClusterEnv, ev: VbEvent): Promise<bigint> {
  await ensureEventsStream(env);
  return env.dml.publish(eventSubject(env, ev), encode(ev));
}

/**
 * Follows events published after `fromPosition` (default: from now on). The handler runs one event at
 * a time; an event that does not decode as one (no `kind`) is logged with its stream, subject and
 * position, and passed over.
 */
export async function followEvents(
  env: ClusterEnv,
  handler: (ev: VbEvent, position: bigint) => void | Promise<void>,
  fromPosition?: bigint,
  opts: { log?: Logger } = {},
): Promise<DmlConsumption> {
  const log = opts.log ?? createLogger({ module: "events" });
  await ensureEventsStream(env);
  const stream = env.subjects.eventsStream();
  const wildcard = env.subjects.eventsStreamSubjects();
  let from = fromPosition;
  if (from === undefined) {
    const { jsm } = await jetstreamOf(env.nc);
    from = BigInt((await jsm.streams.info(stream)).state.last_seq);
  }
  const onMessage = async (m: DmlMessage): Promise<void> => {
    let ev: VbEvent;
    try {
      ev = decode<VbEvent>(m.data);
      if (typeof ev !== "object" || ev === null || typeof ev.kind !== "string") throw new Error("not an event: it has no kind");
    } catch (err) {
      log.error({ stream, subject: m.subject, position: String(m.position), err: String(err) }, "an event that does not decode was passed over");
      return;
    }
    await handler(ev, m.position);
  };
  // events are control traffic: read on the control connection, never behind a DML backlog
  return env.dml.consume(stream, wildcard, from, onMessage, { control: true });
}
