/**
 * The delegator's data side (Milvus's `delegator_data.go`): it consumes the vchannel after the seek
 * position and feeds the growing segments (child actors, one per partition), keeps the delete buffer and
 * forwards deletes to the sealed segments they may hit (delta_forward.ts) before tSafe moves past them,
 * decides when the shard is serviceable, and makes a SyncDistribution's sealed view readable only once
 * the new entries have their deletes. It reports the shard to its querynode.
 *
 * It runs in the delegator's mailbox (`DelegatorActor` dispatches to it); the read side (read.ts) reads
 * its tSafe, view and growing segments and is told when tSafe moves (`onApplied`).
 */
import { ALL_PARTITIONS, type DmlMsg } from "../../protocol/dml.ts";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import { asNodeId, asReplicaId } from "../../protocol/ids.ts";
import { QUERYNODE, type DelegatorReport, type SealedEntry, type SyncReply, type ViewDelta, type WatchChannelReq } from "../../protocol/messages/querynode.ts";
import { SEGMENT } from "../../protocol/messages/segment.ts";
import type { CollectionSchema } from "../../protocol/schema.ts";
import type { ActorContext, DeferredReply, Message, PipeResult } from "../../runtime/actor.ts";
import type { DmlConsumption, DmlMessage } from "../../runtime/dml_log.ts";
import type { ClusterEnv } from "../env.ts";
import { readDeltaLog, type DeltaData } from "../storage/delta_log.ts";
import { decodeDml } from "../storage/dml_decode.ts";
import { estimateBatchBytes } from "../segment/growing.ts";
import { GROWING, GrowingSegmentActor, type GrowingDelete } from "../segment/growing_segment_actor.ts";
import { readContext, type ReadContext } from "../segment/read_kernel.ts";
import { bodyOf, invalid, obj, requiredId, requiredInt, requiredList, requiredString, requiredToken } from "../request_fields.ts";
import { checkSealedEntry } from "../segment/requests.ts";
import { DeleteBuffer } from "./delete_buffer.ts";
import { forwardsOf, sendForward, type Forward } from "./delta_forward.ts";
import { Distribution, entryKey } from "./distribution.ts";
import { TSafe } from "./tsafe.ts";
import { qnTSafeLag } from "../metrics.ts";

export interface DelegatorOptions {
  /** the querynode hosting it */
  nodeId: string;
  watch: WatchChannelReq;
}

/** How long a read waits for its guarantee, and a SyncDistribution for tSafe, when the ask sets no deadline. */
export const DEFAULT_WAIT_MS = 30_000;
const RECONSUME_MS = 1_000;
const SYNC_PROBE_MS = 100;

/** A growing segment (a child actor, one per partition) as its delegator keeps account of it. */
export interface GrowingChild {
  address: string;
  partitionId: bigint;
  /** its batches: position, rows, estimated bytes */
  batches: { position: bigint; rows: number; bytes: number }[];
  rows: number;
  bytes: number;
}

export interface DmlItem {
  m: DmlMessage;
  done: () => void;
}

/** Throws when an entry (a segment on a node) is in `entries` twice. */
function uniqueEntries(verb: string, entries: readonly { segmentId: bigint; nodeId: string }[], what: string): void {
  const keys = new Set<string>();
  for (const e of entries) {
    const k = entryKey(e);
    if (keys.has(k)) throw invalid(verb, `segment ${e.segmentId} on node ${e.nodeId} ${what}`);
    keys.add(k);
  }
}

/** A SyncDistribution's `delta`, checked. */
function checkDelta(verb: string, raw: unknown): ViewDelta {
  const d = obj(raw, `${verb}: field "delta"`);
  const at = `${verb}: delta`;
  const base = requiredString(at, d, "base");
  const set = requiredList(at, d, "set", "sealed entries").map((e, i) => checkSealedEntry(e, at, i, "set"));
  const remove = requiredList(at, d, "remove", "entries (segmentId, nodeId)").map((x, i) => {
    const e = obj(x, `${at}: field "remove[${i}]"`);
    return { segmentId: requiredId(`${at}: remove[${i}]`, e, "segmentId"), nodeId: requiredToken(`${at}: remove[${i}]`, e, "nodeId") };
  });
  uniqueEntries(at, set, "is set twice");
  uniqueEntries(at, remove, "is removed twice");
  return { base, set, remove };
}

export interface SyncJob {
  targetVersion: number;
  /** the view to make readable: given whole, or made from `delta` once the job's turn comes */
  sealed: SealedEntry[];
  delta?: ViewDelta;
  resolve: (v: SyncReply) => void;
  reject: (e: Error) => void;
  deadline: number;
  /** a forward to one of its entries failed */
  failed?: string;
  /** the channel had no message after tSafe when last asked: every position ≤ the new ends is applied */
  caughtUp?: boolean;
  /** a look-up of the channel's last position is in flight */
  probing?: boolean;
  state: "queued" | "waiting" | "forwarding";
}

/** The data side of one delegator: its state changes only here, in the delegator's mailbox. */
export class DelegatorData {
  readonly watch: WatchChannelReq;
  readonly schema: CollectionSchema;
  readonly read: ReadContext;
  private readonly partitions: Set<bigint> | undefined;
  /** growing segments by partition */
  readonly growing = new Map<bigint, GrowingChild>();
  private growingRows = 0;
  private growingBytes = 0;
  private readonly deletes: DeleteBuffer;
  readonly dist = new Distribution();
  readonly tsafe: TSafe;
  private consumption: DmlConsumption | undefined;
  /** consuming (the fields the read side reads change only here) */
  started = false;
  private startError: VbError | undefined;
  private startWaiters: { resolve: (v: null) => void; reject: (e: Error) => void }[] = [];
  /** where the channel ended at start: serviceable once tSafe reaches it */
  catchUpTo = 0n;
  serviceable = false;
  private closing = false;
  /** the consumer's handler waiting for its message to be applied */
  private handlerDone: (() => void) | undefined;
  private readonly syncs: SyncJob[] = [];
  private activeSync: SyncJob | undefined;
  private gcPending = false;
  /** the last message applied (its store time and what remained unread then: the tSafe lag) */
  private lastApplied: DmlMessage | undefined;

  constructor(
    private readonly env: ClusterEnv,
    private readonly ctx: ActorContext,
    private readonly opts: DelegatorOptions,
    /** tSafe moved or the shard became serviceable: parked reads may be due */
    private readonly onApplied: () => void,
  ) {
    this.watch = opts.watch;
    this.schema = opts.watch.schema;
    this.read = readContext(this.schema);
    this.deletes = new DeleteBuffer(this.read.int64Pk);
    this.tsafe = new TSafe(opts.watch.seekPosition);
    this.partitions = opts.watch.partitionIds.length > 0 ? new Set(opts.watch.partitionIds) : undefined;
  }

  private get logFields(): Record<string, unknown> {
    return { collection: String(this.watch.collectionId), vchannel: this.watch.vchannel, replica: String(this.watch.replicaId) };
  }

  /** Starts: reads the L0 deletes and where the channel ends, then consumes (see onInited). */
  start(): void {
    this.ctx.pipeToSelf(this.init(), "delegator.internal.Inited");
  }

  /** The delegator stops: parked reads, start waiters and syncs fail retriably; consumption stops. */
  async stop(): Promise<void> {
    this.closing = true;
    qnTSafeLag.remove({ node_id: this.opts.nodeId, channel_name: this.watch.vchannel });
    const gone = new VbError(ErrorCode.ChannelNotAvailable, `delegator of ${this.watch.vchannel} stopped: retry on another replica`, {
      retriable: true,
    });
    this.tsafe.failAll(gone);
    for (const w of this.startWaiters) w.reject(this.startError ?? gone);
    this.startWaiters = [];
    for (const j of [...this.syncs, ...(this.activeSync ? [this.activeSync] : [])]) j.reject(gone);
    this.syncs.length = 0;
    this.activeSync = undefined;
    this.handlerDone?.();
    this.handlerDone = undefined;
    await this.consumption?.stop();
  }

  /** delegator.WaitStarted: answers once consuming (or fails as the start did). */
  waitStarted(): null | DeferredReply<null> {
    if (this.started) return null;
    if (this.startError) throw this.startError;
    return this.ctx.reenter(new Promise<null>((resolve, reject) => this.startWaiters.push({ resolve, reject })));
  }

  // ---- start ----

  /** Off the mailbox: the L0 deletes older than the seek position, and where the channel ends now. */
  private async init(): Promise<{ deltas: DeltaData[]; last: bigint }> {
    const l0 = this.watch.l0Segments.filter((s) => s.vchannel === this.watch.vchannel && s.level === "L0");
    const deltas = await Promise.all(l0.map((s) => readDeltaLog(this.env.objectStore, s)));
    const last = await this.env.dml.lastPosition(
      this.env.subjects.dmlStream(this.watch.pchannel),
      this.env.subjects.dmlSubject(this.watch.pchannel, this.watch.vchannel),
    );
    return { deltas, last };
  }

  onInited(res: PipeResult<{ deltas: DeltaData[]; last: bigint }>): void {
    if (!res.ok) return this.failStart(res.error);
    // the L0 deletes, in position order, before anything consumed (they are all ≤ the seek position)
    const all: { pk: bigint | string; position: bigint; partition: bigint }[] = [];
    for (const d of res.value.deltas) {
      for (let i = 0; i < d.numRows; i++) all.push({ pk: d.pks[i]!, position: d.positions[i]!, partition: d.partitionIds[i]! });
    }
    all.sort((a, b) => (a.position < b.position ? -1 : a.position > b.position ? 1 : 0));
    for (const x of all) {
      if (x.position > this.watch.seekPosition) continue; // consumed again from the channel
      this.deletes.add(this.read.int64Pk ? BigInt64Array.of(x.pk as bigint) : [x.pk as string], x.position, x.partition);
    }
    this.catchUpTo = res.value.last;
    const stream = this.env.subjects.dmlStream(this.watch.pchannel);
    const subject = this.env.subjects.dmlSubject(this.watch.pchannel, this.watch.vchannel);
    this.ctx.pipeToSelf(this.env.dml.consume(stream, subject, this.watch.seekPosition, (m) => this.deliver(m), { reader: this.ctx.address }), "delegator.internal.Consuming");
  }

  /** The consumer's handler (outside the mailbox): hands the message to the mailbox and waits for it. */
  private deliver(m: DmlMessage): Promise<void> {
    if (this.closing) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.handlerDone = resolve;
      this.ctx.self("delegator.internal.Dml", { m, done: resolve });
    });
  }

  onConsuming(res: PipeResult<DmlConsumption>): void {
    if (!res.ok) return this.failStart(res.error);
    if (this.closing) {
      void res.value.stop();
      return;
    }
    this.watchConsumption(res.value);
    if (!this.started) {
      this.started = true;
      this.ctx.log.info({ ...this.logFields, seek: String(this.watch.seekPosition), catchUpTo: String(this.catchUpTo) }, "delegator consuming");
      for (const w of this.startWaiters) w.resolve(null);
      this.startWaiters = [];
      this.checkServiceable();
      this.onApplied();
      this.pumpSync();
      this.report();
    }
  }

  private watchConsumption(c: DmlConsumption): void {
    this.consumption = c;
    c.done.then(
      () => undefined,
      (err: unknown) => {
        if (!this.closing) this.ctx.self("delegator.internal.ConsumeEnded", err);
      },
    );
  }

  private failStart(err: unknown): void {
    const e = VbError.from(err);
    this.startError = new VbError(e.code, `delegator of ${this.watch.vchannel} could not start: ${e.message}`, { cause: err, retriable: e.retriable });
    this.ctx.log.error({ ...this.logFields, err: e.message }, "delegator could not start");
    for (const w of this.startWaiters) w.reject(this.startError);
    this.startWaiters = [];
    this.ctx.stop();
  }

  status() {
    return {
      tSafe: this.tsafe.position,
      tSafeTs: this.tsafe.ts,
      growingRows: this.growingRows,
      sealed: this.dist.current.sealed.slice(),
      serviceable: this.serviceable,
      targetVersion: this.dist.current.targetVersion,
    };
  }

  /** the querynode hosting this delegator */
  get nodeId(): string {
    return this.opts.nodeId;
  }

  report(): void {
    const parent = this.ctx.parent;
    if (!parent || this.closing) return;
    // tSafe lag: how old the last applied message is while the vchannel holds unread ones
    qnTSafeLag.set(
      { node_id: this.opts.nodeId, channel_name: this.watch.vchannel },
      this.lastApplied && this.lastApplied.pending > 0 ? Math.max(0, Date.now() - this.lastApplied.timestamp) : 0,
    );
    const r: DelegatorReport = {
      address: this.ctx.address,
      collectionId: this.watch.collectionId,
      vchannel: this.watch.vchannel,
      replicaId: this.watch.replicaId,
      started: this.started,
      serviceable: this.serviceable,
      targetVersion: this.dist.current.targetVersion,
      tSafe: this.tsafe.position,
      sealedSegmentIds: this.dist.current.sealed.map((e) => e.segmentId),
      growingRows: this.growingRows,
      growingBytes: this.growingBytes,
    };
    try {
      this.ctx.tell(parent, `${QUERYNODE}.DelegatorReport`, r);
    } catch (err) {
      this.ctx.log.warn({ ...this.logFields, err }, "could not report to the querynode");
    }
  }

  // ---- DML ----

  private kept(partitionId: bigint): boolean {
    return this.partitions === undefined || this.partitions.has(partitionId);
  }

  onDml(item: DmlItem): void {
    const { m } = item;
    let msg: DmlMsg | undefined;
    try {
      msg = decodeDml(m.data, this.watch.collectionId, this.schema);
    } catch (err) {
      this.ctx.log.warn({ ...this.logFields, position: String(m.position), err: (err as Error).message }, "skipped a DML message that cannot be applied");
    }
    let forwards: Forward[] = [];
    if (msg) {
      const p = m.position;
      if (msg.k === "delete" || msg.k === "upsert") {
        const partition = msg.k === "delete" ? msg.partitionId : ALL_PARTITIONS;
        if (partition === ALL_PARTITIONS || this.kept(partition)) {
          this.deleteGrowing({ pks: msg.pks, position: p, partitionId: partition });
          this.deletes.add(msg.pks, p, partition);
          forwards = forwardsOf(this.watch.collectionId, { pks: msg.pks, positions: new BigInt64Array(msg.pks.length).fill(p) }, this.dist.forwardTargets(partition));
        }
      }
      if ((msg.k === "insert" || msg.k === "upsert") && msg.numRows > 0 && this.kept(msg.partitionId)) {
        const g = this.growingOf(msg.partitionId);
        const rows = msg.numRows;
        const bytes = estimateBatchBytes(msg.columns) + 8 * rows;
        g.batches.push({ position: p, rows, bytes });
        g.rows += rows;
        g.bytes += bytes;
        this.growingRows += rows;
        this.growingBytes += bytes;
        this.ctx.tellChild(g.address, GROWING.Insert, {
          position: p,
          ts: msg.ts,
          partitionId: msg.partitionId,
          numRows: rows,
          columns: msg.columns,
          pks: msg.pks,
        });
      }
    }
    const ts = msg?.ts ?? 0n;
    if (forwards.length === 0) {
      this.applied(item, m.position, ts);
      return;
    }
    const asks = forwards.map((f) => sendForward(this.ctx, this.env, f));
    void Promise.allSettled(asks).then((results) => this.ctx.self("delegator.internal.Forwarded", { item, ts, forwards, results }));
  }

  onForwarded(x: { item: DmlItem; ts: bigint; forwards: Forward[]; results: PromiseSettledResult<unknown>[] }): void {
    const failed: SealedEntry[] = [];
    x.results.forEach((r, i) => {
      if (r.status === "fulfilled") return;
      const f = x.forwards[i]!;
      failed.push(...f.entries);
      this.ctx.log.warn(
        { ...this.logFields, node: f.nodeId, segments: f.body.segmentIds.map(String), err: (r.reason as Error).message },
        "forwarding deletes failed: the segments are offline until the next SyncDistribution lists them",
      );
    });
    if (failed.length > 0) {
      this.dist.markOffline(failed);
      const job = this.activeSync;
      if (job && job.state === "forwarding") {
        const pendingKeys = new Set(this.dist.pending.map(entryKey));
        const hit = failed.find((e) => pendingKeys.has(entryKey(e)));
        if (hit) job.failed = `segment ${hit.segmentId} on node ${hit.nodeId} did not take the deletes forwarded to it`;
      }
    }
    this.applied(x.item, x.item.m.position, x.ts);
  }

  /** The message at `position` is applied: tSafe moves, the consumer goes on, due reads start. */
  private applied(item: DmlItem, position: bigint, ts: bigint): void {
    this.tsafe.advance(position, ts);
    this.lastApplied = item.m;
    if (this.handlerDone === item.done) this.handlerDone = undefined;
    item.done();
    this.checkServiceable();
    this.onApplied();
    this.continueSync();
  }

  private checkServiceable(): void {
    if (this.serviceable || !this.started || this.tsafe.position < this.catchUpTo) return;
    this.serviceable = true;
    this.ctx.log.info({ ...this.logFields, tSafe: String(this.tsafe.position) }, "delegator serviceable");
    this.report();
  }

  onConsumeEnded(err: unknown): void {
    if (this.closing) return;
    this.ctx.log.warn({ ...this.logFields, err: (err as Error)?.message, position: String(this.tsafe.position) }, "DML consumption ended; resuming");
    this.handlerDone = undefined;
    this.ctx.timers.startSingle("reconsume", RECONSUME_MS, "delegator.internal.Reconsume");
  }

  reconsume(): void {
    if (this.closing) return;
    const stream = this.env.subjects.dmlStream(this.watch.pchannel);
    const subject = this.env.subjects.dmlSubject(this.watch.pchannel, this.watch.vchannel);
    this.env.dml.consume(stream, subject, this.tsafe.position, (m) => this.deliver(m), { reader: this.ctx.address }).then(
      (c) => (this.closing ? void c.stop() : this.watchConsumption(c)),
      (err: unknown) => this.ctx.self("delegator.internal.ConsumeEnded", err),
    );
  }

  // ---- SyncDistribution ----

  onSync(msg: Message): unknown {
    const verb = "delegator.SyncDistribution";
    const b = bodyOf(verb, msg.body);
    const targetVersion = requiredInt(verb, b, "targetVersion", 0);
    let sealed: SealedEntry[] = [];
    let delta: ViewDelta | undefined;
    if (b.delta !== undefined && b.delta !== null) {
      if (b.sealed !== undefined && b.sealed !== null) throw invalid(verb, `give either "sealed" (the whole view) or "delta", not both`);
      delta = checkDelta(verb, b.delta);
    } else {
      sealed = requiredList(verb, b, "sealed", "sealed entries").map((e, i) => checkSealedEntry(e, verb, i));
      uniqueEntries(verb, sealed, "is listed twice");
    }
    const deadline = msg.deadline > 0 ? msg.deadline : Date.now() + DEFAULT_WAIT_MS;
    return this.ctx.reenter(
      new Promise<SyncReply>((resolve, reject) => {
        this.syncs.push({ targetVersion, sealed, delta, resolve, reject, deadline, state: "queued" });
        this.pumpSync();
      }),
    );
  }

  private pumpSync(): void {
    if (this.activeSync || this.syncs.length === 0) return;
    const job = this.syncs.shift()!;
    if (job.delta) {
      // a delta is made whole against the view readable when its turn comes (a sync queued before it may change it)
      const made = this.dist.applyDelta(job.delta);
      if ("refused" in made) {
        job.reject(
          new VbError(
            ErrorCode.ParameterInvalid,
            `SyncDistribution: the delegator of ${this.watch.vchannel} cannot apply the delta: ${made.refused}; send the whole view`,
            { retriable: true },
          ),
        );
        this.pumpSync();
        return;
      }
      job.sealed = made.sealed;
    }
    this.activeSync = job;
    job.state = "waiting";
    this.ctx.timers.startSingle("sync", Math.max(1, job.deadline - Date.now()), "delegator.internal.SyncExpired", job);
    this.continueSync();
  }

  /** Entries of the job the current version lacks (or holds offline): they need their deletes. */
  private addedBy(job: SyncJob): SealedEntry[] {
    const current = new Set(this.dist.current.sealed.filter((e) => !this.dist.isOffline(e)).map(entryKey));
    return job.sealed.filter((e) => !current.has(entryKey(e)));
  }

  /** Moves the active sync on when it can: tSafe past every new entry's end, then forward, then publish. */
  continueSync(): void {
    const job = this.activeSync;
    if (!job || job.state !== "waiting" || !this.started) return;
    const added = this.addedBy(job);
    let maxEnd = 0n;
    for (const e of added) if (e.endPosition > maxEnd) maxEnd = e.endPosition;
    if (this.tsafe.position < maxEnd && !job.caughtUp) {
      // A read at r < end would miss the rows a delete inside the segment removed: wait for tSafe. The end
      // may be a position of another vchannel of the stream: then tSafe never reaches it, but once the
      // channel has no message after tSafe, every message of ours up to the end is applied.
      this.probeSync(job);
      return;
    }
    if (added.length === 0) {
      this.finishSync(job);
      return;
    }
    job.state = "forwarding";
    this.dist.setPending(added);
    const forwards: Forward[] = [];
    for (const e of added) forwards.push(...forwardsOf(this.watch.collectionId, this.deletes.collect(e.startPosition, e.partitionId), [e]));
    void Promise.allSettled(forwards.map((f) => sendForward(this.ctx, this.env, f))).then((results) =>
      this.ctx.self("delegator.internal.SyncForwarded", { job, forwards, results }),
    );
  }

  private probeSync(job: SyncJob): void {
    if (job.probing) return;
    job.probing = true;
    const at = this.tsafe.position;
    const stream = this.env.subjects.dmlStream(this.watch.pchannel);
    const subject = this.env.subjects.dmlSubject(this.watch.pchannel, this.watch.vchannel);
    this.env.dml.lastPosition(stream, subject).then(
      (last) => this.ctx.self("delegator.internal.SyncProbed", { job, caughtUp: last <= at }),
      () => this.ctx.self("delegator.internal.SyncProbed", { job, caughtUp: false }),
    );
  }

  onSyncProbed(x: { job: SyncJob; caughtUp: boolean }): void {
    const { job } = x;
    job.probing = false;
    if (this.activeSync !== job || job.state !== "waiting") return;
    if (x.caughtUp) job.caughtUp = true;
    else this.ctx.timers.startSingle("sync-probe", SYNC_PROBE_MS, "delegator.internal.SyncProbe", job);
    this.continueSync();
  }

  onSyncForwarded(x: { job: SyncJob; forwards: Forward[]; results: PromiseSettledResult<unknown>[] }): void {
    const { job } = x;
    if (this.activeSync !== job) return; // expired meanwhile
    const i = x.results.findIndex((r) => r.status === "rejected");
    if (i >= 0 || job.failed) {
      const reason =
        job.failed ??
        `node ${x.forwards[i]!.nodeId} did not take the deletes for segments ${x.forwards[i]!.body.segmentIds.join(", ")}: ${((x.results[i] as PromiseRejectedResult).reason as Error).message}`;
      this.dist.clearPending();
      this.endSync(job);
      job.reject(new VbError(ErrorCode.SegmentNotLoaded, `SyncDistribution failed: ${reason}; load the segments and retry`, { retriable: true }));
      return;
    }
    this.finishSync(job);
  }

  private finishSync(job: SyncJob): void {
    const before = this.dist.current;
    const v = this.dist.publish(job.targetVersion, job.sealed);
    // named now: ending the job may start and finish the next one, which publishes a view of its own
    const view = this.dist.viewName;
    this.endSync(job);
    this.ctx.log.info(
      { ...this.logFields, version: v.id, targetVersion: v.targetVersion, sealed: v.sealed.length, was: before.sealed.length },
      "new readable distribution",
    );
    this.gcPending = true;
    this.gcGrowing();
    this.report();
    job.resolve({ view });
  }

  private endSync(job: SyncJob): void {
    this.ctx.timers.cancel("sync");
    this.ctx.timers.cancel("sync-probe");
    if (this.activeSync === job) this.activeSync = undefined;
    this.pumpSync();
  }

  onSyncExpired(job: SyncJob): void {
    if (this.activeSync !== job) return;
    if (job.state === "forwarding") return; // the forwards have deadlines of their own
    this.endSync(job);
    job.reject(
      new VbError(
        ErrorCode.ChannelNotAvailable,
        `SyncDistribution timed out: the delegator of ${this.watch.vchannel} has applied position ${this.tsafe.position}, ` +
          `short of the end of the new segments; it is behind its channel, retry later`,
        { retriable: true },
      ),
    );
  }

  // ---- growing segments ----

  /** The growing segment of a partition: a child actor, started at its first rows. */
  private growingOf(partitionId: bigint): GrowingChild {
    const have = this.growing.get(partitionId);
    if (have) return have;
    const node = asNodeId(this.opts.nodeId);
    const address = this.env.subjects.growingSegment(node, asReplicaId(this.watch.replicaId), this.watch.vchannel, partitionId);
    const g: GrowingChild = { address, partitionId, batches: [], rows: 0, bytes: 0 };
    this.growing.set(partitionId, g);
    const opts = {
      name: address.slice(address.lastIndexOf(".") + 1),
      nodeId: this.opts.nodeId,
      collectionId: this.watch.collectionId,
      vchannel: this.watch.vchannel,
      partitionId,
      schema: this.schema,
    };
    this.ctx
      .spawn({
        address,
        route: this.env.subjects.segmentKind(node),
        kind: SEGMENT,
        create: () => new GrowingSegmentActor(opts),
        describe: () => ({
          collection: String(this.watch.collectionId),
          partition: String(partitionId),
          vchannel: this.watch.vchannel,
          state: "Growing",
          rows: String(g.rows),
          indexes: "",
          node: this.opts.nodeId,
        }),
        logFields: { role: SEGMENT, collection: String(this.watch.collectionId), vchannel: this.watch.vchannel, partition: String(partitionId) },
      })
      .catch((err: unknown) => this.ctx.log.error({ ...this.logFields, err }, "growing segment did not start"));
    return g;
  }

  /** A delete of the channel reaches the growing segments it may hit (in channel order with inserts). */
  private deleteGrowing(d: GrowingDelete): void {
    for (const g of this.growing.values()) {
      if (d.partitionId === ALL_PARTITIONS || d.partitionId === g.partitionId) this.ctx.tellChild(g.address, GROWING.Delete, d);
    }
  }

  /** Drops growing batches covered by the sealed entries of every version a read may still use. */
  private gcGrowing(): void {
    if (!this.gcPending) return;
    const live = this.dist.liveVersions();
    let dropped = 0;
    for (const g of this.growing.values()) {
      const drop = new Set<bigint>();
      const keep: GrowingChild["batches"] = [];
      for (const b of g.batches) {
        if (!live.every((v) => v.covers(g.partitionId, b.position))) {
          keep.push(b);
          continue;
        }
        drop.add(b.position);
        g.rows -= b.rows;
        g.bytes -= b.bytes;
        this.growingRows -= b.rows;
        this.growingBytes -= b.bytes;
        dropped += b.rows;
      }
      if (drop.size === 0) continue;
      g.batches = keep;
      this.ctx.tellChild(g.address, GROWING.Drop, drop);
    }
    if (dropped > 0) this.ctx.log.debug({ ...this.logFields, rows: dropped }, "dropped growing rows the sealed segments hold");
    if (live.length === 1) this.gcPending = false;
  }

  /** The shard can serve a read that waits for `position` (none: Eventually) now. */
  ready(position: bigint | undefined): boolean {
    return this.started && this.serviceable && (position === undefined || this.tsafe.position >= position);
  }

  /** A read unpinned its version: growing rows only it kept are dropped. */
  unpin(versionId: number): void {
    this.dist.unpin(versionId);
    this.gcGrowing();
  }
}
