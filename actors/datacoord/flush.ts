/**
 * Flush: a flush position per vchannel (the last message the stream holds for it when the flush is
 * asked), the datanode told to seal up to it, and the flush state — flushed once the vchannel's
 * checkpoint reaches the position (every message up to it is then in a Flushed segment or an L0 delta
 * log). A vchannel that has no message at all is flushed already. Pure functions of the meta.
 */
import type { ChannelCheckpoint, SegmentInfo } from "../../protocol/meta.ts";

/** true when every vchannel's checkpoint is at or past its flush position. */
export function isFlushed(positions: Record<string, bigint>, checkpointOf: (vchannel: string) => ChannelCheckpoint): boolean {
  for (const [vchannel, pos] of Object.entries(positions)) {
    if (pos > 0n && checkpointOf(vchannel).position < pos) return false;
  }
  return true;
}

/** The L1 segments a flush at these positions seals and flushes: the unflushed ones that start at or before them. */
export function segmentsToFlush(segments: Iterable<SegmentInfo>, positions: Record<string, bigint>): bigint[] {
  const out: bigint[] = [];
  for (const s of segments) {
    const pos = positions[s.vchannel];
    if (pos === undefined || s.level !== "L1") continue;
    if ((s.state === "Growing" || s.state === "Sealed" || s.state === "Flushing") && s.startPosition <= pos) out.push(s.segmentId);
  }
  return out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Flush positions still waiting for their vchannel's checkpoint, per vchannel (the highest asked). */
export class PendingFlushes {
  private readonly map = new Map<string, bigint>();

  add(vchannel: string, position: bigint): void {
    const cur = this.map.get(vchannel);
    if (cur === undefined || position > cur) this.map.set(vchannel, position);
  }

  get(vchannel: string): bigint | undefined {
    return this.map.get(vchannel);
  }

  /** Forgets the flushes a checkpoint has reached. */
  settle(checkpointOf: (vchannel: string) => ChannelCheckpoint): void {
    for (const [v, pos] of this.map) if (checkpointOf(v).position >= pos) this.map.delete(v);
  }

  delete(vchannel: string): void {
    this.map.delete(vchannel);
  }

  entries(): IterableIterator<[string, bigint]> {
    return this.map.entries();
  }
}
