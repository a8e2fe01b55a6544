/**
 * The shard delegator (Milvus's shardDelegator): one per (collection, vchannel, replica), hosted by a
 * querynode at `vb.dlg.<collection>.<vchannel>.<replica>.<node>`. The actor receives and dispatches; the
 * work is cut along Milvus's lines:
 *
 * - data.ts (`delegator_data.go`): it consumes its vchannel after the seek position. Each message goes
 *   through the mailbox: inserts become growing batches, deletes stamp growing rows, join the delete
 *   buffer and are forwarded to the sealed segments they may hit (current version and a sync in progress)
 *   before tSafe moves to the message's position. The consumer waits for that, so at most one message is
 *   in flight. Its sealed view is versioned (distribution.ts). SyncDistribution waits until tSafe has
 *   passed the end of every new entry, forwards to the new entries the buffered deletes after their
 *   start, and only then makes the new version current; growing rows the sealed copies cover are dropped
 *   once no read pins an older version.
 * - read.ts (`delegator.go`'s Search/Query): a read waits (parked, not blocking the mailbox) until tSafe
 *   reaches its guarantee, reads at r = tSafe, pins the current version, asks its growing segments and
 *   each node holding pinned sealed segments once; the shard's results are merged there.
 */
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import { Actor, type Message, type PipeResult } from "../../runtime/actor.ts";
import type { DmlConsumption } from "../../runtime/dml_log.ts";
import type { ClusterEnv } from "../env.ts";
import type { DeltaData } from "../storage/delta_log.ts";
import { DelegatorData, type DelegatorOptions, type DmlItem, type SyncJob } from "./data.ts";
import { DelegatorReader } from "./read.ts";

export type { DelegatorOptions } from "./data.ts";

export class DelegatorActor extends Actor {
  /** set in preStart, when the context is */
  private data!: DelegatorData;
  private reader!: DelegatorReader;

  constructor(
    private readonly env: ClusterEnv,
    private readonly opts: DelegatorOptions,
  ) {
    super();
  }

  override preStart(): void {
    this.data = new DelegatorData(this.env, this.ctx, this.opts, () => this.reader.releaseWaiters());
    this.reader = new DelegatorReader(this.env, this.ctx, this.data);
    this.ctx.timers.startPeriodic("report", this.env.config.heartbeatIntervalMs, "delegator.internal.Report");
    this.data.start();
  }

  override async postStop(): Promise<void> {
    await this.data?.stop();
  }

  override receive(msg: Message): unknown {
    switch (msg.type) {
      case "delegator.Search":
        return this.reader.onRead("Search", msg);
      case "delegator.Query":
        return this.reader.onRead("Query", msg);
      case "delegator.SyncDistribution":
        return this.data.onSync(msg);
      case "delegator.GetStatus":
        return this.data.status();
      case "delegator.WaitStarted":
        return this.data.waitStarted();
      case "delegator.internal.Inited":
        return this.data.onInited(msg.body as PipeResult<{ deltas: DeltaData[]; last: bigint }>);
      case "delegator.internal.Consuming":
        return this.data.onConsuming(msg.body as PipeResult<DmlConsumption>);
      case "delegator.internal.Dml":
        return this.data.onDml(msg.body as DmlItem);
      case "delegator.internal.Forwarded":
        return this.data.onForwarded(msg.body as never);
      case "delegator.internal.Unpin":
        return this.data.unpin(msg.body as number);
      case "delegator.internal.WaitExpired":
        return this.reader.onWaitExpired(msg.body as number);
      case "delegator.internal.SyncForwarded":
        return this.data.onSyncForwarded(msg.body as never);
      case "delegator.internal.SyncProbed":
        return this.data.onSyncProbed(msg.body as never);
      case "delegator.internal.SyncProbe":
        return this.data.continueSync();
      case "delegator.internal.SyncExpired":
        return this.data.onSyncExpired(msg.body as SyncJob);
      case "delegator.internal.ConsumeEnded":
        return this.data.onConsumeEnded(msg.body as unknown);
      case "delegator.internal.Reconsume":
        return this.data.reconsume();
      case "delegator.internal.Report":
        return this.data.report();
      default:
        throw new VbError(ErrorCode.Unimplemented, `unknown request "${msg.type}": see DelegatorApi for the verbs a delegator serves`);
    }
  }
}
