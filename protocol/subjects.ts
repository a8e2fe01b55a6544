/**
 * The one place that builds NATS subjects and JetStream stream and bucket names. Nothing else
 * concatenates them. Every name lives under one prefix (default `vb`), so several Vectorbus clusters,
 * or several test suites, can share one nats-server.
 */
import type { CollectionId, NodeId, ReplicaId, SegmentId } from "./ids.ts";
import { isValidNodeId } from "./ids.ts";

const TOKEN_RE = /^[A-Za-z0-9_-]+$/;

export function assertToken(kind: string, v: string): string {
  if (!TOKEN_RE.test(v)) throw new Error(`invalid ${kind} "${v}": use letters, digits, _ and - only`);
  return v;
}

export type RoleName = "querynode" | "datanode" | "proxy" | "rootcoord" | "datacoord" | "querycoord";

export class Subjects {
  readonly prefix: string;
  /** The stream / bucket name prefix: the subject prefix upper-cased, `-` turned into `_`. */
  readonly streamPrefix: string;

  constructor(prefix = "vb") {
    this.prefix = assertToken("subject prefix", prefix);
    this.streamPrefix = prefix.toUpperCase().replace(/-/g, "_");
  }

  // ---- actor addresses ----
  rootcoord(): string {
    return `${this.prefix}.rootcoord`;
  }
  datacoord(): string {
    return `${this.prefix}.datacoord`;
  }
  querycoord(): string {
    return `${this.prefix}.querycoord`;
  }
  /** Proxies subscribe here in one queue group, so several proxies share the load. */
  proxy(): string {
    return `${this.prefix}.proxy`;
  }
  proxyQueue(): string {
    return `${this.prefix}-proxy`;
  }
  datanode(node: NodeId): string {
    return `${this.prefix}.dn.${this.node(node)}`;
  }
  querynode(node: NodeId): string {
    return `${this.prefix}.qn.${this.node(node)}`;
  }
  /**
   * A shard delegator: one per (collection, vchannel, replica) on the querynode that leads the shard.
   * The node is part of the address, so a querynode cut off from the cluster while still running never
   * answers for the leader that replaced it on another node.
   */
  delegator(collection: CollectionId, vchannel: string, replica: ReplicaId, node: NodeId): string {
    return `${this.prefix}.dlg.${collection}.${assertToken("vchannel", vchannel)}.${replica}.${this.node(node)}`;
  }
  /** One wildcard for every delegator of a collection: a process subscribes once per kind. */
  delegatorKind(): string {
    return `${this.prefix}.dlg.>`;
  }
  segment(node: NodeId, segment: SegmentId): string {
    return `${this.prefix}.seg.${this.node(node)}.${segment}`;
  }
  /**
   * A delegator's growing segment: the rows of one partition it consumed that no sealed segment holds
   * yet (`vb.seg.<node>.g<replica>-<vchannel>-<partition>`), under the same wildcard as sealed ones.
   */
  growingSegment(node: NodeId, replica: ReplicaId, vchannel: string, partition: bigint): string {
    return `${this.prefix}.seg.${this.node(node)}.g${replica}-${assertToken("vchannel", vchannel)}-${partition < 0n ? `m${-partition}` : partition}`;
  }
  segmentKind(node: NodeId): string {
    return `${this.prefix}.seg.${this.node(node)}.*`;
  }
  /** A short-lived address for a CLI or a test: `vb.ctl.<id>`. */
  control(id: string): string {
    return `${this.prefix}.ctl.${assertToken("control id", id)}`;
  }

  // ---- DML channels ----
  dmlStream(pchannel: number): string {
    return `${this.streamPrefix}_DML_${pchannel}`;
  }
  dmlStreamSubjects(pchannel: number): string {
    return `${this.prefix}.dml.${pchannel}.*`;
  }
  dmlSubject(pchannel: number, vchannel: string): string {
    return `${this.prefix}.dml.${pchannel}.${assertToken("vchannel", vchannel)}`;
  }

  // ---- heartbeat and distribution feed ----
  distStream(): string {
    return `${this.streamPrefix}_DIST`;
  }
  distStreamSubjects(): string {
    return `${this.prefix}.dist.>`;
  }
  distSubject(role: RoleName, node: NodeId): string {
    return `${this.prefix}.dist.${role}.${this.node(node)}`;
  }
  /** The filter subject matching every node of one role on the feed: `vb.dist.querynode.*`. */
  distRoleSubjects(role: RoleName): string {
    return `${this.prefix}.dist.${role}.*`;
  }
  /**
   * One chunk of a node's numbered base distribution (a large node sends its segments apart and then
   * deltas against them): `vb.dist.querynode.<node>.base.<chunk>`.
   */
  distBaseSubject(role: RoleName, node: NodeId, chunk: number): string {
    return `${this.prefix}.dist.${role}.${this.node(node)}.base.${chunk}`;
  }
  /** Every message of one role on the feed, base chunks included: `vb.dist.querynode.>`. */
  distRoleAllSubjects(role: RoleName): string {
    return `${this.prefix}.dist.${role}.>`;
  }

  // ---- events ----
  eventsStream(): string {
    return `${this.streamPrefix}_EVENTS`;
  }
  eventsStreamSubjects(): string {
    return `${this.prefix}.events.>`;
  }
  eventSubject(kind: string): string {
    return `${this.prefix}.events.${assertToken("event kind", kind)}`;
  }

  // ---- KV buckets ----
  bucket(name: string): string {
    return `${this.streamPrefix}_${assertToken("bucket", name)}`;
  }
  leaseBucket(role: string): string {
    return `${this.streamPrefix}_lease_${assertToken("role", role)}`;
  }

  private node(node: NodeId): string {
    if (!isValidNodeId(node)) throw new Error(`invalid node id "${node}": use letters, digits, _ and - only`);
    return node;
  }
}
