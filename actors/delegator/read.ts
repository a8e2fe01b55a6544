/**
 * The delegator's read side (Milvus's shardDelegator Search/Query in `delegator.go`): a read waits
 * (parked, not blocking the mailbox) until tSafe reaches its guarantee, reads at r = tSafe, pins the
 * current sealed view, asks the growing segments with rows and each node holding pinned sealed segments
 * once, and merges the shard's results (actors/segment/read_kernel.ts over actors/search/reduce.ts).
 *
 * Its continuations run in the delegator's mailbox; the state it reads (tSafe, view, growing segments)
 * belongs to the data side (data.ts).
 */
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import { asNodeId } from "../../protocol/ids.ts";
import { QUERYNODE, type QueryResult, type QuerySpec, type SearchResult, type SearchSpec } from "../../protocol/messages/querynode.ts";
import { SEGMENT, type CoveredRange } from "../../protocol/messages/segment.ts";
import type { ActorContext, DeferredReply, Message } from "../../runtime/actor.ts";
import type { Trace } from "../../runtime/trace.ts";
import { readMetersOf, type ReadMeters } from "../metrics.ts";
import type { ClusterEnv } from "../env.ts";
import { mergeQueryResults, mergeSearchResults } from "../segment/read_kernel.ts";
import { bodyOf, invalid } from "../request_fields.ts";
import { checkGuarantee, checkQuerySpec, checkSearchSpec } from "../segment/requests.ts";
import { DEFAULT_WAIT_MS, type DelegatorData } from "./data.ts";
import type { Version } from "./distribution.ts";

export type ReadKind = "Search" | "Query";

/** The read side of one delegator, over its data side's state. */
export class DelegatorReader {
  private readonly meters: Record<ReadKind, ReadMeters>;

  constructor(
    private readonly env: ClusterEnv,
    private readonly ctx: ActorContext,
    private readonly data: DelegatorData,
  ) {
    this.meters = { Search: readMetersOf(data.nodeId, "delegator", "search"), Query: readMetersOf(data.nodeId, "delegator", "query") };
  }

  /** A read, observed: mailbox wait, tSafe wait, time to answer (`vectorbus_querynode_sq_*`, scope delegator). */
  onRead(kind: ReadKind, msg: Message): unknown {
    const handledAt = performance.now();
    const queued = handledAt - (msg.receivedAt ?? handledAt);
    let reply: DeferredReply<unknown>;
    try {
      reply = this.read(kind, msg, handledAt);
    } catch (err) {
      this.meters[kind].observe(queued, handledAt, Promise.reject(err));
      throw err;
    }
    this.meters[kind].observe(queued, handledAt, reply.work);
    return reply;
  }

  private read(kind: ReadKind, msg: Message, handledAt: number): DeferredReply<unknown> {
    const verb = `delegator.${kind}`;
    const b = bodyOf(verb, msg.body);
    const spec = kind === "Search" ? checkSearchSpec(b.spec, verb, this.data.schema) : checkQuerySpec(b.spec, verb, this.data.schema);
    const guarantee = checkGuarantee(b.guarantee, verb);
    if (spec.collectionId !== this.data.watch.collectionId) {
      throw invalid(verb, `spec.collectionId ${spec.collectionId} is not this delegator's collection ${this.data.watch.collectionId}`);
    }
    if (this.data.watch.syncedReadsOnly && this.data.dist.current.targetVersion === 0) {
      throw new VbError(
        ErrorCode.ChannelNotAvailable,
        `the delegator of ${this.data.watch.vchannel} on node ${this.data.nodeId} has not been given its sealed segments yet (querycoord syncs it once it serves): retry on another replica`,
        { retriable: true },
      );
    }
    const wait = guarantee.consistency === "Eventually" ? undefined : guarantee.position;
    const deadline = msg.deadline > 0 ? msg.deadline : 0;
    const waitTSafe = this.meters[kind].waitTSafe;
    if (this.data.ready(wait)) {
      waitTSafe.observe(0);
      return this.ctx.reenter(this.execute(kind, spec, deadline, msg.trace));
    }
    if (wait === undefined) {
      throw new VbError(
        ErrorCode.ChannelNotAvailable,
        `the delegator of ${this.data.watch.vchannel} is not serviceable yet (it has applied ${this.data.tsafe.position} of ${this.data.catchUpTo}): retry on another replica`,
        { retriable: true },
      );
    }
    let waitMs = guarantee.waitMs ?? DEFAULT_WAIT_MS;
    if (deadline > 0) waitMs = Math.min(waitMs, Math.max(0, deadline - Date.now()));
    return this.ctx.reenter(
      new Promise<SearchResult | QueryResult>((resolve, reject) => {
        const id = this.data.tsafe.park(
          wait,
          () => {
            this.ctx.timers.cancel(`wait-${id}`);
            waitTSafe.observe(performance.now() - handledAt);
            resolve(this.execute(kind, spec, deadline, msg.trace));
          },
          reject,
        );
        this.ctx.timers.startSingle(`wait-${id}`, waitMs, "delegator.internal.WaitExpired", id);
      }),
    );
  }

  releaseWaiters(): void {
    if (!this.data.started || !this.data.serviceable || this.data.tsafe.parked === 0) return;
    for (const w of this.data.tsafe.due(this.data.tsafe.position)) w.resume();
  }

  onWaitExpired(id: number): void {
    const w = this.data.tsafe.take(id);
    if (!w) return;
    w.fail(
      new VbError(
        ErrorCode.ChannelNotAvailable,
        `the delegator of ${this.data.watch.vchannel} has applied position ${this.data.tsafe.position}` +
          (this.data.serviceable ? "" : ` (catching up to ${this.data.catchUpTo})`) +
          `, short of the guarantee ${w.position}, within the wait: retry, or read with a weaker consistency`,
        { retriable: true },
      ),
    );
  }

  /** In the mailbox: fixes the read position and the version, then reads off the mailbox. */
  private execute(kind: ReadKind, spec: SearchSpec | QuerySpec, deadline: number, trace: Trace | undefined): Promise<SearchResult | QueryResult> {
    const r = this.data.tsafe.position;
    const v = this.data.dist.pin();
    const offline = this.data.dist.offlineIn(v);
    const work =
      offline.length > 0
        ? Promise.reject(
            new VbError(
              ErrorCode.SegmentNotLoaded,
              `segment ${offline[0]!.segmentId} on node ${offline[0]!.nodeId} is offline (it missed deletes): retry on another replica`,
              { retriable: true },
            ),
          )
        : this.runRead(kind, spec, r, v, deadline, trace);
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
    trace: Trace | undefined,
  ): Promise<SearchResult | QueryResult> {
    const traced = trace ? { trace } : {};
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
          { timeoutMs, share: true, ...traced },
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
    for (const g of this.data.growing.values()) {
      if (g.rows === 0 || (partitions && !partitions.has(g.partitionId))) continue;
      growing.push(
        this.ctx.ask<SearchResult | QueryResult>(g.address, `${SEGMENT}.${kind}`, { spec, readPosition: r, covered }, { timeoutMs, share: true, ...traced }),
      );
    }
    const parts = await Promise.all([...growing, ...sealed]);
    if (kind === "Search") return mergeSearchResults(parts as SearchResult[], spec as SearchSpec, this.data.read);
    return mergeQueryResults(parts as QueryResult[], spec as QuerySpec, this.data.read);
  }
}
