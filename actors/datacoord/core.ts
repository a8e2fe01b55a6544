/**
 * What datacoord's parts share (Milvus's datacoord `Server` struct): the actor's context, its meta
 * loaded from KV (segments, channel assignments, checkpoints, indexes and builds), the collections it
 * serves, the flushes it waits for, and the asks and tells every part makes. The parts — the cluster
 * (collections, vchannels and datanodes: cluster.ts), the segment services (segment_service.ts) and the
 * index service (index_service.ts) — run in the actor's mailbox; only the actor changes this state.
 */
import { collectionLabel } from "../../protocol/errors.ts";
import { messageType, type Req, type Res } from "../../protocol/messages/api.ts";
import type { DatanodeApi } from "../../protocol/messages/datacoord.ts";
import { asNodeId } from "../../protocol/ids.ts";
import { ROOTCOORD, type RootcoordApi } from "../../protocol/messages/rootcoord.ts";
import type { ActorContext, Message } from "../../runtime/actor.ts";
import type { KvMeta, UndecodableRecord } from "../../runtime/kv_meta.ts";
import { backoffMs } from "../continuations.ts";
import { DATANODE } from "../datanode/datanode_actor.ts";
import type { ClusterEnv } from "../env.ts";
import { CHECKPOINTS_BUCKET, ChannelCheckpoints } from "./channel_checkpoints.ts";
import { CHANNEL_WATCH_BUCKET, ChannelManager } from "./channel_manager.ts";
import { Collections } from "./collections.ts";
import { PendingFlushes } from "./flush.ts";
import { IdPool } from "./id_pool.ts";
import { INDEXES_BUCKET, IndexMeta, SEGMENT_INDEXES_BUCKET } from "./index_meta.ts";
import { SEGMENTS_BUCKET, SegmentMeta } from "./segment_meta.ts";
import { timestampBefore } from "./tso.ts";

const ASK_TIMEOUT_MS = 5_000;
const RETRY_MIN_MS = 200;
const RETRY_MAX_MS = 5_000;

/**
 * Messages datacoord sends itself (ctx.self, timers): private, the runtime refuses them from anyone else.
 * Work off the mailbox comes back through continuations (`after`, ctx.reenterAfter), not messages.
 */
export const I = {
  Tick: "datacoord.internal.Tick",
  Event: "datacoord.internal.Event",
  Heartbeat: "datacoord.internal.Heartbeat",
  FeedReady: "datacoord.internal.FeedReady",
  ListCollections: "datacoord.internal.ListCollections",
  Gc: "datacoord.internal.Gc",
  Sweep: "datacoord.internal.Sweep",
  Follow: "datacoord.internal.Follow",
  FollowEnded: "datacoord.internal.FollowEnded",
  ScheduleBuilds: "datacoord.internal.ScheduleBuilds",
  IndexGc: "datacoord.internal.IndexGc",
} as const;

export class DatacoordCore {
  readonly collections = new Collections();
  readonly pending = new PendingFlushes();
  readonly ids: IdPool;
  readonly startedAt = Date.now();
  /** the heartbeat feed delivered what it held at start: the live datanodes are known */
  feedReady = false;

  private constructor(
    readonly env: ClusterEnv,
    readonly ctx: ActorContext,
    readonly segments: SegmentMeta,
    readonly channels: ChannelManager,
    readonly checkpoints: ChannelCheckpoints,
    readonly indexMeta: IndexMeta,
    /** the KV buckets the state above lives in */
    private readonly buckets: KvMeta[],
  ) {
    this.ids = new IdPool((count) => this.askRootcoord("AllocId", { count }));
  }

  /** Loads datacoord's meta from its five KV buckets. */
  static async open(env: ClusterEnv, ctx: ActorContext): Promise<DatacoordCore> {
    const buckets = await Promise.all(
      [SEGMENTS_BUCKET, CHANNEL_WATCH_BUCKET, CHECKPOINTS_BUCKET, INDEXES_BUCKET, SEGMENT_INDEXES_BUCKET].map((b) => env.meta(b)),
    );
    const [segKv, watchKv, cpKv, indexKv, buildKv] = buckets as [KvMeta, KvMeta, KvMeta, KvMeta, KvMeta];
    const [segments, channels, checkpoints, indexMeta] = await Promise.all([
      SegmentMeta.open(segKv),
      ChannelManager.open(watchKv),
      ChannelCheckpoints.open(cpKv),
      IndexMeta.open(indexKv, buildKv),
    ]);
    return new DatacoordCore(env, ctx, segments, channels, checkpoints, indexMeta, buckets);
  }

  /** The values in datacoord's buckets that did not decode as records (see KvMeta.records). */
  undecodable(): UndecodableRecord[] {
    return this.buckets.flatMap((kv) => kv.undecodable());
  }

  /** When an answer is due: the request's deadline, or the ask timeout for a request without one. */
  deadlineOf(msg: Message): number {
    return msg.deadline > 0 ? msg.deadline : Date.now() + ASK_TIMEOUT_MS;
  }

  /** A timestamp from rootcoord's TSO before `deadline` (asked again while it does not answer); never the local clock. */
  allocTimestamp(deadline: number, what: string): Promise<bigint> {
    const ask = (timeoutMs: number) =>
      this.ctx
        .ask<Res<RootcoordApi, "AllocTimestamp">>(this.env.subjects.rootcoord(), messageType(ROOTCOORD, "AllocTimestamp"), { count: 1 }, {
          timeoutMs: Math.min(timeoutMs, ASK_TIMEOUT_MS),
        })
        .then((r) => r.ts);
    return timestampBefore(ask, deadline, what);
  }

  askRootcoord<V extends keyof RootcoordApi & string>(verb: V, body: Req<RootcoordApi, V>): Promise<Res<RootcoordApi, V>> {
    return this.ctx.ask(this.env.subjects.rootcoord(), messageType(ROOTCOORD, verb), body, { timeoutMs: ASK_TIMEOUT_MS });
  }

  tellDatanode<V extends keyof DatanodeApi & string>(nodeId: string, verb: V, body: Req<DatanodeApi, V>): void {
    this.ctx.tell(this.env.subjects.datanode(asNodeId(nodeId)), messageType(DATANODE, verb), body);
  }

  /** Sends `type` to itself after the backoff of the `retries`-th retry. */
  retryLater(key: string, retries: number, type: string, body: unknown): void {
    this.ctx.timers.startSingle(key, backoffMs(retries, RETRY_MIN_MS, RETRY_MAX_MS), type, body);
  }

  /** How messages name a collection: by name (the id after it) when datacoord knows it. */
  collectionLabel(collectionId: bigint): string {
    return collectionLabel(collectionId, this.collections.get(collectionId)?.name);
  }
}
