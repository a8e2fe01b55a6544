/**
 * querycoord's state and its reconcile loop (Milvus's querycoordv2/server.go wiring the managers,
 * checkers, scheduler and observers together). Everything here runs inside the actor's mailbox; work
 * that waits on a peer (asks to querynodes, delegators, rootcoord, datacoord) is started here and
 * continues back in the mailbox (`after`, the runtime's reenterAfter).
 */
import { collectionLabel, collectionNotLoaded, ErrorCode, VbError } from "../../protocol/errors.ts";
import { asNodeId, type CollectionId, type ReplicaId } from "../../protocol/ids.ts";
import type { CollectionInfo } from "../../protocol/meta.ts";
import type { RecoveryInfo } from "../../protocol/messages/datacoord.ts";
import type { DatacoordIndexApi } from "../../protocol/messages/indexes.ts";
import type { LoadBlocker } from "../../protocol/messages/querycoord.ts";
import type { LoadSegmentsReq, SealedEntry, SyncReply, WatchChannelReq } from "../../protocol/messages/querynode.ts";
import type { ActorContext, PipeResult } from "../../runtime/actor.ts";
import { PROBE_TYPE } from "../../runtime/ask.ts";
import type { Logger } from "../../runtime/logger.ts";
import type { ClusterEnv } from "../env.ts";
import { qcSyncEntries } from "../metrics.ts";
import { nodeLoads, scoreOf } from "./balance/node_load.ts";
import { channelMoveKey, DEFAULT_BALANCE_OPTIONS, holdsBalanceBack, moveKey, planBalance, planChannelBalance, type ChannelMove, type SegmentMove } from "./balance/score_balancer.ts";
import {
  addBlocker,
  collectionIndexes,
  derivePlaces,
  sameCollectionIndexes,
  formatBlocker,
  partitionKey,
  runCheckers,
  type CheckInput,
  type CollectionIndexes,
  type SyncedView,
} from "./checkers/index.ts";
import { DistManager } from "./dist/dist_manager.ts";
import { DistSnapshot } from "./dist/dist_snapshot.ts";
import { MSG } from "./messages.ts";
import type { Meta } from "./meta/meta.ts";
import type { ResourceManager } from "./meta/resource_manager.ts";
import { recoverResourceGroups, withLeaving } from "./rg_services.ts";
import { l0Of, targetFromRecovery } from "./meta/target.ts";
import type { TargetManager } from "./meta/target_manager.ts";
import type { CollectionLoad } from "./meta/types.ts";
import { loadProgress, type LoadProgress } from "./observers/collection_observer.ts";
import { fetchRecoveryInfo, promotionReadiness, TargetRefreshes } from "./observers/target_observer.ts";
import type { QuerycoordParams } from "./params.ts";
import { effectVisible } from "./task/effects.ts";
import { TaskScheduler } from "./task/scheduler.ts";
import { syncBody, viewDelta } from "./task/sync_delta.ts";
import { channelKey, describeAction, type Task, type TaskAction } from "./task/task.ts";
import { mergeShareBlockers, resumeAt, roundShare, unlookedOutside, type ShareCandidate } from "./round_share.ts";

interface LoadWaiter {
  deadline: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface ReleaseWaiter {
  deadline: number;
  resolve: () => void;
}

/** How often the load progress of a Loaded collection is computed again (ms). */
const PROGRESS_REFRESH_MS = 2_000;

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class QuerycoordCore {
  readonly dist: DistManager;
  readonly scheduler: TaskScheduler;
  readonly refreshes: TargetRefreshes;
  /** fetches of the collections' vector indexes (datacoord.GetIndexInfos) */
  readonly indexRefreshes: TargetRefreshes;
  /** per collection, its live indexes and Finished builds as datacoord last said */
  readonly indexes = new Map<bigint, CollectionIndexes>();
  /** what each delegator acknowledged last, by address */
  readonly synced = new Map<string, SyncedView & { collectionId: bigint }>();
  /** the partitions each delegator was watched with (checkers' `partitionKey`), by address */
  readonly watched = new Map<string, { collectionId: bigint; partitions: string }>();
  /** per collection, what its load waits on (from the last round) */
  blockers = new Map<bigint, LoadBlocker[]>();
  /** per collection, the progress computed last (a Loaded one's every PROGRESS_REFRESH_MS) */
  readonly progress = new Map<bigint, LoadProgress>();
  /** when each look that walks a whole target (progress, promotion) was last taken, by `<what>/<collection>` */
  private readonly lookedAt = new Map<string, number>();
  /**
   * Per collection, the revision of datacoord's segments the last whole answer had, and for which load
   * (its partitions): the next refresh names it, and datacoord answers "unchanged" instead of the pages
   * again while it holds (a million segments re-read every refresh interval were a tenth of querycoord's
   * work).
   */
  private readonly targetRevisions = new Map<bigint, { revision: string; partitionKey: string }>();
  /** true once the feed delivered its snapshot: before that, no checker runs */
  distReady = false;
  /** when querycoord started: querynodes starting with it get a moment to show up on the feed */
  readonly startedAt = Date.now();
  private snap: DistSnapshot;
  private readonly loadWaiters = new Map<bigint, LoadWaiter[]>();
  private readonly releaseWaiters = new Map<bigint, ReleaseWaiter[]>();
  /** set when the actor stops or restarts: this state is gone, continuations of its work are dropped */
  private retired = false;
  /** balance moves in flight, by `moveKey(replica, segment)`, with when they were planned */
  readonly moves = new Map<string, SegmentMove & { at: number }>();
  /** callers of a manual LoadBalance waiting for a move to be done ("") or given up (the reason), by move key */
  readonly moveWaiters = new Map<string, ((why: string) => void)[]>();
  /** channel (delegator) moves in flight, by `channelMoveKey(replica, vchannel)`, with when they were planned */
  readonly channelMoves = new Map<string, ChannelMove & { at: number }>();
  private lastBalanceAt = 0;
  /** what the last balance looks that found nothing to move saw, and the collections they looked at (see `balance`) */
  private idleBalance: { key: string; looked: Set<bigint> } | undefined;
  /** when the last reconcile round ended, and how long it took (ms) */
  private lastRoundEnd = 0;
  private lastRoundMs = 0;
  /** how long the feed's thread has been busy since it started (ms), when it runs on one (RoundStats) */
  feedThreadActiveMs: (() => number) | undefined;
  /** querynodes with a liveness probe in flight */
  private readonly probing = new Set<string>();
  /** why a querynode was found down, for the log line */
  private readonly downReasons = new Map<string, string>();

  constructor(
    readonly env: ClusterEnv,
    readonly params: QuerycoordParams,
    readonly ctx: ActorContext,
    readonly log: Logger,
    readonly meta: Meta,
    readonly targets: TargetManager,
    /** querynodes in resource groups */
    readonly rgs: ResourceManager,
  ) {
    // (a segment's copies hold its id as its target does)
    this.dist = new DistManager(env.config.heartbeatAvailableMs, (collectionId, segmentId) => {
      const pair = targets.get(collectionId);
      return (pair.next?.segments.get(segmentId) ?? pair.current?.segments.get(segmentId))?.segmentId;
    });
    this.snap = this.dist.snapshot();
    this.scheduler = new TaskScheduler({
      capPerNode: params.taskExecutionCap,
      distWaitMs: params.distWaitMs,
      retryBaseMs: params.retryBaseMs,
      retryMaxMs: params.retryMaxMs,
    });
    this.refreshes = new TargetRefreshes({ refreshMs: params.targetRefreshMs, retryMs: 1_000 });
    this.indexRefreshes = new TargetRefreshes({ refreshMs: params.indexRefreshMs, retryMs: params.indexRefreshMs });
  }

  /** The distribution of the alive querynodes as of the last round. */
  get snapshot(): DistSnapshot {
    return this.snap;
  }

  // ---- plumbing ----

  /**
   * Runs `then` back inside the mailbox with the outcome of `work` (ctx.reenterAfter) when no ask waits
   * for it. After a restart the continuations of the old state are dropped: the new one starts over from
   * KV. What `then` throws is handled as a throw in `receive` (a VbError is dropped, anything else crashes).
   */
  after<T>(work: Promise<T>, then: (outcome: PipeResult<T>) => void): void {
    const run = (outcome: PipeResult<T>) => {
      if (!this.retired) then(outcome);
    };
    this.ctx
      .reenterAfter(
        work,
        (value) => run({ ok: true, value }),
        (error: unknown) => run({ ok: false, error }),
      )
      .work.catch(() => undefined);
  }

  /** The actor stopped or is restarting: work still in flight no longer changes this state. */
  retire(): void {
    this.retired = true;
  }

  /**
   * A reconcile round soon (changes come in bursts: one round for the burst). Rounds are spaced by at
   * least a share of the last one's duration (`roundRestMs`), so that however large the state, the
   * feed's batches, task replies and requests are served between rounds. (Spaced by their whole
   * duration, querycoord's thread idled half the time during a balance at 1,000 nodes, since the feed's
   * content has a thread of its own.)
   */
  kick(): void {
    if (this.ctx.timers.isActive("kick")) return;
    this.ctx.timers.startSingle("kick", Math.max(10, this.lastRoundEnd + this.roundRestMs() - Date.now()), MSG.kick);
  }

  /**
   * How long the next round waits after the last one: `roundRestShare` of its duration while the feed
   * is read on time, all of it while querycoord reads the feed more than two heartbeat intervals behind
   * (the feed's batches, and on a machine shared with the nodes their processes, get the time back).
   */
  private roundRestMs(): number {
    const behind = this.dist.lagMs > 2 * this.env.config.heartbeatIntervalMs;
    return this.lastRoundMs * (behind ? 1 : this.params.roundRestShare);
  }

  describeCollection(collectionId: bigint): Promise<CollectionInfo> {
    return this.ctx.ask<CollectionInfo>(this.env.subjects.rootcoord(), "rootcoord.DescribeCollection", { collectionId }, {
      timeoutMs: this.params.requestTimeoutMs,
    });
  }

  async allocIds(count: number): Promise<bigint[]> {
    const r = await this.ctx.ask<{ start: bigint; count: number }>(this.env.subjects.rootcoord(), "rootcoord.AllocId", { count }, {
      timeoutMs: this.params.requestTimeoutMs,
    });
    return Array.from({ length: count }, (_, i) => BigInt(r.start) + BigInt(i));
  }

  /** Alive querynodes that are not stopping (as of now), least loaded first. */
  nodesByLoad(): string[] {
    const now = Date.now();
    const alive = this.dist.aliveAt(now).filter((n) => !this.dist.get(n)?.stopping);
    const loads = nodeLoads(alive, new DistSnapshot(alive.map((n) => this.dist.get(n)!)));
    const maxLimit = Math.max(0, ...loads.map((l) => l.memoryLimitBytes));
    return loads.sort((a, b) => scoreOf(a, maxLimit) - scoreOf(b, maxLimit) || (a.nodeId < b.nodeId ? -1 : 1)).map((l) => l.nodeId);
  }

  // ---- targets ----

  /**
   * Whether a load short of querynodes should wait for them a little: right after querycoord starts
   * (a standalone starts querynodes with it, and their first reports are on their way), not later.
   */
  inStartupGrace(now = Date.now()): boolean {
    return now - this.startedAt < this.params.startupGraceMs;
  }

  requestTarget(collectionId: bigint): void {
    this.refreshes.request(collectionId);
    this.indexRefreshes.request(collectionId);
    this.kick();
  }

  /** The collection's indexes changed (an `index.*` or `segment.indexed` event): fetch them soon. */
  requestIndexes(collectionId: bigint): void {
    this.indexRefreshes.request(collectionId);
    this.kick();
  }

  private fetchIndexes(now: number): void {
    const ids = this.meta.allCollections().map((c) => c.collectionId);
    for (const collectionId of this.indexRefreshes.due(ids, now)) {
      const work = this.ctx.ask<DatacoordIndexApi["GetIndexInfos"][1]>(
        this.env.subjects.datacoord(),
        "datacoord.GetIndexInfos",
        { collectionId },
        { timeoutMs: this.params.requestTimeoutMs },
      );
      this.after(work, (r) => this.onIndexesFetched(collectionId, r));
    }
  }

  private onIndexesFetched(collectionId: bigint, r: PipeResult<DatacoordIndexApi["GetIndexInfos"][1]>): void {
    const now = Date.now();
    if (!r.ok) {
      // what was known stays (no index is released for want of an answer); a datacoord without
      // indexes (an older one) answers 1100 or 10: nothing to load then
      const e = VbError.from(r.error);
      const quiet = e.code === ErrorCode.ParameterInvalid || e.code === ErrorCode.Unimplemented;
      this.indexRefreshes.finished(collectionId, `datacoord GetIndexInfos failed: ${e.message}`, now);
      if (!quiet && this.meta.collection(collectionId)) {
        this.log.warn({ collection: collectionId, err: e.message }, "could not refresh the collection's indexes");
      }
      return;
    }
    this.indexRefreshes.finished(collectionId, undefined, now);
    if (!this.meta.collection(collectionId)) return;
    const before = this.indexes.get(collectionId);
    const next = collectionIndexes(r.value);
    // (an answer that says the same keeps the one held: what the checkers derived from it stays good)
    if (before && sameCollectionIndexes(before, next)) return;
    this.indexes.set(collectionId, next);
    const count = (x: CollectionIndexes | undefined) => [...(x?.builds.values() ?? [])].reduce((n, l) => n + l.length, 0);
    if (!before || before.indexes.length !== next.indexes.length || count(before) !== count(next)) {
      this.log.info({ collection: collectionId, indexes: next.indexes.length, builds: count(next) }, "collection indexes refreshed");
    }
    this.kick();
  }

  private fetchTargets(now: number): void {
    const ids = this.meta.allCollections().map((c) => c.collectionId);
    for (const collectionId of this.refreshes.due(ids, now)) {
      const c = this.meta.collection(collectionId)!;
      const partitionIds = [...c.partitionIds];
      const partitionKey = partitionIds.join(",");
      const read = this.targetRevisions.get(collectionId);
      const work = fetchRecoveryInfo(
        (body) => this.ctx.ask<RecoveryInfo>(this.env.subjects.datacoord(), "datacoord.GetRecoveryInfo", body, { timeoutMs: this.params.requestTimeoutMs }),
        collectionId,
        partitionIds,
        read?.partitionKey === partitionKey ? read.revision : undefined,
      );
      this.after(work, (r) => this.onTargetFetched(collectionId, partitionKey, r));
    }
  }

  private onTargetFetched(collectionId: bigint, partitionKey: string, r: PipeResult<RecoveryInfo>): void {
    const now = Date.now();
    const c = this.meta.collection(collectionId);
    if (!r.ok) {
      this.refreshes.finished(collectionId, `datacoord GetRecoveryInfo failed: ${errorText(r.error)}`, now);
      if (c) this.log.warn({ collection: collectionId, err: errorText(r.error) }, "could not refresh the next target");
      return;
    }
    if (r.value.unchanged === true) {
      // the segments read last are still datacoord's: the target made of them stands
      this.refreshes.finished(collectionId, undefined, now);
      if (c && c.partitionIds.join(",") === partitionKey) this.targets.takeSeekPositions(collectionId, r.value.channels);
      return;
    }
    this.refreshes.finished(collectionId, undefined, now, r.value.segments.length);
    if (!c) return;
    if (c.partitionIds.join(",") !== partitionKey) {
      this.requestTarget(collectionId); // the load changed meanwhile: this answer is for the old one
      return;
    }
    if (r.value.revision === undefined) this.targetRevisions.delete(collectionId);
    else this.targetRevisions.set(collectionId, { revision: r.value.revision, partitionKey });
    const before = this.targets.next(collectionId);
    const { version: _v, ...candidate } = targetFromRecovery(r.value, c, 0);
    const next = this.targets.offerNext(candidate);
    if (next && next !== before && next.version !== before?.version) {
      this.log.info(
        { collection: collectionId, version: next.version, segments: next.segments.size, channels: next.channels.size },
        "new next target",
      );
    }
    this.kick();
  }

  // ---- distribution ----

  onDist(): void {
    this.kick();
  }

  // ---- tasks ----

  /**
   * Starts the tasks of a round. Segment loads for the same node, collection and replica go in one
   * LoadSegments request (`taskMergeCap` at most: the node loads them side by side and reserves their
   * memory together); every other task has a request of its own.
   */
  private startTasks(tasks: readonly Task[]): void {
    const cap = Math.max(1, this.params.taskMergeCap);
    const groups = new Map<string, Task[]>();
    for (const t of tasks) {
      const a = t.action;
      if (a.kind !== "LoadSegment" || cap === 1) {
        this.startTask(t);
        continue;
      }
      const key = `${a.nodeId}/${a.collectionId}/${a.replicaId}`;
      let group = groups.get(key);
      if (!group) groups.set(key, (group = []));
      group.push(t);
      if (group.length >= cap) {
        this.startLoads(group);
        groups.delete(key);
      }
    }
    for (const group of groups.values()) this.startLoads(group);
  }

  /** Segment loads of one node, collection and replica in one request; each task takes its reply. */
  private startLoads(tasks: readonly Task[]): void {
    const segments: LoadSegmentsReq["segments"] = [];
    const l0 = new Map<bigint, LoadSegmentsReq["l0Segments"][number]>();
    const indexes: NonNullable<LoadSegmentsReq["indexes"]> = [];
    const live: Task[] = [];
    let req: LoadSegmentsReq | undefined;
    for (const t of tasks) {
      const a = t.action;
      if (a.kind !== "LoadSegment") continue;
      const one = this.loadRequest(a.collectionId, a.segmentId, a.replicaId);
      if (!one) {
        this.scheduler.cancel(t.id);
        continue;
      }
      req ??= one;
      segments.push(...one.segments);
      for (const s of one.l0Segments) l0.set(s.segmentId, s);
      if (a.indexes) indexes.push(...a.indexes);
      live.push(t);
    }
    if (!req) return;
    const body: LoadSegmentsReq = { ...req, segments, l0Segments: [...l0.values()], ...(indexes.length > 0 ? { indexes } : {}) };
    const first = live[0]!.action;
    const timeoutMs = this.params.loadTimeoutMs;
    this.log.debug(
      { tasks: live.map((t) => t.id), collection: first.collectionId, node: first.nodeId, attempt: live.map((t) => t.attempt) },
      live.length === 1 ? describeAction(first) : `load ${segments.length} segments in one request`,
    );
    this.after(this.ctx.ask(this.env.subjects.querynode(asNodeId(first.nodeId)), "querynode.LoadSegments", body, { timeoutMs }), (r) => {
      for (const t of live) this.onTaskReply(t.id, timeoutMs, "", r);
    });
  }

  private startTask(t: Task): void {
    const a = t.action;
    let address: string;
    let type: string;
    let body: unknown;
    let timeoutMs = this.params.requestTimeoutMs;
    const qn = () => this.env.subjects.querynode(asNodeId(a.nodeId));
    switch (a.kind) {
      case "WatchChannel": {
        const req = this.watchRequest(a.collectionId, a.vchannel, a.replicaId);
        if (!req) return this.scheduler.cancel(t.id);
        [address, type, body, timeoutMs] = [qn(), "querynode.WatchDmChannels", req, this.params.watchTimeoutMs];
        break;
      }
      case "LoadSegment":
        return this.startLoads([t]);
      case "LoadIndex":
        [address, type, body, timeoutMs] = [qn(), "querynode.LoadIndex", { collectionId: a.collectionId, infos: [a.info] }, this.params.loadTimeoutMs];
        break;
      case "ReleaseIndex":
        [address, type, body] = [qn(), "querynode.ReleaseIndex", { collectionId: a.collectionId, segmentId: a.segmentId, indexId: a.indexId }];
        break;
      case "UnsubChannel":
        [address, type, body] = [qn(), "querynode.UnsubDmChannel", { collectionId: a.collectionId, vchannel: a.vchannel, replicaId: a.replicaId }];
        break;
      case "ReleaseSegment":
        [address, type, body] = [qn(), "querynode.ReleaseSegments", { collectionId: a.collectionId, segmentIds: [a.segmentId] }];
        break;
      case "ReleaseCollection":
        [address, type, body] = [qn(), "querynode.ReleaseCollection", { collectionId: a.collectionId }];
        break;
      case "SyncLeader":
        [address, type, body] = [a.address, "delegator.SyncDistribution", this.syncRequest(a.address, a.targetVersion, a.sealed)];
        break;
    }
    this.log.debug({ task: t.id, collection: a.collectionId, node: a.nodeId, attempt: t.attempt }, describeAction(a));
    const partitions = a.kind === "WatchChannel" ? (body as WatchChannelReq).partitionIds.map(String).join(",") : "";
    this.after(this.ctx.ask(address, type, body, { timeoutMs }), (r) => this.onTaskReply(t.id, timeoutMs, partitions, r));
  }

  /** A SyncDistribution's body: what changed against the view the delegator acknowledged, when named, else the whole view. */
  private syncRequest(address: string, targetVersion: number, sealed: SealedEntry[]): ReturnType<typeof syncBody> {
    const sync = syncBody(targetVersion, sealed, this.synced.get(address));
    if ("delta" in sync) qcSyncEntries.inc({ body: "delta" }, sync.delta.set.length + sync.delta.remove.length);
    else qcSyncEntries.inc({ body: "whole" }, sync.sealed.length);
    return sync;
  }

  private watchRequest(collectionId: bigint, vchannel: string, replicaId: bigint): WatchChannelReq | undefined {
    const c = this.meta.collection(collectionId);
    const pair = this.targets.get(collectionId);
    const t = pair.current?.channels.has(vchannel) ? pair.current : pair.next;
    const ch = t?.channels.get(vchannel);
    if (!c || !t || !ch) return undefined;
    return {
      collectionId,
      vchannel,
      pchannel: ch.pchannel,
      replicaId,
      schema: c.schema,
      seekPosition: ch.seekPosition,
      partitionIds: c.loadType === "Collection" ? [] : [...c.partitionIds],
      l0Segments: l0Of(t, vchannel),
      // GetShardLeaders offers a delegator only once synced: it refuses reads before too
      syncedReadsOnly: true,
    };
  }

  private loadRequest(collectionId: bigint, segmentId: bigint, replicaId: bigint): LoadSegmentsReq | undefined {
    const c = this.meta.collection(collectionId);
    const pair = this.targets.get(collectionId);
    const t = pair.next?.segments.has(segmentId) ? pair.next : pair.current;
    const info = t?.segments.get(segmentId);
    if (!c || !t || !info) return undefined;
    return { collectionId, replicaId, schema: c.schema, segments: [info], l0Segments: l0Of(t, info.vchannel) };
  }

  private onTaskReply(taskId: string, timeoutMs: number, partitions: string, r: PipeResult<unknown>): void {
    const now = Date.now();
    const task = this.scheduler.get(taskId);
    if (!task) return;
    const reason = r.ok ? "" : failureReason(task, r.error, timeoutMs);
    const t = this.scheduler.onReply(taskId, r.ok ? { ok: true } : { ok: false, reason }, now);
    if (!t) return;
    if (!r.ok) {
      this.log.warn({ task: t.id, collection: t.action.collectionId, node: t.action.nodeId, attempt: t.attempt }, `${describeAction(t.action)} failed: ${reason}`);
      // the delegator may have made the view readable all the same (a reply lost): the next sync sends it whole
      const acked = t.action.kind === "SyncLeader" ? this.synced.get(t.action.address) : undefined;
      if (acked) acked.view = undefined;
    } else if (t.action.kind === "SyncLeader") {
      const a = t.action;
      const view = (r.value as Partial<SyncReply> | null)?.view;
      this.synced.set(a.address, { collectionId: a.collectionId, targetVersion: a.targetVersion, sealed: a.sealed, view: typeof view === "string" ? view : undefined });
    } else if (t.action.kind === "WatchChannel" || t.action.kind === "UnsubChannel") {
      const a = t.action;
      const address = this.env.subjects.delegator(a.collectionId as CollectionId, a.vchannel, a.replicaId as ReplicaId, asNodeId(a.nodeId));
      this.synced.delete(address); // a new delegator knows nothing of its predecessor's view
      if (a.kind === "WatchChannel") this.watched.set(address, { collectionId: a.collectionId, partitions });
      else this.watched.delete(address);
    }
    this.kick();
  }

  // ---- jobs' helpers ----

  /** Forgets a released collection: meta, replicas, targets, tasks, views. Returns the KV writes. */
  forgetCollection(collectionId: bigint): Promise<void> {
    const label = collectionLabel(collectionId, this.meta.collection(collectionId)?.name);
    const writes = [this.meta.removeCollection(collectionId), this.targets.remove(collectionId)];
    this.refreshes.forget(collectionId);
    this.targetRevisions.delete(collectionId);
    this.indexRefreshes.forget(collectionId);
    this.indexes.delete(collectionId);
    this.scheduler.forgetCollection(collectionId);
    for (const [address, v] of this.synced) if (v.collectionId === collectionId) this.synced.delete(address);
    for (const [address, w] of this.watched) if (w.collectionId === collectionId) this.watched.delete(address);
    this.blockers.delete(collectionId);
    this.progress.delete(collectionId);
    this.lookedAt.delete(`progress/${collectionId}`);
    this.lookedAt.delete(`promote/${collectionId}`);
    for (const w of this.loadWaiters.get(collectionId) ?? []) {
      w.reject(new VbError(ErrorCode.CollectionNotLoaded, `collection ${label} was released while it was loading`));
    }
    this.loadWaiters.delete(collectionId);
    return Promise.all(writes).then(() => undefined);
  }

  waitLoaded(collectionId: bigint, deadline: number, resolve: () => void, reject: (err: unknown) => void): void {
    const c = this.meta.collection(collectionId);
    if (!c) {
      reject(collectionNotLoaded(collectionId));
      return;
    }
    if (c.status === "Loaded") {
      resolve();
      return;
    }
    let list = this.loadWaiters.get(collectionId);
    if (!list) this.loadWaiters.set(collectionId, (list = []));
    list.push({ deadline, resolve, reject });
  }

  waitReleased(collectionId: bigint, resolve: () => void): void {
    if (!this.dist.snapshot().collectionIds().has(collectionId)) {
      resolve();
      return;
    }
    let list = this.releaseWaiters.get(collectionId);
    if (!list) this.releaseWaiters.set(collectionId, (list = []));
    list.push({ deadline: Date.now() + this.params.releaseWaitMs, resolve });
  }

  // ---- the reconcile round ----

  /**
   * Probes the querynodes whose heartbeat is late (DistManager): "no responders" marks one down at once,
   * an answer keeps it up while the feed catches up.
   */
  private probeLate(now: number): void {
    const lateMs = Math.min(this.env.config.heartbeatAvailableMs / 2, 1.5 * this.env.config.heartbeatIntervalMs);
    for (const n of this.dist.late(now, lateMs)) {
      if (this.probing.has(n)) continue;
      this.probing.add(n);
      const sentAt = Date.now();
      const work = this.ctx.ask(this.env.subjects.querynode(asNodeId(n)), PROBE_TYPE, null, { timeoutMs: 1_000 });
      this.after(work, (r) => {
        this.probing.delete(n);
        if (r.ok) this.dist.probed(n, sentAt);
        else if (VbError.from(r.error).code === ErrorCode.ServiceUnavailable) {
          this.dist.gone(n, sentAt);
          this.downReasons.set(n, "its process is gone (no responders at its address)");
          this.kick();
        }
      });
    }
  }

  /** the last round's tasks: asked for by the checkers, and started */
  private planned: { tasks: number; started: number; byKind: Record<string, number> } = { tasks: 0, started: 0, byKind: {} };

  reconcile(now = Date.now()): void {
    if (!this.distReady) return;
    if (now - this.lastRoundEnd < this.roundRestMs()) {
      this.kick(); // too soon after a long round
      return;
    }
    const started = performance.now();
    const stagesMs: Record<string, number> = {};
    let lapAt = started;
    const lap = (stage: string) => {
      const t = performance.now();
      stagesMs[stage] = (stagesMs[stage] ?? 0) + (t - lapAt);
      lapAt = t;
    };
    this.reconcileRound(now, lap);
    this.lastRoundMs = performance.now() - started;
    this.lastRoundEnd = Date.now();
    const pulse = this.dist.pulseStats();
    const times = this.scheduler.takeTimes();
    this.params.onRound?.({
      tasksPlanned: this.planned.tasks,
      tasksStarted: this.planned.started,
      tasksStartedByKind: this.planned.byKind,
      tasksDone: times.done,
      taskAskMs: times.askMs,
      taskConfirmMs: times.confirmMs,
      ms: this.lastRoundMs,
      stagesMs,
      feedMessages: this.dist.taken,
      feedThreadActiveMs: this.feedThreadActiveMs?.() ?? 0,
      aliveNodes: this.dist.snapshot().nodes.size,
      tasksInFlight: this.scheduler.inflightTasks().length,
      movesInFlight: this.moves.size + this.channelMoves.size,
      feedLagMs: this.dist.lagMs,
      pulseLagMs: pulse.lagMs,
      pulseMessages: pulse.messages,
    });
  }

  private reconcileRound(now: number, lap: (stage: string) => void): void {
    this.probeLate(now);
    // (the last round's time, during which no heartbeat was taken, does not count as a node's silence)
    const { down, up } = this.dist.refreshLiveness(now, this.lastRoundMs);
    for (const n of up) this.log.info({ node: n }, "querynode is up");
    for (const n of down) {
      const why = this.downReasons.get(n) ?? `no heartbeat for ${this.env.config.heartbeatAvailableMs} ms`;
      this.downReasons.delete(n);
      this.log.warn({ node: n }, `querynode is down: ${why}`);
    }
    if (down.length > 0) this.scheduler.failNodes(new Map(down.map((n) => [n, `node ${n} is down`])), now);
    const snap = this.dist.snapshot();
    lap("liveness");

    // resource groups, then replicas, follow the alive querynodes; nodes leaving a replica's group serve
    // until their work is elsewhere (the checkers see them as stopping)
    const leaving = recoverResourceGroups(this, snap);
    lap("replicas");

    // tasks whose change shows are finished
    const { failed } = this.scheduler.confirm(
      (t) => effectVisible(t.action, snap),
      now,
      { distAt: (n) => this.dist.distAt(n), afterMs: this.env.config.heartbeatIntervalMs, maxMs: this.params.distWaitMaxMs },
      (n) => this.dist.revision(n),
    );
    for (const t of failed) this.log.warn({ task: t.id, node: t.action.nodeId }, `${describeAction(t.action)}: ${this.scheduler.failures().get(t.key)?.reason}`);
    lap("confirm");

    // this round's share of a large cluster (undefined: every collection)
    const share = this.nextShare();

    // handoff: promote next targets that every replica has loaded (one a round: a promotion stores the
    // target and has its delegators' views made anew; another one ready waits for the next round, which
    // looks there first)
    const cut = new Set<bigint>();
    let promoted = false;
    for (const c of this.meta.allCollections()) {
      const next = this.targets.next(c.collectionId);
      if (!next || (share && !share.has(c.collectionId))) continue;
      if (!this.due(`promote/${c.collectionId}`, now, this.lookInterval())) continue;
      const ready = promotionReadiness(this.meta.replicasOf(c.collectionId), next, snap).ready;
      lap("targets.readiness");
      if (!ready) continue;
      if (promoted) {
        cut.add(c.collectionId);
        this.lookedAt.delete(`promote/${c.collectionId}`);
        continue;
      }
      promoted = true;
      const p = this.targets.promote(c.collectionId)!;
      p.stored.catch((err: unknown) => this.log.error({ err, collection: c.collectionId }, "could not store the current target"));
      this.log.info({ collection: c.collectionId, version: p.target.version, segments: p.target.segments.size }, "next target promoted to current");
      lap("targets.promote");
    }
    this.fetchTargets(now);
    this.fetchIndexes(now);
    lap("targets");

    // checkers → tasks
    const input: CheckInput = {
      collections: this.meta.allCollections(),
      replicas: this.meta.allReplicas(),
      targets: new Map(this.meta.allCollections().map((c) => [c.collectionId, this.targets.get(c.collectionId)])),
      dist: withLeaving(snap, leaving),
      failures: this.scheduler.failures(),
      synced: this.viewsForCheck(),
      pending: this.scheduler.pendingLoads(),
      loading: this.scheduler.loadingSegments(),
      watched: new Map([...this.watched].map(([address, w]) => [address, w.partitions])),
      indexes: this.indexes,
      moves: this.moves,
      channelMoves: this.channelMoves,
      loadsPerNode: this.params.taskExecutionCap,
      loadsPerRound: this.params.maxLoadsPerRound,
      runningPerNode: this.scheduler.runningPerNode(),
      inflight: (key) => this.scheduler.isInflight(key),
      share,
      ...(this.params.leaderWalkBudget > 0 ? { leaderWalkBudget: this.params.leaderWalkBudget } : {}),
    };
    this.settleMoves(snap, now);
    this.settleChannelMoves(snap, now);
    lap("input");
    const result = runCheckers(input, (stage) => lap(`check.${stage}`));
    this.balance(input, result.tasks, now);
    for (const c of result.cut ?? []) cut.add(c);
    if (share) {
      this.resumedAt = resumeAt(share, cut, this.resumedAt);
      if (this.resumedAt !== undefined) this.shareFrom = this.resumedAt;
    }
    lap("balance");
    this.scheduler.replacePending(result.tasks, now, share && unlookedOutside(share, new Set(input.collections.map((c) => c.collectionId))));
    const started = this.scheduler.dispatch(now);
    const byKind: Record<string, number> = {};
    for (const t of started) byKind[t.action.kind] = (byKind[t.action.kind] ?? 0) + 1;
    this.planned = { tasks: result.tasks.length, started: started.length, byKind };
    this.startTasks(started);
    lap("tasks");

    // observers: blockers, progress, state
    for (const c of this.meta.allCollections()) {
      const f = this.refreshes.failure(c.collectionId);
      if (f) addBlocker(result, c.collectionId, { kind: "target", subject: `${c.collectionId}`, reason: `${f}; retrying` });
      else if (!this.targets.current(c.collectionId) && !this.targets.next(c.collectionId)) {
        addBlocker(result, c.collectionId, { kind: "target", subject: `${c.collectionId}`, reason: "waiting for datacoord's recovery info" });
      }
    }
    this.blockers = share ? mergeShareBlockers(this.blockers, result.blockers, share, this.meta.allCollections()) : result.blockers;
    for (const c of this.meta.allCollections()) if (!share || share.has(c.collectionId)) this.observe(c, snap, now);
    this.snap = snap;
    this.settleWaiters(snap, now);
    lap("observe");
  }

  /** where the next round's share starts */
  private shareFrom: bigint | undefined;
  /** the collection the round's share was made to start at, because the round before cut its look short */
  private resumedAt: bigint | undefined;

  /** The loaded collections and their copies (target segments × replicas), for `roundShare`. */
  private shareCandidates(): ShareCandidate[] {
    return this.meta.allCollections().map((c) => {
      const pair = this.targets.get(c.collectionId);
      const segments = Math.max(pair.current?.segments.size ?? 0, pair.next?.segments.size ?? 0);
      return { collectionId: c.collectionId, copies: segments * Math.max(1, this.meta.replicasOf(c.collectionId).length) };
    });
  }

  /** This round's share of the collections (`roundShare`), or undefined: every collection. */
  private nextShare(): ReadonlySet<bigint> | undefined {
    const s = roundShare(this.shareCandidates(), this.params.maxCopiesPerRound, this.shareFrom);
    this.shareFrom = s?.next;
    return s?.collections;
  }

  /** where the next balance look's share starts (balance looks come every few rounds: a cursor of their own, so that every share gets them) */
  private balanceFrom: bigint | undefined;

  /**
   * How often a look that walks a whole target (load progress, promotion readiness) is taken: every
   * round while rounds are short, less often as they grow (at most every second), so that a large load
   * does not pay it every round.
   */
  private lookInterval(): number {
    return Math.min(1_000, 5 * this.lastRoundMs);
  }

  /** Whether `what` was last looked at `intervalMs` or more ago (and marks it looked at now if so). */
  private due(what: string, now: number, intervalMs: number): boolean {
    if (now - (this.lookedAt.get(what) ?? 0) < intervalMs) return false;
    this.lookedAt.set(what, now);
    return true;
  }

  /** Forgets balance moves that are done (the copy is on `to` only) or can no longer be done. */
  private settleMoves(snap: DistSnapshot, now: number): void {
    for (const [key, m] of this.moves) {
      const onTo = snap.hasSegment(m.to, m.collectionId, m.segmentId);
      const onFrom = snap.hasSegment(m.from, m.collectionId, m.segmentId);
      let why: string | undefined;
      if (onTo && !onFrom) why = "";
      else if (!snap.isAlive(m.to) || snap.isStopping(m.to)) why = `node ${m.to} is no longer up`;
      else if (!this.targets.current(m.collectionId)?.segments.has(m.segmentId)) why = "the segment left the target";
      else if (now - m.at > this.params.balanceMoveTimeoutMs) why = `not done within ${this.params.balanceMoveTimeoutMs} ms`;
      if (why === undefined) continue;
      this.moves.delete(key);
      for (const w of this.moveWaiters.get(key) ?? []) w(why);
      this.moveWaiters.delete(key);
      if (why === "") this.log.info({ collection: m.collectionId, segment: m.segmentId, from: m.from, to: m.to, ms: now - m.at }, "balance: segment moved");
      else this.log.warn({ collection: m.collectionId, segment: m.segmentId, from: m.from, to: m.to }, `balance: move given up: ${why}`);
    }
  }

  /** Forgets channel moves that are done (the delegator is on `to` only) or can no longer be done. */
  private settleChannelMoves(snap: DistSnapshot, now: number): void {
    for (const [key, m] of this.channelMoves) {
      const onTo = snap.delegatorOn(m.to, m.collectionId, m.vchannel, m.replicaId) !== undefined;
      const onFrom = snap.delegatorOn(m.from, m.collectionId, m.vchannel, m.replicaId) !== undefined;
      const failure = this.scheduler.failures().get(channelKey(m.replicaId, m.vchannel));
      let why: string | undefined;
      if (onTo && !onFrom) why = "";
      else if (!snap.isAlive(m.to) || snap.isStopping(m.to)) why = `node ${m.to} is no longer up`;
      else if (!onFrom && !onTo) why = "the channel has no delegator on either node";
      else if (!this.targets.current(m.collectionId)?.channels.has(m.vchannel)) why = "the channel left the target";
      else if (failure && failure.nodeId === m.to) why = failure.reason;
      else if (now - m.at > this.params.balanceMoveTimeoutMs) why = `not done within ${this.params.balanceMoveTimeoutMs} ms`;
      if (why === undefined) continue;
      this.channelMoves.delete(key);
      if (why === "") this.log.info({ collection: m.collectionId, vchannel: m.vchannel, from: m.from, to: m.to, ms: now - m.at }, "balance: channel moved");
      else this.log.warn({ collection: m.collectionId, vchannel: m.vchannel, from: m.from, to: m.to }, `balance: channel move given up: ${why}`);
    }
  }

  /**
   * Plans channel moves, then segment moves (BalanceChecker) every balanceIntervalMs while the checkers
   * have no load, watch or index load of their own planned or in flight (a load, a recovery, an index
   * goes first); moves in flight do not hold the next ones back, each replica has at most its share in
   * flight. A collection with a channel move planned gets no segment move in the same round.
   */
  private balance(input: CheckInput, planned: readonly { action: TaskAction }[], now: number): void {
    if (this.params.balanceIntervalMs <= 0 || now - this.lastBalanceAt < this.params.balanceIntervalMs) return;
    const ownWork = (a: TaskAction) => holdsBalanceBack(a, this.moves, this.channelMoves);
    if (planned.some((t) => ownWork(t.action))) return;
    for (const t of this.scheduler.inflightTasks()) if (ownWork(t.action)) return;
    this.lastBalanceAt = now;
    // looks that found nothing to move, over every collection (a large cluster's share by share), are not
    // taken again until the copies, delegators, nodes or replicas change
    const snap = input.dist;
    const key = [
      ...input.collections.map((c) => {
        const k = snap.changeCursor(c.collectionId);
        return `${c.collectionId}:${c.status}:${k.epoch}/${k.at}:${snap.delegatorsOf(c.collectionId).length}`;
      }),
      [...snap.nodes.keys()].join(","),
      input.replicas.map((r) => r.nodes.join(",")).join(";"),
    ].join("|");
    const idle = this.idleBalance?.key === key ? this.idleBalance : undefined;
    if (idle && input.collections.every((c) => idle.looked.has(c.collectionId))) return;
    // a share of its own, in turn
    const bs = input.share ? roundShare(this.shareCandidates(), this.params.maxCopiesPerRound, this.balanceFrom) : undefined;
    this.balanceFrom = bs?.next;
    const looked = bs ? input.collections.filter((c) => bs.collections.has(c.collectionId)) : input.collections;
    const shared: CheckInput = { ...input, collections: looked };
    const movesBefore = this.moves.size + this.channelMoves.size;
    for (const m of planChannelBalance(shared, this.channelMoves)) {
      this.channelMoves.set(channelMoveKey(m.replicaId, m.vchannel), { ...m, at: now });
      this.log.info({ collection: m.collectionId, replica: m.replicaId, vchannel: m.vchannel, from: m.from, to: m.to }, "balance: moving a channel");
    }
    if (this.channelMoves.size > 0) this.kick();
    const opts = {
      ...DEFAULT_BALANCE_OPTIONS,
      maxMovesPerRound: this.params.balanceMaxMovesPerRound,
      maxMovesPerReplica: this.params.balanceMaxMovesPerReplica,
      ...(this.params.balancePlanMs > 0 ? { deadline: performance.now() + this.params.balancePlanMs } : {}),
    };
    for (const m of planBalance(shared, this.moves, opts)) {
      this.moves.set(moveKey(m.replicaId, m.segmentId), { ...m, at: now });
      this.log.info({ collection: m.collectionId, replica: m.replicaId, segment: m.segmentId, rows: m.rows, from: m.from, to: m.to }, "balance: moving a segment");
    }
    if (this.moves.size > 0) this.kick();
    // (a look cut short by its time found nothing only in what it looked at: not counted)
    const cut = opts.deadline !== undefined && performance.now() > opts.deadline;
    if (!cut && movesBefore === 0 && this.moves.size + this.channelMoves.size === 0) {
      this.idleBalance = idle ?? { key, looked: new Set() };
      for (const c of looked) this.idleBalance.looked.add(c.collectionId);
    } else this.idleBalance = undefined;
  }

  /**
   * Acknowledged views, plus what syncs in flight are telling delegators (a copy they may point at). The
   * view made for a sync in flight is the same object every round while its acknowledged view stays (the
   * checkers remember what they found under a view's identity).
   */
  private viewsForCheck(): Map<string, SyncedView> {
    const out = new Map<string, SyncedView>(this.synced);
    for (const t of this.scheduler.inflightSyncs()) {
      if (t.action.kind !== "SyncLeader") continue;
      const prev = out.get(t.action.address);
      if (!prev) continue; // an unknown view stays unknown until acknowledged
      const made = this.syncViews.get(t);
      if (made?.from === prev) {
        out.set(t.action.address, made.view);
        continue;
      }
      // what the sync adds: the entries it sets (a view made from the acknowledged one shares the rest)
      const { set } = viewDelta(prev.sealed, t.action.sealed);
      let view = prev;
      if (set.length > 0) {
        view = { targetVersion: prev.targetVersion, sealed: [...prev.sealed, ...set] };
        derivePlaces(view.sealed, prev.sealed, set);
      }
      this.syncViews.set(t, { from: prev, view });
      out.set(t.action.address, view);
    }
    return out;
  }

  /** per SyncLeader task in flight, the view viewsForCheck made for it and from which acknowledged view */
  private readonly syncViews = new WeakMap<Task, { from: SyncedView; view: SyncedView }>();

  private observe(c: CollectionLoad, snap: DistSnapshot, now: number): void {
    const key = partitionKey(c);
    const stale = (address: string) => {
      const w = this.watched.get(address);
      return w !== undefined && w.partitions !== key;
    };
    // a Loaded collection stays Loaded: its progress (for status) is brought up to date now and then only
    if (this.progress.has(c.collectionId) && !this.due(`progress/${c.collectionId}`, now, c.status === "Loaded" ? PROGRESS_REFRESH_MS : this.lookInterval())) return;
    const p = loadProgress(this.meta.replicasOf(c.collectionId), this.targets.get(c.collectionId), snap, c.partitionIds, stale);
    this.progress.set(c.collectionId, p);
    if (c.status === "Loaded") return;
    if (p.loaded) {
      const loaded: CollectionLoad = {
        ...c,
        status: "Loaded",
        progress: 100,
        loadedAt: now,
        loadedPartitionIds: [...new Set([...c.loadedPartitionIds, ...c.partitionIds])],
      };
      void this.meta.putCollection(loaded).catch(() => undefined);
      this.log.info({ collection: c.collectionId, ms: now - c.loadStartedAt }, "collection loaded");
      for (const w of this.loadWaiters.get(c.collectionId) ?? []) w.resolve();
      this.loadWaiters.delete(c.collectionId);
    } else if (p.progress > c.progress) {
      void this.meta.putCollection({ ...c, progress: p.progress }).catch(() => undefined);
    }
  }

  private settleWaiters(snap: DistSnapshot, now: number): void {
    for (const [collectionId, list] of this.loadWaiters) {
      const keep = list.filter((w) => {
        if (w.deadline === 0 || now < w.deadline) return true;
        const bs = (this.blockers.get(collectionId) ?? []).map(formatBlocker);
        w.reject(
          new VbError(
            ErrorCode.Timeout,
            `collection ${collectionLabel(collectionId, this.meta.collection(collectionId)?.name)} is still loading (${this.meta.collection(collectionId)?.progress ?? 0}%)` +
              (bs.length ? `: waiting on ${bs.slice(0, 3).join("; ")}` : ""),
            { retriable: true },
          ),
        );
        return false;
      });
      if (keep.length) this.loadWaiters.set(collectionId, keep);
      else this.loadWaiters.delete(collectionId);
    }
    const present = snap.collectionIds();
    for (const [collectionId, list] of this.releaseWaiters) {
      const keep = list.filter((w) => {
        if (present.has(collectionId) && now < w.deadline) return true;
        w.resolve();
        return false;
      });
      if (keep.length) this.releaseWaiters.set(collectionId, keep);
      else this.releaseWaiters.delete(collectionId);
    }
  }
}

/** Why a task failed, in words a person can act on. */
export function failureReason(t: Task, err: unknown, timeoutMs: number): string {
  const who = t.action.kind === "SyncLeader" ? `delegator ${t.action.vchannel} on node ${t.action.nodeId}` : `node ${t.action.nodeId}`;
  if (err instanceof VbError) {
    if (err.code === ErrorCode.Timeout) return `${who} did not answer within ${timeoutMs} ms`;
    if (err.code === ErrorCode.ServiceUnavailable) return `${who} is unreachable: ${err.message}`;
    return `${who} refused: ${err.message}`;
  }
  return `${who} failed: ${errorText(err)}`;
}
