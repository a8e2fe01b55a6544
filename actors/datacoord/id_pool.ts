/**
 * Segment ids come from rootcoord's allocator (`rootcoord.AllocId`), fetched a batch at a time so that
 * most AllocSegment calls need no round trip.
 */
export const ID_BATCH = 64;

export class IdPool {
  private next = 0n;
  private end = 0n;

  constructor(private readonly fetch: (count: number) => Promise<{ start: bigint; count: number }>) {}

  async take(): Promise<bigint> {
    if (this.next >= this.end) {
      const r = await this.fetch(ID_BATCH);
      this.next = r.start;
      this.end = r.start + BigInt(r.count);
    }
    return this.next++;
  }
}
