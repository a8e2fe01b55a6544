/**
 * vchannel → datanode assignment and the datanodes datacoord knows of.
 *
 * Every vchannel of a live collection has a record in the KV bucket `channel_watch` (key: the vchannel,
 * value `{collectionId, vchannel, pchannel, nodeId?}`). A datanode is alive while its last heartbeat (or
 * GetChannelWatches) is younger than `heartbeatAvailableMs`; the vchannels of a datanode that is not are
 * given to the least-loaded live one. Each datanode also has a session (a fresh id per process start):
 * reports from an older session of a node are refused, so a replaced datanode cannot change segments
 * behind its successor's back.
 *
 * The planning (`planAssignments`) is a pure function of the records and the live nodes.
 */
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import type { KvMeta } from "../../runtime/kv_meta.ts";

export const CHANNEL_WATCH_BUCKET = "channel_watch";

export interface ChannelRecord {
  collectionId: bigint;
  vchannel: string;
  pchannel: number;
  /** the datanode watching it; absent while no datanode is alive */
  nodeId?: string;
}

export interface NodeInfo {
  nodeId: string;
  /** when it was last heard of (ms since the epoch, datacoord's clock) */
  lastSeen: number;
  /** its current session; reports from any other are refused */
  session?: string;
  /** the vchannels its last heartbeat said it watches */
  reported: Set<string>;
  /** when datacoord last told it something about a vchannel (`watch:<v>`, `unwatch:<v>`, `flush:<v>`) */
  sentAt: Map<string, number>;
  /** the session that said it was leaving (DatanodeLeaving): heartbeats still on their way from it do not bring it back */
  leftSession?: string;
}

/**
 * Which node takes each vchannel that needs one: the least loaded live node (by vchannels held), ties by
 * node id. `needs` is in the order they should be placed.
 */
export function planAssignments(needs: readonly string[], load: ReadonlyMap<string, number>): Map<string, string> {
  const counts = new Map(load);
  const out = new Map<string, string>();
  if (counts.size === 0) return out;
  for (const v of needs) {
    let best: string | undefined;
    let bestLoad = Infinity;
    for (const [node, n] of counts) {
      if (n < bestLoad || (n === bestLoad && best !== undefined && node < best)) {
        best = node;
        bestLoad = n;
      }
    }
    out.set(v, best!);
    counts.set(best!, bestLoad + 1);
  }
  return out;
}

export class ChannelManager {
  private readonly records = new Map<string, ChannelRecord>();
  readonly nodes = new Map<string, NodeInfo>();

  private constructor(private readonly kv: KvMeta) {}

  static async open(kv: KvMeta): Promise<ChannelManager> {
    const m = new ChannelManager(kv);
    for (const { value } of (await kv.records<ChannelRecord>((v) => typeof (v as ChannelRecord).vchannel === "string")).values()) {
      m.records.set(value.vchannel, value);
    }
    return m;
  }

  get(vchannel: string): ChannelRecord | undefined {
    return this.records.get(vchannel);
  }

  all(): IterableIterator<ChannelRecord> {
    return this.records.values();
  }

  ofCollection(collectionId: bigint): ChannelRecord[] {
    return [...this.records.values()].filter((r) => r.collectionId === collectionId);
  }

  ofNode(nodeId: string): ChannelRecord[] {
    return [...this.records.values()].filter((r) => r.nodeId === nodeId);
  }

  collectionIds(): Set<bigint> {
    return new Set([...this.records.values()].map((r) => r.collectionId));
  }

  /** Stores a record (KV first, then memory). */
  async save(r: ChannelRecord): Promise<void> {
    await this.kv.putValue(r.vchannel, r);
    this.records.set(r.vchannel, r);
  }

  async remove(vchannel: string): Promise<void> {
    await this.kv.delete(vchannel);
    this.records.delete(vchannel);
  }

  // ---- nodes ----

  /** Notes that a node was heard of now; returns its record. */
  touch(nodeId: string, at: number, session?: string, opts: { takeSession?: boolean } = {}): NodeInfo {
    let n = this.nodes.get(nodeId);
    if (!n) {
      n = { nodeId, lastSeen: at, reported: new Set(), sentAt: new Map() };
      this.nodes.set(nodeId, n);
    }
    if (at > n.lastSeen) n.lastSeen = at;
    if (session !== undefined && (opts.takeSession || n.session === undefined)) n.session = session;
    if (n.leftSession !== undefined && n.session !== n.leftSession) delete n.leftSession;
    return n;
  }

  /** The node left (a graceful stop): not alive from now on, until a new session of it speaks. */
  leave(nodeId: string, session: string | undefined): NodeInfo | undefined {
    const n = this.nodes.get(nodeId);
    if (!n || (session !== undefined && n.session !== undefined && session !== n.session)) return undefined;
    n.lastSeen = 0;
    n.leftSession = n.session ?? session ?? "";
    return n;
  }

  isAlive(nodeId: string | undefined, now: number, availableMs: number): boolean {
    if (nodeId === undefined) return false;
    const n = this.nodes.get(nodeId);
    return n !== undefined && now - n.lastSeen <= availableMs;
  }

  liveNodes(now: number, availableMs: number): NodeInfo[] {
    return [...this.nodes.values()].filter((n) => now - n.lastSeen <= availableMs);
  }

  /**
   * Refuses a report about `vchannel` from a node that does not hold it, or from an older session of the
   * node that does (904); an unknown vchannel is 500.
   */
  fence(vchannel: string, reporter: { nodeId?: string; session?: string }): ChannelRecord {
    const r = this.records.get(vchannel);
    if (!r) {
      throw new VbError(ErrorCode.ChannelNotFound, `vchannel "${vchannel}" is not watched (its collection may have been dropped)`, {
        retriable: false,
      });
    }
    if (reporter.nodeId !== undefined && r.nodeId !== reporter.nodeId) {
      throw new VbError(
        ErrorCode.NodeNotMatch,
        `vchannel "${vchannel}" is assigned to datanode ${r.nodeId ?? "(none)"}, not ${reporter.nodeId}: stop watching it`,
        { retriable: false },
      );
    }
    if (reporter.nodeId !== undefined && reporter.session !== undefined) {
      const current = this.nodes.get(reporter.nodeId)?.session;
      if (current !== undefined && current !== reporter.session) {
        throw new VbError(
          ErrorCode.NodeNotMatch,
          `datanode ${reporter.nodeId} restarted (session ${current}); reports of its session ${reporter.session} are refused`,
          { retriable: false },
        );
      }
    }
    return r;
  }

  /** vchannels held per live node (every live node listed, with 0 when it holds none). */
  load(now: number, availableMs: number): Map<string, number> {
    const out = new Map<string, number>();
    for (const n of this.liveNodes(now, availableMs)) out.set(n.nodeId, 0);
    for (const r of this.records.values()) {
      if (r.nodeId !== undefined && out.has(r.nodeId)) out.set(r.nodeId, out.get(r.nodeId)! + 1);
    }
    return out;
  }

  /**
   * The vchannels that need a (new) datanode: unassigned ones, and those of nodes that are not alive.
   * A node datacoord has not heard of since it started is given `graceUntil` to show up.
   */
  needing(now: number, availableMs: number, graceUntil: number): string[] {
    const out: string[] = [];
    for (const r of this.records.values()) {
      if (r.nodeId === undefined) out.push(r.vchannel);
      else if (!this.isAlive(r.nodeId, now, availableMs)) {
        if (!this.nodes.has(r.nodeId) && now < graceUntil) continue;
        out.push(r.vchannel);
      }
    }
    return out.sort();
  }
}
