/**
 * LeaderChecker (Milvus's checkers/leader_checker.go): each delegator's view — the sealed segments of
 * the CURRENT target on its vchannel, and where in its replica each one is loaded — matches the
 * distribution, at the current target's version. A view is changed with SyncDistribution.
 *
 * Which copy a view points at: the one it points at already if still there, else a copy on the
 * delegator's own node, else the first by node id; a copy on a stopping node only when there is no other. A segment of the target with no copy left in the
 * replica (its node died) stays where the view had it until a new copy is loaded: reads then fail and
 * are retried on another replica, instead of silently missing its rows.
 */
import type { SealedEntry, SegmentIds } from "../../../protocol/messages/querynode.ts";
import type { SegmentLoadInfo } from "../../../protocol/meta.ts";
import type { CollectionTarget } from "../meta/types.ts";
import { reportShows } from "../task/effects.ts";
import { leaderKey, Priority } from "../task/task.ts";
import type { ChangeCursor, DistSnapshot } from "../dist/dist_snapshot.ts";
import {
  byBigint,
  derivePlaces,
  emptyResult,
  idOf,
  inShare,
  partitionKey,
  replicasByCollection,
  viewIndex,
  viewOfChannel,
  viewPlaces,
  type CheckInput,
  type CheckResult,
  type SyncedView,
} from "./types.ts";

function sameEntries(a: readonly SealedEntry[], b: readonly SealedEntry[]): boolean {
  if (a.length !== b.length) return false;
  const m = new Map(a.map((e) => [e.segmentId, e.nodeId]));
  return b.every((e) => m.get(e.segmentId) === e.nodeId);
}

export function upToDate(
  reported: { targetVersion: number; sealedSegmentIds: SegmentIds },
  synced: SyncedView | undefined,
  want: { targetVersion: number; sealed: readonly SealedEntry[] },
): boolean {
  return (
    synced !== undefined &&
    synced.targetVersion === want.targetVersion &&
    sameEntries(synced.sealed, want.sealed) &&
    reportShows(reported, want)
  );
}

/** A target's segments by vchannel, by id (targets are replaced, never changed, so this holds). */
const byChannelCache = new WeakMap<CollectionTarget, Map<string, SegmentLoadInfo[]>>();

function segmentsByChannel(t: CollectionTarget): Map<string, SegmentLoadInfo[]> {
  let m = byChannelCache.get(t);
  if (!m) {
    m = new Map();
    for (const s of [...t.segments.values()].sort((a, b) => byBigint(a.segmentId, b.segmentId))) {
      let list = m.get(s.vchannel);
      if (!list) m.set(s.vchannel, (list = []));
      list.push(s);
    }
    byChannelCache.set(t, m);
  }
  return m;
}

/**
 * Per snapshot, the delegators found incomplete (a segment of their channel with no copy in the replica
 * and not in their view, so not synced yet) and under what, with the first such segment's place in the
 * channel's list: while the key holds, a round walks on from there, instead of walking the channel's
 * thousands of segments again (during a large load every delegator waits so, every round). One segment
 * found wanting is enough to wait on, wherever it is; only a walk that gets to the end looks at all of
 * them again.
 */
const incompleteCache = new WeakMap<DistSnapshot, Map<string, { key: string; at: number }>>();


/**
 * Per snapshot, the delegators found up to date and under what (their acknowledged view, the target,
 * their report, the replica's nodes and its stopping nodes), with where the snapshot's change log stood
 * and which of their channel's segments were moving: while those hold, a round looks only at the
 * segments of their channel whose copies changed since or that are moving (now or then), and finds them
 * still up to date when each still points where it did.
 */
const upToDateCache = new WeakMap<DistSnapshot, Map<string, UpToDate>>();

/**
 * Per current target, the delegators walked whole in rounds that the walk bound cut short: the next such
 * rounds pass over them, so that each delegator of a collection gets its walk in turn rather than the
 * same first few every round (when nothing of them is remembered, as with a snapshot made afresh); a
 * round that gets through the collection starts over.
 */
const walkedUnderCut = new WeakMap<CollectionTarget, Set<string>>();
interface UpToDate {
  /** the acknowledged view, the target and the replica (`viewKey`) */
  key: string;
  cursor: ChangeCursor;
  moving: bigint[];
  /**
   * the report found to show the view (its list's `idOf`, as the feed hands an unchanged one on: the same
   * array; a number, so that superseded lists are not kept alive), and its version
   */
  report?: number;
  reportVersion?: number;
}

/**
 * The views sent in SyncLeader tasks (by their `sealed` list, which becomes the acknowledged view's):
 * under which snapshot, target and replica, and where the change log stood, so that once acknowledged
 * a round looks only at what changed since it was made, instead of walking the channel again.
 */
const plannedViews = new WeakMap<readonly SealedEntry[], { dist: DistSnapshot; key: string; cursor: ChangeCursor; moving: bigint[] }>();

/**
 * Per snapshot and replica, a number that changes only when the replica's nodes change in a way the
 * snapshot's change log does not tell: a node still up leaves the replica, a node joins it already
 * holding some of the collection, or the replica's stopping nodes change. A node that died (its copies
 * went, and the log names them) or a node that joins empty leaves it as it was, so that views found up to
 * date before are looked at again only where copies changed (50 nodes dying at once otherwise had every
 * delegator of every collection walk its channel's thousands of segments again).
 */
const replicaEpochs = new WeakMap<DistSnapshot, Map<bigint, { nodes: readonly string[]; stopping: string; epoch: number }>>();
let replicaEpochSeq = 0;

function replicaEpoch(dist: DistSnapshot, collectionId: bigint, replicaId: bigint, nodes: readonly string[], stopping: string): number {
  let held = replicaEpochs.get(dist);
  if (!held) replicaEpochs.set(dist, (held = new Map()));
  const was = held.get(replicaId);
  if (was && was.stopping === stopping) {
    if (was.nodes === nodes) return was.epoch;
    const now = new Set(nodes);
    const before = new Set(was.nodes);
    const told = was.nodes.every((n) => now.has(n) || !dist.isAlive(n)) && nodes.every((n) => before.has(n) || !dist.holdsCollection(n, collectionId));
    if (told) {
      was.nodes = nodes;
      return was.epoch;
    }
  }
  const e = { nodes, stopping, epoch: ++replicaEpochSeq };
  held.set(replicaId, e);
  return e.epoch;
}

/** The changes since a cursor, by vchannel of the target (one grouping per cursor and round). */
function changesByChannel(
  dist: DistSnapshot,
  cur: CollectionTarget,
  cursor: ChangeCursor,
  memo: Map<string, Map<string, Set<bigint>> | undefined>,
): Map<string, Set<bigint>> | undefined {
  const key = `${cursor.epoch}/${cursor.at}`;
  if (memo.has(key)) return memo.get(key);
  const ids = dist.changesSince(cur.collectionId, cursor);
  let out: Map<string, Set<bigint>> | undefined;
  if (ids) {
    out = new Map();
    for (const id of ids) {
      const s = cur.segments.get(id);
      if (!s) continue;
      let set = out.get(s.vchannel);
      if (!set) out.set(s.vchannel, (set = new Set()));
      set.add(id);
    }
  }
  memo.set(key, out);
  return out;
}

/**
 * `sealed` with the entries `entryOf` gives for the ids in `ids` put in place (null: the entry stays;
 * undefined: the segment has no copy to point at, and the view cannot be made this way). undefined when
 * a segment cannot be pointed at or is not in the view.
 */
function patchView(
  sealed: readonly SealedEntry[],
  ids: readonly (Iterable<bigint>)[],
  entryOf: (id: bigint) => SealedEntry | null | undefined,
): SealedEntry[] | undefined {
  const places = viewPlaces(sealed);
  let out: SealedEntry[] | undefined;
  for (const list of ids) {
    for (const id of list) {
      const e = entryOf(id);
      if (e === null) continue;
      const i = places.get(id);
      if (e === undefined || i === undefined) return undefined;
      out ??= [...sealed];
      out[i] = e;
    }
  }
  if (out) derivePlaces(out, sealed);
  return out;
}

/**
 * A view's entry pointing at `nodeId` for a segment of the target: the target's record and the node (40
 * bytes rather than 72 for an entry of six fields; a view holds one per segment of its channel, so a
 * million segments in two replicas hold two million). It goes on the wire as the plain entry (`toJSON`).
 */
export class ViewEntry implements SealedEntry {
  constructor(
    private readonly s: SegmentLoadInfo,
    readonly nodeId: string,
  ) {}

  get segmentId(): bigint {
    return this.s.segmentId;
  }

  get partitionId(): bigint {
    return this.s.partitionId;
  }

  get startPosition(): bigint {
    return this.s.startPosition;
  }

  get endPosition(): bigint {
    return this.s.endPosition ?? this.s.startPosition;
  }

  get numRows(): number {
    return this.s.numRows;
  }

  toJSON(): SealedEntry {
    const { segmentId, partitionId, nodeId, startPosition, endPosition, numRows } = this;
    return { segmentId, partitionId, nodeId, startPosition, endPosition, numRows };
  }
}

/** A view's entry pointing at `nodeId` for a segment of the target. */
function entryOf(s: SegmentLoadInfo, nodeId: string): SealedEntry {
  return new ViewEntry(s, nodeId);
}

export function checkLeaders(input: CheckInput): CheckResult {
  const out = emptyResult();
  let memo = upToDateCache.get(input.dist);
  if (!memo) upToDateCache.set(input.dist, (memo = new Map()));
  let waiting = incompleteCache.get(input.dist);
  if (!waiting) incompleteCache.set(input.dist, (waiting = new Map()));
  const reps = replicasByCollection(input.replicas);
  // segments this round may still walk in whole views
  let walkLeft = input.leaderWalkBudget ?? Number.POSITIVE_INFINITY;
  for (const coll of input.collections) {
    if (!inShare(input, coll.collectionId)) continue;
    const cur = input.targets.get(coll.collectionId)?.current;
    if (!cur) continue;
    const byChannel = segmentsByChannel(cur);
    const cursor = input.dist.changeCursor(coll.collectionId);
    const walkedBefore = walkedUnderCut.get(cur);
    const walkedNow: string[] = [];
    let cutHere = false;
    const grouped = new Map<string, Map<string, Set<bigint>> | undefined>();
    for (const r of reps.get(coll.collectionId) ?? []) {
      const members = new Set(r.nodes);
      const stoppingMembers = new Set(r.nodes.filter((n) => input.dist.isStopping(n)));
      const moves = new Map<bigint, string>();
      // the moves of each channel's segments (a delegator's view depends on its channel's only)
      const channelMoves = new Map<string, bigint[]>();
      for (const m of input.moves?.values() ?? []) {
        if (m.replicaId !== r.replicaId || m.collectionId !== coll.collectionId) continue;
        moves.set(m.segmentId, m.from);
        let list = channelMoves.get(m.vchannel);
        if (!list) channelMoves.set(m.vchannel, (list = []));
        list.push(m.segmentId);
      }
      const replicaKey = `${r.replicaId}#${replicaEpoch(input.dist, coll.collectionId, r.replicaId, r.nodes, [...stoppingMembers].join(","))}`;
      for (const d of input.dist.delegatorsOf(coll.collectionId)) {
        if (d.replicaId !== r.replicaId || !members.has(d.nodeId) || !cur.channels.has(d.vchannel)) continue;
        const watchedWith = input.watched?.get(d.address);
        if (watchedWith !== undefined && watchedWith !== partitionKey(coll)) continue; // about to be watched again
        const taskKey = leaderKey(r.replicaId, d.vchannel, d.nodeId);
        // a sync in flight: what this would wish would wait for it anyway (looked at again once it shows)
        if (input.inflight?.(taskKey)) continue;
        const prev = input.synced.get(d.address);
        const viewKey = `${idOf(prev)}|${idOf(cur)}|${replicaKey}`;
        const memoKey = `${viewKey}|${d.targetVersion}|${d.sealedSegmentIds.length}`;
        const moving = channelMoves.get(d.vchannel) ?? [];
        const prevNode = viewIndex(prev);
        const segs = byChannel.get(d.vchannel) ?? [];
        /**
         * Which copy the view points at: the one it points at already if still there, else a copy on the
         * delegator's own node, else the first by node id; copies on stopping nodes, or moved away by
         * balance, only while no other copy exists. undefined: no copy in the replica.
         */
        const choose = (s: SegmentLoadInfo, was: string | undefined): string | undefined => {
          const from = moves.get(s.segmentId);
          let wasS = false, selfS = false, minS: string | undefined;
          let wasA = false, selfA = false, minA: string | undefined;
          for (const c of input.dist.copies(coll.collectionId, s.segmentId)) {
            const n = c.nodeId;
            if (!members.has(n)) continue;
            if (n === was) wasA = true;
            if (n === d.nodeId) selfA = true;
            if (minA === undefined || n < minA) minA = n;
            if (stoppingMembers.has(n) || n === from) continue;
            if (n === was) wasS = true;
            if (n === d.nodeId) selfS = true;
            if (minS === undefined || n < minS) minS = n;
          }
          if (minS !== undefined) return wasS ? was : selfS ? d.nodeId : minS;
          if (minA !== undefined) return wasA ? was : selfA ? d.nodeId : minA;
          return undefined;
        };
        /** where the view is to point: the chosen copy, or where it pointed while no copy is left (reads then fail over) */
        const follow = (s: SegmentLoadInfo, was: string | undefined): string | undefined => choose(s, was) ?? was;
        // found incomplete before under the same view, target, report and replica: still so while a
        // segment from where it stopped on has no copy (and is not in its view)
        const stuck = waiting.get(d.address);
        if (stuck?.key === memoKey) {
          let at = stuck.at;
          while (at < segs.length && (prevNode.has(segs[at]!.segmentId) || choose(segs[at]!, undefined) !== undefined)) at++;
          if (at < segs.length) {
            stuck.at = at;
            continue;
          }
        }
        waiting.delete(d.address);
        const reported = d.sealedSegmentIds;
        /** the delegator's report shows its acknowledged view at the current version (an empty list: a large node leaves its delegators' lists out, the version alone tells) */
        const reportShowsView = (): boolean =>
          d.targetVersion === cur.version && (reported.length === 0 || (reported.length === segs.length && reported.every((id) => prevNode.has(id))));
        const sync = (sealed: SealedEntry[]) => {
          plannedViews.set(sealed, { dist: input.dist, key: `${idOf(cur)}|${replicaKey}`, cursor, moving });
          out.tasks.push({
            key: taskKey,
            priority: Priority.High,
            action: { kind: "SyncLeader", nodeId: d.nodeId, collectionId: coll.collectionId, replicaId: r.replicaId, vchannel: d.vchannel, address: d.address, targetVersion: cur.version, sealed },
          });
        };
        // found up to date before under the same view, target and replica, or the view is one a sync made
        // under this target and replica: only what changed on its channel since is looked at
        let found = memo.get(d.address);
        if (found?.key !== viewKey && prev && prev.targetVersion === cur.version) {
          const planned = plannedViews.get(prev.sealed);
          if (planned && planned.dist === input.dist && planned.key === `${idOf(cur)}|${replicaKey}` && prev.sealed.length === segs.length) {
            found = { key: viewKey, cursor: planned.cursor, moving: planned.moving };
          }
        }
        if (found?.key === viewKey && prev) {
          const changed = changesByChannel(input.dist, cur, found.cursor, grouped);
          if (changed) {
            const stillPoints = (id: bigint) => {
              const s = cur.segments.get(id);
              if (!s || s.vchannel !== d.vchannel) return true;
              const was = prevNode.get(id)?.nodeId;
              return was !== undefined && follow(s, was) === was;
            };
            let still = true;
            const looked = [changed.get(d.vchannel) ?? [], found.moving, moving];
            for (const ids of looked) {
              for (const id of ids) {
                if (!stillPoints(id)) {
                  still = false;
                  break;
                }
              }
              if (!still) break;
            }
            if (!still && prev.targetVersion === cur.version && prev.sealed.length === segs.length) {
              // the view covers the channel and every other segment still points where it did: the new
              // view is the old one with what changed pointed anew (as the walk below would make it)
              const patched = patchView(prev.sealed, looked, (id) => {
                const s = cur.segments.get(id);
                if (!s || s.vchannel !== d.vchannel) return null;
                const was = prevNode.get(id)?.nodeId;
                const node = follow(s, was);
                if (node === undefined) return undefined;
                return node === was ? null : entryOf(s, node);
              });
              if (patched) {
                sync(patched);
                continue;
              }
            }
            if (still) {
              found.cursor = cursor;
              found.moving = moving;
              memo.set(d.address, found);
              if ((found.report === idOf(reported) && found.reportVersion === d.targetVersion) || reportShowsView()) {
                found.report = idOf(reported);
                found.reportVersion = d.targetVersion;
                continue;
              }
              // the view is right but the delegator does not show it: told again
              found.report = undefined;
              sync(prev.sealed);
              continue;
            }
          }
        }
        // (what follows walks the channel: past the round's bound, the delegator waits for the next round;
        // one walked in a round cut short before waits for the others to have theirs)
        if (walkedBefore?.has(d.address)) continue;
        if (walkLeft <= 0) {
          cutHere = true;
          continue;
        }
        walkLeft -= segs.length;
        walkedNow.push(d.address);
        // what it acknowledged is what it should point at, and its report shows it: nothing to do
        if (prev && prev.targetVersion === cur.version && prev.sealed.length === segs.length && d.targetVersion === cur.version) {
          let same = true;
          for (const s of segs) {
            const was = prevNode.get(s.segmentId)?.nodeId;
            if (was === undefined || follow(s, was) !== was) {
              same = false;
              break;
            }
          }
          if (same && reportShowsView()) {
            memo.set(d.address, { key: viewKey, cursor, moving, report: idOf(reported), reportVersion: d.targetVersion });
            continue;
          }
        }
        const sealed: SealedEntry[] = [];
        // A view missing a current-target segment would hide its rows (they are neither sealed nor, past
        // the seek position, growing): such a delegator is not synced until every segment has a copy.
        let incomplete = false;
        for (let i = 0; i < segs.length; i++) {
          const s = segs[i]!;
          const was = prevNode.get(s.segmentId);
          const node = choose(s, was?.nodeId);
          if (node === undefined) {
            if (was) sealed.push(was);
            else {
              incomplete = true;
              waiting.set(d.address, { key: memoKey, at: i });
              break;
            }
            continue;
          }
          sealed.push(entryOf(s, node));
        }
        if (incomplete) continue;
        viewOfChannel(sealed, cur, segs);
        const want = { targetVersion: cur.version, sealed };
        if (upToDate(d, prev, want)) {
          memo.set(d.address, { key: viewKey, cursor, moving, report: idOf(reported), reportVersion: d.targetVersion });
          continue;
        }
        sync(sealed);
      }
    }
    if (cutHere) {
      (out.cut ??= new Set()).add(coll.collectionId);
      const walked = walkedBefore ?? new Set<string>();
      for (const a of walkedNow) walked.add(a);
      walkedUnderCut.set(cur, walked);
    } else if (walkedBefore) {
      walkedUnderCut.delete(cur);
    }
  }
  return out;
}
