import { describe, expect, it } from "vitest";
import { decode, encode } from "../../protocol/codec.ts";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import { asNodeId } from "../../protocol/ids.ts";
import { Subjects } from "../../protocol/subjects.ts";
import { Feed, type FeedMessage } from "../../runtime/feed.ts";
import { jetstreamOf } from "../../runtime/streams.ts";
import { connectTest, uniquePrefix, waitFor } from "../harness/index.ts";

interface Beat {
  node: string;
  round: number;
}

const NODES = ["n1", "n2", "n3"];

async function newFeed(storage: "memory" | "file" = "memory") {
  const s = new Subjects(uniquePrefix());
  const ncs = await Promise.all(NODES.map(() => connectTest()));
  const follower = await connectTest();
  const publishers = ncs.map((nc) => new Feed(nc));
  const feed = new Feed(follower);
  await feed.ensure(s.distStream(), s.distStreamSubjects(), { storage });
  return {
    s,
    feed,
    publishers,
    follower,
    stream: s.distStream(),
    all: s.distStreamSubjects(),
    subject: (node: string) => s.distSubject("querynode", asNodeId(node)),
    async [Symbol.asyncDispose]() {
      for (const nc of [...ncs, follower]) await nc[Symbol.asyncDispose]();
    },
  };
}

/** Each publisher publishes rounds [from, to) of its node's heartbeat, all concurrently. */
async function publishRounds(f: Awaited<ReturnType<typeof newFeed>>, from: number, to: number): Promise<void> {
  await Promise.all(
    f.publishers.map(async (p, k) => {
      const node = NODES[k]!;
      for (let round = from; round < to; round++) await p.publish(f.subject(node), encode({ node, round } satisfies Beat));
    }),
  );
}

function latestBySubject(msgs: FeedMessage[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of msgs) out.set(m.subject, decode<Beat>(m.data).round);
  return out;
}

describe("last-value feed on JetStream", () => {
  it("keeps one message per subject while several publishers publish, and a follower sees each subject's rounds in order, none twice, up to the latest", async () => {
    await using f = await newFeed("file");
    const seen: FeedMessage[] = [];
    await using follower = await f.feed.follow(f.stream, f.all, (m) => void seen.push(m));
    await follower.ready; // empty stream: ready at once
    await publishRounds(f, 0, 60);
    await waitFor(() => latestBySubject(seen).size === 3 && [...latestBySubject(seen).values()].every((r) => r === 59), {
      what: "the follower to see round 59 of every node",
    });
    for (const node of NODES) {
      const rounds = seen.filter((m) => m.subject === f.subject(node)).map((m) => decode<Beat>(m.data).round);
      // in order and never twice; a round replaced before the follower got to it (a busy machine) is
      // skipped: the feed keeps values, not history
      expect(rounds.every((r, i) => i === 0 || r > rounds[i - 1]!)).toBe(true);
      expect(rounds.at(-1)).toBe(59);
    }
    expect(seen.every((m) => !m.initial)).toBe(true);
    const { jsm } = await jetstreamOf(f.follower);
    expect((await jsm.streams.info(f.stream)).state.messages).toBe(3);
  });

  it("gives a late follower the latest state of every subject at once, then follows updates", async () => {
    await using f = await newFeed();
    await publishRounds(f, 0, 25);
    const seen: FeedMessage[] = [];
    await using late = await f.feed.follow(f.stream, f.all, (m) => void seen.push(m));
    await late.ready;
    // at `ready`: exactly the latest of each subject, flagged initial
    expect(seen).toHaveLength(3);
    expect(seen.every((m) => m.initial)).toBe(true);
    expect(latestBySubject(seen)).toEqual(new Map(NODES.map((n) => [f.subject(n), 24])));
    // then updates, flagged as such
    await f.publishers[1]!.publish(f.subject("n2"), encode({ node: "n2", round: 25 }));
    await waitFor(() => seen.length === 4, { what: "the update" });
    expect(seen[3]).toMatchObject({ subject: f.subject("n2"), initial: false });
    expect(decode<Beat>(seen[3]!.data).round).toBe(25);
    // a follower of one subject sees only it
    const one: FeedMessage[] = [];
    await using single = await f.feed.follow(f.stream, f.subject("n3"), (m) => void one.push(m));
    await single.ready;
    expect(one.map((m) => [m.subject, decode<Beat>(m.data).round])).toEqual([[f.subject("n3"), 24]]);
  });

  it("gets ready while publishers never pause, with the whole snapshot", async () => {
    await using f = await newFeed();
    await publishRounds(f, 0, 1);
    let publishing = true;
    const busy = Promise.all(
      f.publishers.map(async (p, k) => {
        const node = NODES[k]!;
        for (let round = 1; publishing; round++) await p.publish(f.subject(node), encode({ node, round }));
      }),
    );
    try {
      for (let trial = 0; trial < 5; trial++) {
        const seen: FeedMessage[] = [];
        await using follower = await f.feed.follow(f.stream, f.all, (m) => void seen.push(m));
        await follower.ready;
        expect(new Set(seen.filter((m) => m.initial).map((m) => m.subject))).toEqual(new Set(NODES.map(f.subject)));
        // nats-server 2.9.10 repeats a message when a subject's last one is replaced during the snapshot:
        // none reaches the handler twice
        const positions = seen.map((m) => m.position);
        expect(positions).toEqual([...new Set(positions)].sort((a, b) => (a < b ? -1 : 1)));
        // rounds per subject never go backwards
        for (const node of NODES) {
          const rounds = seen.filter((m) => m.subject === f.subject(node)).map((m) => decode<Beat>(m.data).round);
          expect(rounds).toEqual([...rounds].sort((a, b) => a - b));
        }
      }
    } finally {
      publishing = false;
      await busy;
    }
  });

  it("returns a snapshot with each subject's latest payload and its timestamp", async () => {
    await using f = await newFeed();
    expect((await f.feed.snapshot(f.stream, f.all)).size).toBe(0);
    await publishRounds(f, 0, 10);
    const lastN1 = await f.publishers[0]!.publish(f.subject("n1"), encode({ node: "n1", round: 10 }));
    const snap = await f.feed.snapshot(f.stream, f.all);
    expect([...snap.keys()].sort()).toEqual(NODES.map(f.subject).sort());
    expect(decode<Beat>(snap.get(f.subject("n1"))!.data).round).toBe(10);
    expect(decode<Beat>(snap.get(f.subject("n2"))!.data).round).toBe(9);
    expect(snap.get(f.subject("n1"))!.position).toBe(lastN1);
    // the timestamp is the server's, the same a follower sees for that message
    const seen: FeedMessage[] = [];
    await using follower = await f.feed.follow(f.stream, f.subject("n1"), (m) => void seen.push(m));
    await follower.ready;
    expect(seen[0]!.timestamp).toBe(snap.get(f.subject("n1"))!.timestamp);
    expect(Number.isInteger(seen[0]!.timestamp) && seen[0]!.timestamp > 0).toBe(true);
  });

  it("keeps following when a handler throws, and reports a missing stream clearly", async () => {
    await using f = await newFeed();
    const good: number[] = [];
    await using follower = await f.feed.follow(f.stream, f.subject("n1"), (m) => {
      const { round } = decode<Beat>(m.data);
      if (round === 1) throw new Error("bad heartbeat");
      good.push(round);
    });
    await publishRounds(f, 0, 4);
    await waitFor(() => good.length === 3, { what: "rounds after the bad one" });
    expect(good).toEqual([0, 2, 3]);
    const err = await f.feed.follow(`${f.stream}_NOPE`, f.all, () => undefined).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VbError);
    expect((err as VbError).code).toBe(ErrorCode.MqTopicNotFound);
  });
});
