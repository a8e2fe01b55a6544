/**
 * The proxy's timestamp allocator: it takes blocks of timestamps from rootcoord's TSO and hands them
 * out one by one, as Milvus's proxy does, so an insert does not wait on a TSO round trip. A block is
 * used for at most `maxAgeMs` after it was issued, so timestamps stay close to the wall clock
 * (Bounded reads and TTLs are about wall time); concurrent callers share one refill.
 */
export class TimestampPool {
  private next = 0n;
  private end = 0n;
  private issuedAt = 0;
  private refill: Promise<void> | undefined;

  constructor(
    private readonly fetch: (count: number) => Promise<{ ts: bigint; count: number }>,
    private readonly blockSize = 4_096,
    private readonly maxAgeMs = 100,
  ) {}

  async take(): Promise<bigint> {
    for (;;) {
      if (this.next < this.end && Date.now() - this.issuedAt <= this.maxAgeMs) return this.next++;
      this.refill ??= this.fetch(this.blockSize).then(
        (r) => {
          this.next = r.ts;
          this.end = r.ts + BigInt(r.count);
          this.issuedAt = Date.now();
          this.refill = undefined;
        },
        (err: unknown) => {
          this.refill = undefined;
          throw err;
        },
      );
      await this.refill;
    }
  }
}
