/** The feed's base-and-delta encoding of a large node's distribution, and the snapshot kept up to date node by node. */
import { describe, expect, it } from "vitest";
import { DistAssembler, type AssembledDist } from "../../actors/querycoord/dist/dist_feed.ts";
import { DistManager } from "../../actors/querycoord/dist/dist_manager.ts";
import { DistSnapshot } from "../../actors/querycoord/dist/dist_snapshot.ts";
import { SegmentShapes, SegmentTable } from "../../actors/querycoord/dist/segment_table.ts";
import { DistEncoder, MAX_DIST_BYTES, rebaseAfter } from "../../actors/querynode/dist_publisher.ts";
import { encode } from "../../protocol/codec.ts";
import type { DistSegment, QueryNodeDist } from "../../protocol/messages/querynode.ts";

const seg = (id: number, collectionId = 1n) => ({
  segmentId: BigInt(id),
  collectionId,
  partitionId: 2n,
  vchannel: `${collectionId}v${id % 4}`,
  rows: 1_000 + id,
  memoryBytes: 4_096,
  indexIds: [] as bigint[],
});

function dist(nodeId: string, ids: number[], extra: Partial<QueryNodeDist> = {}): QueryNodeDist {
  return { nodeId, at: 0, memoryBytes: 0, memoryLimitBytes: 1 << 30, rows: 0, segments: ids.map((i) => seg(i)), delegators: [], loading: [], ...extra };
}

const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

/** A node handed on, and its list as its reader holds it after applying the change. */
type Handed = AssembledDist & { list: DistSegment[] };
const ids = (h: Handed | undefined) => (h?.list ?? []).map((s) => Number(s.segmentId)).sort((a, b) => a - b);

/**
 * An assembler's reader (as the feed's thread and querycoord are): it keeps each node's list by applying
 * the changes handed on, and checks that each one applies (what goes was held, what comes in place of
 * a record was removed first).
 */
class Reader {
  readonly lists = new Map<string, Map<bigint, DistSegment>>();
  constructor(readonly a = new DistAssembler()) {}

  take(subject: string, payload: Uint8Array): Handed | undefined {
    return this.hand(this.a.take(subject, payload));
  }

  hand(r: AssembledDist | undefined): Handed | undefined {
    if (!r) return undefined;
    expect(r.dist.segments).toEqual([]);
    let held = this.lists.get(r.dist.nodeId);
    if (!held || r.change.whole) {
      expect(r.change.whole).toBe(true);
      expect(r.change.removed).toEqual([]);
      this.lists.set(r.dist.nodeId, (held = new Map()));
    }
    for (const id of r.change.removed) expect(held.delete(id)).toBe(true);
    for (const s of r.change.added) {
      expect(held.has(s.segmentId)).toBe(false);
      held.set(s.segmentId, s);
    }
    return { ...r, list: [...held.values()] };
  }
}

function feed(enc: DistEncoder, reader: Reader, d: QueryNodeDist, changed = true) {
  const msgs = enc.encode(d, changed);
  let out: Handed | undefined;
  for (const m of msgs) {
    expect(m.payload.byteLength).toBeLessThanOrEqual(MAX_DIST_BYTES);
    out = reader.take(m.subject, m.payload) ?? out;
  }
  return { msgs, out };
}

describe("a large node's distribution on the feed", () => {
  const enc = () => new DistEncoder("vb.dist.querynode.qn1", (i) => `vb.dist.querynode.qn1.base.${i}`);

  it("goes whole while it is small", () => {
    const { msgs, out } = feed(enc(), new Reader(), dist("qn1", range(1, 10)));
    expect(msgs.map((m) => m.subject)).toEqual(["vb.dist.querynode.qn1"]);
    expect(ids(out)).toEqual(range(1, 10));
  });

  it("goes as a base in chunks under the payload limit, then as deltas against it", () => {
    const e = enc();
    const a = new Reader();
    const first = feed(e, a, dist("qn1", range(1, 30_000)));
    expect(first.msgs.length).toBeGreaterThan(2); // chunks, then the head
    expect(first.msgs.at(-1)!.subject).toBe("vb.dist.querynode.qn1");
    expect(ids(first.out)).toEqual(range(1, 30_000));

    // 10 released, 5 loaded: the head alone, small
    const now = [...range(11, 29_990), ...range(40_000, 5)];
    const second = feed(e, a, dist("qn1", now));
    expect(second.msgs.map((m) => m.subject)).toEqual(["vb.dist.querynode.qn1"]);
    expect(second.msgs[0]!.payload.byteLength).toBeLessThan(2_000);
    expect(ids(second.out)).toEqual(now);

    // a heartbeat with nothing changed hands the node on with no change
    const third = feed(e, a, dist("qn1", now), false);
    expect(third.out!.change).toEqual({ whole: false, added: [], removed: [] });
    const fourth = feed(e, a, dist("qn1", now));
    expect(fourth.out!.change).toEqual({ whole: false, added: [], removed: [] });
    expect(ids(fourth.out)).toEqual(now);

    // a change of more than a quarter: a new base
    const moved = range(50_000, 20_000);
    const fifth = feed(e, a, dist("qn1", moved));
    expect(fifth.msgs.length).toBeGreaterThan(1);
    expect(ids(fifth.out)).toEqual(moved);
  });

  it("goes into a new base once its delta has rested, so that later heartbeats carry no delta", () => {
    const e = enc();
    const a = new Reader();
    feed(e, a, dist("qn1", range(1, 5_000)));
    const now = [...range(1, 4_990), ...range(9_000, 20)];
    const t0 = Date.now();
    const changed = e.encode(dist("qn1", now), true, t0);
    for (const m of changed) a.take(m.subject, m.payload);
    // beats soon after the change repeat the delta
    const soon = e.encode(dist("qn1", now), false, t0 + 1_000);
    expect(soon.map((m) => m.subject)).toEqual(["vb.dist.querynode.qn1"]);
    expect(a.take(soon[0]!.subject, soon[0]!.payload)!.dist.delta!.added.length).toBe(20);
    // once it rested: a new base (chunks, then the head), then heads with an empty delta
    const rested = e.encode(dist("qn1", now), false, t0 + 6_000);
    expect(rested.length).toBeGreaterThan(1);
    let out: Handed | undefined;
    for (const m of rested) out = a.take(m.subject, m.payload) ?? out;
    expect(ids(out)).toEqual(now);
    // (the same segments on a new base: nothing changed for a reader)
    expect(out!.change).toEqual({ whole: false, added: [], removed: [] });
    const beat = e.encode(dist("qn1", now), false, t0 + 7_000);
    expect(beat).toHaveLength(1);
    const head = a.take(beat[0]!.subject, beat[0]!.payload)!;
    expect(head.dist.delta!.added).toHaveLength(0);
    expect(head.dist.delta!.removed).toHaveLength(0);
    expect(ids(head)).toEqual(now);
    expect(beat[0]!.payload.byteLength).toBeLessThan(soon[0]!.payload.byteLength);
  });

  it("is put together by a follower that starts late, from the last message of each subject", () => {
    const e = enc();
    const last = new Map<string, Uint8Array>();
    const order: string[] = [];
    for (const d of [dist("qn1", range(1, 30_000)), dist("qn1", range(3, 29_998))]) {
      for (const m of e.encode(d)) {
        if (last.has(m.subject)) order.splice(order.indexOf(m.subject), 1);
        last.set(m.subject, m.payload);
        order.push(m.subject);
      }
    }
    const a = new Reader();
    let out: Handed | undefined;
    for (const s of order) out = a.take(s, last.get(s)!) ?? out;
    expect(ids(out)).toEqual(range(3, 29_998));
  });

  it("hands on exactly what changed, across deltas and new bases, and the snapshot applies it", () => {
    const e = new DistEncoder("vb.dist.querynode.qn1", (i) => `vb.dist.querynode.qn1.base.${i}`, { deltaAboveBytes: 2_048, maxBytes: 8_192, settleMs: 5_000 });
    const a = new Reader();
    const live = new DistSnapshot([]);
    let rand = 7;
    const next = (n: number) => ((rand = (rand * 1_103_515_245 + 12_345) % 2 ** 31), rand % n);
    const held = new Map<number, ReturnType<typeof seg>>();
    for (let i = 1; i <= 400; i++) held.set(i, seg(i));
    let nextId = 1_000;
    let prev: Handed | undefined;
    let rebases = 0;
    let applied = 0;
    const sorted = (xs: Iterable<bigint>) => [...xs].map(Number).sort((x, y) => x - y);
    for (let step = 0; step < 120; step++) {
      // loads, releases and records that change (an index loaded), a few at a time; now and then a quiet beat
      const before = new Map(held);
      if (step % 7 !== 3) {
        for (let k = next(6); k > 0; k--) held.set(nextId, seg(nextId++));
        for (let k = next(4); k > 0 && held.size > 0; k--) held.delete([...held.keys()][next(held.size)]!);
        for (let k = next(3); k > 0; k--) {
          const id = [...held.keys()][next(held.size)]!;
          held.set(id, { ...held.get(id)!, indexIds: [BigInt(step)] });
        }
      }
      const d = dist("qn1", []);
      d.segments = [...held.values()].map((s) => ({ ...s, indexIds: [...s.indexIds] }));
      const msgs = e.encode(d, true, step * 1_000);
      if (msgs.length > 1) rebases++;
      let out: Handed | undefined;
      for (const m of msgs) out = a.take(m.subject, m.payload) ?? out;
      expect(ids(out)).toEqual([...held.keys()].sort((x, y) => x - y));
      expect(out!.list.map((s) => [Number(s.segmentId), s.indexIds.map(Number)]).sort(([x], [y]) => Number(x) - Number(y))).toEqual(
        [...held.values()].map((s) => [Number(s.segmentId), s.indexIds.map(Number)]).sort(([x], [y]) => Number(x) - Number(y)),
      );
      if (prev) {
        // what came: new or changed records; what went: gone or changed ones; nothing else
        const changed = [...held].filter(([id, s]) => before.has(id) && before.get(id)!.indexIds.join() !== s.indexIds.join()).map(([id]) => id);
        const came = [...held.keys()].filter((id) => !before.has(id));
        const went = [...before.keys()].filter((id) => !held.has(id));
        expect(sorted(out!.change.added.map((s) => s.segmentId))).toEqual([...came, ...changed].sort((x, y) => x - y));
        expect(sorted(out!.change.removed)).toEqual([...went, ...changed].sort((x, y) => x - y));
        if (out!.change.added.length + out!.change.removed.length > 0) applied++;
      }
      // what querycoord's thread does with it: the list before, with the records that went and came
      const from = prev?.list ?? [];
      const byId = new Map(from.map((s) => [s.segmentId, s]));
      const change = prev ? { from, added: out!.change.added, removed: out!.change.removed.map((id) => byId.get(id)!) } : undefined;
      live.put({ ...out!.dist, segments: out!.list }, change);
      const fresh = new DistSnapshot([{ ...out!.dist, segments: out!.list.map((s) => ({ ...s, nodeId: undefined }) as typeof s) }]);
      const rows = (s: DistSnapshot) =>
        [...s.segmentsOf(1n)].map(([id, cs]) => `${id}:${cs.map((c) => `${c.nodeId}/${c.rows}/${c.indexIds.join(",")}`).join(";")}`).sort();
      expect(rows(live)).toEqual(rows(fresh));
      prev = out;
    }
    expect(rebases).toBeGreaterThan(3);
    expect(applied).toBeGreaterThan(60);
  });

  it("carries a delegator's segment list packed; an unchanged list comes back as the same array, a changed or malformed one is read anew", () => {
    const e = enc();
    const a = new Reader();
    const view = (ids: bigint[]) => ({ collectionId: 1n, vchannel: "1v0", replicaId: 9n, address: "a", serviceable: true, targetVersion: 1, tSafe: 5n, sealedSegmentIds: ids });
    const sealed = range(1, 6_000).map(BigInt);
    const first = feed(e, a, dist("qn1", range(1, 10), { delegators: [view(sealed)] }));
    expect(first.msgs[0]!.payload.byteLength).toBeLessThan(6_000 * 9 + 1_000);
    expect([...first.out!.dist.delegators[0]!.sealedSegmentIds]).toEqual(sealed);
    const second = feed(e, a, dist("qn1", range(1, 10), { delegators: [view([...sealed])] }));
    expect(second.out!.dist.delegators[0]!.sealedSegmentIds).toBe(first.out!.dist.delegators[0]!.sealedSegmentIds);
    const third = feed(e, a, dist("qn1", range(1, 10), { delegators: [view([...sealed, 7_000n])] }));
    expect([...third.out!.dist.delegators[0]!.sealedSegmentIds]).toEqual([...sealed, 7_000n]);
    // 7 bytes are no list of int64 ids
    const bad = encode({ ...dist("qn1", [1]), delegators: [{ ...view([]), sealedSegmentIds: new Uint8Array(7) }] });
    expect(() => a.take("vb.dist.querynode.qn1", bad)).toThrow(/querynode qn1: delegator 1v0: packed segment ids take a multiple of 8 bytes/);
  });

  it("rebases after about √(2 × base × changes per message): a loading node does not resend its base every other beat", () => {
    expect(rebaseAfter(2_000)).toBe(64);
    expect(rebaseAfter(2_000, 32)).toBe(358);
    expect(rebaseAfter(100, 50)).toBe(64);
    expect(rebaseAfter(1_000, 1_000)).toBe(500);
    // 2,000 segments, then 32 more every beat for 40 beats
    const e = enc();
    const a = new Reader();
    feed(e, a, dist("qn1", range(1, 2_000)));
    let rebases = 0;
    let out: Handed | undefined;
    for (let beat = 1; beat <= 40; beat++) {
      const r = feed(e, a, dist("qn1", range(1, 2_000 + 32 * beat)));
      if (r.msgs.length > 1) rebases++;
      out = r.out;
    }
    expect(ids(out)).toEqual(range(1, 2_000 + 32 * 40));
    expect(rebases).toBeGreaterThan(0);
    expect(rebases).toBeLessThanOrEqual(8); // (with √(2 × base) alone: every other beat, 20)
  });

  it("makes a new base of what the node last told: a reader that took that head builds it without the chunks, one that missed it reads them", () => {
    const e = enc();
    const keeping = new Reader(); // takes heads only (after the first base)
    const missing = new Reader(); // misses the head before each new base
    for (const m of e.encode(dist("qn1", range(1, 2_000)))) {
      keeping.take(m.subject, m.payload);
      missing.take(m.subject, m.payload);
    }
    let rebases = 0;
    let pendingHead: { subject: string; payload: Uint8Array } | undefined;
    for (let beat = 1; beat <= 40; beat++) {
      const want = range(1, 2_000 + 32 * beat);
      const msgs = e.encode(dist("qn1", want));
      const head = msgs.at(-1)!;
      const from = (keeping.a.decodeHead(head.payload).base ?? {}).from;
      if (msgs.length > 1) {
        rebases++;
        // a new base made of the list the last head told (and this beat's loads as its delta)
        expect(from).toEqual(expect.objectContaining({ epoch: expect.any(Number), seq: expect.any(Number) }));
        // the reader that missed the head before: it waits for the chunks, then has it all
        expect(missing.take(head.subject, head.payload)).toBeUndefined();
        let got: Handed | undefined;
        for (const m of msgs.slice(0, -1)) got = missing.take(m.subject, m.payload) ?? got;
        expect(ids(got)).toEqual(want);
      } else {
        if (pendingHead) missing.take(pendingHead.subject, pendingHead.payload);
        pendingHead = head; // (given to `missing` one beat late: the last head before a new base never reaches it)
      }
      // the reader that took every head needs no chunk
      const out = keeping.take(head.subject, head.payload);
      expect(ids(out)).toEqual(want);
      expect(keeping.a.missingChunks("qn1")).toEqual([]);
    }
    expect(rebases).toBeGreaterThan(0);
    // a rested delta goes into a new base the same way
    const now = range(1, 2_000 + 32 * 40);
    const rested = e.encode(dist("qn1", now), false, Date.now() + 60_000);
    expect(rested.length).toBeGreaterThan(1);
    expect(ids(keeping.take(rested.at(-1)!.subject, rested.at(-1)!.payload))).toEqual(now);
  });

  it("hands on a small node's whole lists and a node that grows into deltas and shrinks back by what changed", () => {
    const e = new DistEncoder("vb.dist.querynode.qn1", (i) => `vb.dist.querynode.qn1.base.${i}`, { deltaAboveBytes: 2_048, maxBytes: 8_192, settleMs: 5_000 });
    const r = new Reader();
    const sizes = [5, 5, 8, 300, 310, 310, 40, 6, 6, 0, 12];
    let prev: number[] = [];
    sizes.forEach((n, step) => {
      // the segments shift by one each step: one went, one came (where a list is kept)
      const want = range(1 + step, n);
      let out: Handed | undefined;
      for (const m of e.encode(dist("qn1", want), true, step * 1_000)) out = r.take(m.subject, m.payload) ?? out;
      expect(ids(out)).toEqual(want);
      if (step > 0) {
        expect(out!.change.whole).toBe(false);
        const now = new Set(want);
        const was = new Set(prev);
        expect(out!.change.added.map((s) => Number(s.segmentId)).sort((x, y) => x - y)).toEqual(want.filter((id) => !was.has(id)));
        expect(out!.change.removed.map(Number).sort((x, y) => x - y)).toEqual(prev.filter((id) => !now.has(id)));
      }
      prev = want;
    });
  });

  it("keeps a node's records as columns and makes them again as they were", () => {
    const shapes = new SegmentShapes();
    const a = { ...seg(7), indexIds: [3n, 4n] };
    const b = { ...seg(2), memoryBytes: 2 ** 40 + 1 };
    const t = SegmentTable.of(shapes, [[a, seg(9), b], [{ ...seg(9), rows: 5 }]]);
    // sorted by id, the later record of a segment kept
    expect(t.length).toBe(3);
    expect([0, 1, 2].map((i) => t.idAt(i))).toEqual([2n, 7n, 9n]);
    expect(t.record(0)).toEqual(b);
    expect(t.record(1)).toEqual(a);
    expect(t.record(2).rows).toBe(5);
    expect(t.indexOf(7n)).toBe(1);
    expect(t.indexOf(8n)).toBe(-1);
    expect(t.same(1, { ...a, indexIds: [3n, 4n] })).toBe(true);
    expect(t.same(1, { ...a, indexIds: [3n] })).toBe(false);
    expect(t.same(1, { ...a, vchannel: "other" })).toBe(false);
    const u = SegmentTable.of(shapes, [[{ ...a }, { ...seg(9), rows: 6 }]]);
    expect(u.sameAs(0, t, 1)).toBe(true);
    expect(u.sameAs(1, t, 2)).toBe(false);
    // records of one collection, partition, channel and indexes share one shape: three channels, three shapes
    expect(shapes.size).toBe(3);
    expect(u.record(0).vchannel).toBe(t.record(1).vchannel);
  });

  it("waits for its base's chunks before it hands a head on", () => {
    const msgs = enc().encode(dist("qn1", range(1, 30_000)));
    const a = new Reader();
    const head = msgs.at(-1)!;
    expect(a.take(head.subject, head.payload)).toBeUndefined();
    let out: Handed | undefined;
    for (const m of msgs.slice(0, -1)) out = a.take(m.subject, m.payload) ?? out;
    expect(ids(out)).toEqual(range(1, 30_000));
  });
});

describe("the distribution snapshot kept up to date node by node", () => {
  const view = (s: DistSnapshot) =>
    [...s.segmentsOf(1n)].map(([id, cs]) => [id, cs.map((c) => c.nodeId).sort()] as const).sort(([a], [b]) => (a < b ? -1 : 1));

  it("equals one built afresh after puts and removes", () => {
    const live = new DistSnapshot([]);
    live.put(dist("qn1", [1, 2, 3]));
    live.put(dist("qn2", [3, 4], { delegators: [{ collectionId: 1n, vchannel: "1v0", replicaId: 1n, address: "a", serviceable: true, targetVersion: 1, tSafe: 0n, sealedSegmentIds: [] }] }));
    live.put(dist("qn1", [2, 3, 5]));
    live.put(dist("qn3", [1]));
    live.remove("qn3");
    const fresh = new DistSnapshot([dist("qn1", [2, 3, 5]), dist("qn2", [3, 4])]);
    expect(view(live)).toEqual(view(fresh));
    expect([...live.nodes.keys()].sort()).toEqual(["qn1", "qn2"]);
    expect(live.delegatorsOf(1n).map((d) => d.nodeId)).toEqual(["qn2"]);
    live.put(dist("qn2", [3, 4]));
    expect(live.delegatorsOf(1n)).toEqual([]);
    expect(live.hasSegment("qn1", 1n, 1n)).toBe(false);
  });
});

describe("DistManager liveness", () => {
  it("counts a node's silence only beyond the time querycoord itself could not listen", () => {
    const m = new DistManager(10_000);
    m.update(dist("qn1", [1]), 1_000);
    expect(m.refreshLiveness(1_000).up).toEqual(["qn1"]);
    // 10.5 s of silence after a round of 2 s: still up
    expect(m.refreshLiveness(11_500, 2_000).down).toEqual([]);
    // the same silence after short rounds: down
    expect(m.refreshLiveness(11_500, 5).down).toEqual(["qn1"]);
  });

  it("measures silence on the feed's clock: a querycoord reading 30 s behind its feed keeps the nodes whose beats wait unread", () => {
    const m = new DistManager(10_000);
    m.update(dist("qn1", [1]), 1_000, 1_010);
    m.update(dist("qn2", [2]), 1_000, 1_010);
    expect(m.refreshLiveness(1_010).up).toEqual(["qn1", "qn2"]);
    // at 40 s querycoord takes qn1's beat of 10 s (30 s behind); qn2's last read beat is the one of 1 s
    m.update(dist("qn1", [1]), 10_000, 40_000);
    expect(m.lagMs).toBe(30_000);
    // on the feed's clock (10 s) qn2 was silent for 9 s: up, though 39 s passed here
    expect(m.refreshLiveness(40_000).down).toEqual([]);
    // caught up: the feed's clock is 41 s, qn2 has been silent beyond 10 s, qn1 not
    m.update(dist("qn1", [1]), 41_000, 41_020);
    expect(m.refreshLiveness(41_020).down).toEqual(["qn2"]);
    expect(m.late(41_020, 1_500)).toEqual([]);
  });

  it("takes an old message of the feed's snapshot as old, not as a lag", () => {
    const m = new DistManager(10_000);
    m.update(dist("qn1", [1]), 1_000);
    expect(m.lagMs).toBe(0);
    expect(m.refreshLiveness(60_000).up).toEqual([]);
  });

  it("keeps a node whose heads the content never reaches (replaced faster than it reads) while the pulse hears it, and drops it once both are silent", () => {
    const m = new DistManager(10_000);
    const heard = new Map<string, number>();
    let pulseLag = 0;
    m.setPulse({ heardAt: (n) => heard.get(n) ?? 0, lagMs: () => pulseLag, messages: () => heard.size, alive: () => true });
    m.update(dist("qn1", [1]), 1_000, 1_010);
    m.update(dist("qn2", [2]), 1_000, 1_010);
    expect(m.refreshLiveness(1_010).up).toEqual(["qn1", "qn2"]);
    // the content reads 3 s behind and never comes to qn1's heads again; the pulse hears qn1 up to 29.9 s
    m.update(dist("qn2", [2]), 27_000, 30_000);
    heard.set("qn1", 29_900);
    heard.set("qn2", 29_900);
    pulseLag = 50;
    expect(m.refreshLiveness(30_000).down).toEqual([]);
    expect(m.late(30_000, 1_500)).toEqual([]);
    // its content still says 1 s: the distribution is the last one taken
    expect(m.get("qn1")!.segments.map((s) => s.segmentId)).toEqual([1n]);
    // qn1 stops: late (probed) after 1.5 s of silence on both, down after 10 s
    heard.set("qn2", 31_900);
    expect(m.late(32_000, 1_500)).toEqual(["qn1"]);
    m.update(dist("qn2", [2]), 41_000, 41_100);
    heard.set("qn2", 41_050);
    expect(m.refreshLiveness(41_100).down).toEqual(["qn1"]);
  });

  it("brings back a node a probe found gone once the pulse hears it after that", () => {
    const m = new DistManager(10_000);
    const heard = new Map<string, number>();
    m.setPulse({ heardAt: (n) => heard.get(n) ?? 0, lagMs: () => 0, messages: () => heard.size, alive: () => true });
    m.update(dist("qn1", [1]), 1_000, 1_000);
    expect(m.refreshLiveness(1_000).up).toEqual(["qn1"]);
    heard.set("qn1", 1_500);
    m.gone("qn1", 2_000);
    expect(m.refreshLiveness(2_000).down).toEqual(["qn1"]);
    heard.set("qn1", 3_000); // restarted at the same address: it speaks again
    expect(m.refreshLiveness(3_000).up).toEqual(["qn1"]);
  });
});
