import { describe, expect, it } from "vitest";
import { Distribution, entryKey } from "../../actors/delegator/distribution.ts";
import { derivePlaces, viewIndex } from "../../actors/querycoord/checkers/types.ts";
import { syncBody, viewDelta } from "../../actors/querycoord/task/sync_delta.ts";
import type { SealedEntry } from "../../protocol/messages/querynode.ts";

function entry(segmentId: number, nodeId: string, numRows = 10): SealedEntry {
  return { segmentId: BigInt(segmentId), partitionId: 1n, nodeId, startPosition: BigInt(segmentId), endPosition: BigInt(segmentId + 5), numRows };
}

const asMap = (s: readonly SealedEntry[]) => new Map(s.map((e) => [entryKey(e), e]));

/** A small deterministic generator (tests do not depend on Math.random). */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

describe("SyncDistribution deltas", () => {
  it("carries only the entries that changed, moved or went", () => {
    const prev = [entry(1, "a"), entry(2, "a"), entry(3, "b"), entry(4, "b")];
    const next = [prev[0]!, entry(2, "c"), { ...prev[2]! }, entry(4, "b", 12), entry(5, "a")];
    const d = viewDelta(prev, next);
    // 1 shared, 3 equal though another object: neither; 2 moved to c; 4 changed in place; 5 new
    expect(d.set.map(entryKey).sort()).toEqual(["2@c", "4@b", "5@a"]);
    expect(d.remove).toEqual([{ segmentId: 2n, nodeId: "a" }]);
    // the same entries in another order (of the same length, compared place by place): nothing
    expect(viewDelta(prev, [prev[3]!, prev[1]!, prev[0]!, { ...prev[2]! }])).toEqual({ set: [], remove: [] });
    // one moved in place, the rest shared
    expect(viewDelta(prev, [prev[0]!, prev[1]!, entry(3, "d"), prev[3]!])).toEqual({ set: [entry(3, "d")], remove: [{ segmentId: 3n, nodeId: "b" }] });
  });

  it("applied by a delegator to the view it names, gives the view wanted (randomized)", () => {
    const rand = lcg(7);
    const nodes = ["a", "b", "c", "d"];
    const dist = new Distribution();
    let acked = { view: dist.viewName, sealed: [] as SealedEntry[] };
    let deltas = 0;
    for (let round = 0; round < 200; round++) {
      // move, drop, add and change a few entries of the acknowledged view
      const next: SealedEntry[] = [];
      for (const e of acked.sealed) {
        const r = rand();
        if (r < 0.05) continue;
        if (r < 0.1) next.push({ ...e, nodeId: nodes[Math.floor(rand() * nodes.length)]! });
        else if (r < 0.12) next.push({ ...e, numRows: e.numRows + 1 });
        else next.push(e);
      }
      // new segments are new (a segment dropped and listed again at once may come back in its old place)
      const ids = new Set(acked.sealed.map((e) => e.segmentId));
      for (let i = 0; i < 1 + Math.floor(rand() * 5); i++) {
        const id = 1 + Math.floor(rand() * 300);
        if (!ids.has(BigInt(id))) (ids.add(BigInt(id)), next.push(entry(id, nodes[Math.floor(rand() * nodes.length)]!)));
      }
      const body = syncBody(round + 1, next, acked);
      let sealed: SealedEntry[];
      if ("delta" in body) {
        deltas++;
        const made = dist.applyDelta(body.delta);
        if ("refused" in made) throw new Error(made.refused);
        sealed = made.sealed;
      } else sealed = body.sealed;
      dist.publish(body.targetVersion, sealed);
      // the same entries, in the same order (a moved segment keeps its place)
      expect(dist.current.sealed).toEqual(next);
      acked = { view: dist.viewName, sealed: next };
    }
    expect(deltas).toBeGreaterThan(150);
  });

  it("sends the whole view when no view name is known or the delta would be larger", () => {
    const prev = [entry(1, "a"), entry(2, "a")];
    expect(syncBody(1, prev, undefined)).toEqual({ targetVersion: 1, sealed: prev });
    expect(syncBody(1, prev, { sealed: prev })).toEqual({ targetVersion: 1, sealed: prev });
    const all = [entry(1, "b"), entry(2, "b")];
    expect(syncBody(2, all, { view: "v", sealed: prev })).toEqual({ targetVersion: 2, sealed: all });
    const four = [...prev, entry(3, "a"), entry(4, "a")];
    expect(syncBody(2, [four[0]!, entry(2, "b"), four[2]!, four[3]!], { view: "v", sealed: four })).toEqual({
      targetVersion: 2,
      delta: { base: "v", set: [entry(2, "b")], remove: [{ segmentId: 2n, nodeId: "a" }] },
    });
  });

  it("is refused against another view, or when it removes what the view lacks", () => {
    const a = new Distribution();
    const b = new Distribution();
    a.publish(1, [entry(1, "a")]);
    b.publish(1, [entry(1, "a")]);
    // the same version number of another delegator (a restarted one) is another view
    expect(a.current.id).toBe(b.current.id);
    expect(a.viewName).not.toBe(b.viewName);
    expect(b.applyDelta({ base: a.viewName, set: [], remove: [] })).toEqual({ refused: `it is against view ${a.viewName}, but the view is ${b.viewName}` });
    expect(a.applyDelta({ base: a.viewName, set: [], remove: [{ segmentId: 2n, nodeId: "a" }] })).toEqual({
      refused: `it removes 2@a, which view ${a.viewName} does not hold`,
    });
    expect(a.applyDelta({ base: a.viewName, set: [entry(2, "b")], remove: [{ segmentId: 1n, nodeId: "a" }] })).toEqual({ sealed: [entry(2, "b")] });
  });

  it("keeps a moved segment in its place, so that the delegator's report lists the view in the order querycoord sent it", () => {
    const d = new Distribution();
    const acked = [entry(1, "a"), entry(2, "a"), entry(3, "b")];
    d.publish(1, acked);
    const next = [acked[0]!, entry(2, "c"), acked[2]!, entry(4, "c")];
    const body = syncBody(1, next, { view: d.viewName, sealed: acked });
    if (!("delta" in body)) throw new Error("expected a delta");
    const made = d.applyDelta(body.delta);
    expect(made).toEqual({ sealed: next });
  });

  it("indexes a view made from another by its places: patched in place, or with what a sync in flight sets after it", () => {
    const acked = [entry(1, "a"), entry(2, "a"), entry(3, "b")];
    const patched = [...acked];
    patched[1] = entry(2, "c");
    derivePlaces(patched, acked);
    const p = viewIndex({ targetVersion: 1, sealed: patched });
    expect([1n, 2n, 3n].map((id) => p.get(id)?.nodeId)).toEqual(["a", "c", "b"]);
    expect(p.has(4n)).toBe(false);
    // a sync in flight: the copies it sets win over the acknowledged ones, the rest are found where they were
    const set = [entry(3, "d"), entry(4, "d")];
    const inflight = [...patched, ...set];
    derivePlaces(inflight, patched, set);
    const f = viewIndex({ targetVersion: 1, sealed: inflight });
    expect([1n, 2n, 3n, 4n].map((id) => f.get(id)?.nodeId)).toEqual(["a", "c", "d", "d"]);
    expect(f.has(5n)).toBe(false);
    // a view built anew is indexed from its own list, the last entry of a segment winning
    const fresh = viewIndex({ targetVersion: 1, sealed: [entry(1, "a"), entry(1, "b")] });
    expect(fresh.get(1n)?.nodeId).toBe("b");
    expect(viewIndex(undefined).get(1n)).toBeUndefined();
  });
});
