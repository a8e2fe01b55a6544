/**
 * tSafe: the position (and hybrid timestamp) of the last message of the vchannel the delegator has
 * applied, deletes forwarded included. A read with a guarantee position waits for tSafe to reach it
 * without holding the mailbox: it is parked here, resumed when tSafe passes its position, or failed when
 * its wait runs out (the delegator's timer calls `take`).
 */
export interface TSafeWaiter {
  readonly id: number;
  readonly position: bigint;
  /** called in the mailbox once tSafe ≥ position */
  resume(): void;
  fail(err: Error): void;
}

export class TSafe {
  position: bigint;
  ts = 0n;
  private readonly waiters = new Map<number, TSafeWaiter>();
  private nextId = 1;

  constructor(start: bigint) {
    this.position = start;
  }

  get parked(): number {
    return this.waiters.size;
  }

  park(position: bigint, resume: () => void, fail: (err: Error) => void): number {
    const id = this.nextId++;
    this.waiters.set(id, { id, position, resume, fail });
    return id;
  }

  advance(position: bigint, ts: bigint): void {
    if (position > this.position) this.position = position;
    if (ts > this.ts) this.ts = ts;
  }

  /** Removes and returns the waiters whose position is ≤ `upTo`, oldest first. */
  due(upTo: bigint): TSafeWaiter[] {
    const out: TSafeWaiter[] = [];
    for (const w of this.waiters.values()) {
      if (w.position <= upTo) out.push(w);
    }
    for (const w of out) this.waiters.delete(w.id);
    return out;
  }

  /** Removes a waiter (its wait ran out); undefined when it was already resumed. */
  take(id: number): TSafeWaiter | undefined {
    const w = this.waiters.get(id);
    if (w) this.waiters.delete(id);
    return w;
  }

  /** Fails every parked waiter (the delegator stops). */
  failAll(err: Error): void {
    const all = [...this.waiters.values()];
    this.waiters.clear();
    for (const w of all) w.fail(err);
  }
}
