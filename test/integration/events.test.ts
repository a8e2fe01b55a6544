/** The events stream on a real nats-server: an event that does not decode is logged, not passed over in silence. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { createClusterEnv } from "../../actors/env.ts";
import { followEvents, publishEvent, type VbEvent } from "../../actors/events.ts";
import { encode } from "../../protocol/codec.ts";
import { FsObjectStore } from "../../runtime/object_store_fs.ts";
import { jetstreamOf } from "../../runtime/streams.ts";
import { connectTest, uniquePrefix, waitFor } from "../harness/index.ts";

async function eventsEnv() {
  const dir = await mkdtemp(join(tmpdir(), "vbus-events-"));
  const nc = await connectTest();
  const env = createClusterEnv(nc, new FsObjectStore(dir, { fsync: false }), { prefix: uniquePrefix("ev") });
  return {
    env,
    async [Symbol.asyncDispose]() {
      const { jsm } = await jetstreamOf(nc);
      await jsm.streams.delete(env.subjects.eventsStream()).catch(() => undefined);
      await nc[Symbol.asyncDispose]();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

describe("events stream", () => {
  it("logs each event that does not decode (stream, subject, position) and goes on with the next", async () => {
    await using t = await eventsEnv();
    const { env } = t;
    const lines: Array<Record<string, unknown>> = [];
    const log = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const seen: VbEvent[] = [];
    const following = await followEvents(env, (ev) => void seen.push(ev), undefined, { log });
    try {
      const garbage = await env.dml.publish(env.subjects.eventSubject("segment_flushed"), Uint8Array.of(0xc1));
      const kindless = await env.dml.publish(env.subjects.eventSubject("segment_flushed"), encode({ segmentId: 1n }));
      await publishEvent(env, { kind: "segment.dropped", segmentId: 9n, collectionId: 1n });
      await waitFor(() => seen.length === 1, { what: "the valid event" });
      expect(seen).toEqual([{ kind: "segment.dropped", segmentId: 9n, collectionId: 1n }]);
      const logged = lines.filter((l) => l.level === 50);
      expect(logged.map((l) => [l.stream, l.subject, l.position])).toEqual([
        [env.subjects.eventsStream(), env.subjects.eventSubject("segment_flushed"), String(garbage)],
        [env.subjects.eventsStream(), env.subjects.eventSubject("segment_flushed"), String(kindless)],
      ]);
    } finally {
      await following.stop();
    }
  });
});
