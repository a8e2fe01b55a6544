/**
 * A vchannel as a datanode holds it: its write buffer and reader, and the reports to datacoord it has
 * queued (one at a time, in order: see sync_manager.ts). Also the names of the messages the datanode
 * sends itself, and how its parts ask datacoord.
 */
import type { Req, Res } from "../../protocol/messages/api.ts";
import type { DatacoordApi } from "../../protocol/messages/datacoord.ts";
import type { ChannelConsumer } from "./channel_consumer.ts";
import type { WrittenSegment } from "./sync.ts";
import type { BufferedSegment, WriteBuffer } from "./write_buffer.ts";

/**
 * Messages the datanode sends itself (ctx.self, timers): private, the runtime refuses them from anyone
 * else. Work off the mailbox comes back through continuations (`after`, ctx.reenterAfter), not messages.
 */
export const I = {
  Tick: "datanode.internal.Tick",
  Dml: "datanode.internal.Dml",
  FetchWatches: "datanode.internal.FetchWatches",
  Prepare: "datanode.internal.Prepare",
  StartConsumer: "datanode.internal.StartConsumer",
  PumpOps: "datanode.internal.PumpOps",
  Write: "datanode.internal.Write",
  Report: "datanode.internal.Report",
} as const;

/** An ask to datacoord, off the mailbox, with a deadline. */
export type AskDatacoord = <V extends keyof DatacoordApi & string>(verb: V, body: Req<DatacoordApi, V>) => Promise<Res<DatacoordApi, V>>;

/** Sends `type` to the actor itself after the backoff of the `retries`-th retry. */
export type RetryLater = (key: string, retries: number, type: string, body: unknown) => void;

/** A report to datacoord queued for a vchannel. */
export type Op =
  | { k: "alloc"; seg: BufferedSegment }
  | { k: "sealed"; seg: BufferedSegment }
  | { k: "save"; seg: BufferedSegment; written: WrittenSegment }
  | { k: "checkpoint" };

/** A channel as work started for it names it: results for an older watch of the vchannel are dropped. */
export interface ChannelRef {
  vchannel: string;
  gen: number;
}

export interface ConsumerRef extends ChannelRef {
  consumerGen: number;
}

export interface Channel {
  /** unique per watch: results of work started for an older watch of the same vchannel are dropped */
  gen: number;
  collectionId: bigint;
  vchannel: string;
  pchannel: number;
  stream: string;
  subject: string;
  phase: "preparing" | "running";
  buffer?: WriteBuffer;
  consumer?: ChannelConsumer;
  consumerGen: number;
  consumerRetries: number;
  prepareRetries: number;
  /** times this vchannel was reset after an error datacoord will not take back */
  resets: number;
  ops: Op[];
  opInFlight: boolean;
  opRetries: number;
  writeRetries: number;
  lastReportedCheckpoint: bigint;
  /** a flush asked before the channel was ready */
  pendingFlush?: bigint;
  /** a flush is waiting for the channel to reach its position: report the checkpoint once it does */
  flushWaiting: boolean;
}
