/**
 * A serial mailbox: items are handled one at a time, in arrival order. The next item starts only when
 * the handler's promise for the previous one has settled, so an actor's state never interleaves.
 */
export class Mailbox<T> {
  private readonly queue: T[] = [];
  private head = 0;
  private running = false;
  private suspended = false;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly handle: (item: T) => PromiseLike<void> | void) {}

  get size(): number {
    return this.queue.length - this.head;
  }

  post(item: T): void {
    this.queue.push(item);
    if (!this.running && !this.suspended) this.run();
  }

  /** Stops handling until `resume`; items keep queueing (used while an actor restarts). */
  suspend(): void {
    this.suspended = true;
  }

  resume(): void {
    this.suspended = false;
    if (!this.running && this.size > 0) this.run();
  }

  /** Resolves once the queue is empty and nothing is being handled. */
  idle(): Promise<void> {
    if (!this.running && (this.size === 0 || this.suspended)) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Drops what is queued and returns it (for a stop that refuses the rest). */
  clear(): T[] {
    const rest = this.queue.slice(this.head);
    this.queue.length = 0;
    this.head = 0;
    return rest;
  }

  /**
   * Handles queued items in order. Items whose handler returns synchronously are handled in one loop;
   * a handler that returns a promise suspends the loop until it settles.
   */
  private run(): void {
    this.running = true;
    while (!this.suspended && this.head < this.queue.length) {
      const item = this.queue[this.head]!;
      this.queue[this.head] = undefined as T;
      this.head++;
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue.splice(0, this.head);
        this.head = 0;
      }
      let pending: PromiseLike<void> | void;
      try {
        pending = this.handle(item);
      } catch {
        pending = undefined; // the handler reports its own failures; the mailbox keeps going
      }
      if (pending && typeof pending.then === "function") {
        pending.then(
          () => this.run(),
          () => this.run(),
        );
        return;
      }
    }
    this.running = false;
    if (this.size === 0 || this.suspended) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}
