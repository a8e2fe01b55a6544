/**
 * DistManager + NodeManager (Milvus's querycoordv2/meta/dist_manager.go and session/node_manager.go),
 * both fed by the `VB_DIST` feed: the last message of each querynode is its distribution (segments,
 * delegators, loads in progress) and its heartbeat (resources). A querynode whose last message is older
 * than `heartbeatAvailableMs` is down: its distribution no longer counts. querycoord probes a node whose
 * heartbeat is late: an answer keeps it up (its process holds it; the feed is what is slow), "no
 * responders" marks it down at once (its process is gone), before the heartbeat budget runs out.
 *
 * Silence is measured on the feed's own clock: a message's time is when the server stored it, and "now"
 * is the time of the feed querycoord has read up to (its clock less how far behind the feed it reads,
 * `lagMs`). A querycoord that falls behind its feed (a burst of loads, a long round) therefore does not
 * take the nodes whose heartbeats wait unread for dead; and the server's clock and querycoord's need
 * not agree.
 */
import type { QueryNodeDist } from "../../../protocol/messages/querynode.ts";
import type { QueryNodeStatus } from "../../../protocol/messages/querycoord.ts";
import type { SegmentsChange } from "./dist_feed.ts";
import { DistSnapshot } from "./dist_snapshot.ts";

/** What DistManager reads of the feed's pulse (runtime/feed_pulse.ts). */
export interface DistPulse {
  /** when the server stored the node's newest head (ms, server clock; 0: not heard) */
  heardAt(nodeId: string): number;
  lagMs(): number;
  /** heads read since it started */
  messages(): number;
  /** whether its worker still follows the feed (a stopped pulse's times only get older) */
  alive(): boolean;
}

interface NodeEntry {
  dist: QueryNodeDist;
  /** when the message `dist` came in, its last one taken, was stored (ms since the epoch, the server's clock) */
  lastSeen: number;
  /** when a probe of its address was last answered (on the feed's clock) */
  probedAt: number;
  /** when a probe found nobody at its address (0: never; on the feed's clock); a later heartbeat brings it back */
  goneAt: number;
}

export class DistManager {
  private readonly nodes = new Map<string, NodeEntry>();
  private alive = new Set<string>();
  private version = 0;
  /** per node, the `version` at which what the snapshot holds of it last changed */
  private readonly revisions = new Map<string, number>();
  /** the alive nodes' distribution, kept up to date node by node */
  private readonly index: DistSnapshot;

  constructor(
    private readonly heartbeatAvailableMs: number,
    /** the id object a segment already has elsewhere (DistSnapshot's `sharedId`) */
    sharedId?: (collectionId: bigint, segmentId: bigint) => bigint | undefined,
  ) {
    this.index = new DistSnapshot([], sharedId);
  }

  /**
   * How far behind the feed querycoord reads: the local time a live message was taken less the time the
   * server stored it (also the difference of the two clocks). The newest message's sets it.
   */
  private lag = 0;

  /**
   * Takes a querynode's newest message, stored by the server at `storedAt`; `takenAt` (local time) is given
   * for a live message, not for one of the feed's initial snapshot (whose age is not a lag); `change`,
   * how its segments differ from the node's list before (DistSnapshot.put). Returns false for one older
   * than what it holds.
   */
  update(dist: QueryNodeDist, storedAt: number, takenAt?: number, change?: SegmentsChange, heard = 1): boolean {
    this.heard += heard;
    if (takenAt !== undefined) this.lag = takenAt - storedAt;
    const prev = this.nodes.get(dist.nodeId);
    if (prev && prev.lastSeen > storedAt) return false;
    this.nodes.set(dist.nodeId, { dist, lastSeen: storedAt, probedAt: prev?.probedAt ?? 0, goneAt: prev && prev.goneAt > storedAt ? prev.goneAt : 0 });
    if (this.alive.has(dist.nodeId)) this.index.put(dist, change);
    this.revisions.set(dist.nodeId, ++this.version);
    return true;
  }

  /**
   * How long querycoord itself could not hear the feed lately (its last reconcile round, during which
   * no message was taken): a node's silence counts only beyond it, so that a coordinator slowed by its own
   * work does not take nodes for down because it was not listening (a gone process is still found at
   * once by a probe that meets no responders).
   */
  private deafMs = 0;

  /** How far behind the feed querycoord reads (ms; as of the last live message taken). */
  get lagMs(): number {
    return Math.max(0, this.lag);
  }

  /** A local time on the feed's clock: the time of the feed read up to then. */
  private feedTime(now: number): number {
    return now - this.lag;
  }

  /**
   * The feed's pulse (runtime/feed_pulse.ts): when the server last stored each node's head, read on a
   * thread of its own, and how far behind it reads. A node is silent only as long as both the content
   * querycoord took and the pulse say so.
   */
  private pulse: DistPulse | undefined;

  setPulse(pulse: DistPulse | undefined): void {
    this.pulse = pulse;
  }

  /** Whether the pulse runs, its lag and the heads it read (zeros without a pulse). */
  pulseStats(): { running: boolean; lagMs: number; messages: number } {
    return { running: this.pulse?.alive() ?? false, lagMs: this.pulse?.lagMs() ?? 0, messages: this.pulse?.messages() ?? 0 };
  }

  /**
   * How long the node has been silent at local time `now`, on the feed's clock (a probe answered counts
   * as speaking unless `heardOnly`); `heard` is the pulse's time for it.
   */
  private silence(e: NodeEntry, now: number, heard: number, heardOnly = false): number {
    const s = this.feedTime(now) - (heardOnly ? e.lastSeen : Math.max(e.lastSeen, e.probedAt));
    return heard > 0 ? Math.min(s, now - this.pulse!.lagMs() - heard) : s;
  }

  private heardAt(e: NodeEntry): number {
    return this.pulse?.heardAt(e.dist.nodeId) ?? 0;
  }

  private isUp(e: NodeEntry, now: number, heard = this.heardAt(e)): boolean {
    if (e.goneAt > 0 && heard <= e.goneAt) return false;
    return this.silence(e, now, heard) <= this.heartbeatAvailableMs + this.deafMs;
  }

  /** Alive querynodes whose heartbeat is later than `lateMs` (on the feed's clock): the ones to probe. */
  late(now: number, lateMs: number): string[] {
    const out: string[] = [];
    for (const [id, e] of this.nodes) {
      const heard = this.heardAt(e);
      if (this.silence(e, now, heard, true) > lateMs && this.isUp(e, now, heard)) out.push(id);
    }
    return out;
  }

  /** A probe of the node's address was answered at `at` (local time): its process holds it. */
  probed(nodeId: string, at: number): void {
    const e = this.nodes.get(nodeId);
    if (e && e.goneAt === 0) e.probedAt = Math.max(e.probedAt, this.feedTime(at));
  }

  /** A probe sent at `sentAt` (local time) found nobody at the node's address: down now, unless it spoke since. */
  gone(nodeId: string, sentAt: number): void {
    const e = this.nodes.get(nodeId);
    const t = this.feedTime(sentAt);
    if (e && e.lastSeen < t) {
      e.goneAt = t;
      this.version++;
    }
  }

  /** When the server stored the node's distribution querycoord holds (ms, server clock; 0: none). */
  distAt(nodeId: string): number {
    return this.nodes.get(nodeId)?.lastSeen ?? 0;
  }

  /** Changes whenever what the snapshot holds of the node changes (a distribution taken, down, up). */
  revision(nodeId: string): number {
    return this.revisions.get(nodeId) ?? 0;
  }

  /** Bumped by every update: a cheap "did anything change" for callers. */
  get changes(): number {
    return this.version;
  }

  /** Distributions read from the feed (one update may stand for several of a node, merged on the feed's thread). */
  get taken(): number {
    return this.heard;
  }
  private heard = 0;

  get(nodeId: string): QueryNodeDist | undefined {
    return this.nodes.get(nodeId)?.dist;
  }

  /**
   * Recomputes which querynodes are alive. Returns the ones that went down and came up since the last
   * call.
   */
  refreshLiveness(now: number, deafMs = 0): { down: string[]; up: string[] } {
    this.deafMs = Math.max(0, deafMs);
    const alive = new Set<string>();
    for (const [id, e] of this.nodes) if (this.isUp(e, now)) alive.add(id);
    const down = [...this.alive].filter((id) => !alive.has(id));
    const up = [...alive].filter((id) => !this.alive.has(id));
    this.alive = alive;
    for (const id of down) {
      this.index.remove(id);
      this.revisions.set(id, ++this.version);
    }
    for (const id of up) {
      this.index.put(this.nodes.get(id)!.dist);
      this.revisions.set(id, ++this.version);
    }
    return { down, up };
  }

  /** The querynodes alive at `now`, computed afresh (for decisions between rounds; changes nothing). */
  aliveAt(now: number): string[] {
    return [...this.nodes].filter(([, e]) => this.isUp(e, now)).map(([id]) => id).sort();
  }

  isAlive(nodeId: string): boolean {
    return this.alive.has(nodeId);
  }

  aliveNodes(): string[] {
    return [...this.alive].sort();
  }

  /**
   * The distribution of the alive querynodes (as of the last `refreshLiveness`, with every message
   * since): one snapshot kept up to date, not a copy; read it, never keep it across mailbox turns
   * expecting it to stay as it was.
   */
  snapshot(): DistSnapshot {
    return this.index;
  }

  /** Every querynode ever heard of, alive or not, for `vbus status`. */
  statuses(): QueryNodeStatus[] {
    return [...this.nodes.values()]
      .map(({ dist, lastSeen }) => {
        const alive = this.alive.has(dist.nodeId);
        const heard = Math.max(lastSeen, this.pulse?.heardAt(dist.nodeId) ?? 0);
        // a node that is down holds nothing: what it last reported is gone with it
        return {
          nodeId: dist.nodeId,
          alive,
          state: alive ? (dist.stopping ? "stopping" : "up") : "down",
          lastHeartbeatMs: heard,
          memoryBytes: alive ? dist.memoryBytes : 0,
          memoryLimitBytes: dist.memoryLimitBytes,
          rows: alive ? dist.rows : 0,
          segments: alive ? dist.segments.length : 0,
          delegators: alive ? dist.delegators.length : 0,
        } satisfies QueryNodeStatus;
      })
      .sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
  }
}
