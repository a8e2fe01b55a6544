/**
 * The querynode (QueryNode v2) at `vb.qn.<node>`: it hosts the delegators querycoord puts on it (each an
 * actor at its own address), holds sealed segments (plain objects owned here), answers the delegators'
 * SearchSegments/QuerySegments over them, takes their forwarded deletes, accounts for memory, and
 * publishes its distribution on the feed.
 *
 * Nothing heavy runs in the mailbox: loads read the object store in `pipeToSelf` work and the segment
 * enters the store when its load message comes back; searches and queries run in `reenter` work over
 * segment objects that only change by monotonic delete stamps (see sealed_segment.ts).
 *
 * Vector indexes (LoadIndex, or LoadSegments with `indexes`): the artifact is read from the object
 * store and loaded on a search thread (search_threads.ts), its memory reserved first (a refusal is 3,
 * shown in the dist's loading list like a segment's); it is attached to the segment when the load
 * message comes back, and the dist lists it under the segment. Searches of sealed segments
 * (sealed_search.ts) go through an index of the searched field and metric, with the visibility and
 * filter mask; the scans run on the search threads, so the mailbox and the heartbeats stay on time.
 */
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import { asCollectionId, asNodeId, asReplicaId, asSegmentId } from "../../protocol/ids.ts";
import {
  DELEGATOR,
  type DelegatorReport,
  type QueryNodeDist,
  type QueryResult,
  type SearchResult,
  type WatchChannelReq,
} from "../../protocol/messages/querynode.ts";
import type { IndexLoadInfo } from "../../protocol/messages/indexes.ts";
import type { SegmentInfo } from "../../protocol/meta.ts";
import type { CollectionSchema } from "../../protocol/schema.ts";
import { ACTOR_STOPPED, Actor, type ActorStopped, type Message } from "../../runtime/actor.ts";
import { SEGMENT } from "../../protocol/messages/segment.ts";
import type { ClusterEnv } from "../env.ts";
import type { DeltaData } from "../storage/delta_log.ts";
import { DelegatorActor } from "../delegator/delegator_actor.ts";
import { DistPublisher, ensureDistStream } from "./dist_publisher.ts";
import { formatBytes, MemoryBudget } from "./memory.ts";
import { mergeQueryResults, mergeSearchResults, readContext } from "../segment/read_kernel.ts";
import { checkQuerySpec, checkSchema, checkSearchSpec, checkSegmentInfo, indexLoadInfos, pkColumn } from "../segment/requests.ts";
import {
  bodyOf,
  invalid,
  obj,
  optionalBool,
  requiredId,
  requiredIds,
  requiredInt,
  requiredInteger,
  requiredList,
  requiredToken,
} from "../request_fields.ts";
import { estimateSegmentBytes, loadSealedSegment, readL0, type SealedSegment } from "../segment/sealed_segment.ts";
import { checkIndexField, indexMismatch, SealedSegmentActor } from "../segment/sealed_segment_actor.ts";
import { type IndexHandle, SearchThreads } from "../segment/search_threads.ts";
import { SegmentStore } from "./segment_store.ts";
import { after } from "../continuations.ts";
import type { Trace } from "../../runtime/trace.ts";
import { qnDelegatorNum, qnEntityNum, qnMemoryBytes, qnSegmentNum } from "../metrics.ts";

export interface QuerynodeOptions {
  nodeId: string;
  memoryLimitBytes: number;
  /** search threads (0: searches run on the actor's thread); see search_threads.ts */
  searchThreads: number;
}

interface DelegatorEntry {
  address: string;
  collectionId: bigint;
  vchannel: string;
  replicaId: bigint;
  started: Promise<void>;
  report?: DelegatorReport;
}

/** An index load's outcome: the handle on its search thread, or why it failed. */
interface IndexResult {
  info: IndexLoadInfo;
  /** bytes reserved for it */
  reserved: number;
  handle?: IndexHandle;
  error?: unknown;
}

interface LoadOutcome {
  reservations: Map<bigint, number>;
  results: { id: bigint; seg?: SealedSegment; error?: unknown; indexes: IndexResult[] }[];
}

/** Messages the querynode sends itself (the runtime refuses them from anyone else). */
const I = {
  PublishDist: "querynode.internal.PublishDist",
  Published: "querynode.internal.Published",
  SearchThreadLost: "querynode.internal.SearchThreadLost",
  DelegatorGone: "querynode.internal.DelegatorGone",
} as const;

/** A read or delete a segment actor failed by crashing is sent again this many times (it restarts). */
const SEGMENT_RETRIES = 2;
/** Asks to local segment actors (reads carry the caller's own deadline one hop up). */
const SEGMENT_ASK_TIMEOUT_MS = 60_000;

/** Waits on a delegator's start (L0 reads, the first consume) at most this long. */
const WATCH_TIMEOUT_MS = 120_000;

export class QuerynodeActor extends Actor {
  private readonly nodeId: string;
  private readonly store = new SegmentStore();
  private readonly memory: MemoryBudget;
  private readonly delegators = new Map<string, DelegatorEntry>();
  /** loads in progress: segment id → the promise of its outcome (a repeated LoadSegments waits on it) */
  private readonly loadsInFlight = new Map<bigint, Promise<void>>();
  /** index loads in progress: `segment/index` → the promise of its outcome */
  private readonly indexLoadsInFlight = new Map<string, Promise<void>>();
  private publisher!: DistPublisher;
  private threads!: SearchThreads;
  /** draining before the process stops (querynode.Drain) */
  private stopping = false;
  private readonly searchThreads: number;

  constructor(
    private readonly env: ClusterEnv,
    opts: QuerynodeOptions,
  ) {
    super();
    this.nodeId = opts.nodeId;
    this.memory = new MemoryBudget(opts.memoryLimitBytes);
    this.searchThreads = opts.searchThreads;
  }

  override async preStart(): Promise<void> {
    this.threads = new SearchThreads({
      threads: this.searchThreads,
      log: this.ctx.log,
      onLost: (worker) => this.ctx.self(I.SearchThreadLost, worker),
    });
    this.publisher = new DistPublisher(this.env, this.nodeId, this.ctx.log);
    await ensureDistStream(this.env);
    // on the feed before it takes requests: a querycoord that looks right after the spawn sees it
    await this.publisher.publishNow(this.buildDist());
    this.ctx.timers.startPeriodic("heartbeat", this.env.config.heartbeatIntervalMs, I.PublishDist);
  }

  override async postStop(): Promise<void> {
    // its children (delegators, segments) stopped before this
    await this.threads?.close();
  }

  override receive(msg: Message): unknown {
    switch (msg.type) {
      case "querynode.WatchDmChannels":
        return this.watch(msg.body);
      case "querynode.UnsubDmChannel":
        return this.unsub(msg.body);
      case "querynode.LoadSegments":
        return this.load(msg.body);
      case "querynode.ReleaseSegments":
        return this.releaseSegments(msg.body);
      case "querynode.ReleaseCollection":
        return this.releaseCollection(msg.body);
      case "querynode.LoadIndex":
        return this.loadIndex(msg.body);
      case "querynode.ReleaseIndex":
        return this.releaseIndex(msg.body);
      case "querynode.SearchSegments":
        return this.searchSegments(msg.body, msg.trace);
      case "querynode.QuerySegments":
        return this.querySegments(msg.body, msg.trace);
      case "querynode.ApplyDelete":
        return this.applyDelete(msg.body);
      case "querynode.GetDist":
        return this.buildDist();
      case "querynode.Drain":
        return this.drain();
      case "querynode.DelegatorReport":
        return this.onReport(msg.body);
      case I.SearchThreadLost:
        return this.onSearchThreadLost(msg.body as number);
      case I.DelegatorGone:
        return this.onDelegatorGone(msg.body as string);
      case I.PublishDist:
        return this.publish();
      case I.Published:
        if (this.publisher.settled()) this.publish();
        return;
      case ACTOR_STOPPED:
        return this.onChildStopped(msg.body);
      default:
        throw new VbError(ErrorCode.Unimplemented, `unknown request "${msg.type}": see QuerynodeApi for the verbs a querynode serves`);
    }
  }

  // ---- drain ----

  private drain(): { segments: number; delegators: number } {
    if (!this.stopping) {
      this.stopping = true;
      this.ctx.log.info({ segments: this.store.size, delegators: this.delegators.size }, "draining: what this node holds moves to other nodes before it stops");
      this.changed();
    }
    return { segments: this.store.size, delegators: this.delegators.size };
  }

  /** New work is refused while draining (querycoord sends none; an old order may still arrive). */
  private refuseWhileStopping(verb: string): void {
    if (this.stopping) {
      throw new VbError(ErrorCode.ServiceUnavailable, `${verb}: querynode ${this.nodeId} is stopping: it takes no new work`, { retriable: true });
    }
  }

  // ---- the dist ----

  /** Something the dist shows changed: publish soon (changes within a few ms go out together). */
  private changed(): void {
    if (!this.ctx.timers.isActive("dist-now")) this.ctx.timers.startSingle("dist-now", 5, I.PublishDist);
  }

  private publish(): void {
    this.publisher.publish(
      () => this.buildDist(),
      () => this.ctx.self(I.Published),
    );
  }

  private buildDist(): QueryNodeDist {
    // growing rows count like sealed ones for placement (Milvus's row-count balancer counts them too)
    let growingRows = 0;
    let growingBytes = 0;
    for (const d of this.delegators.values()) {
      growingRows += d.report?.growingRows ?? 0;
      growingBytes += d.report?.growingBytes ?? 0;
    }
    const segments = this.store.distSegments();
    const node = { node_id: this.nodeId };
    qnSegmentNum.set({ ...node, segment_state: "Sealed" }, segments.length);
    qnEntityNum.set({ ...node, segment_state: "Sealed" }, this.store.numRows);
    qnEntityNum.set({ ...node, segment_state: "Growing" }, growingRows);
    qnMemoryBytes.set(node, this.memory.usedBytes + growingBytes);
    qnDelegatorNum.set(node, this.delegators.size);
    return {
      nodeId: this.nodeId,
      at: Date.now(),
      memoryBytes: this.memory.usedBytes + growingBytes,
      memoryLimitBytes: this.memory.limit,
      ...(this.stopping ? { stopping: true } : {}),
      rows: this.store.numRows + growingRows,
      segments,
      delegators: [...this.delegators.values()].map((d) => ({
        collectionId: d.collectionId,
        vchannel: d.vchannel,
        replicaId: d.replicaId,
        address: d.address,
        serviceable: d.report?.serviceable ?? false,
        targetVersion: d.report?.targetVersion ?? 0,
        tSafe: d.report?.tSafe ?? 0n,
        sealedSegmentIds: d.report?.sealedSegmentIds ?? [],
      })),
      loading: this.store.distLoading(),
    };
  }

  // ---- delegators ----

  private watch(body: unknown): unknown {
    const verb = "querynode.WatchDmChannels";
    this.refuseWhileStopping(verb);
    const b = bodyOf(verb, body);
    const collectionId = requiredId(verb, b, "collectionId");
    const vchannel = requiredToken(verb, b, "vchannel");
    const pchannel = requiredInt(verb, b, "pchannel", 0);
    const replicaId = requiredId(verb, b, "replicaId");
    const schema = checkSchema(b.schema, verb);
    const seekPosition = requiredInteger(verb, b, "seekPosition");
    const partitionIds = requiredIds(verb, b, "partitionIds");
    const l0Segments = requiredList(verb, b, "l0Segments", "segments").map((s, i) => checkSegmentInfo(s, verb, `l0Segments[${i}]`));
    const syncedReadsOnly = optionalBool(verb, b, "syncedReadsOnly") ?? false;
    const req: WatchChannelReq = { collectionId, vchannel, pchannel, replicaId, schema, seekPosition, partitionIds, l0Segments, syncedReadsOnly };
    const address = this.env.subjects.delegator(asCollectionId(collectionId), vchannel, asReplicaId(replicaId), asNodeId(this.nodeId));
    const existing = this.delegators.get(address);
    if (existing) return this.ctx.reenter(existing.started.then(() => null));
    const started = this.ctx
      .spawn({
        address,
        kind: DELEGATOR,
        create: () => new DelegatorActor(this.env, { nodeId: this.nodeId, watch: req }),
        describe: () => ({ collection: String(collectionId), vchannel, replica: String(replicaId), node: this.nodeId }),
        logFields: { role: DELEGATOR, collection: String(collectionId), vchannel, node: this.nodeId },
      })
      .then(() => this.ctx.ask<null>(address, `${DELEGATOR}.WaitStarted`, {}, { timeoutMs: WATCH_TIMEOUT_MS }))
      .then(() => undefined);
    started.catch((err: unknown) => {
      this.ctx.log.warn({ collection: String(collectionId), vchannel, err: (err as Error).message }, "delegator did not start");
      void this.ctx.stopChild(address).catch(() => undefined);
      this.ctx.self(I.DelegatorGone, address);
    });
    this.delegators.set(address, { address, collectionId, vchannel, replicaId, started });
    this.ctx.log.info({ collection: String(collectionId), vchannel, replica: String(replicaId), seek: String(seekPosition) }, "watching a channel");
    this.changed();
    return this.ctx.reenter(started.then(() => null));
  }

  private unsub(body: unknown): unknown {
    const verb = "querynode.UnsubDmChannel";
    const b = bodyOf(verb, body);
    const collectionId = requiredId(verb, b, "collectionId");
    const vchannel = requiredToken(verb, b, "vchannel");
    const replicaId = requiredId(verb, b, "replicaId");
    const address = this.env.subjects.delegator(asCollectionId(collectionId), vchannel, asReplicaId(replicaId), asNodeId(this.nodeId));
    if (!this.delegators.has(address)) return null;
    return this.ctx.reenter(this.stopDelegator(address));
  }

  private async stopDelegator(address: string): Promise<null> {
    await this.ctx.stopChild(address);
    this.ctx.self(I.DelegatorGone, address);
    return null;
  }

  private onDelegatorGone(address: string): void {
    if (this.delegators.delete(address)) {
      this.ctx.log.info({ delegator: address }, "delegator stopped");
      this.changed();
    }
  }

  private onChildStopped(body: unknown): void {
    const s = body as ActorStopped;
    if (typeof s !== "object" || s === null || typeof s.address !== "string") return;
    const segmentId = this.segmentIdOf(s.address);
    if (segmentId !== undefined) {
      // a segment actor that could not start again: release it; the dist shows it gone and querycoord
      // loads it again (here or elsewhere)
      if (s.reason === "failed" && this.store.get(segmentId)) {
        this.ctx.log.error({ segment: String(segmentId), err: s.error }, "segment actor failed for good");
        this.releaseOne(segmentId, "segment released after its actor failed");
        this.changed();
      }
      return;
    }
    if (s.reason === "failed") this.ctx.log.error({ delegator: s.address, err: s.error }, "delegator failed for good");
    this.onDelegatorGone(s.address);
  }

  /** The id of the sealed segment whose actor is at `address` here, if it is one. */
  private segmentIdOf(address: string): bigint | undefined {
    const prefix = this.segmentAddress(0n).slice(0, -1);
    if (!address.startsWith(prefix)) return undefined;
    const tail = address.slice(prefix.length);
    return /^[0-9]+$/.test(tail) ? BigInt(tail) : undefined;
  }

  private onReport(body: unknown): void {
    const r = obj(body, "querynode.DelegatorReport: the request body") as unknown as DelegatorReport;
    const d = typeof r.address === "string" ? this.delegators.get(r.address) : undefined;
    if (!d) return;
    const before = d.report;
    d.report = r;
    const moved =
      !before ||
      before.serviceable !== r.serviceable ||
      before.targetVersion !== r.targetVersion ||
      before.growingRows !== r.growingRows ||
      before.sealedSegmentIds.length !== r.sealedSegmentIds.length ||
      before.sealedSegmentIds.some((id, i) => r.sealedSegmentIds[i] !== id);
    if (moved) this.changed();
  }

  // ---- segments ----

  private load(body: unknown): unknown {
    const verb = "querynode.LoadSegments";
    this.refuseWhileStopping(verb);
    const b = bodyOf(verb, body);
    const collectionId = requiredId(verb, b, "collectionId");
    requiredId(verb, b, "replicaId");
    const schema = checkSchema(b.schema, verb);
    const segments = requiredList(verb, b, "segments", "segments").map((s, i) => checkSegmentInfo(s, verb, `segments[${i}]`));
    const l0Segments = requiredList(verb, b, "l0Segments", "segments").map((s, i) => checkSegmentInfo(s, verb, `l0Segments[${i}]`));
    const indexInfos = indexLoadInfos(verb, b, "indexes", true);
    for (const s of [...segments, ...l0Segments]) {
      if (s.collectionId !== collectionId) throw invalid(verb, `segment ${s.segmentId} is of collection ${s.collectionId}, not ${collectionId}`);
    }
    for (const s of segments) {
      if (s.level !== "L1") throw invalid(verb, `segment ${s.segmentId} is an L0 segment: pass it in l0Segments`);
      if (s.state !== "Flushed") throw invalid(verb, `segment ${s.segmentId} is ${s.state}: only Flushed segments load`);
    }
    for (const s of l0Segments) if (s.level !== "L0") throw invalid(verb, `l0Segments: segment ${s.segmentId} is not an L0 segment`);
    const indexesOf = new Map<bigint, IndexLoadInfo[]>();
    for (const i of indexInfos) {
      if (!segments.some((s) => s.segmentId === i.segmentId)) throw invalid(verb, `indexes: segment ${i.segmentId} is not one of the segments to load`);
      checkIndexField(schema, i, verb);
      let list = indexesOf.get(i.segmentId);
      if (!list) indexesOf.set(i.segmentId, (list = []));
      if (!list.some((x) => x.indexId === i.indexId)) list.push(i);
    }

    const waits: Promise<unknown>[] = [];
    const todo: SegmentInfo[] = [];
    const seen = new Set<bigint>();
    for (const s of segments) {
      if (seen.has(s.segmentId)) continue;
      seen.add(s.segmentId);
      if (this.store.get(s.segmentId)) {
        // loaded already: its indexes load on their own (their outcome shows in the dist)
        const more = indexesOf.get(s.segmentId);
        if (more) {
          try {
            this.startIndexLoads(more)?.catch(() => undefined);
          } catch {
            // refused (memory): the dist's loading list says so
          }
        }
        continue;
      }
      const inflight = this.loadsInFlight.get(s.segmentId);
      if (inflight) waits.push(inflight);
      else todo.push(s);
    }
    // memory: reserve every segment of the request, or refuse the request as a whole; a segment's
    // indexes when they fit too (a segment is searchable without them: exactly)
    const reservations = new Map<bigint, number>();
    const indexReservations = new Map<bigint, IndexLoadInfo[]>();
    for (const s of todo) {
      const bytes = estimateSegmentBytes(s, schema);
      try {
        this.memory.reserve(bytes, `segment ${s.segmentId} of collection ${collectionId}`, this.nodeId);
      } catch (err) {
        for (const [, r] of reservations) this.memory.settle(r, 0);
        for (const list of indexReservations.values()) for (const i of list) this.memory.settle(i.memorySize, 0);
        this.store.failLoad(s.segmentId, (err as Error).message);
        this.ctx.log.warn({ collection: String(collectionId), segment: String(s.segmentId), bytes }, "segment load refused: memory limit");
        this.changed();
        throw err;
      }
      reservations.set(s.segmentId, bytes);
      const fit: IndexLoadInfo[] = [];
      for (const i of indexesOf.get(s.segmentId) ?? []) {
        try {
          this.memory.reserve(i.memorySize, indexWhat(i), this.nodeId);
          fit.push(i);
        } catch (err) {
          this.store.failIndexLoad(s.segmentId, i.indexId, (err as Error).message);
          this.ctx.log.warn({ segment: String(s.segmentId), index: String(i.indexId), bytes: i.memorySize }, "index load refused: memory limit");
        }
      }
      indexReservations.set(s.segmentId, fit);
    }
    if (todo.length === 0) {
      this.changed();
      return waits.length === 0 ? null : this.ctx.reenter(Promise.all(waits).then(() => null));
    }

    for (const s of todo) {
      this.store.startLoad(s.segmentId);
      for (const i of indexReservations.get(s.segmentId)!) this.store.startIndexLoad(s.segmentId, i.indexId);
    }
    this.changed();
    const l0 = l0Segments.map((info) => {
      const data: Promise<DeltaData> = readL0(this.env.objectStore, info);
      data.catch(() => undefined);
      return { info, data };
    });
    const store = this.env.objectStore;
    const work = Promise.all(
      todo.map(async (s) => {
        const [seg, indexes] = await Promise.all([
          loadSealedSegment(store, s, schema, l0).then(
            (seg) => ({ seg }),
            (error: unknown) => ({ error }),
          ),
          Promise.all(indexReservations.get(s.segmentId)!.map((info) => this.readIndex(info))),
        ]);
        return { id: s.segmentId, ...seg, indexes };
      }),
    );
    const reply = this.ctx.reenterAfter(work, (results) => this.onLoadDone({ reservations, results })).work;
    const settled = reply.then(
      () => undefined,
      () => undefined,
    );
    for (const s of todo) this.loadsInFlight.set(s.segmentId, settled);
    this.ctx.log.info(
      { collection: String(collectionId), segments: todo.map((s) => String(s.segmentId)), indexes: indexInfos.length },
      "loading segments",
    );
    return this.ctx.reenter(Promise.all([reply, ...waits]).then(() => null));
  }

  private onLoadDone(x: LoadOutcome): null {
    const errors: string[] = [];
    let firstError: VbError | undefined;
    for (const r of x.results) {
      this.loadsInFlight.delete(r.id);
      const reserved = x.reservations.get(r.id) ?? 0;
      if (r.seg) {
        if (this.store.finishLoad(r.seg)) {
          this.memory.settle(reserved, r.seg.memoryBytes);
          // an index that fails leaves the segment searchable exactly; the dist says why
          for (const i of r.indexes) this.attachIndex(r.seg, i);
          this.spawnSegment(r.seg);
          this.ctx.log.info(
            { collection: String(r.seg.collectionId), segment: String(r.id), rows: r.seg.numRows, bytes: r.seg.memoryBytes },
            "segment loaded",
          );
        } else {
          this.memory.settle(reserved, 0);
          for (const i of r.indexes) this.dropIndexResult(i);
        }
      } else {
        this.memory.settle(reserved, 0);
        for (const i of r.indexes) this.dropIndexResult(i);
        const e = VbError.from(r.error);
        firstError ??= e;
        errors.push(`segment ${r.id}: ${e.message}`);
        this.store.failLoad(r.id, e.message);
        this.ctx.log.warn({ segment: String(r.id), err: e.message }, "segment load failed");
      }
    }
    this.changed();
    if (firstError) {
      throw new VbError(firstError.code === ErrorCode.Unexpected ? ErrorCode.SegmentLoadFailed : firstError.code, errors.join("; "), {
        retriable: firstError.retriable,
        cause: firstError,
      });
    }
    return null;
  }

  private segmentAddress(id: bigint): string {
    return this.env.subjects.segment(asNodeId(this.nodeId), asSegmentId(id));
  }

  /** The loaded segment's actor: a child of this querynode, restarted over the same data when it crashes. */
  private spawnSegment(seg: SealedSegment): void {
    const address = this.segmentAddress(seg.segmentId);
    const deps = { nodeId: this.nodeId, querynode: this.ctx.address, threads: this.threads };
    this.ctx
      .spawn({
        address,
        route: this.env.subjects.segmentKind(asNodeId(this.nodeId)),
        kind: SEGMENT,
        create: () => new SealedSegmentActor(seg, deps),
        describe: () => ({
          collection: String(seg.collectionId),
          partition: String(seg.partitionId),
          vchannel: seg.vchannel,
          state: "Sealed",
          rows: String(seg.numRows - seg.deletedRows),
          indexes: [...seg.indexes.values()].map((a) => `${a.info.indexType}:${a.info.indexId}`).join(","),
          node: this.nodeId,
        }),
        logFields: { role: SEGMENT, collection: String(seg.collectionId), segment: String(seg.segmentId), node: this.nodeId },
      })
      .catch((err: unknown) => this.ctx.log.error({ segment: String(seg.segmentId), err }, "segment actor did not start"));
  }

  private releaseSegments(body: unknown): null {
    const verb = "querynode.ReleaseSegments";
    const b = bodyOf(verb, body);
    const collectionId = requiredId(verb, b, "collectionId");
    const ids = requiredIds(verb, b, "segmentIds");
    for (const id of ids) {
      const seg = this.store.get(id);
      if (seg && seg.collectionId !== collectionId) continue;
      this.releaseOne(id);
    }
    this.changed();
    return null;
  }

  /** Takes a segment off the node: its actor stops (reads in flight finish first), then its indexes go. */
  private releaseOne(id: bigint, why = "segment released"): void {
    this.store.forgetIndexesOf(id);
    const seg = this.store.remove(id);
    if (!seg) return;
    this.memory.release(seg.memoryBytes);
    for (const a of seg.indexes.values()) this.memory.release(a.memoryBytes);
    const threads = this.threads;
    void this.ctx.stopChild(this.segmentAddress(id)).finally(() => {
      // the actor is gone: nothing reads or changes the segment any more
      for (const a of seg.indexes.values()) threads.release(a.handle);
      seg.indexes.clear();
    });
    this.ctx.log.info({ collection: String(seg.collectionId), segment: String(id) }, why);
  }

  // ---- vector indexes ----

  private loadIndex(body: unknown): unknown {
    const verb = "querynode.LoadIndex";
    const b = bodyOf(verb, body);
    const collectionId = requiredId(verb, b, "collectionId");
    const infos = indexLoadInfos(verb, b, "infos");
    const missing: bigint[] = [];
    for (const info of infos) {
      const seg = this.store.get(info.segmentId);
      if (!seg) {
        missing.push(info.segmentId);
        continue;
      }
      if (seg.collectionId !== collectionId) throw invalid(verb, `segment ${info.segmentId} belongs to collection ${seg.collectionId}, not ${collectionId}`);
      checkIndexField(seg.schema, info, verb);
    }
    if (missing.length > 0) {
      throw new VbError(
        ErrorCode.SegmentNotLoaded,
        `segments ${missing.join(", ")} are not loaded on querynode ${this.nodeId}: load a segment before its index (LoadSegments can carry it)`,
        { retriable: true },
      );
    }
    const done = this.startIndexLoads(infos);
    return done === null ? null : this.ctx.reenter(done);
  }

  /**
   * Starts loading the indexes of loaded segments that are neither loaded (this build) nor loading;
   * throws 3 when they do not fit (none starts then). Resolves when they and the loads already in
   * flight are done; null when there is nothing to wait for.
   */
  private startIndexLoads(infos: readonly IndexLoadInfo[]): Promise<null> | null {
    const waits: Promise<void>[] = [];
    const todo: IndexLoadInfo[] = [];
    const seen = new Set<string>();
    for (const info of infos) {
      const key = indexKey(info);
      if (seen.has(key)) continue;
      seen.add(key);
      if (this.store.get(info.segmentId)?.indexes.get(info.indexId)?.info.buildId === info.buildId) continue;
      const inflight = this.indexLoadsInFlight.get(key);
      if (inflight) waits.push(inflight);
      else todo.push(info);
    }
    const reserved: IndexLoadInfo[] = [];
    for (const info of todo) {
      try {
        this.memory.reserve(info.memorySize, indexWhat(info), this.nodeId);
      } catch (err) {
        for (const r of reserved) this.memory.settle(r.memorySize, 0);
        this.store.failIndexLoad(info.segmentId, info.indexId, (err as Error).message);
        this.ctx.log.warn({ segment: String(info.segmentId), index: String(info.indexId), bytes: info.memorySize }, "index load refused: memory limit");
        this.changed();
        throw err;
      }
      reserved.push(info);
    }
    if (todo.length === 0) return waits.length === 0 ? null : Promise.all(waits).then(() => null);
    for (const info of todo) this.store.startIndexLoad(info.segmentId, info.indexId);
    this.changed();
    const work = Promise.all(todo.map((info) => this.readIndex(info)));
    const reply = this.ctx.reenterAfter(work, (results) => this.onIndexLoadDone(results)).work;
    const settled = reply.then(
      () => undefined,
      () => undefined,
    );
    for (const info of todo) this.indexLoadsInFlight.set(indexKey(info), settled);
    this.ctx.log.info({ indexes: todo.map((i) => `${i.segmentId}/${i.indexId}`) }, "loading indexes");
    return Promise.all([reply, ...waits]).then(() => null);
  }

  /** Reads an index artifact and loads it on a search thread (off the mailbox). Never rejects. */
  private async readIndex(info: IndexLoadInfo): Promise<IndexResult> {
    try {
      const bytes = await this.env.objectStore.get(info.fileKey);
      return { info, reserved: info.memorySize, handle: await this.threads.loadIndex(bytes) };
    } catch (err) {
      const e = VbError.from(err);
      const error = new VbError(e.code, `loading ${indexWhat(info)} from ${info.fileKey} failed: ${e.message}`, {
        retriable: e.retriable,
        cause: err,
      });
      return { info, reserved: info.memorySize, error };
    }
  }

  /**
   * Index loads came back: each wanted one that fits its segment is attached by the segment's actor;
   * the reply (the LoadIndex's) names every failure.
   */
  private onIndexLoadDone(results: IndexResult[]): unknown {
    const errors: VbError[] = [];
    const attaches: Promise<void>[] = [];
    for (const r of results) {
      this.indexLoadsInFlight.delete(indexKey(r.info));
      const seg = this.store.get(r.info.segmentId);
      const err = seg ? this.attachIndex(seg, r, attaches) : this.dropIndexResult(r);
      if (err) errors.push(err);
    }
    this.changed();
    const fail = () => {
      if (errors.length === 0) return null;
      const first = errors[0]!;
      throw new VbError(first.code, errors.map((e) => e.message).join("; "), { retriable: first.retriable, cause: first });
    };
    if (attaches.length === 0) return fail();
    return this.ctx.reenterAfter(Promise.all(attaches), () => {
      this.changed();
      return fail();
    });
  }

  /**
   * An index load came back for a loaded segment: attaches the index (replacing an earlier build of
   * it), unless it failed, does not fit the segment, or was released meanwhile. Before the segment's
   * actor exists (a load with its indexes) the index joins the segment's data directly; after, the
   * actor attaches it (`attaches` gets the ask, whose outcome is booked here when it comes back).
   * Returns the failure known now.
   */
  private attachIndex(seg: SealedSegment, r: IndexResult, attaches?: Promise<void>[]): VbError | undefined {
    const { info } = r;
    const wanted = this.store.finishIndexLoad(info.segmentId, info.indexId);
    let error: VbError | undefined;
    if (!r.handle) error = VbError.from(r.error);
    else if (wanted) {
      const mismatch = indexMismatch(seg, info, r.handle) ?? (this.threads.isLost(r.handle) ? "its search thread died" : undefined);
      if (mismatch) error = VbError.invalid(`${indexWhat(info)} from ${info.fileKey} cannot serve the segment: ${mismatch}`);
    }
    if (error || !wanted || !r.handle) {
      if (r.handle) this.threads.release(r.handle);
      this.memory.settle(r.reserved, 0);
      if (error && wanted) {
        this.store.failIndexLoad(info.segmentId, info.indexId, error.message);
        this.ctx.log.warn({ segment: String(info.segmentId), index: String(info.indexId), err: error.message }, "index load failed");
      }
      return wanted ? error : undefined;
    }
    const handle = r.handle;
    const bytes = handle.info.memoryBytes;
    const loaded = () =>
      this.ctx.log.info(
        { collection: String(seg.collectionId), segment: String(seg.segmentId), index: String(info.indexId), type: info.indexType, bytes },
        "index loaded",
      );
    if (!attaches) {
      const old = seg.indexes.get(info.indexId);
      if (old) {
        this.threads.release(old.handle);
        this.memory.release(old.memoryBytes);
      }
      seg.indexes.set(info.indexId, { info, handle, memoryBytes: bytes });
      this.memory.settle(r.reserved, bytes);
      loaded();
      return undefined;
    }
    this.memory.settle(r.reserved, bytes);
    const ask = this.ctx.ask<{ releasedBytes: number }>(
      this.segmentAddress(seg.segmentId),
      `${SEGMENT}.AttachIndex`,
      { info, handle },
      { share: true, timeoutMs: SEGMENT_ASK_TIMEOUT_MS },
    );
    attaches.push(
      after(this.ctx, ask, (res) => {
        if (res.ok) {
          this.memory.release(res.value.releasedBytes);
          loaded();
          return;
        }
        // the segment went away meanwhile (or refused it): the index goes too
        this.threads.release(handle);
        this.memory.release(bytes);
        if (this.store.get(seg.segmentId)) this.store.failIndexLoad(info.segmentId, info.indexId, VbError.from(res.error).message);
      }),
    );
    return undefined;
  }

  /** An index load whose segment is gone (released, or failed to load): frees what it took. */
  private dropIndexResult(r: IndexResult): undefined {
    this.store.finishIndexLoad(r.info.segmentId, r.info.indexId);
    if (r.handle) this.threads.release(r.handle);
    this.memory.settle(r.reserved, 0);
    return undefined;
  }

  private releaseIndex(body: unknown): unknown {
    const verb = "querynode.ReleaseIndex";
    const b = bodyOf(verb, body);
    const collectionId = requiredId(verb, b, "collectionId");
    const segmentId = requiredId(verb, b, "segmentId");
    const indexId = requiredId(verb, b, "indexId");
    const seg = this.store.get(segmentId);
    if (seg && seg.collectionId !== collectionId) throw invalid(verb, `segment ${segmentId} belongs to collection ${seg.collectionId}, not ${collectionId}`);
    this.store.forgetIndex(segmentId, indexId);
    if (!seg?.indexes.has(indexId)) {
      this.changed();
      return null;
    }
    const ask = this.ctx.ask<{ memoryBytes: number }>(this.segmentAddress(segmentId), `${SEGMENT}.ReleaseIndex`, { indexId }, {
      timeoutMs: SEGMENT_ASK_TIMEOUT_MS,
    });
    return this.ctx.reenterAfter(ask, (r) => {
      this.memory.release(r.memoryBytes);
      this.ctx.log.info({ collection: String(collectionId), segment: String(segmentId), index: String(indexId) }, "index released");
      this.changed();
      return null;
    });
  }

  /** A search thread died: the indexes it held are gone (querycoord loads them again). */
  private onSearchThreadLost(worker: number): void {
    for (const seg of this.store.all()) {
      if (![...seg.indexes.values()].some((a) => this.threads.isLost(a.handle))) continue;
      const ask = this.ctx.ask<{ lost: { indexId: bigint; memoryBytes: number }[] }>(
        this.segmentAddress(seg.segmentId),
        `${SEGMENT}.DropLostIndexes`,
        {},
        { timeoutMs: SEGMENT_ASK_TIMEOUT_MS },
      );
      void after(this.ctx, ask, (res) => {
        if (!res.ok) return;
        for (const l of res.value.lost) {
          this.memory.release(l.memoryBytes);
          this.store.failIndexLoad(seg.segmentId, l.indexId, `the search thread holding it (${worker}) died; it loads again`);
          this.ctx.log.warn({ segment: String(seg.segmentId), index: String(l.indexId), worker }, "index lost with its search thread");
        }
        this.changed();
      });
    }
  }

  private releaseCollection(body: unknown): unknown {
    const verb = "querynode.ReleaseCollection";
    const b = bodyOf(verb, body);
    const collectionId = requiredId(verb, b, "collectionId");
    for (const seg of this.store.ofCollection(collectionId)) this.releaseOne(seg.segmentId);
    this.changed();
    const stops = [...this.delegators.values()].filter((d) => d.collectionId === collectionId).map((d) => this.stopDelegator(d.address));
    if (stops.length === 0) return null;
    return this.ctx.reenter(Promise.all(stops).then(() => null));
  }

  /** The loaded segments a read names, all of `collectionId`, or a retriable 601 naming those missing. */
  private segmentsOf(verb: string, ids: bigint[], collectionId: bigint): SealedSegment[] {
    const out: SealedSegment[] = [];
    const missing: bigint[] = [];
    for (const id of ids) {
      const s = this.store.get(id);
      if (!s) missing.push(id);
      else if (s.collectionId !== collectionId) throw invalid(verb, `segment ${id} belongs to collection ${s.collectionId}, not ${collectionId}`);
      else out.push(s);
    }
    if (missing.length > 0) {
      throw new VbError(
        ErrorCode.SegmentNotLoaded,
        `segments ${missing.join(", ")} are not loaded on querynode ${this.nodeId}: retry on another replica`,
        { retriable: true },
      );
    }
    return out;
  }

  private readArgs(verb: string, body: unknown): { b: Record<string, unknown>; ids: bigint[]; readPosition: bigint } {
    const b = bodyOf(verb, body);
    const ids = requiredIds(verb, b, "segmentIds");
    const readPosition = requiredInteger(verb, b, "readPosition");
    return { b, ids, readPosition };
  }

  /**
   * Asks each segment actor of a read or a delete (in process: the body is shared, nothing is
   * encoded); one that crashed meanwhile is asked again once it restarted over its data.
   */
  private askSegments<R>(ids: bigint[], verb: string, body: Record<string, unknown>, trace?: Trace): Promise<R[]> {
    const opts = { share: true, timeoutMs: SEGMENT_ASK_TIMEOUT_MS, ...(trace ? { trace } : {}) };
    const one = async (id: bigint): Promise<R> => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await this.ctx.ask<R>(this.segmentAddress(id), `${SEGMENT}.${verb}`, body, opts);
        } catch (err) {
          const e = VbError.from(err);
          if (e.code !== ErrorCode.Unexpected || attempt >= SEGMENT_RETRIES) throw err;
          this.ctx.log.warn({ segment: String(id), err: e.message, attempt }, "a segment actor failed a request; asking it again");
        }
      }
    };
    return Promise.all(ids.map(one));
  }

  private searchSegments(body: unknown, trace: Trace | undefined): unknown {
    const verb = "querynode.SearchSegments";
    const { b, ids, readPosition } = this.readArgs(verb, body);
    const pre = checkSearchSpec(b.spec, verb);
    const segs = this.segmentsOf(verb, ids, pre.collectionId);
    if (segs.length === 0) return { nq: pre.nq, hits: Array.from({ length: pre.nq }, () => ({ ids: new BigInt64Array(0), scores: new Float32Array(0), fields: {} })) };
    const schema = segs[0]!.schema;
    const spec = checkSearchSpec(b.spec, verb, schema);
    const ctx = readContext(schema);
    const work = this.askSegments<SearchResult>(ids, "Search", { spec, readPosition }, trace);
    return this.ctx.reenter(work.then((parts) => (parts.length === 1 ? parts[0]! : mergeSearchResults(parts, spec, ctx))));
  }

  private querySegments(body: unknown, trace: Trace | undefined): unknown {
    const verb = "querynode.QuerySegments";
    const { b, ids, readPosition } = this.readArgs(verb, body);
    const pre = checkQuerySpec(b.spec, verb);
    const segs = this.segmentsOf(verb, ids, pre.collectionId);
    if (segs.length === 0) return { count: 0, pks: new BigInt64Array(0), fields: {} } satisfies QueryResult;
    const schema = segs[0]!.schema;
    const spec = checkQuerySpec(b.spec, verb, schema);
    const ctx = readContext(schema);
    const work = this.askSegments<QueryResult>(ids, "Query", { spec, readPosition }, trace);
    return this.ctx.reenter(work.then((parts) => (parts.length === 1 ? parts[0]! : mergeQueryResults(parts, spec, ctx))));
  }

  /** Deletes a delegator forwards: each segment's actor stamps them; the reply waits for all. */
  private applyDelete(body: unknown): unknown {
    const verb = "querynode.ApplyDelete";
    const b = bodyOf(verb, body);
    const collectionId = requiredId(verb, b, "collectionId");
    const ids = requiredIds(verb, b, "segmentIds");
    const pks = pkColumn(verb, b, "pks");
    const positions = b.positions;
    if (!(positions instanceof BigInt64Array) || positions.length !== pks.length) {
      throw invalid(verb, `"positions" must be a BigInt64Array with one position per pk (${pks.length})`);
    }
    const missing: bigint[] = [];
    for (const id of ids) {
      const seg = this.store.get(id);
      if (!seg) {
        missing.push(id);
        continue;
      }
      if (seg.collectionId !== collectionId) throw invalid(verb, `segment ${id} belongs to collection ${seg.collectionId}, not ${collectionId}`);
      if ((pks instanceof BigInt64Array) !== (seg.pks instanceof BigInt64Array)) throw invalid(verb, `"pks" are not of the collection's primary key type`);
    }
    if (missing.length > 0) {
      throw new VbError(ErrorCode.SegmentNotLoaded, `segments ${missing.join(", ")} are not loaded on querynode ${this.nodeId}`, {
        retriable: true,
      });
    }
    if (ids.length === 0) return null;
    return this.ctx.reenter(this.askSegments(ids, "ApplyDelete", { pks, positions }).then(() => null));
  }
}

function indexKey(i: { segmentId: bigint; indexId: bigint }): string {
  return `${i.segmentId}/${i.indexId}`;
}

function indexWhat(i: IndexLoadInfo): string {
  return `index ${i.indexId} (${i.indexType}, ${formatBytes(i.memorySize)}) of segment ${i.segmentId}`;
}
