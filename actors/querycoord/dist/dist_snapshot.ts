/**
 * The distribution as the checkers see it: what the alive querynodes last reported, indexed by
 * collection. Immutable and built from plain `QueryNodeDist` values, so checkers stay pure functions
 * that unit tests feed by hand.
 */
import type { QueryNodeDist } from "../../../protocol/messages/querynode.ts";

export type DistSegment = QueryNodeDist["segments"][number];
export type DistDelegator = QueryNodeDist["delegators"][number];

export interface SegmentCopy extends DistSegment {
  nodeId: string;
}

export interface DelegatorView extends DistDelegator {
  nodeId: string;
}

export class DistSnapshot {
  /** alive querynodes by id */
  readonly nodes: ReadonlyMap<string, QueryNodeDist>;
  private readonly segments = new Map<bigint, Map<bigint, SegmentCopy[]>>();
  private readonly delegators = new Map<bigint, DelegatorView[]>();
  private readonly loadFailures = new Map<string, string>();
  private readonly indexLoads = new Map<string, { state: "loading" | "failed"; reason?: string }>();

  constructor(alive: Iterable<QueryNodeDist>) {
    const nodes = new Map<string, QueryNodeDist>();
    for (const d of alive) {
      nodes.set(d.nodeId, d);
      for (const s of d.segments) {
        let bySeg = this.segments.get(s.collectionId);
        if (!bySeg) this.segments.set(s.collectionId, (bySeg = new Map()));
        let copies = bySeg.get(s.segmentId);
        if (!copies) bySeg.set(s.segmentId, (copies = []));
        copies.push({ ...s, indexIds: s.indexIds ?? [], nodeId: d.nodeId });
      }
      for (const g of d.delegators) {
        let list = this.delegators.get(g.collectionId);
        if (!list) this.delegators.set(g.collectionId, (list = []));
        list.push({ ...g, nodeId: d.nodeId });
      }
      for (const l of d.loading ?? []) {
        if (l.indexId !== undefined) {
          this.indexLoads.set(`${d.nodeId}/${l.segmentId}/${l.indexId}`, { state: l.state, ...(l.reason === undefined ? {} : { reason: l.reason }) });
        } else if (l.state === "failed" && l.reason) {
          this.loadFailures.set(`${d.nodeId}/${l.segmentId}`, l.reason);
        }
      }
    }
    this.nodes = nodes;
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

  /** Whether `nodeId` holds anything of the collection. */
  holdsCollection(nodeId: string, collectionId: bigint): boolean {
    return (
      this.delegatorsOf(collectionId).some((d) => d.nodeId === nodeId) ||
      [...this.segmentsOf(collectionId).values()].some((cs) => cs.some((c) => c.nodeId === nodeId))
    );
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

  /** Why a querynode says it could not load a segment, when it says so. */
  loadFailure(nodeId: string, segmentId: bigint): string | undefined {
    return this.loadFailures.get(`${nodeId}/${segmentId}`);
  }
}
