/**
 * The querycoord actor (Milvus's QueryCoord v2). At start it reads its meta (loads, replicas, current
 * targets) from KV, follows the querynodes' distributions on the `VB_DIST` feed and the events stream,
 * and runs a reconcile round every `reconcileIntervalMs` and soon after any change. Jobs (load/release)
 * change meta one at a time per collection; checkers turn the difference between targets and the
 * distribution into tasks; observers promote targets and report progress. Nothing in `receive` waits on
 * a peer: asks are started here and continue back in the mailbox when they settle (ctx.reenterAfter).
 */
import { VbError } from "../../protocol/errors.ts";
import { messageType } from "../../protocol/messages/api.ts";
import type { IndexEvent } from "../../protocol/messages/indexes.ts";
import { QUERYCOORD, type QuerycoordApi } from "../../protocol/messages/querycoord.ts";
import type { QueryNodeDist } from "../../protocol/messages/querynode.ts";
import { Actor, type Message, type PipeResult } from "../../runtime/actor.ts";
import type { FeedFollower } from "../../runtime/feed.ts";
import { FeedPulse } from "../../runtime/feed_pulse.ts";
import { asNodeId } from "../../protocol/ids.ts";
import type { DmlConsumption } from "../../runtime/dml_log.ts";
import type { ClusterEnv } from "../env.ts";
import { followEvents, type VbEvent } from "../events.ts";
import { errorText, QuerycoordCore } from "./core.ts";
import type { SegmentsChange } from "./dist/dist_feed.ts";
import { followQueryNodeDistsOffThread } from "./dist/dist_feed_thread.ts";
import { JobQueues, type Job, type JobStep } from "./job/job.ts";
import { AddPartitionJob, groupLack, LoadJob, replicaGroups } from "./job/load_job.ts";
import { ReleaseJob } from "./job/release_job.ts";
import { BUCKET } from "./kv_layout.ts";
import { MSG } from "./messages.ts";
import { KvWriter } from "./meta/kv_writer.ts";
import { Meta } from "./meta/meta.ts";
import { ResourceManager } from "./meta/resource_manager.ts";
import { loadBalance } from "./balance/manual_balance.ts";
import {
  createResourceGroup,
  describeResourceGroup,
  dropResourceGroup,
  listResourceGroups,
  transferNode,
  transferReplica,
  updateResourceGroups,
} from "./rg_services.ts";
import { TargetManager } from "./meta/target_manager.ts";
import { DEFAULT_QUERYCOORD_PARAMS, type QuerycoordParams } from "./params.ts";
import { bodyOf, optionalBool, optionalId, optionalIds, optionalInt, requiredId, requiredString } from "../request_fields.ts";
import {
  getLoadingProgress,
  getLoadState,
  getReplicas,
  getSegmentInfo,
  getShardLeaders,
  getStatus,
  showCollections,
} from "./services.ts";

const MAX_REPLICAS = 64;
/** After the feed's pulse failed to start, the next try waits this long. */
const PULSE_RETRY_MS = 30_000;

type Verb = keyof QuerycoordApi;

export class QuerycoordActor extends Actor {
  private core: QuerycoordCore | undefined;
  private readonly params: QuerycoordParams;
  private readonly jobs = new JobQueues();
  private follower: FeedFollower | undefined;
  private pulse: FeedPulse | undefined;
  /** the pulse being started (stopped by postStop if it comes after the actor stopped) */
  private pulseStarting: Promise<FeedPulse> | undefined;
  private pulseRetryAt = 0;
  private events: DmlConsumption | undefined;
  private writers: KvWriter[] = [];

  constructor(
    private readonly env: ClusterEnv,
    params: Partial<QuerycoordParams> = {},
  ) {
    super();
    this.params = { ...DEFAULT_QUERYCOORD_PARAMS, ...params };
  }

  override async preStart(): Promise<void> {
    const { env, params } = this;
    const log = this.ctx.log;
    const [kc, kr, kt, kg] = await Promise.all([
      env.meta(BUCKET.collections),
      env.meta(BUCKET.replicas),
      env.meta(BUCKET.targets),
      env.meta(BUCKET.resourceGroups),
    ]);
    const writers = {
      collections: new KvWriter(kc, log),
      replicas: new KvWriter(kr, log),
      targets: new KvWriter(kt, log),
      resourceGroups: new KvWriter(kg, log),
    };
    this.writers = Object.values(writers);
    const meta = await Meta.open({ collections: kc, replicas: kr }, writers);
    const targets = await TargetManager.open(kt, writers.targets);
    for (const c of targets.collections()) if (!meta.collection(c)) void targets.remove(c); // a release that did not finish
    const rgs = await ResourceManager.open(kg, writers.resourceGroups);
    const core = new QuerycoordCore(env, params, this.ctx, log, meta, targets, rgs);
    this.core = core;
    for (const c of meta.allCollections()) core.requestTarget(c.collectionId);

    this.events = await followEvents(env, (ev) => this.ctx.self(MSG.event, { ev }));
    await this.follow();
    this.ctx.timers.startPeriodic("tick", params.reconcileIntervalMs, MSG.tick);
    log.info(
      {
        collections: meta.allCollections().length,
        replicas: meta.allReplicas().length,
        resourceGroups: rgs.names().length,
        nodes: core.dist.aliveAt(Date.now()).length,
      },
      "querycoord started",
    );
  }

  /**
   * Starts the feed's pulse (when the server last stored each querynode's head, read on a thread of its
   * own; see runtime/feed_pulse.ts) in the background; without it (it failed) silence is judged from the
   * content alone.
   */
  private startPulse(): void {
    const core = this.core!;
    if (this.pulse?.alive || this.pulseStarting || Date.now() < this.pulseRetryAt) return;
    void this.pulse?.stop();
    this.pulse = undefined;
    const { subjects } = this.env;
    const start = FeedPulse.start(this.env.nc, { stream: subjects.distStream(), filter: subjects.distRoleSubjects("querynode"), log: this.ctx.log });
    this.pulseStarting = start;
    core.after(start, (r) => {
      this.pulseStarting = undefined;
      if (!r.ok) {
        this.pulseRetryAt = Date.now() + PULSE_RETRY_MS;
        this.ctx.log.warn({ err: errorText(r.error) }, "the distribution feed's pulse did not start; silence is judged from the feed's content alone");
        return;
      }
      const p = r.value;
      this.pulse = p;
      core.dist.setPulse({ heardAt: (n) => p.lastStored(subjects.distSubject("querynode", asNodeId(n))), lagMs: () => p.lagMs, messages: () => p.messages, alive: () => p.alive });
    });
  }

  /** Follows the querynodes' distributions; resolves once the snapshot is in (or after a while). */
  private async follow(): Promise<void> {
    const follower = await followQueryNodeDistsOffThread(
      this.env,
      this.ctx.log,
      (dist, storedAt, live, change, heard) => this.ctx.self(MSG.dist, { dist, storedAt, live, change, heard }),
    );
    this.follower = follower;
    this.core!.feedThreadActiveMs = follower.threadActiveMs;
    this.startPulse(); // (the stream exists now)
    follower.done.catch((err: unknown) => {
      this.ctx.log.error({ err: errorText(err) }, "following the distribution feed failed; following again");
      this.ctx.self(MSG.distLost);
    });
    const ready = follower.ready.then(
      () => this.ctx.self(MSG.distReady),
      () => undefined,
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([ready, new Promise<void>((r) => (timer = setTimeout(r, this.params.distReadyTimeoutMs)))]);
    clearTimeout(timer);
  }

  override async postStop(): Promise<void> {
    this.core?.retire();
    await Promise.allSettled([this.follower?.stop(), this.events?.stop(), this.pulse?.stop(), this.pulseStarting?.then((p) => p.stop())]);
    await Promise.race([Promise.allSettled(this.writers.map((w) => w.flush())), new Promise((r) => setTimeout(r, 2_000))]);
  }

  override receive(msg: Message): unknown {
    const core = this.core!;
    switch (msg.type) {
      case MSG.tick:
        this.startPulse(); // (again, if its worker died)
        core.reconcile();
        return undefined;
      case MSG.kick:
        core.reconcile();
        return undefined;
      case MSG.dist: {
        const { dist, storedAt, live, change, heard } = msg.body as { dist: QueryNodeDist; storedAt: number; live: boolean; change?: SegmentsChange; heard?: number };
        if (core.dist.update(dist, storedAt, live ? Date.now() : undefined, change, heard)) core.onDist();
        return undefined;
      }
      case MSG.distReady:
        if (!core.distReady) {
          core.distReady = true;
          this.ctx.log.info({ nodes: core.dist.refreshLiveness(Date.now()).up.length }, "distribution feed ready");
          core.kick();
        }
        return undefined;
      case MSG.distLost:
        this.ctx.timers.startSingle("refollow", 1_000, MSG.refollow);
        return undefined;
      case MSG.refollow:
        void this.follower?.stop();
        core.after(this.follow(), (r) => {
          if (!r.ok) this.ctx.self(MSG.distLost);
        });
        return undefined;
      case MSG.event:
        this.onEvent((msg.body as { ev: VbEvent }).ev);
        return undefined;
    }
    const verb = msg.type.startsWith(`${QUERYCOORD}.`) ? (msg.type.slice(QUERYCOORD.length + 1) as Verb) : undefined;
    if (verb && Object.hasOwn(API, verb)) return API[verb](this, core, bodyOf(`querycoord.${verb}`, msg.body), msg);
    throw VbError.invalid(
      `unknown message type "${msg.type}" for querycoord (1100): it takes ${Object.keys(API)
        .map((v) => messageType(QUERYCOORD, v))
        .join(", ")}`,
    );
  }

  // ---- jobs ----

  submitJob(job: Job): Promise<null> {
    if (this.jobs.submit(job)) this.runJob(job, () => job.start(this.core!));
    return job.result;
  }

  private runJob(job: Job, step: () => JobStep): void {
    let s: JobStep;
    try {
      s = step();
    } catch (err) {
      this.failJob(job, err);
      return;
    }
    const core = this.core!;
    if ("wait" in s) core.after(s.wait, (r) => this.runJob(job, () => job.resume(core, r)));
    else core.after(s.stored, (r) => this.onJobStored(job, r));
  }

  private onJobStored(job: Job, r: PipeResult<unknown>): void {
    if (!r.ok) {
      this.failJob(job, r.error);
      return;
    }
    try {
      job.finished(this.core!);
    } catch (err) {
      job.reject(VbError.from(err));
    }
    this.nextJob(job);
  }

  private failJob(job: Job, err: unknown): void {
    const e = VbError.from(err);
    this.ctx.log.warn({ collection: job.collectionId, job: job.kind, code: e.code }, `${job.kind} failed: ${e.message}`);
    job.reject(e);
    this.nextJob(job);
  }

  private nextJob(job: Job): void {
    const next = this.jobs.done(job);
    if (next) this.runJob(next, () => next.start(this.core!));
  }

  private background(job: Job): void {
    this.submitJob(job).catch((err: unknown) => this.ctx.log.warn({ collection: job.collectionId, err: errorText(err) }, `${job.kind} failed`));
  }

  // ---- events ----

  private onEvent(event: VbEvent): void {
    const core = this.core!;
    const ev = event as VbEvent | IndexEvent;
    switch (ev.kind) {
      case "collection.dropped":
        if (core.meta.collection(ev.collectionId)) this.background(new ReleaseJob(ev.collectionId, { wait: false, why: "collection dropped" }));
        return;
      case "partition.created":
        if (core.meta.collection(ev.collectionId)) this.background(new AddPartitionJob(ev.collectionId, ev.partition.partitionId));
        return;
      case "partition.dropped":
        if (core.meta.collection(ev.collectionId)) {
          this.background(new ReleaseJob(ev.collectionId, { partitionIds: [ev.partitionId], wait: false, why: "partition dropped" }));
        }
        return;
      case "segment.flushed":
        if (core.meta.collection(ev.segment.collectionId)) core.requestTarget(ev.segment.collectionId);
        return;
      case "segment.dropped":
        if (core.meta.collection(ev.collectionId)) core.requestTarget(ev.collectionId);
        return;
      case "index.created":
        if (core.meta.collection(ev.index.collectionId)) core.requestIndexes(ev.index.collectionId);
        return;
      case "index.dropped":
      case "segment.indexed":
        if (core.meta.collection(ev.collectionId)) core.requestIndexes(ev.collectionId);
        return;
      default:
        return;
    }
  }
}

type Handler = (actor: QuerycoordActor, core: QuerycoordCore, b: Record<string, unknown>, msg: Message) => unknown;

/** A new load asking for more replicas than its resource groups have querynodes fails before it is queued. */
function failFastOnNodeLack(core: QuerycoordCore, collectionId: bigint, replicaNumber: number | undefined, resourceGroups: string[] | undefined): void {
  if (core.meta.collection(collectionId)) return;
  const groups = replicaGroups(core, replicaNumber ?? 1, resourceGroups);
  if (core.inStartupGrace()) return;
  const lack = groupLack(core, collectionId, groups);
  if (lack) throw lack;
}

/** `resourceGroups` of a load: a list of group names (a name may repeat: one replica each). */
function resourceGroupsOf(verb: string, b: Record<string, unknown>): string[] | undefined {
  const v = b.resourceGroups;
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string" && x.length > 0)) {
    throw VbError.invalid(`${verb}: field "resourceGroups" must be a list of resource group names`);
  }
  return v.length > 0 ? (v as string[]) : undefined;
}

/** With resource groups and no replica number, one replica per group named (Milvus asks as many). */
function replicaNumberOf(verb: string, b: Record<string, unknown>, resourceGroups: string[] | undefined): number | undefined {
  const n = optionalInt(verb, b, "replicaNumber", 1, MAX_REPLICAS);
  return n ?? (resourceGroups && resourceGroups.length > 1 ? resourceGroups.length : undefined);
}

function waitDeadline(timeoutMs: number | undefined, msg: Message): number {
  return timeoutMs !== undefined ? Date.now() + timeoutMs : msg.deadline;
}

/** Every verb of QuerycoordApi and its handler: the compiler checks that none is missing. */
const API: { [V in Verb]: Handler } = {
  LoadCollection: (actor, core, b, msg) => {
    const collectionId = requiredId("querycoord.LoadCollection", b, "collectionId");
    const resourceGroups = resourceGroupsOf("querycoord.LoadCollection", b);
    const replicaNumber = replicaNumberOf("querycoord.LoadCollection", b, resourceGroups);
    const timeoutMs = optionalInt("querycoord.LoadCollection", b, "timeoutMs", 1, 24 * 3_600_000);
    const wait = optionalBool("querycoord.LoadCollection", b, "wait") ?? false;
    failFastOnNodeLack(core, collectionId, replicaNumber, resourceGroups);
    const job = new LoadJob({
      collectionId,
      ...(replicaNumber === undefined ? {} : { replicaNumber }),
      ...(resourceGroups === undefined ? {} : { resourceGroups }),
      wait,
      deadline: waitDeadline(timeoutMs, msg),
    });
    return actor.ctx.reenter(actor.submitJob(job));
  },
  LoadPartitions: (actor, core, b, msg) => {
    const collectionId = requiredId("querycoord.LoadPartitions", b, "collectionId");
    const partitionIds = optionalIds("querycoord.LoadPartitions", b, "partitionIds");
    if (!partitionIds || partitionIds.length === 0) throw VbError.invalid(`querycoord.LoadPartitions: field "partitionIds" must name at least one partition`);
    const resourceGroups = resourceGroupsOf("querycoord.LoadPartitions", b);
    const replicaNumber = replicaNumberOf("querycoord.LoadPartitions", b, resourceGroups);
    const timeoutMs = optionalInt("querycoord.LoadPartitions", b, "timeoutMs", 1, 24 * 3_600_000);
    const wait = optionalBool("querycoord.LoadPartitions", b, "wait") ?? false;
    failFastOnNodeLack(core, collectionId, replicaNumber, resourceGroups);
    const job = new LoadJob({
      collectionId,
      partitionIds,
      ...(replicaNumber === undefined ? {} : { replicaNumber }),
      ...(resourceGroups === undefined ? {} : { resourceGroups }),
      wait,
      deadline: waitDeadline(timeoutMs, msg),
    });
    return actor.ctx.reenter(actor.submitJob(job));
  },
  ReleaseCollection: (actor, _core, b) => {
    const collectionId = requiredId("querycoord.ReleaseCollection", b, "collectionId");
    return actor.ctx.reenter(actor.submitJob(new ReleaseJob(collectionId, { wait: true, why: "ReleaseCollection" })));
  },
  ReleasePartitions: (actor, _core, b) => {
    const collectionId = requiredId("querycoord.ReleasePartitions", b, "collectionId");
    const partitionIds = optionalIds("querycoord.ReleasePartitions", b, "partitionIds");
    if (!partitionIds || partitionIds.length === 0) throw VbError.invalid(`querycoord.ReleasePartitions: field "partitionIds" must name at least one partition`);
    return actor.ctx.reenter(actor.submitJob(new ReleaseJob(collectionId, { partitionIds, wait: false, why: "ReleasePartitions" })));
  },
  GetLoadState: (_a, core, b) =>
    getLoadState(core, requiredId("querycoord.GetLoadState", b, "collectionId"), optionalIds("querycoord.GetLoadState", b, "partitionIds")),
  GetLoadingProgress: (_a, core, b) => getLoadingProgress(core, requiredId("querycoord.GetLoadingProgress", b, "collectionId")),
  ShowCollections: (_a, core) => showCollections(core),
  GetShardLeaders: (_a, core, b) => getShardLeaders(core, requiredId("querycoord.GetShardLeaders", b, "collectionId")),
  GetReplicas: (_a, core, b) => getReplicas(core, requiredId("querycoord.GetReplicas", b, "collectionId")),
  GetSegmentInfo: (_a, core, b) => getSegmentInfo(core, requiredId("querycoord.GetSegmentInfo", b, "collectionId")),
  GetStatus: (_a, core) => getStatus(core),
  CreateResourceGroup: (actor, core, b) => actor.ctx.reenter(createResourceGroup(core, b)),
  DropResourceGroup: (actor, core, b) => actor.ctx.reenter(dropResourceGroup(core, b)),
  UpdateResourceGroups: (actor, core, b) => actor.ctx.reenter(updateResourceGroups(core, b)),
  DescribeResourceGroup: (_a, core, b) => describeResourceGroup(core, b),
  ListResourceGroups: (_a, core) => listResourceGroups(core),
  TransferNode: (actor, core, b) => actor.ctx.reenter(transferNode(core, b)),
  TransferReplica: (actor, core, b) => actor.ctx.reenter(transferReplica(core, b)),
  LoadBalance: (actor, core, b, msg) => {
    const verb = "querycoord.LoadBalance";
    const sourceNode = requiredString(verb, b, "sourceNode");
    const collectionId = optionalId(verb, b, "collectionId");
    const dstNodes = b.dstNodes === undefined || b.dstNodes === null ? undefined : b.dstNodes;
    if (dstNodes !== undefined && (!Array.isArray(dstNodes) || !dstNodes.every((n) => typeof n === "string" && n.length > 0))) {
      throw VbError.invalid(`${verb}: field "dstNodes" must be a list of querynode ids`);
    }
    const segmentIds = optionalIds(verb, b, "segmentIds");
    const wait = optionalBool(verb, b, "wait") ?? false;
    const timeoutMs = optionalInt(verb, b, "timeoutMs", 1, 24 * 3_600_000);
    const req = {
      sourceNode,
      ...(collectionId === undefined ? {} : { collectionId }),
      ...(dstNodes && dstNodes.length > 0 ? { dstNodes: dstNodes as string[] } : {}),
      ...(segmentIds && segmentIds.length > 0 ? { segmentIds } : {}),
    };
    return actor.ctx.reenter(loadBalance(core, req, wait, waitDeadline(timeoutMs, msg)));
  },
};
