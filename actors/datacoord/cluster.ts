/**
 * datacoord's view of the cluster (Milvus's datacoord `cluster.go` and channel manager): the collections
 * it serves and their vchannels, which datanode watches each vchannel (assigned to the least-loaded live
 * one, moved when a datanode stops heartbeating), what a datanode is told again when its heartbeat shows
 * it missed a watch, an unwatch or a flush, and the garbage collection of a dropped collection's data.
 */
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import type { Res } from "../../protocol/messages/api.ts";
import type { ChannelWatch, DatacoordApi, DatanodeHeartbeat } from "../../protocol/messages/datacoord.ts";
import type { CollectionInfo, SegmentInfo } from "../../protocol/meta.ts";
import type { PipeResult } from "../../runtime/actor.ts";
import type { FeedMessage } from "../../runtime/feed.ts";
import { after } from "../continuations.ts";
import { decodeHeartbeat } from "../datanode/heartbeat.ts";
import { planAssignments, type ChannelRecord } from "./channel_manager.ts";
import { I, type DatacoordCore } from "./core.ts";
import { collectGarbage, deleteObjects } from "./gc.ts";
import { nodeIdOf, obj, stringOf } from "./requests.ts";

export class DatacoordCluster {
  /** collections being garbage-collected (a GC task in flight) */
  private readonly collecting = new Set<bigint>();
  private gcRetries = 0;

  constructor(private readonly core: DatacoordCore) {}

  async addCollection(info: CollectionInfo): Promise<void> {
    if (!this.core.collections.add(info)) return;
    for (const v of info.vchannels) {
      if (this.core.channels.get(v.name)) continue;
      await this.core.channels.save({ collectionId: info.collectionId, vchannel: v.name, pchannel: v.pchannel });
    }
    await this.assign();
  }

  /** The collection, asking rootcoord if datacoord has not heard of it yet (100 when it does not exist). */
  async ensureCollection(collectionId: bigint) {
    const known = this.core.collections.get(collectionId);
    if (known) return known;
    if (this.core.collections.wasDropped(collectionId)) {
      throw new VbError(ErrorCode.CollectionNotFound, `collection ${collectionId} was dropped`);
    }
    const info = await this.core.askRootcoord("DescribeCollection", { collectionId });
    if (info.state !== "Created") throw new VbError(ErrorCode.CollectionNotFound, `collection ${collectionId} is being dropped`);
    await this.addCollection(info);
    const c = this.core.collections.get(collectionId);
    if (!c) throw new VbError(ErrorCode.CollectionNotFound, `collection ${collectionId} was dropped`);
    return c;
  }

  /** Forgets a dropped collection's vchannels, marks its segments Dropped and collects their data. */
  async dropCollection(collectionId: bigint): Promise<void> {
    this.core.collections.drop(collectionId);
    const records = this.core.channels.ofCollection(collectionId);
    const byNode = new Map<string, string[]>();
    for (const r of records) {
      if (r.nodeId !== undefined) byNode.set(r.nodeId, [...(byNode.get(r.nodeId) ?? []), r.vchannel]);
      await this.core.channels.remove(r.vchannel);
      await this.core.checkpoints.remove(r.vchannel);
      this.core.pending.delete(r.vchannel);
    }
    for (const [nodeId, vchannels] of byNode) this.core.tellDatanode(nodeId, "UnwatchDmChannels", { vchannels });
    for (const s of this.core.segments.ofCollection(collectionId)) this.core.segments.markDropped(s.segmentId);
    this.core.ctx.log.info({ collection: String(collectionId), vchannels: records.length }, "collection dropped; collecting its data");
    this.startGc(collectionId);
  }

  startGc(collectionId: bigint): void {
    if (this.collecting.has(collectionId)) return;
    const segments = this.core.segments.ofCollection(collectionId).filter((s) => s.state === "Dropped");
    this.collecting.add(collectionId);
    const work = collectGarbage(this.core.env.objectStore, this.core.segments, { collectionId, segments });
    after(this.core.ctx, work, (r) => this.onGcDone(collectionId, segments, r));
  }

  private onGcDone(collectionId: bigint, segments: SegmentInfo[], r: PipeResult<number>): void {
    this.collecting.delete(collectionId);
    if (!r.ok) {
      this.gcRetries++;
      this.core.ctx.log.warn({ collection: String(collectionId), err: String(r.error) }, "garbage collection failed; retrying");
      this.core.retryLater(`gc:${collectionId}`, this.gcRetries, I.Gc, collectionId);
      return;
    }
    this.gcRetries = 0;
    for (const s of segments) this.core.segments.forget(s.segmentId);
    this.core.ctx.log.info({ collection: String(collectionId), segments: segments.length, objects: r.value }, "collection data removed");
    // a datanode may still have been writing when it was told to stop: sweep once more later
    this.core.ctx.timers.startSingle(`sweep:${collectionId}`, this.core.env.config.heartbeatAvailableMs, I.Sweep, collectionId);
  }

  sweep(collectionId: bigint): void {
    if (this.core.collections.has(collectionId)) return;
    void deleteObjects(this.core.env.objectStore, collectionId).then(
      (n) => n > 0 && this.core.ctx.log.info({ collection: String(collectionId), objects: n }, "late objects of a dropped collection removed"),
      (err: unknown) => this.core.ctx.log.warn({ collection: String(collectionId), err: String(err) }, "late sweep failed"),
    );
  }

  /**
   * Takes a datanode's heartbeat: the node is alive, reports what it watches, and is told again what it
   * missed. Returns the heartbeat and whether the node just came up, or undefined when it is unreadable or
   * from an older incarnation of the node.
   */
  async onHeartbeat(m: FeedMessage): Promise<{ hb: DatanodeHeartbeat; cameUp: boolean } | undefined> {
    let hb: DatanodeHeartbeat;
    try {
      hb = decodeHeartbeat(m.data);
    } catch (err) {
      this.core.ctx.log.warn({ subject: m.subject, err: String(err) }, "unreadable datanode heartbeat ignored");
      return undefined;
    }
    const now = Date.now();
    const known = this.core.channels.nodes.get(hb.nodeId);
    if (known?.leftSession !== undefined && hb.session === known.leftSession) return undefined; // it left; a late heartbeat
    // a value from before datacoord started is as old as the server says; a new one is fresh
    const seenAt = m.initial ? m.timestamp : now;
    const wasAlive = this.core.channels.isAlive(hb.nodeId, now, this.core.env.config.heartbeatAvailableMs);
    const node = this.core.channels.touch(hb.nodeId, seenAt, hb.session);
    if (node.session !== undefined && hb.session !== node.session) return undefined; // an older incarnation: not this node any more
    node.reported = new Set(hb.channels.map((c) => c.vchannel));
    const cameUp = !wasAlive && this.core.channels.isAlive(hb.nodeId, now, this.core.env.config.heartbeatAvailableMs);
    if (cameUp) {
      this.core.ctx.log.info({ node: hb.nodeId }, "datanode is up");
      await this.assignSafely();
    }
    if (!m.initial) this.reconcileNode(hb.nodeId, now);
    return { hb, cameUp };
  }

  /** Re-tells a datanode what its heartbeat shows it missed (watches, unwatches, flushes). */
  private reconcileNode(nodeId: string, now: number): void {
    const node = this.core.channels.nodes.get(nodeId);
    if (!node) return;
    const gap = Math.max(1_000, 3 * this.core.env.config.heartbeatIntervalMs);
    const due = (key: string): boolean => {
      const at = node.sentAt.get(key);
      if (at !== undefined && now - at < gap) return false;
      node.sentAt.set(key, now);
      return true;
    };
    const watch: ChannelWatch[] = [];
    const flush: { vchannel: string; position: bigint }[] = [];
    for (const r of this.core.channels.ofNode(nodeId)) {
      if (!node.reported.has(r.vchannel)) {
        if (due(`watch:${r.vchannel}`)) watch.push(this.watchOf(r));
        continue;
      }
      const pos = this.core.pending.get(r.vchannel);
      if (pos !== undefined && this.core.checkpoints.get(r.vchannel).position < pos && due(`flush:${r.vchannel}`)) {
        flush.push({ vchannel: r.vchannel, position: pos });
      }
    }
    const unwatch = [...node.reported].filter((v) => this.core.channels.get(v)?.nodeId !== nodeId && due(`unwatch:${v}`));
    if (watch.length > 0) this.core.tellDatanode(nodeId, "WatchDmChannels", { channels: watch, sealPolicy: this.core.env.config.sealPolicy });
    if (unwatch.length > 0) this.core.tellDatanode(nodeId, "UnwatchDmChannels", { vchannels: unwatch });
    if (flush.length > 0) this.core.tellDatanode(nodeId, "FlushChannels", { channels: flush });
  }

  private watchOf(r: ChannelRecord): ChannelWatch {
    return { collectionId: r.collectionId, vchannel: r.vchannel, pchannel: r.pchannel, checkpoint: this.core.checkpoints.get(r.vchannel).position };
  }

  /** `assign`, with a failure (of KV) logged: the next tick tries again. */
  async assignSafely(): Promise<void> {
    try {
      await this.assign();
    } catch (err) {
      this.core.ctx.log.error({ err: String(err) }, "assignment failed");
    }
  }

  /** Gives every vchannel that needs a datanode to the least-loaded live one, and tells it. */
  async assign(): Promise<void> {
    if (!this.core.feedReady) return;
    const now = Date.now();
    const available = this.core.env.config.heartbeatAvailableMs;
    const needs = this.core.channels.needing(now, available, this.core.startedAt + available);
    if (needs.length === 0) return;
    const plan = planAssignments(needs, this.core.channels.load(now, available));
    const told = new Map<string, ChannelWatch[]>();
    for (const [vchannel, nodeId] of plan) {
      const r = this.core.channels.get(vchannel);
      if (!r) continue;
      const prev = r.nodeId;
      const next: ChannelRecord = { ...r, nodeId };
      await this.core.channels.save(next);
      told.set(nodeId, [...(told.get(nodeId) ?? []), this.watchOf(next)]);
      this.core.channels.nodes.get(nodeId)?.sentAt.set(`watch:${vchannel}`, now);
      this.core.ctx.log.info({ collection: String(r.collectionId), vchannel, node: nodeId, from: prev }, "vchannel assigned");
    }
    for (const [nodeId, channels] of told) {
      this.core.tellDatanode(nodeId, "WatchDmChannels", { channels, sealPolicy: this.core.env.config.sealPolicy });
    }
  }

  async datanodeLeaving(body: unknown): Promise<Res<DatacoordApi, "DatanodeLeaving">> {
    const b = obj(body, "DatanodeLeaving");
    const nodeId = nodeIdOf(b.nodeId, "nodeId");
    const session = b.session === undefined ? undefined : stringOf(b.session, "session");
    const held = this.core.channels.ofNode(nodeId).length;
    if (!this.core.channels.leave(nodeId, session)) return { vchannels: 0 };
    this.core.ctx.log.info({ node: nodeId, vchannels: held }, "datanode is leaving: its vchannels go to the other datanodes now");
    await this.assign();
    return { vchannels: held };
  }

  async getChannelWatches(body: unknown): Promise<Res<DatacoordApi, "GetChannelWatches">> {
    const b = obj(body, "GetChannelWatches");
    const nodeId = nodeIdOf(b.nodeId, "nodeId");
    const session = b.session === undefined ? undefined : stringOf(b.session, "session");
    const now = Date.now();
    const node = this.core.channels.touch(nodeId, now, session, { takeSession: true });
    node.reported = new Set();
    await this.assign();
    const channels = this.core.channels.ofNode(nodeId).map((r) => this.watchOf(r));
    for (const c of channels) node.sentAt.set(`watch:${c.vchannel}`, now);
    return { channels, sealPolicy: this.core.env.config.sealPolicy };
  }
}
