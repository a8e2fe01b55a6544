/**
 * datacoord's pure parts: the segment state machine, vchannel placement, and the flush state.
 */
import { describe, expect, it } from "vitest";
import { planAssignments } from "../../actors/datacoord/channel_manager.ts";
import { PendingFlushes, isFlushed, segmentsToFlush } from "../../actors/datacoord/flush.ts";
import { SEGMENT_STATES, canTransition, transition } from "../../actors/datacoord/segment_meta.ts";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import type { SegmentInfo, SegmentState } from "../../protocol/meta.ts";
import { segmentInfo } from "./segment_fixture.ts";

function seg(id: bigint, over: Partial<SegmentInfo> = {}): SegmentInfo {
  return segmentInfo(id, over);
}

describe("segment state machine", () => {
  it("allows Growing → Sealed → Flushing → Flushed → Dropped, and Dropped from any live state", () => {
    const legal: Array<[SegmentState, SegmentState]> = [
      ["Growing", "Sealed"],
      ["Sealed", "Flushing"],
      ["Flushing", "Flushed"],
      ["Flushed", "Dropped"],
      ["Growing", "Dropped"],
      ["Sealed", "Dropped"],
      ["Flushing", "Dropped"],
    ];
    for (const from of SEGMENT_STATES) {
      for (const to of SEGMENT_STATES) {
        expect(canTransition(from, to), `${from} → ${to}`).toBe(legal.some(([a, b]) => a === from && b === to));
      }
    }
    expect(transition(seg(1n), "Sealed", "Flushing", "Flushed").state).toBe("Flushed");
  });

  it("refuses an illegal transition with 1100 naming the segment and both states", () => {
    let err: unknown;
    try {
      transition(seg(7n), "Flushed");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VbError);
    expect((err as VbError).code).toBe(ErrorCode.ParameterInvalid);
    expect((err as VbError).message).toMatch(/segment 7 is Growing: it cannot become Flushed/);
    expect(() => transition(seg(1n, { state: "Dropped" }), "Flushed")).toThrow(/Dropped/);
  });
});

describe("vchannel placement", () => {
  it("gives each vchannel to the least-loaded live node, ties by node id", () => {
    const plan = planAssignments(["a", "b", "c", "d", "e"], new Map([["n2", 0], ["n1", 0], ["n3", 2]]));
    expect(Object.fromEntries(plan)).toEqual({ a: "n1", b: "n2", c: "n1", d: "n2", e: "n1" });
    expect(planAssignments(["a"], new Map()).size).toBe(0);
    const counts = new Map<string, number>();
    for (const n of planAssignments(Array.from({ length: 30 }, (_, i) => `v${i}`), new Map([["x", 0], ["y", 5], ["z", 1]])).values()) {
      counts.set(n, (counts.get(n) ?? 0) + 1);
    }
    // starting from loads 0, 5 and 1, the 30 placements even the loads out to within one
    const finals = [(counts.get("x") ?? 0) + 0, (counts.get("y") ?? 0) + 5, (counts.get("z") ?? 0) + 1];
    expect(Math.max(...finals) - Math.min(...finals)).toBeLessThanOrEqual(1);
  });
});

describe("flush state", () => {
  it("is flushed once every checkpoint reaches its flush position; an empty vchannel is flushed at once", () => {
    const cps: Record<string, bigint> = { a: 10n, b: 3n };
    const cp = (v: string) => ({ vchannel: v, position: cps[v] ?? 0n, ts: 0n });
    expect(isFlushed({ a: 10n, b: 0n }, cp)).toBe(true);
    expect(isFlushed({ a: 10n, b: 4n }, cp)).toBe(false);
    expect(isFlushed({ c: 0n }, cp)).toBe(true);
    const p = new PendingFlushes();
    p.add("a", 12n);
    p.add("a", 11n);
    p.add("b", 3n);
    expect(p.get("a")).toBe(12n);
    p.settle(cp);
    expect([...p.entries()]).toEqual([["a", 12n]]);
  });

  it("names the unflushed L1 segments that start at or before the flush position", () => {
    const segs = [
      seg(1n, { state: "Flushed" }),
      seg(2n, { state: "Growing", startPosition: 5n }),
      seg(3n, { state: "Sealed", startPosition: 2n }),
      seg(4n, { state: "Growing", startPosition: 50n }),
      seg(5n, { state: "Growing", level: "L0", partitionId: -1n }),
      seg(6n, { state: "Growing", vchannel: "1v1", startPosition: 1n }),
    ];
    expect(segmentsToFlush(segs, { "1v0": 10n })).toEqual([2n, 3n]);
  });
});
