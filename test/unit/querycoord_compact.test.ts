/**
 * How querycoord's thread holds a large distribution compactly and still answers as before: copies
 * sharing their shapes and ids, view entries pointing at the target's records, views made whole for
 * their channel sharing the target's places, delegators' segment lists as int64s.
 */
import { describe, expect, it } from "vitest";
import { checkLeaders } from "../../actors/querycoord/checkers/index.ts";
import { ViewEntry } from "../../actors/querycoord/checkers/leader_checker.ts";
import { derivePlaces, placesOf, viewOfChannel, viewPlaces } from "../../actors/querycoord/checkers/types.ts";
import { CopyShapes, DistSnapshot, HeldCopy } from "../../actors/querycoord/dist/dist_snapshot.ts";
import { packedIds, packIds, type SealedEntry } from "../../protocol/messages/querynode.ts";
import { COLL, input, node, onWire, replica, seg, target } from "./querycoord_fixtures.ts";

const TaskSealed = (t: { action: unknown }) => (t.action as { sealed: SealedEntry[] }).sealed;

describe("copies as querycoord's thread holds them", () => {
  const rec = (id: bigint, vchannel = "1v0", indexIds: bigint[] = []) => ({ segmentId: id, collectionId: 1n, partitionId: 2n, vchannel, rows: 10, memoryBytes: 100, indexIds });

  it("share one shape per collection, partition, channel and indexes, and read as the record they came from", () => {
    const shapes = new CopyShapes();
    const a = shapes.copy(rec(1n), "qn1");
    const b = shapes.copy(rec(2n), "qn2");
    const c = shapes.copy(rec(3n, "1v1"), "qn1");
    const d = shapes.copy(rec(4n, "1v0", [9n]), "qn1");
    expect(a).toBeInstanceOf(HeldCopy);
    expect(a.toJSON()).toEqual({ ...rec(1n), nodeId: "qn1" });
    expect(d.toJSON()).toEqual({ ...rec(4n, "1v0", [9n]), nodeId: "qn1" });
    expect(onWire(b)).toEqual({ ...rec(2n), nodeId: "qn2" });
    const shapeOf = (x: HeldCopy) => (x as unknown as { shape: object }).shape;
    expect(shapeOf(a)).toBe(shapeOf(b));
    expect(shapeOf(a)).not.toBe(shapeOf(c));
    expect(shapeOf(a)).not.toBe(shapeOf(d));
  });

  it("hold one id object for all the copies of a segment, and are indexed as plain records are", () => {
    const shapes = new CopyShapes();
    // ids equal in value, different objects (as two messages decode them)
    const id1 = BigInt("123456789012345");
    const id2 = BigInt("123456789012345");
    const s = new DistSnapshot([]);
    s.put({ nodeId: "qn1", at: 0, memoryBytes: 0, memoryLimitBytes: 0, rows: 0, delegators: [], loading: [], segments: [shapes.copy(rec(id1), "qn1")] });
    s.put({ nodeId: "qn2", at: 0, memoryBytes: 0, memoryLimitBytes: 0, rows: 0, delegators: [], loading: [], segments: [shapes.copy(rec(id2), "qn2")] });
    const copies = s.copies(1n, id1);
    expect(copies.map((c) => c.nodeId).sort()).toEqual(["qn1", "qn2"]);
    expect(copies.map((c) => c.vchannel)).toEqual(["1v0", "1v0"]);
    expect(s.hasSegment("qn2", 1n, 123456789012345n)).toBe(true);
    // the first copy of a segment asks for the id object the segment has elsewhere (its target's)
    const asked: bigint[] = [];
    const withTargets = new DistSnapshot([], (collectionId, segmentId) => (asked.push(segmentId), collectionId === 1n ? segmentId : undefined));
    for (const n of ["qn1", "qn2"]) withTargets.put({ nodeId: n, at: 0, memoryBytes: 0, memoryLimitBytes: 0, rows: 0, delegators: [], loading: [], segments: [shapes.copy(rec(BigInt(n.length) * 7n), n)] });
    expect(asked).toEqual([21n]);
    expect(withTargets.copies(1n, 21n).map((c) => c.segmentId)).toEqual([21n, 21n]);
    // a copy marked for one node taken for another is a plain record of its own
    const other = new DistSnapshot([]);
    other.put({ nodeId: "qn9", at: 0, memoryBytes: 0, memoryLimitBytes: 0, rows: 0, delegators: [], loading: [], segments: [copies[0]!] });
    expect(other.copies(1n, id1)).toEqual([{ ...rec(id1), nodeId: "qn9" }]);
  });
});

describe("a view's entries and places", () => {
  it("an entry reads as the target's record on its node, and goes on the wire as the plain entry", () => {
    const s = seg(7n);
    const e = new ViewEntry(s, "qn3");
    const plain = { segmentId: 7n, partitionId: 1n, nodeId: "qn3", startPosition: 70n, endPosition: 79n, numRows: 1000 };
    expect(onWire(e)).toEqual(plain);
    expect([e.segmentId, e.partitionId, e.nodeId, e.startPosition, e.endPosition, e.numRows]).toEqual(Object.values(plain));
    // no end position yet: the start stands for it, as in the plain entry
    expect(new ViewEntry({ ...s, endPosition: undefined }, "qn3").endPosition).toBe(70n);
  });

  it("a view made whole for its channel finds each segment where a map of its own would, and nothing of another channel", () => {
    const segs = [1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n].map((id) => seg(id, { vchannel: id % 2n === 0n ? "100v0" : "100v1" }));
    const t = target(3, segs, ["100v0", "100v1"]);
    const v0 = segs.filter((s) => s.vchannel === "100v0");
    const sealed = v0.map((s) => new ViewEntry(s, "qn1"));
    viewOfChannel(sealed, t, v0);
    const shared = viewPlaces(sealed);
    const own = placesOf(sealed, (e) => e.segmentId);
    expect(shared).not.toBeInstanceOf(Map);
    for (const id of [0n, ...segs.map((s) => s.segmentId), 99n]) expect(shared.get(id)).toBe(own.get(id));
    // the other replica's view of the channel shares the same places
    const other = v0.map((s) => new ViewEntry(s, "qn2"));
    viewOfChannel(other, t, v0);
    expect(viewPlaces(other)).toBe(shared);
    // a patch keeps them; an entry appended is found over them
    const patched = [...sealed];
    patched[1] = new ViewEntry(v0[1]!, "qn2");
    derivePlaces(patched, sealed);
    expect(viewPlaces(patched)).toBe(shared);
    const extra = new ViewEntry(segs[0]!, "qn1");
    const grown = [...sealed, extra];
    derivePlaces(grown, sealed, [extra]);
    expect(viewPlaces(grown).get(1n)).toBe(4);
    expect(viewPlaces(grown).get(4n)).toBe(1);
  });

  it("a list out of the channel's order gets a map of its own", () => {
    const segs = [1n, 2n, 3n].map((id) => seg(id));
    const t = target(3, segs);
    const sealed = [segs[1]!, segs[0]!, segs[2]!].map((s) => new ViewEntry(s, "qn1"));
    viewOfChannel(sealed, t, segs);
    expect(viewPlaces(sealed)).toBeInstanceOf(Map);
    expect(viewPlaces(sealed).get(2n)).toBe(0);
  });

  it("the LeaderChecker's views stay right as copies move, with places shared with the target", () => {
    const segs = [1n, 2n, 3n, 4n].map((id) => seg(id));
    const t = target(7, segs);
    const dlg = { vchannel: "100v0", replicaId: 1n };
    const base = input({
      replicas: [replica(1n, ["qn1", "qn2"])],
      targets: [[COLL, { current: t }]],
      nodes: [node("qn1", { segments: [segs[0]!, segs[1]!], delegators: [dlg] }), node("qn2", { segments: [segs[2]!, segs[3]!] })],
    });
    const first = TaskSealed(checkLeaders(base).tasks[0]!);
    expect(onWire(first).map((e) => `${e.segmentId}@${e.nodeId}`)).toEqual(["1@qn1", "2@qn1", "3@qn2", "4@qn2"]);
    expect(viewPlaces(first)).not.toBeInstanceOf(Map);
    const synced = new Map([[base.dist.delegatorsOf(COLL)[0]!.address, { targetVersion: 7, sealed: first }]]);
    base.dist.put(node("qn1", { segments: [segs[0]!, segs[1]!, segs[3]!], delegators: [{ ...dlg, targetVersion: 7, sealedSegmentIds: [1n, 2n, 3n, 4n] }] }));
    base.dist.put(node("qn2", { segments: [segs[2]!] }));
    const moved = TaskSealed(checkLeaders({ ...base, synced }).tasks[0]!);
    expect(onWire(moved).map((e) => `${e.segmentId}@${e.nodeId}`)).toEqual(["1@qn1", "2@qn1", "3@qn2", "4@qn1"]);
  });
});

describe("a delegator's segment list from the feed", () => {
  it("is read into int64s of its own, in order", () => {
    const ids = [1n, 2n ** 62n, 5n, -3n];
    const bytes = packIds(ids);
    const framed = new Uint8Array(bytes.byteLength + 3);
    framed.set(bytes, 3);
    const out = packedIds(framed.subarray(3));
    expect(out).toBeInstanceOf(BigInt64Array);
    expect([...out]).toEqual(ids);
    framed.fill(0);
    expect([...out]).toEqual(ids);
    expect(() => packedIds(new Uint8Array(7))).toThrow(/multiple of 8 bytes, not 7/);
    expect([...packedIds(packIds(BigInt64Array.from(ids)))]).toEqual(ids);
  });
});
