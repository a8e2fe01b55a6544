/**
 * What checkers read and return. A checker is a pure function of (meta, targets, distribution, what
 * is in flight) → tasks, plus the blockers it sees: what a load waits on and why, in words a person
 * can act on.
 */
import type { IndexInfo, IndexLoadInfo } from "../../../protocol/messages/indexes.ts";
import type { LoadBlocker } from "../../../protocol/messages/querycoord.ts";
import type { SealedEntry } from "../../../protocol/messages/querynode.ts";
import type { SegmentLoadInfo } from "../../../protocol/meta.ts";
import type { PendingLoad } from "../balance/node_load.ts";
import type { ChannelMove, SegmentMove } from "../balance/score_balancer.ts";
import type { DistSnapshot } from "../dist/dist_snapshot.ts";
import type { TargetPair } from "../meta/target_manager.ts";
import type { CollectionLoad, CollectionTarget, Replica } from "../meta/types.ts";
import type { TaskFailure } from "../task/scheduler.ts";
import type { TaskSpec } from "../task/task.ts";

/** What a delegator was last told by a SyncDistribution that it acknowledged. */
export interface SyncedView {
  targetVersion: number;
  sealed: SealedEntry[];
  /** the view's name as the delegator's reply gave it: what a delta against it names (none: send it whole) */
  view?: string;
}

/** A collection's live vector indexes and their Finished builds, as datacoord last said (GetIndexInfos). */
export interface CollectionIndexes {
  indexes: readonly IndexInfo[];
  /** Finished builds of the live indexes, by segment */
  builds: ReadonlyMap<bigint, readonly IndexLoadInfo[]>;
}

function sameBuild(a: IndexLoadInfo, b: IndexLoadInfo): boolean {
  return a.indexId === b.indexId && a.buildId === b.buildId && a.fileKey === b.fileKey && a.memorySize === b.memorySize && a.indexType === b.indexType;
}

/** The segments whose builds differ between two answers (came, went or changed). */
export function changedBuilds(a: CollectionIndexes["builds"], b: CollectionIndexes["builds"]): bigint[] {
  const out: bigint[] = [];
  for (const [id, la] of a) {
    const lb = b.get(id);
    if (!lb || lb.length !== la.length || la.some((x, i) => !sameBuild(x, lb[i]!))) out.push(id);
  }
  for (const id of b.keys()) if (!a.has(id)) out.push(id);
  return out;
}

/** Whether two answers say the same: the same live indexes and the same builds. */
export function sameCollectionIndexes(a: CollectionIndexes, b: CollectionIndexes): boolean {
  return (
    a.indexes.length === b.indexes.length &&
    a.indexes.every((x, i) => {
      const y = b.indexes[i]!;
      return x.indexId === y.indexId && x.indexName === y.indexName && x.indexType === y.indexType && x.metricType === y.metricType && x.fieldId === y.fieldId;
    }) &&
    a.builds.size === b.builds.size &&
    changedBuilds(a.builds, b.builds).length === 0
  );
}

/** Groups GetIndexInfos' answer by segment (builds of indexes it does not list as live are left out). */
export function collectionIndexes(r: { indexes: readonly IndexInfo[]; builds: readonly IndexLoadInfo[] }): CollectionIndexes {
  const live = new Set(r.indexes.map((i) => i.indexId));
  const builds = new Map<bigint, IndexLoadInfo[]>();
  for (const b of r.builds) {
    if (!live.has(b.indexId)) continue;
    let list = builds.get(b.segmentId);
    if (!list) builds.set(b.segmentId, (list = []));
    if (!list.some((x) => x.indexId === b.indexId)) list.push(b);
  }
  return { indexes: [...r.indexes], builds };
}

export interface CheckInput {
  collections: readonly CollectionLoad[];
  replicas: readonly Replica[];
  targets: ReadonlyMap<bigint, TargetPair>;
  /** the alive querynodes' distribution */
  dist: DistSnapshot;
  /** failed tasks backing off, by key */
  failures: ReadonlyMap<string, TaskFailure>;
  /** by delegator address */
  synced: ReadonlyMap<string, SyncedView>;
  /** loads and watches in flight, by node */
  pending: ReadonlyMap<string, PendingLoad>;
  /**
   * per replica, the segments with a LoadSegment in flight: not asked for again while it runs (its task
   * goes on), and counted against the round's budget of new loads
   */
  loading?: ReadonlyMap<bigint, ReadonlySet<bigint>>;
  /** the partitions each delegator was watched with (`partitionKey`), by address, when known */
  watched?: ReadonlyMap<string, string>;
  /**
   * per collection, its vector indexes as datacoord last said; a collection absent here (never fetched)
   * has its indexes neither loaded nor released
   */
  indexes?: ReadonlyMap<bigint, CollectionIndexes>;
  /** balance moves in flight, by `moveKey(replica, segment)`: the segment's copy on `from` gives way to one on `to` */
  moves?: ReadonlyMap<string, SegmentMove>;
  /** channel moves in flight, by `channelMoveKey(replica, vchannel)`: the delegator on `from` gives way to one on `to` */
  channelMoves?: ReadonlyMap<string, ChannelMove>;
  /**
   * new segment loads per alive querynode that one round asks for at most, over every collection (the
   * scheduler runs a few per node at a time; the rest are asked for in later rounds); no bound when absent
   */
  loadsPerNode?: number;
  /**
   * new segment loads one round asks for at most, whatever the nodes could take: a round that plans a
   * load of a million segments stays short (the rest come in the next rounds); no bound when absent
   */
  loadsPerRound?: number;
  /**
   * tasks each querynode is running now (any kind): with `loadsPerNode`, a node already at that many
   * gets no new load this round (it could not start it), so loads go to nodes that can; when absent,
   * placement looks at scores alone
   */
  runningPerNode?: ReadonlyMap<string, number>;
  /**
   * whether a task of this key is in flight (asked, or waiting to show): a wish for it would be dropped,
   * so a checker may pass over what it concerns (when absent: nothing is)
   */
  inflight?: (key: string) => boolean;
  /**
   * the collections whose segments, delegators' views and indexes this round looks at (a large
   * cluster's share of the round, in turn); absent: every collection. Channels and collections no longer
   * loaded are looked at for every collection every round.
   */
  share?: ReadonlySet<bigint>;
  /**
   * segments the LeaderChecker may walk in whole views this round (a delegator whose view is not known
   * up to date, or whose target changed: a walk of its channel); a delegator past it waits for the next
   * round, which starts its share at that collection; no bound when absent
   */
  leaderWalkBudget?: number;
}

/** Whether this round looks at the collection's segments, views and indexes (`CheckInput.share`). */
export function inShare(input: Pick<CheckInput, "share">, collectionId: bigint): boolean {
  return input.share === undefined || input.share.has(collectionId);
}

/**
 * The partitions a delegator of the load must keep, as WatchDmChannels names them: "" for every
 * partition (a whole-collection load), else the ids in the load's order.
 */
export function partitionKey(c: Pick<CollectionLoad, "loadType" | "partitionIds">): string {
  return c.loadType === "Collection" ? "" : c.partitionIds.map(String).join(",");
}

export interface CheckResult {
  tasks: TaskSpec[];
  blockers: Map<bigint, LoadBlocker[]>;
  /** collections whose look a bound of the round cut short (`leaderWalkBudget`): the next round looks there first */
  cut?: Set<bigint>;
}

export function emptyResult(): CheckResult {
  return { tasks: [], blockers: new Map() };
}

/** What a load waits on, at most this many per collection (a million segments waiting on one dead node say the same). */
const MAX_BLOCKERS = 100;
const blockerKeys = new WeakMap<LoadBlocker[], Set<string>>();

export function addBlocker(out: CheckResult, collectionId: bigint, b: LoadBlocker): void {
  let list = out.blockers.get(collectionId);
  if (!list) out.blockers.set(collectionId, (list = []));
  if (list.length >= MAX_BLOCKERS) return;
  let keys = blockerKeys.get(list);
  if (!keys) blockerKeys.set(list, (keys = new Set(list.map((x) => `${x.kind}\0${x.subject}\0${x.reason}`))));
  const key = `${b.kind}\0${b.subject}\0${b.reason}`;
  if (keys.has(key)) return;
  keys.add(key);
  list.push(b);
}

export function mergeResults(...rs: CheckResult[]): CheckResult {
  const out = emptyResult();
  for (const r of rs) {
    for (const t of r.tasks) out.tasks.push(t); // (a spread of a large load's tasks would pass the stack's limit)
    for (const [c, bs] of r.blockers) for (const b of bs) addBlocker(out, c, b);
    for (const c of r.cut ?? []) (out.cut ??= new Set()).add(c);
  }
  return out;
}

/** `segment 123: node qn1 refused: ...`, `replica 1: needs a node, ...` */
export function formatBlocker(b: LoadBlocker): string {
  return `${b.kind} ${b.subject}: ${b.reason}`;
}

export function replicasByCollection(replicas: readonly Replica[]): Map<bigint, Replica[]> {
  const out = new Map<bigint, Replica[]>();
  for (const r of replicas) {
    let list = out.get(r.collectionId);
    if (!list) out.set(r.collectionId, (list = []));
    list.push(r);
  }
  for (const list of out.values()) list.sort((a, b) => (a.replicaId < b.replicaId ? -1 : a.replicaId > b.replicaId ? 1 : 0));
  return out;
}

export function aliveNodesOf(r: Replica, dist: DistSnapshot): string[] {
  return r.nodes.filter((n) => dist.isAlive(n)).sort();
}

/** The replica's nodes new work may go to: alive and not stopping (a stopping node only gives work away). */
export function placementNodesOf(r: Replica, dist: DistSnapshot): string[] {
  return r.nodes.filter((n) => dist.isAlive(n) && !dist.isStopping(n)).sort();
}

/** The vchannels of a collection's targets (current and next). */
export function targetChannels(pair: TargetPair | undefined): string[] {
  const names = new Set<string>([...(pair?.current?.channels.keys() ?? []), ...(pair?.next?.channels.keys() ?? [])]);
  return [...names].sort();
}

export const byBigint = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);

const objectIds = new WeakMap<object, number>();
let nextObjectId = 0;

/** A number naming an object for as long as it lives (for keys of what checkers remember between rounds). */
export function idOf(o: object | undefined): number {
  if (o === undefined) return 0;
  let id = objectIds.get(o);
  if (id === undefined) objectIds.set(o, (id = ++nextObjectId));
  return id;
}

/** Each id's place in `list` (the last, when one is listed twice). */
export function placesOf<T>(list: readonly T[], id: (x: T) => bigint): Map<bigint, number> {
  return new Map(list.map((x, i) => [id(x), i]));
}

const itself = (id: bigint): bigint => id;
const segmentOf = (e: SealedEntry): bigint => e.segmentId;

/** A target's segment ids sorted, and each one's place among them. */
export interface TargetOrder {
  ids: readonly bigint[];
  pos: ReadonlyMap<bigint, number>;
}
const targetOrders = new WeakMap<CollectionTarget, TargetOrder>();

/** A target's order, made once per target (targets are replaced, never changed) and shared by the checkers and observers. */
export function targetOrder(t: CollectionTarget): TargetOrder {
  let o = targetOrders.get(t);
  if (!o) {
    const ids = [...t.segments.keys()].sort(byBigint);
    targetOrders.set(t, (o = { ids, pos: placesOf(ids, itself) }));
  }
  return o;
}

/** Where each segment of a view is in its list: the last place, when it is listed twice. */
export interface Places {
  get(id: bigint): number | undefined;
}

/** Places by list (view lists are replaced, never changed, so this holds). */
const placesCache = new WeakMap<readonly SealedEntry[], Places>();

/**
 * The places of a channel's segments in a target's channel list (`segs`: the channel's segments in the
 * target's order), read from the target's order: per target, each segment's place in its channel's list
 * by its place in the target (4 bytes a segment), rather than a map per view (about 40 bytes an entry,
 * for a million segments in two replicas some 80 MB more, and made again for every view a load walks).
 */
class ChannelPlaces implements Places {
  constructor(
    private readonly segs: readonly { segmentId: bigint }[],
    private readonly pos: ReadonlyMap<bigint, number>,
    private readonly inChannel: Int32Array,
  ) {}

  get(id: bigint): number | undefined {
    const g = this.pos.get(id);
    if (g === undefined) return undefined;
    const i = this.inChannel[g]!;
    // (a segment of another channel has its place in that channel's list)
    return this.segs[i]?.segmentId === id ? i : undefined;
  }
}

/** Per target, each segment's place in its channel's list, by its place in the target's order. */
const inChannelCache = new WeakMap<CollectionTarget, Int32Array>();
/** Per channel list of a target, its places. */
const channelPlacesCache = new WeakMap<readonly SegmentLoadInfo[], ChannelPlaces>();

/**
 * Tells that `sealed` holds one entry for each of `segs` (a channel's segments in `t`'s order, ascending
 * ids), at the same place: a view made whole for its channel. Its places are then the channel's, shared
 * by every such view of the channel (both replicas', every sync's). A list that does not hold so is left
 * to have a map made when looked up.
 */
export function viewOfChannel(sealed: readonly SealedEntry[], t: CollectionTarget, segs: readonly SegmentLoadInfo[]): void {
  if (sealed.length !== segs.length) return;
  for (let i = 0; i < segs.length; i++) if (sealed[i]!.segmentId !== segs[i]!.segmentId) return;
  let p = channelPlacesCache.get(segs);
  if (!p) {
    const { ids, pos } = targetOrder(t);
    let inChannel = inChannelCache.get(t);
    if (!inChannel) {
      inChannel = new Int32Array(ids.length);
      const counts = new Map<string, number>();
      for (let g = 0; g < ids.length; g++) {
        const vchannel = t.segments.get(ids[g]!)!.vchannel;
        const n = counts.get(vchannel) ?? 0;
        inChannel[g] = n;
        counts.set(vchannel, n + 1);
      }
      inChannelCache.set(t, inChannel);
    }
    channelPlacesCache.set(segs, (p = new ChannelPlaces(segs, pos, inChannel)));
  }
  placesCache.set(sealed, p);
}

export function viewPlaces(sealed: readonly SealedEntry[]): Places {
  let p = placesCache.get(sealed);
  if (!p) placesCache.set(sealed, (p = placesOf(sealed, segmentOf)));
  return p;
}

/**
 * Tells that `made` holds `from`'s segments at their places (some entries replaced by others of the
 * same segment: a patch), then `appended`: its places are `from`'s and the appended ones', rather than a
 * map of thousands made again for each sync of a balance move.
 */
export function derivePlaces(made: readonly SealedEntry[], from: readonly SealedEntry[], appended: readonly SealedEntry[] = []): void {
  let base = viewPlaces(from);
  if (appended.length === 0) {
    placesCache.set(made, base);
    return;
  }
  if (!(base instanceof Map) && !(base instanceof ChannelPlaces)) base = placesOf(from, segmentOf); // no chains of layers
  const under = base;
  const extra = new Map(appended.map((e, i) => [e.segmentId, from.length + i]));
  placesCache.set(made, { get: (id) => extra.get(id) ?? under.get(id) });
}

/** A view's entries by segment. */
export interface ViewIndex {
  get(id: bigint): SealedEntry | undefined;
  has(id: bigint): boolean;
}

const NO_VIEW: ViewIndex = { get: () => undefined, has: () => false };

export function viewIndex(v: SyncedView | undefined): ViewIndex {
  if (!v) return NO_VIEW;
  const { sealed } = v;
  const places = viewPlaces(sealed);
  return {
    get: (id) => {
      const i = places.get(id);
      return i === undefined ? undefined : sealed[i];
    },
    has: (id) => places.get(id) !== undefined,
  };
}
