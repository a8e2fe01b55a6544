import { once } from "node:events";
import { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { asNodeId } from "../../protocol/ids.ts";
import { Subjects } from "../../protocol/subjects.ts";
import { Feed } from "../../runtime/feed.ts";
import { FeedPulse } from "../../runtime/feed_pulse.ts";
import { connectTest, uniquePrefix, waitFor } from "../harness/index.ts";

const BOOT = new URL("../../runtime/ts_worker.mjs", import.meta.url);
const PUBLISHER = new URL("./feed_pulse_publisher.ts", import.meta.url).href;

describe("a feed's pulse", () => {
  it("knows when the server stored each subject's newest message, as Feed.last reads it, headers only", async () => {
    const s = new Subjects(uniquePrefix());
    await using nc = await connectTest();
    const feed = new Feed(nc);
    await feed.ensure(s.distStream(), s.distStreamSubjects(), { storage: "memory" });
    const subject = (n: string) => s.distSubject("querynode", asNodeId(n));
    await feed.publish(subject("n1"), new Uint8Array(1000)); // before the pulse starts: its snapshot
    const pulse = await FeedPulse.start(nc, { stream: s.distStream(), filter: s.distRoleSubjects("querynode") });
    try {
      expect(pulse.alive).toBe(true);
      for (let i = 0; i < 5; i++) await feed.publish(subject("n2"), new Uint8Array([i]));
      for (const n of ["n1", "n2"]) {
        const last = (await feed.last(s.distStream(), subject(n)))!;
        await waitFor(() => pulse.lastStored(subject(n)) === last.timestamp, { what: `the pulse of ${n}` });
      }
      expect((await feed.last(s.distStream(), subject("n2")))!.data).toEqual(new Uint8Array([4]));
      expect(await feed.last(s.distStream(), subject("n3"))).toBeUndefined();
      expect(pulse.lastStored(subject("n3"))).toBe(0);
      expect(pulse.lagMs).toBeGreaterThanOrEqual(0);
    } finally {
      await pulse.stop();
    }
    expect(pulse.alive).toBe(false);
  });

  it("keeps hearing a publisher while the process's own event loop is busy for seconds", async () => {
    const s = new Subjects(uniquePrefix());
    await using nc = await connectTest();
    const feed = new Feed(nc);
    await feed.ensure(s.distStream(), s.distStreamSubjects(), { storage: "memory" });
    const subject = s.distSubject("querynode", asNodeId("busy1"));
    const pulse = await FeedPulse.start(nc, { stream: s.distStream(), filter: s.distRoleSubjects("querynode") });
    const publisher = new Worker(BOOT, { workerData: { module: PUBLISHER, url: nc.getServer(), subject, everyMs: 20 } });
    try {
      await waitFor(() => pulse.lastStored(subject) > 0, { what: "the publisher's first message" });
      // this thread works for 2 s without yielding; the publisher and the pulse run on their own threads
      const blockedAt = Date.now();
      while (Date.now() - blockedAt < 2_000) {
        // busy
      }
      const heardDuringTheBlock = pulse.lastStored(subject);
      expect(heardDuringTheBlock).toBeGreaterThan(blockedAt);
    } finally {
      publisher.postMessage("stop");
      const [done] = (await once(publisher, "message")) as [{ published?: number }];
      await pulse.stop();
      expect(done.published ?? 0).toBeGreaterThan(0);
    }
  });

  it("does not start on a stream that does not exist, and says why", async () => {
    await using nc = await connectTest();
    const err = await FeedPulse.start(nc, { stream: "VB_NO_SUCH_STREAM", filter: "nope.>" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/VB_NO_SUCH_STREAM/);
  });
});
