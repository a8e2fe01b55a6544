/**
 * What a SyncDistribution carries: the whole view, or only what changed against the view the delegator
 * last acknowledged (Milvus's SyncDistribution actions). A delegator of a large channel holds thousands
 * of entries and a balance move changes one or two: sending the whole view for each move cost
 * querycoord's thread, the bus and the delegator as much as a full load of the view.
 */
import type { SealedEntry, ViewDelta } from "../../../protocol/messages/querynode.ts";

function sameEntry(a: SealedEntry, b: SealedEntry): boolean {
  return (
    a.segmentId === b.segmentId &&
    a.nodeId === b.nodeId &&
    a.partitionId === b.partitionId &&
    a.startPosition === b.startPosition &&
    a.endPosition === b.endPosition &&
    a.numRows === b.numRows
  );
}

/**
 * The entries of `next` not in `prev` and those of `prev` not in `next`, by identity. A patched view
 * (the same length, entries replaced in place) is compared place by place; an entry found in both at
 * different places is in both answers, which `viewDelta` then finds equal.
 */
function unshared(prev: readonly SealedEntry[], next: readonly SealedEntry[]): [SealedEntry[], SealedEntry[]] {
  if (prev.length === next.length) {
    const came: SealedEntry[] = [];
    const went: SealedEntry[] = [];
    for (let i = 0; i < next.length; i++) {
      if (prev[i] === next[i]) continue;
      came.push(next[i]!);
      went.push(prev[i]!);
    }
    return [came, went];
  }
  const had = new Set(prev);
  const has = new Set(next);
  return [next.filter((e) => !had.has(e)), prev.filter((e) => !has.has(e))];
}

/**
 * The entries of `next` that `prev` lacks or holds otherwise (`set`), and those of `prev` that `next`
 * lacks (`remove`). An entry is a segment on a node; the lists hold each at most once. Entries shared by
 * identity (a patched view keeps its unchanged entries) are passed over without a look at their fields.
 */
export function viewDelta(prev: readonly SealedEntry[], next: readonly SealedEntry[]): Pick<ViewDelta, "set" | "remove"> {
  const [came, went] = unshared(prev, next);
  // the same entry may come back as another object (a view walked anew): it is neither set nor removed
  const wentById = new Map<bigint, SealedEntry[]>();
  for (const e of went) {
    const list = wentById.get(e.segmentId);
    if (list) list.push(e);
    else wentById.set(e.segmentId, [e]);
  }
  const set: SealedEntry[] = [];
  for (const e of came) {
    const list = wentById.get(e.segmentId);
    const i = list ? list.findIndex((w) => w.nodeId === e.nodeId) : -1;
    if (i >= 0) {
      // the same segment on the same node: `set` replaces it when it changed
      const [w] = list!.splice(i, 1);
      if (sameEntry(w!, e)) continue;
    }
    set.push(e);
  }
  const remove: ViewDelta["remove"] = [];
  for (const list of wentById.values()) for (const e of list) remove.push({ segmentId: e.segmentId, nodeId: e.nodeId });
  return { set, remove };
}

/**
 * The body of a SyncDistribution that makes `next` the delegator's view: a delta against `acked` (the
 * view the delegator acknowledged, under the name its reply gave) when one is known and the delta is
 * the smaller, else the whole view.
 */
export function syncBody(
  targetVersion: number,
  next: SealedEntry[],
  acked: { view?: string; sealed: readonly SealedEntry[] } | undefined,
): { targetVersion: number; sealed: SealedEntry[] } | { targetVersion: number; delta: ViewDelta } {
  if (acked?.view !== undefined) {
    const d = viewDelta(acked.sealed, next);
    if (d.set.length + d.remove.length < next.length) return { targetVersion, delta: { base: acked.view, ...d } };
  }
  return { targetVersion, sealed: next };
}
