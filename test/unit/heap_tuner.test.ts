/** The heap tuner: how far V8's heaps may grow as a process nears its memory target. */
import { describe, expect, it } from "vitest";
import { growingPercent, memoryTargetBytes, parseBytes, startHeapTuner } from "../../runtime/heap_tuner.ts";

const GB = 2 ** 30;

describe("the heap tuner", () => {
  it("leaves V8 to choose well under the target, then lets heaps grow by less and less, never below the floor", () => {
    expect(growingPercent(0.2 * GB, 2 * GB)).toBe(0);
    expect(growingPercent(0.99 * GB, 2 * GB)).toBe(0);
    expect(growingPercent(1 * GB, 2 * GB)).toBe(100);
    expect(growingPercent(1.5 * GB, 2 * GB)).toBe(50);
    expect(growingPercent(1.8 * GB, 2 * GB)).toBe(20);
    expect(growingPercent(1.95 * GB, 2 * GB)).toBe(10);
    expect(growingPercent(3 * GB, 2 * GB)).toBe(10);
    expect(growingPercent(3 * GB, 2 * GB, 25)).toBe(25);
    // the growth only falls as the memory rises
    let last = Infinity;
    for (let rss = 1 * GB; rss < 3 * GB; rss += 0.01 * GB) {
      const p = growingPercent(rss, 2 * GB);
      expect(p).toBeLessThanOrEqual(last);
      last = p;
    }
  });

  it("reads sizes with units, and takes VB_MEMORY_TARGET before the machine's memory", () => {
    expect(parseBytes("2g")).toBe(2 * GB);
    expect(parseBytes("1536m")).toBe(1536 * 2 ** 20);
    expect(parseBytes("1.5GiB")).toBe(1.5 * GB);
    expect(parseBytes("4096")).toBe(4096);
    expect(() => parseBytes("lots")).toThrow(/not a size: "lots"/);
    expect(memoryTargetBytes({ VB_MEMORY_TARGET: "3g" })).toBe(3 * GB);
    expect(memoryTargetBytes({ VB_MEMORY_TARGET: "0" })).toBe(0);
    expect(() => memoryTargetBytes({ VB_MEMORY_TARGET: "much" })).toThrow(/^VB_MEMORY_TARGET: not a size: "much"/);
    const fallback = memoryTargetBytes({});
    expect(fallback).toBeGreaterThan(0);
  });

  it("sets the growth only when it changes, and hands the choice back to V8 when stopped", () => {
    let rss = 0.5 * GB;
    const applied: number[] = [];
    const t = startHeapTuner({ targetBytes: 2 * GB, rss: () => rss, apply: (p) => applied.push(p), intervalMs: 60_000 });
    expect(t.percent).toBe(0);
    rss = 1.5 * GB;
    expect(t.tune()).toBe(50);
    expect(t.tune()).toBe(50);
    rss = 2.5 * GB;
    expect(t.tune()).toBe(10);
    rss = 0.4 * GB;
    expect(t.tune()).toBe(0);
    rss = 1.9 * GB;
    t.tune();
    t.stop();
    expect(applied).toEqual([50, 10, 0, 10, 0]);
    expect(t.percent).toBe(0);
  });
});
