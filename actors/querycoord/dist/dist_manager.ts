/**
 * DistManager + NodeManager (Milvus's querycoordv2/meta/dist_manager.go and session/node_manager.go),
 * both fed by the `VB_DIST` feed: the last message of each querynode is its distribution (segments,
 * delegators, loads in progress) and its heartbeat (resources). A querynode whose last message is older
 * than `heartbeatAvailableMs` is down: its distribution no longer counts.
 */
import type { QueryNodeDist } from "../../../protocol/messages/querynode.ts";
import type { QueryNodeStatus } from "../../../protocol/messages/querycoord.ts";
import { DistSnapshot } from "./dist_snapshot.ts";

interface NodeEntry {
  dist: QueryNodeDist;
  /** when its last message was stored (ms since the epoch) */
  lastSeen: number;
}

export class DistManager {
  private readonly nodes = new Map<string, NodeEntry>();
  private alive = new Set<string>();
  private version = 0;

  constructor(private readonly heartbeatAvailableMs: number) {}

  /** Takes a querynode's newest message. Returns false for one older than what it holds. */
  update(dist: QueryNodeDist, seenAt: number): boolean {
    const prev = this.nodes.get(dist.nodeId);
    if (prev && prev.lastSeen > seenAt) return false;
    this.nodes.set(dist.nodeId, { dist, lastSeen: seenAt });
    this.version++;
    return true;
  }

  /** Bumped by every update: a cheap "did anything change" for callers. */
  get changes(): number {
    return this.version;
  }

  get(nodeId: string): QueryNodeDist | undefined {
    return this.nodes.get(nodeId)?.dist;
  }

  /**
   * Recomputes which querynodes are alive. Returns the ones that went down and came up since the last
   * call.
   */
  refreshLiveness(now: number): { down: string[]; up: string[] } {
    const alive = new Set<string>();
    for (const [id, e] of this.nodes) if (now - e.lastSeen <= this.heartbeatAvailableMs) alive.add(id);
    const down = [...this.alive].filter((id) => !alive.has(id));
    const up = [...alive].filter((id) => !this.alive.has(id));
    this.alive = alive;
    return { down, up };
  }

  /** The querynodes alive at `now`, computed afresh (for decisions between rounds; changes nothing). */
  aliveAt(now: number): string[] {
    return [...this.nodes].filter(([, e]) => now - e.lastSeen <= this.heartbeatAvailableMs).map(([id]) => id).sort();
  }

  isAlive(nodeId: string): boolean {
    return this.alive.has(nodeId);
  }

  aliveNodes(): string[] {
    return [...this.alive].sort();
  }

  /** The distribution of the alive querynodes. */
  snapshot(): DistSnapshot {
    return new DistSnapshot([...this.alive].map((id) => this.nodes.get(id)!.dist));
  }

  /** Every querynode ever heard of, alive or not, for `vbus status`. */
  statuses(): QueryNodeStatus[] {
    return [...this.nodes.values()]
      .map(({ dist, lastSeen }) => ({
        nodeId: dist.nodeId,
        alive: this.alive.has(dist.nodeId),
        lastHeartbeatMs: lastSeen,
        memoryBytes: dist.memoryBytes,
        memoryLimitBytes: dist.memoryLimitBytes,
        rows: dist.rows,
        segments: dist.segments.length,
        delegators: dist.delegators.length,
      }))
      .sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
  }
}
