/**
 * A round's share of a large cluster: the collections whose segments, delegators' views, indexes,
 * handoff, load progress and balance one reconcile round looks at. A cluster of at most `budget` copies
 * (target segments × replicas) is looked at whole every round; a larger one a share at a time, taking
 * collections in id order from where the last share ended, until the next would pass the budget (at
 * least one a round), so that every collection is looked at once every few rounds and no round walks
 * millions of copies while heartbeats and task replies wait. A round whose look at a collection was cut
 * short (a bound on its walks, one promotion a round) has the next share start at that collection, but
 * not twice in a row. Pure.
 */
import type { LoadBlocker } from "../../protocol/messages/querycoord.ts";
import type { Unlooked } from "./task/scheduler.ts";
import type { TaskAction } from "./task/task.ts";

export interface ShareCandidate {
  collectionId: bigint;
  /** its copies: the segments of its larger target times its replicas */
  copies: number;
}

export interface RoundShare {
  /** the collections this round looks at */
  collections: ReadonlySet<bigint>;
  /** the first one not taken: where the next share starts */
  next: bigint;
}

/**
 * This round's share from collection `from` on (the first id not below it, wrapping around), or
 * undefined when the whole cluster fits the budget (or there is none: 0).
 */
export function roundShare(candidates: readonly ShareCandidate[], budget: number, from: bigint | undefined): RoundShare | undefined {
  if (budget <= 0 || candidates.length === 0) return undefined;
  let total = 0;
  for (const c of candidates) total += c.copies;
  if (total <= budget) return undefined;
  const sorted = [...candidates].sort((a, b) => (a.collectionId < b.collectionId ? -1 : a.collectionId > b.collectionId ? 1 : 0));
  let start = from === undefined ? 0 : sorted.findIndex((c) => c.collectionId >= from);
  if (start < 0) start = 0;
  const collections = new Set<bigint>();
  let copies = 0;
  let k = 0;
  for (; k < sorted.length; k++) {
    const c = sorted[(start + k) % sorted.length]!;
    if (collections.size > 0 && copies + c.copies > budget) break;
    collections.add(c.collectionId);
    copies += c.copies;
  }
  return { collections, next: sorted[(start + k) % sorted.length]!.collectionId };
}

/**
 * Of a round's share (in the order it was taken), the first collection named in `cut`: where the next
 * share starts; undefined (the share moves on) when there is none, or when it is `resumedBefore`, the
 * collection this round's share was made to start at: one collection cut short round after round does
 * not hold the share (it gets another round when its turn comes).
 */
export function resumeAt(share: ReadonlySet<bigint>, cut: ReadonlySet<bigint>, resumedBefore?: bigint): bigint | undefined {
  for (const id of share) if (cut.has(id)) return id === resumedBefore ? undefined : id;
  return undefined;
}

/** The blockers a share's checkers find (segments', indexes'); the others are looked for every round. */
const SHARE_BLOCKERS = new Set<LoadBlocker["kind"]>(["segment", "index"]);

/**
 * What each loaded collection's load waits on after a round that looked at `share` only: a collection of
 * the share has what this round found; another keeps what its last look found about its segments and
 * indexes, with what this round found about the rest (channels, replicas, targets).
 */
export function mergeShareBlockers(
  prev: ReadonlyMap<bigint, LoadBlocker[]>,
  found: ReadonlyMap<bigint, LoadBlocker[]>,
  share: ReadonlySet<bigint>,
  collections: readonly { collectionId: bigint }[],
): Map<bigint, LoadBlocker[]> {
  const out = new Map<bigint, LoadBlocker[]>();
  for (const { collectionId: id } of collections) {
    const now = found.get(id) ?? [];
    const list = share.has(id) ? now : [...(prev.get(id) ?? []).filter((b) => SHARE_BLOCKERS.has(b.kind)), ...now.filter((b) => !SHARE_BLOCKERS.has(b.kind))];
    if (list.length > 0) out.set(id, list);
  }
  return out;
}

/**
 * The waiting tasks kept for a loaded collection outside the round's share: its loads. A release or a
 * sync was decided on copies that may have changed since (the copy a release left may have died with
 * its node), so it is asked for again when its collection is looked at, not kept.
 */
const KEPT_TASKS = new Set<TaskAction["kind"]>(["LoadSegment", "LoadIndex"]);
/** The failures kept for a loaded collection outside the share: those of the checkers that look at a share only (segments, views, indexes). */
const SHARE_TASKS = new Set<TaskAction["kind"]>(["LoadSegment", "ReleaseSegment", "SyncLeader", "LoadIndex", "ReleaseIndex"]);

/** What a round that looked at `share` only did not look at, of the `loaded` collections (a released one's are not kept). */
export function unlookedOutside(share: ReadonlySet<bigint>, loaded: ReadonlySet<bigint>): Unlooked {
  return {
    task: (kind, collectionId) => KEPT_TASKS.has(kind) && loaded.has(collectionId) && !share.has(collectionId),
    failure: (kind, collectionId) => SHARE_TASKS.has(kind) && loaded.has(collectionId) && !share.has(collectionId),
  };
}
