/**
 * The shard delegator (Milvus's shardDelegator): one per (collection, vchannel, replica), hosted by a
 * querynode at `vb.dlg.<collection>.<vchannel>.<replica>.<node>`.
 *
 * - It consumes its vchannel after the seek position. Each message goes through the mailbox: inserts
 *   become growing batches, deletes stamp growing rows, join the delete buffer and are forwarded to the
 *   sealed segments they may hit (current version and a sync in progress) before tSafe moves to the
 *   message's position. The consumer waits for that, so at most one message is in flight.
 * - Its sealed view is versioned (distribution.ts). SyncDistribution waits until tSafe has passed the
 *   end of every new entry, forwards to the new entries the buffered deletes after their start, and only
 *   then makes the new version current; growing rows the sealed copies cover are dropped once no read
 *   pins an older version.
 * - A read waits (parked, not blocking the mailbox) until tSafe reaches its guarantee, reads at
 *   r = tSafe, pins the current version, scans growing rows off the mailbox and asks each node holding
 *   pinned sealed segments once; the shard's results are merged here.
 */
import { ALL_PARTITIONS, type DmlMsg, type PkColumn } from "../../protocol/dml.ts";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import { asNodeId, asReplicaId } from "../../protocol/ids.ts";
import {
  QUERYNODE,
  type DelegatorReport,
  type QueryResult,
  type QuerySpec,
  type SealedEntry,
  type SearchResult,
  type SearchSpec,
  type WatchChannelReq,
} from "../../protocol/messages/querynode.ts";
import type { CollectionSchema } from "../../protocol/schema.ts";
import { Actor, type Message, type PipeResult } from "../../runtime/actor.ts";
import type { DmlConsumption, DmlMessage } from "../../runtime/dml_log.ts";
import type { ClusterEnv } from "../env.ts";
import { readDeltaLog, type DeltaData } from "../storage/delta_log.ts";
import {
  mergeQueryResults,
  mergeSearchResults,
  readContext,
  type ReadContext,
} from "../segment/read_kernel.ts";
import {
  checkGuarantee,
  checkQuerySpec,
  checkSealedEntry,
  checkSearchSpec,
  intField,
  invalid,
  obj,
} from "../segment/requests.ts";
import { chunkDeletes, DeleteBuffer, type DeleteSlice } from "./delete_buffer.ts";
import { decodeDml } from "../storage/dml_decode.ts";
import { Distribution, entryKey, type Version } from "./distribution.ts";
import { estimateBatchBytes } from "../segment/growing.ts";
import { GROWING, GrowingSegmentActor, type GrowingDelete } from "../segment/growing_segment_actor.ts";
import { SEGMENT, type CoveredRange } from "../../protocol/messages/segment.ts";
import { TSafe } from "./tsafe.ts";

export interface DelegatorOptions {
  /** the querynode hosting it */
  nodeId: string;
  watch: WatchChannelReq;
}

/** Deletes a forward carries at most (estimated bytes), to stay well under the payload limit. */
const FORWARD_CHUNK_BYTES = 256 * 1024;
const FORWARD_TIMEOUT_MS = 15_000;
const DEFAULT_WAIT_MS = 30_000;
const RECONSUME_MS = 1_000;
const SYNC_PROBE_MS = 100;
/** A growing segment (a child actor, one per partition) as its delegator keeps account of it. */
interface GrowingChild {
  address: string;
  partitionId: bigint;
  /** its batches: position, rows, estimated bytes */
  batches: { position: bigint; rows: number; bytes: number }[];
  rows: number;
  bytes: number;
}

interface DmlItem {
  m: DmlMessage;
  done: () => void;
}

interface Forward {
  nodeId: string;
  entries: SealedEntry[];
  body: { collectionId: bigint; segmentIds: bigint[]; pks: PkColumn; positions: BigInt64Array };
}

interface SyncJob {
  targetVersion: number;
  sealed: SealedEntry[];
  resolve: (v: null) => void;
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

type ReadKind = "Search" | "Query";

export class DelegatorActor extends Actor {
  private readonly watch: WatchChannelReq;
  private readonly schema: CollectionSchema;
  private readonly read: ReadContext;
  private readonly partitions: Set<bigint> | undefined;
  /** growing segments by partition */
  private readonly growing = new Map<bigint, GrowingChild>();
  private growingRows = 0;
  private growingBytes = 0;
  private readonly deletes: DeleteBuffer;
  private readonly dist = new Distribution();
  private readonly tsafe: TSafe;
  private consumption: DmlConsumption | undefined;
  private started = false;
  private startError: VbError | undefined;
  private startWaiters: { resolve: (v: null) => void; reject: (e: Error) => void }[] = [];
  private catchUpTo = 0n;
  private serviceable = false;
  private closing = false;
  /** the consumer's handler waiting for its message to be applied */
  private handlerDone: (() => void) | undefined;
  private readonly syncs: SyncJob[] = [];
  private activeSync: SyncJob | undefined;
  private gcPending = false;

  constructor(
    private readonly env: ClusterEnv,
    private readonly opts: DelegatorOptions,
  ) {
    super();
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

  override preStart(): void {
    this.ctx.timers.startPeriodic("report", this.env.config.heartbeatIntervalMs, "delegator.internal.Report");
    this.ctx.pipeToSelf(this.init(), "delegator.internal.Inited");
  }

  override async postStop(): Promise<void> {
    this.closing = true;
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

  private onInited(res: PipeResult<{ deltas: DeltaData[]; last: bigint }>): void {
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
    this.ctx.pipeToSelf(this.env.dml.consume(stream, subject, this.watch.seekPosition, (m) => this.deliver(m)), "delegator.internal.Consuming");
  }

  /** The consumer's handler (outside the mailbox): hands the message to the mailbox and waits for it. */
  private deliver(m: DmlMessage): Promise<void> {
    if (this.closing) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.handlerDone = resolve;
      this.ctx.self("delegator.internal.Dml", { m, done: resolve });
    });
  }

  private onConsuming(res: PipeResult<DmlConsumption>): void {
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
      this.releaseWaiters();
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

  // ---- messages ----

  override receive(msg: Message): unknown {
    switch (msg.type) {
      case "delegator.Search":
        return this.onRead("Search", msg);
      case "delegator.Query":
        return this.onRead("Query", msg);
      case "delegator.SyncDistribution":
        return this.onSync(msg);
      case "delegator.GetStatus":
        return this.status();
      case "delegator.WaitStarted":
        if (this.started) return null;
        if (this.startError) throw this.startError;
        return this.ctx.reenter(new Promise<null>((resolve, reject) => this.startWaiters.push({ resolve, reject })));
      case "delegator.internal.Inited":
        return this.onInited(msg.body as PipeResult<{ deltas: DeltaData[]; last: bigint }>);
      case "delegator.internal.Consuming":
        return this.onConsuming(msg.body as PipeResult<DmlConsumption>);
      case "delegator.internal.Dml":
        return this.onDml(msg.body as DmlItem);
      case "delegator.internal.Forwarded":
        return this.onForwarded(msg.body as never);
      case "delegator.internal.Unpin":
        return this.onUnpin(msg.body as number);
      case "delegator.internal.WaitExpired":
        return this.onWaitExpired(msg.body as number);
      case "delegator.internal.SyncForwarded":
        return this.onSyncForwarded(msg.body as never);
      case "delegator.internal.SyncProbed":
        return this.onSyncProbed(msg.body as never);
      case "delegator.internal.SyncProbe":
        return this.continueSync();
      case "delegator.internal.SyncExpired":
        return this.onSyncExpired(msg.body as SyncJob);
      case "delegator.internal.ConsumeEnded":
        return this.onConsumeEnded(msg.body as unknown);
      case "delegator.internal.Reconsume":
        return this.reconsume();
      case "delegator.internal.Report":
        return this.report();
      default:
        throw new VbError(ErrorCode.Unimplemented, `unknown request "${msg.type}": see DelegatorApi for the verbs a delegator serves`);
    }
  }

  private status() {
    return {
      tSafe: this.tsafe.position,
      tSafeTs: this.tsafe.ts,
      growingRows: this.growingRows,
      sealed: this.dist.current.sealed.slice(),
      serviceable: this.serviceable,
      targetVersion: this.dist.current.targetVersion,
    };
  }

  private report(): void {
    const parent = this.ctx.parent;
    if (!parent || this.closing) return;
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

  private onDml(item: DmlItem): void {
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
          forwards = this.forwardsOf({ pks: msg.pks, positions: new BigInt64Array(msg.pks.length).fill(p) }, this.dist.forwardTargets(partition));
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
    const asks = forwards.map((f) => this.sendForward(f));
    void Promise.allSettled(asks).then((results) => this.ctx.self("delegator.internal.Forwarded", { item, ts, forwards, results }));
  }

  private onForwarded(x: { item: DmlItem; ts: bigint; forwards: Forward[]; results: PromiseSettledResult<unknown>[] }): void {
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
    if (this.handlerDone === item.done) this.handlerDone = undefined;
    item.done();
    this.checkServiceable();
    this.releaseWaiters();
    this.continueSync();
  }

  private checkServiceable(): void {
    if (this.serviceable || !this.started || this.tsafe.position < this.catchUpTo) return;
    this.serviceable = true;
    this.ctx.log.info({ ...this.logFields, tSafe: String(this.tsafe.position) }, "delegator serviceable");
    this.report();
  }

  private onConsumeEnded(err: unknown): void {
    if (this.closing) return;
    this.ctx.log.warn({ ...this.logFields, err: (err as Error)?.message, position: String(this.tsafe.position) }, "DML consumption ended; resuming");
    this.handlerDone = undefined;
    this.ctx.timers.startSingle("reconsume", RECONSUME_MS, "delegator.internal.Reconsume");
  }

  private reconsume(): void {
    if (this.closing) return;
    const stream = this.env.subjects.dmlStream(this.watch.pchannel);
    const subject = this.env.subjects.dmlSubject(this.watch.pchannel, this.watch.vchannel);
    this.env.dml.consume(stream, subject, this.tsafe.position, (m) => this.deliver(m)).then(
      (c) => (this.closing ? void c.stop() : this.watchConsumption(c)),
      (err: unknown) => this.ctx.self("delegator.internal.ConsumeEnded", err),
    );
  }

  // ---- delete forwarding ----

  /** The ApplyDelete asks that bring `slice` to `targets`, one per node (chunked). */
  private forwardsOf(slice: DeleteSlice, targets: readonly SealedEntry[]): Forward[] {
    if (targets.length === 0 || slice.positions.length === 0) return [];
    const byNode = new Map<string, SealedEntry[]>();
    for (const e of targets) {
      let l = byNode.get(e.nodeId);
      if (!l) byNode.set(e.nodeId, (l = []));
      l.push(e);
    }
    const out: Forward[] = [];
    for (const [nodeId, entries] of byNode) {
      for (const part of chunkDeletes(slice, FORWARD_CHUNK_BYTES)) {
        out.push({
          nodeId,
          entries,
          body: { collectionId: this.watch.collectionId, segmentIds: entries.map((e) => e.segmentId), pks: part.pks, positions: part.positions },
        });
      }
    }
    return out;
  }

  private sendForward(f: Forward): Promise<unknown> {
    return this.ctx.ask(this.env.subjects.querynode(asNodeId(f.nodeId)), `${QUERYNODE}.ApplyDelete`, f.body, { timeoutMs: FORWARD_TIMEOUT_MS });
  }

  // ---- SyncDistribution ----

  private onSync(msg: Message): unknown {
    const verb = "delegator.SyncDistribution";
    const b = obj(msg.body, verb);
    const targetVersion = intField(b, "targetVersion", verb, { min: 0 });
    if (!Array.isArray(b.sealed)) throw invalid(verb, `"sealed" must be a list of sealed entries`);
    const sealed = (b.sealed as unknown[]).map((e, i) => checkSealedEntry(e, verb, i));
    const keys = new Set<string>();
    for (const e of sealed) {
      const k = entryKey(e);
      if (keys.has(k)) throw invalid(verb, `segment ${e.segmentId} on node ${e.nodeId} is listed twice`);
      keys.add(k);
    }
    const deadline = msg.deadline > 0 ? msg.deadline : Date.now() + DEFAULT_WAIT_MS;
    return this.ctx.reenter(
      new Promise<null>((resolve, reject) => {
        this.syncs.push({ targetVersion, sealed, resolve, reject, deadline, state: "queued" });
        this.pumpSync();
      }),
    );
  }

  private pumpSync(): void {
    if (this.activeSync || this.syncs.length === 0) return;
    const job = this.syncs.shift()!;
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
  private continueSync(): void {
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
    for (const e of added) forwards.push(...this.forwardsOf(this.deletes.collect(e.startPosition, e.partitionId), [e]));
    void Promise.allSettled(forwards.map((f) => this.sendForward(f))).then((results) =>
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

  private onSyncProbed(x: { job: SyncJob; caughtUp: boolean }): void {
    const { job } = x;
    job.probing = false;
    if (this.activeSync !== job || job.state !== "waiting") return;
    if (x.caughtUp) job.caughtUp = true;
    else this.ctx.timers.startSingle("sync-probe", SYNC_PROBE_MS, "delegator.internal.SyncProbe", job);
    this.continueSync();
  }

  private onSyncForwarded(x: { job: SyncJob; forwards: Forward[]; results: PromiseSettledResult<unknown>[] }): void {
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
    this.endSync(job);
    this.ctx.log.info(
      { ...this.logFields, version: v.id, targetVersion: v.targetVersion, sealed: v.sealed.length, was: before.sealed.length },
      "new readable distribution",
    );
    this.gcPending = true;
    this.gcGrowing();
    this.report();
    job.resolve(null);
  }

  private endSync(job: SyncJob): void {
    this.ctx.timers.cancel("sync");
    this.ctx.timers.cancel("sync-probe");
    if (this.activeSync === job) this.activeSync = undefined;
    this.pumpSync();
  }

  private onSyncExpired(job: SyncJob): void {
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

  // ---- reads ----

  private ready(position: bigint | undefined): boolean {
    return this.started && this.serviceable && (position === undefined || this.tsafe.position >= position);
  }

  private onRead(kind: ReadKind, msg: Message): unknown {
    const verb = `delegator.${kind}`;
    const b = obj(msg.body, verb);
    const spec = kind === "Search" ? checkSearchSpec(b.spec, verb, this.schema) : checkQuerySpec(b.spec, verb, this.schema);
    const guarantee = checkGuarantee(b.guarantee, verb);
    if (spec.collectionId !== this.watch.collectionId) {
      throw invalid(verb, `spec.collectionId ${spec.collectionId} is not this delegator's collection ${this.watch.collectionId}`);
    }
    const wait = guarantee.consistency === "Eventually" ? undefined : guarantee.position;
    const deadline = msg.deadline > 0 ? msg.deadline : 0;
    if (this.ready(wait)) return this.ctx.reenter(this.execute(kind, spec, deadline));
    if (wait === undefined) {
      throw new VbError(
        ErrorCode.ChannelNotAvailable,
        `the delegator of ${this.watch.vchannel} is not serviceable yet (it has applied ${this.tsafe.position} of ${this.catchUpTo}): retry on another replica`,
        { retriable: true },
      );
    }
    let waitMs = guarantee.waitMs ?? DEFAULT_WAIT_MS;
    if (deadline > 0) waitMs = Math.min(waitMs, Math.max(0, deadline - Date.now()));
    return this.ctx.reenter(
      new Promise<SearchResult | QueryResult>((resolve, reject) => {
        const id = this.tsafe.park(
          wait,
          () => {
            this.ctx.timers.cancel(`wait-${id}`);
            resolve(this.execute(kind, spec, deadline));
          },
          reject,
        );
        this.ctx.timers.startSingle(`wait-${id}`, waitMs, "delegator.internal.WaitExpired", id);
      }),
    );
  }

  private releaseWaiters(): void {
    if (!this.started || !this.serviceable || this.tsafe.parked === 0) return;
    for (const w of this.tsafe.due(this.tsafe.position)) w.resume();
  }

  private onWaitExpired(id: number): void {
    const w = this.tsafe.take(id);
    if (!w) return;
    w.fail(
      new VbError(
        ErrorCode.ChannelNotAvailable,
        `the delegator of ${this.watch.vchannel} has applied position ${this.tsafe.position}` +
          (this.serviceable ? "" : ` (catching up to ${this.catchUpTo})`) +
          `, short of the guarantee ${w.position}, within the wait: retry, or read with a weaker consistency`,
        { retriable: true },
      ),
    );
  }

  private onUnpin(versionId: number): void {
    this.dist.unpin(versionId);
    this.gcGrowing();
  }

  /** In the mailbox: fixes the read position and the version, then reads off the mailbox. */
  private execute(kind: ReadKind, spec: SearchSpec | QuerySpec, deadline: number): Promise<SearchResult | QueryResult> {
    const r = this.tsafe.position;
    const v = this.dist.pin();
    const offline = this.dist.offlineIn(v);
    const work =
      offline.length > 0
        ? Promise.reject(
            new VbError(
              ErrorCode.SegmentNotLoaded,
              `segment ${offline[0]!.segmentId} on node ${offline[0]!.nodeId} is offline (it missed deletes): retry on another replica`,
              { retriable: true },
            ),
          )
        : this.runRead(kind, spec, r, v, deadline);
    const unpin = () => this.ctx.self("delegator.internal.Unpin", v.id);
    work.then(unpin, unpin);
    return work;
  }

  private async runRead(
    kind: ReadKind,
    spec: SearchSpec | QuerySpec,
    r: bigint,
    v: Version,
    deadline: number,
  ): Promise<SearchResult | QueryResult> {
    const partitions = spec.partitionIds.length > 0 ? new Set(spec.partitionIds) : undefined;
    const byNode = new Map<string, bigint[]>();
    for (const e of v.sealed) {
      if (partitions && !partitions.has(e.partitionId)) continue;
      let l = byNode.get(e.nodeId);
      if (!l) byNode.set(e.nodeId, (l = []));
      l.push(e.segmentId);
    }
    const timeoutMs = deadline > 0 ? Math.max(1_000, deadline - Date.now()) : DEFAULT_WAIT_MS;
    const sealed = [...byNode].map(([nodeId, segmentIds]) =>
      this.ctx
        .ask<SearchResult | QueryResult>(
          this.env.subjects.querynode(asNodeId(nodeId)),
          `${QUERYNODE}.${kind}Segments`,
          { segmentIds, spec, readPosition: r },
          // shared in process: querynodes only read the spec and build their results for this read
          { timeoutMs, share: true },
        )
        .catch((err: unknown) => {
          const e = VbError.from(err);
          if (e.code === ErrorCode.ParameterInvalid) throw e;
          throw new VbError(e.code, `sealed segments ${segmentIds.join(", ")} on node ${nodeId} could not answer: ${e.message}`, {
            cause: err,
            retriable: true,
          });
        }),
    );
    // the growing segments with rows, asked now: in order after every row and delete told them before
    const covered: CoveredRange[] = v.sealed.map((e) => ({ partitionId: e.partitionId, start: e.startPosition, end: e.endPosition }));
    const growing: Promise<SearchResult | QueryResult>[] = [];
    for (const g of this.growing.values()) {
      if (g.rows === 0 || (partitions && !partitions.has(g.partitionId))) continue;
      growing.push(
        this.ctx.ask<SearchResult | QueryResult>(g.address, `${SEGMENT}.${kind}`, { spec, readPosition: r, covered }, { timeoutMs, share: true }),
      );
    }
    const parts = await Promise.all([...growing, ...sealed]);
    if (kind === "Search") return mergeSearchResults(parts as SearchResult[], spec as SearchSpec, this.read);
    return mergeQueryResults(parts as QueryResult[], spec as QuerySpec, this.read);
  }
}
