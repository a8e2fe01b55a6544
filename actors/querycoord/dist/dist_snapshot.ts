/**
 * The distribution as the checkers see it: what the alive querynodes last reported, indexed by
 * collection. Built from plain `QueryNodeDist` values, so checkers stay pure functions that unit tests
 * feed by hand; DistManager keeps one up to date node by node (`put`, `remove`) as the feed brings
 * changes, and checkers only read it.
 */
import { sameDistSegment, type DistSegment, type QueryNodeDist } from "../../../protocol/messages/querynode.ts";
import type { SegmentsChange } from "./dist_feed.ts";

export type { DistSegment };
export type DistDelegator = QueryNodeDist["delegators"][number];

export interface SegmentCopy extends DistSegment {
  nodeId: string;
}

export interface DelegatorView extends DistDelegator {
  nodeId: string;
}

/** What the copies of many segments share: their collection, partition, channel and loaded indexes. */
interface CopyShape {
  readonly collectionId: bigint;
  readonly partitionId: bigint;
  readonly vchannel: string;
  readonly indexIds: bigint[];
}

/**
 * A copy as querycoord's thread holds what the feed hands it: its segment, node, rows and memory, and a
 * shape shared with the other copies of the same collection, partition, channel and indexes (five
 * fields, 64 bytes, rather than eight; for a million segments in two replicas some 50 MB less). The
 * segment's id is the one its other copies hold (`DistSnapshot` shares it).
 */
export class HeldCopy implements SegmentCopy {
  constructor(
    public segmentId: bigint,
    readonly nodeId: string,
    readonly rows: number,
    readonly memoryBytes: number,
    private readonly shape: CopyShape,
  ) {}

  get collectionId(): bigint {
    return this.shape.collectionId;
  }

  get partitionId(): bigint {
    return this.shape.partitionId;
  }

  get vchannel(): string {
    return this.shape.vchannel;
  }

  get indexIds(): bigint[] {
    return this.shape.indexIds;
  }

  /** (as a plain record, for what looks at own fields: a log line, a message) */
  toJSON(): SegmentCopy {
    const { segmentId, nodeId, rows, memoryBytes, collectionId, partitionId, vchannel, indexIds } = this;
    return { segmentId, collectionId, partitionId, vchannel, rows, memoryBytes, indexIds, nodeId };
  }
}

/** One shape for each (collection, partition, channel, indexes) the copies have; bounded as `Interner` is. */
export class CopyShapes {
  private readonly shapes = new Map<string, CopyShape>();

  constructor(private readonly max = 100_000) {}

  /** The record as a copy on `nodeId` (its values as they are: intern them before). */
  copy(s: DistSegment, nodeId: string): HeldCopy {
    const indexIds = s.indexIds ?? [];
    const key = `${s.collectionId}/${s.partitionId}/${s.vchannel}/${indexIds.length === 0 ? "" : indexIds.join(",")}`;
    let shape = this.shapes.get(key);
    if (!shape) {
      shape = { collectionId: s.collectionId, partitionId: s.partitionId, vchannel: s.vchannel, indexIds };
      if (this.shapes.size < this.max) this.shapes.set(key, shape);
    }
    return new HeldCopy(s.segmentId, nodeId, s.rows, s.memoryBytes, shape);
  }
}

/**
 * A segment's copy on a node: the node's own record, marked with its node (no second object per copy,
 * which for a million segments in two replicas is two million objects fewer); a record already marked
 * for another node (a test reusing one) is copied.
 */
function copyOf(s: DistSegment, nodeId: string): SegmentCopy {
  const c = s as SegmentCopy;
  if (c.nodeId === undefined) {
    c.nodeId = nodeId;
    c.indexIds ??= [];
    return c;
  }
  return c.nodeId === nodeId ? c : { ...(s instanceof HeldCopy ? s.toJSON() : s), indexIds: s.indexIds ?? [], nodeId };
}

/** Same segments in the same order, with the same rows, memory and indexes (field by field: no lookups). */
function sameSegments(a: readonly DistSegment[], b: readonly DistSegment[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i]!.segmentId !== b[i]!.segmentId || !sameDistSegment(a[i]!, b[i]!)) return false;
  return true;
}

/** How many changes a collection's log holds before it starts over (its readers then look at everything). */
const MAX_CHANGE_LOG = 1 << 18;

/** A position in a collection's change log (DistSnapshot.changeCursor). */
export interface ChangeCursor {
  epoch: number;
  at: number;
}

export class DistSnapshot {
  /** alive querynodes by id */
  readonly nodes: ReadonlyMap<string, QueryNodeDist>;
  private readonly byNode = new Map<string, QueryNodeDist>();
  private readonly segments = new Map<bigint, Map<bigint, SegmentCopy[]>>();
  private readonly delegators = new Map<bigint, DelegatorView[]>();
  private readonly loadFailures = new Map<string, string>();
  private readonly indexLoads = new Map<string, { state: "loading" | "failed"; reason?: string }>();
  /**
   * Per collection, the ids of the segments whose copies changed, in order (a segment may be listed more
   * than once): a checker that remembers what it found looks again at these only (`changesSince`). A
   * log that grows past its bound starts over in a new epoch, and whoever held a cursor of the old one
   * looks at everything again.
   */
  private readonly changeLog = new Map<bigint, { epoch: number; ids: bigint[] }>();
  private epochs = 0;

  constructor(
    alive: Iterable<QueryNodeDist>,
    /**
     * The id object a segment already has elsewhere (querycoord's targets), when it has one: a segment's
     * copies hold that one instead of the one each message decodes (24 bytes a segment).
     */
    private readonly sharedId?: (collectionId: bigint, segmentId: bigint) => bigint | undefined,
  ) {
    this.nodes = this.byNode;
    for (const d of alive) this.put(d);
  }

  /**
   * Takes a node's newest distribution in place of what it had (DistManager keeps one snapshot up to
   * date this way instead of rebuilding it every round). A segment list that is the same array as
   * before (the feed hands an unchanged one on as it was) is not indexed again: a heartbeat that
   * changes nothing costs the node's delegators only. `change` tells how the segments differ from the
   * list it was computed from (the feed's DistAssembler): when that is the list held, only what it names
   * is indexed again.
   */
  put(d: QueryNodeDist, change?: SegmentsChange): void {
    const prev = this.byNode.get(d.nodeId);
    if (prev && change && change.from === prev.segments) {
      this.byNode.set(d.nodeId, d);
      this.applyChange(d.nodeId, change);
    } else {
      // a whole list equal to the one before (a small node's heartbeat) is taken as the same list
      if (prev && prev.segments !== d.segments && sameSegments(prev.segments, d.segments)) d = { ...d, segments: prev.segments };
      this.byNode.set(d.nodeId, d);
      if (prev?.segments !== d.segments) {
        if (prev) this.replaceSegments(prev, d);
        else for (const s of d.segments) this.addCopy(s, d.nodeId);
      }
    }
    if (prev) this.dropDelegators(prev);
    for (const g of d.delegators) {
      let list = this.delegators.get(g.collectionId);
      if (!list) this.delegators.set(g.collectionId, (list = []));
      list.push({ ...g, nodeId: d.nodeId });
    }
    if (prev?.loading !== d.loading) {
      if (prev) this.dropLoading(prev);
      for (const l of d.loading ?? []) {
        if (l.indexId !== undefined) {
          this.indexLoads.set(`${d.nodeId}/${l.segmentId}/${l.indexId}`, { state: l.state, ...(l.reason === undefined ? {} : { reason: l.reason }) });
        } else if (l.state === "failed" && l.reason) {
          this.loadFailures.set(`${d.nodeId}/${l.segmentId}`, l.reason);
        }
      }
    }
  }

  /** Forgets a node (it went down). */
  remove(nodeId: string): void {
    const prev = this.byNode.get(nodeId);
    if (!prev) return;
    this.byNode.delete(nodeId);
    this.dropSegments(prev);
    this.dropDelegators(prev);
    this.dropLoading(prev);
  }

  private addCopy(s: DistSegment, nodeId: string): void {
    let bySeg = this.segments.get(s.collectionId);
    if (!bySeg) this.segments.set(s.collectionId, (bySeg = new Map()));
    // a new list of the exact size (concat; push and spread leave 17 places for 2 copies): 72 bytes rather than 192 a segment
    const copies = bySeg.get(s.segmentId);
    const c = copyOf(s, nodeId);
    // one id object for all its copies (24 bytes a copy)
    if (copies) c.segmentId = copies[0]!.segmentId;
    else c.segmentId = this.sharedId?.(s.collectionId, s.segmentId) ?? c.segmentId;
    bySeg.set(s.segmentId, copies ? copies.concat([c]) : [c]);
    this.logChange(s.collectionId, s.segmentId);
  }

  private dropCopy(s: DistSegment, nodeId: string): void {
    const bySeg = this.segments.get(s.collectionId);
    const copies = bySeg?.get(s.segmentId);
    if (!bySeg || !copies) return;
    const i = copies.findIndex((c) => c.nodeId === nodeId);
    if (i < 0) return;
    this.logChange(s.collectionId, s.segmentId);
    if (copies.length === 1) {
      bySeg.delete(s.segmentId);
      if (bySeg.size === 0) this.segments.delete(s.collectionId);
    } else {
      bySeg.set(s.segmentId, copies.toSpliced(i, 1));
    }
  }

  /**
   * A node's new segment list in place of its old one, by difference: a record that is the same object
   * as before (the feed hands a large node's unchanged records on as they were) costs a set lookup, and
   * only the copies that came, went or changed are indexed again and logged.
   */
  private replaceSegments(prev: QueryNodeDist, d: QueryNodeDist): void {
    const before = new Set(prev.segments);
    const after = new Set(d.segments);
    const gone = new Map<bigint, DistSegment>();
    for (const s of prev.segments) if (!after.has(s)) gone.set(s.segmentId, s);
    for (const s of d.segments) {
      if (!before.has(s)) this.takeRecord(gone, s, d.nodeId);
    }
    for (const s of gone.values()) this.dropCopy(s, d.nodeId);
  }

  /** A node's segments changed as `change` tells (records that went, records that came). */
  private applyChange(nodeId: string, change: SegmentsChange): void {
    const gone = new Map<bigint, DistSegment>();
    for (const s of change.removed) gone.set(s.segmentId, s);
    for (const s of change.added) this.takeRecord(gone, s, nodeId);
    for (const s of gone.values()) this.dropCopy(s, nodeId);
  }

  /**
   * A record that came for the node: the same copy as one that went (`gone`, by segment) is swapped in
   * place (and logged when it changed), any other is a new copy.
   */
  private takeRecord(gone: Map<bigint, DistSegment>, s: DistSegment, nodeId: string): void {
    const old = gone.get(s.segmentId);
    if (old && old.collectionId === s.collectionId) {
      gone.delete(s.segmentId);
      const bySeg = this.segments.get(s.collectionId);
      const copies = bySeg?.get(s.segmentId);
      const i = copies ? copies.findIndex((c) => c.nodeId === nodeId) : -1;
      if (bySeg && copies && i >= 0) {
        // lists are replaced, never changed (as addCopy and dropCopy do)
        const c = copyOf(s, nodeId);
        c.segmentId = copies[i]!.segmentId;
        bySeg.set(s.segmentId, copies.with(i, c));
        if (!sameDistSegment(old, s)) this.logChange(s.collectionId, s.segmentId);
        return;
      }
    }
    this.addCopy(s, nodeId);
  }

  private dropSegments(d: QueryNodeDist): void {
    for (const s of d.segments) this.dropCopy(s, d.nodeId);
  }

  private dropDelegators(d: QueryNodeDist): void {
    for (const collectionId of new Set(d.delegators.map((g) => g.collectionId))) {
      const list = this.delegators.get(collectionId);
      if (!list) continue;
      const kept = list.filter((g) => g.nodeId !== d.nodeId);
      if (kept.length > 0) this.delegators.set(collectionId, kept);
      else this.delegators.delete(collectionId);
    }
  }

  private dropLoading(d: QueryNodeDist): void {
    for (const l of d.loading ?? []) {
      if (l.indexId !== undefined) this.indexLoads.delete(`${d.nodeId}/${l.segmentId}/${l.indexId}`);
      else this.loadFailures.delete(`${d.nodeId}/${l.segmentId}`);
    }
  }

  private logChange(collectionId: bigint, segmentId: bigint): void {
    let log = this.changeLog.get(collectionId);
    if (!log || log.ids.length >= MAX_CHANGE_LOG) this.changeLog.set(collectionId, (log = { epoch: ++this.epochs, ids: [] }));
    log.ids.push(segmentId);
  }

  /** Where the collection's change log stands now: hand it to `changesSince` later. */
  changeCursor(collectionId: bigint): ChangeCursor {
    let log = this.changeLog.get(collectionId);
    if (!log) this.changeLog.set(collectionId, (log = { epoch: ++this.epochs, ids: [] }));
    return { epoch: log.epoch, at: log.ids.length };
  }

  /**
   * The segments of the collection whose copies changed since `cursor` (possibly repeated), or undefined
   * when the log no longer reaches back that far (look at everything again).
   */
  changesSince(collectionId: bigint, cursor: ChangeCursor): readonly bigint[] | undefined {
    const log = this.changeLog.get(collectionId);
    return log && cursor.epoch === log.epoch ? log.ids.slice(cursor.at) : undefined;
  }

  isAlive(nodeId: string): boolean {
    return this.nodes.has(nodeId);
  }

  /** The node is draining before it stops: it serves what it holds until that is elsewhere, takes nothing new. */
  isStopping(nodeId: string): boolean {
    return this.nodes.get(nodeId)?.stopping === true;
  }

  /** Every collection something of which is on an alive querynode. */
  collectionIds(): Set<bigint> {
    return new Set([...this.segments.keys(), ...this.delegators.keys()]);
  }

  /** Segment → its copies on alive querynodes, for one collection. */
  segmentsOf(collectionId: bigint): ReadonlyMap<bigint, SegmentCopy[]> {
    return this.segments.get(collectionId) ?? new Map();
  }

  copies(collectionId: bigint, segmentId: bigint): SegmentCopy[] {
    return this.segments.get(collectionId)?.get(segmentId) ?? [];
  }

  hasSegment(nodeId: string, collectionId: bigint, segmentId: bigint): boolean {
    return this.copies(collectionId, segmentId).some((c) => c.nodeId === nodeId);
  }

  delegatorsOf(collectionId: bigint): DelegatorView[] {
    return this.delegators.get(collectionId) ?? [];
  }

  delegatorsFor(collectionId: bigint, vchannel: string, replicaId: bigint): DelegatorView[] {
    return this.delegatorsOf(collectionId).filter((d) => d.vchannel === vchannel && d.replicaId === replicaId);
  }

  delegatorOn(nodeId: string, collectionId: bigint, vchannel: string, replicaId: bigint): DelegatorView | undefined {
    return this.delegatorsOf(collectionId).find((d) => d.nodeId === nodeId && d.vchannel === vchannel && d.replicaId === replicaId);
  }

  /** The collection's segments the alive nodes among `nodeIds` hold (read from the nodes' own lists). */
  segmentIdsOn(nodeIds: Iterable<string>, collectionId: bigint): bigint[] {
    const out: bigint[] = [];
    for (const n of nodeIds) for (const s of this.byNode.get(n)?.segments ?? []) if (s.collectionId === collectionId) out.push(s.segmentId);
    return out;
  }

  /** Whether `nodeId` holds anything of the collection (read from the node's own lists). */
  holdsCollection(nodeId: string, collectionId: bigint): boolean {
    const d = this.byNode.get(nodeId);
    return d !== undefined && (d.delegators.some((g) => g.collectionId === collectionId) || d.segments.some((s) => s.collectionId === collectionId));
  }

  /** Why a querynode says it could not load a segment's index, when it says so. */
  indexLoadFailure(nodeId: string, segmentId: bigint, indexId: bigint): string | undefined {
    const l = this.indexLoads.get(`${nodeId}/${segmentId}/${indexId}`);
    return l?.state === "failed" ? (l.reason ?? "failed") : undefined;
  }

  /** Whether a querynode says it is loading a segment's index. */
  indexLoading(nodeId: string, segmentId: bigint, indexId: bigint): boolean {
    return this.indexLoads.get(`${nodeId}/${segmentId}/${indexId}`)?.state === "loading";
  }

  /** How many refused loads the querynodes report (0: none to look up). */
  get loadFailureCount(): number {
    return this.loadFailures.size;
  }

  /** The segments some querynode says it could not load. */
  segmentsWithLoadFailures(): Set<bigint> {
    const out = new Set<bigint>();
    for (const key of this.loadFailures.keys()) out.add(BigInt(key.slice(key.lastIndexOf("/") + 1)));
    return out;
  }

  /** Why a querynode says it could not load a segment, when it says so. */
  loadFailure(nodeId: string, segmentId: bigint): string | undefined {
    return this.loadFailures.get(`${nodeId}/${segmentId}`);
  }
}

/**
 * What a reader of the change log keeps per snapshot and name (a collection, a replica): a state derived
 * from the collection's copies under `key` (the targets, indexes, ... it was derived under) and `nodes`
 * (the nodes whose copies count, each perhaps with a mark: `"qn7 stopping"`). `get` builds it afresh
 * when there is none, the key changed or the log no longer reaches back, and otherwise hands `update` the
 * segments changed since the last `get`, with the collection's segments on every node that came into
 * `nodes`, left it or changed its mark (a node that died is not among them: its copies went, and the
 * log names them). So 50 nodes joining the replicas cost what they hold, not a walk of every segment.
 */
export class ChangeMemo<T> {
  private readonly bySnapshot = new WeakMap<DistSnapshot, Map<string, { key: string; nodes: string; cursor: ChangeCursor; state: T }>>();

  get(
    dist: DistSnapshot,
    collectionId: bigint,
    name: string,
    key: string,
    build: () => T,
    update: (state: T, changed: readonly bigint[]) => void,
    nodes: readonly string[] = [],
  ): T {
    let memos = this.bySnapshot.get(dist);
    if (!memos) this.bySnapshot.set(dist, (memos = new Map()));
    const cursor = dist.changeCursor(collectionId);
    const m = memos.get(name);
    const nodesKey = nodes.join(",");
    let changed = m?.key === key ? dist.changesSince(collectionId, m.cursor) : undefined;
    if (!m || !changed) {
      const state = build();
      memos.set(name, { key, nodes: nodesKey, cursor, state });
      return state;
    }
    if (m.nodes !== nodesKey) {
      const was = new Set(m.nodes === "" ? [] : m.nodes.split(","));
      const now = new Set(nodes);
      const moved = new Set<string>();
      for (const n of was) if (!now.has(n)) moved.add(n.split(" ")[0]!);
      for (const n of now) if (!was.has(n)) moved.add(n.split(" ")[0]!);
      changed = [...changed, ...dist.segmentIdsOn(moved, collectionId)];
      m.nodes = nodesKey;
    }
    update(m.state, changed);
    m.cursor = cursor;
    return m.state;
  }
}
