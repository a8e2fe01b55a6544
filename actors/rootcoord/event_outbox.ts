/**
 * DDL events go out on the events stream after their change is in KV, in the order of the changes. A
 * publish that fails keeps the event (and every later one, to keep the order) for a retry, so a
 * change that is in KV is never refused because the stream hiccuped.
 */
import type { DdlEvent } from "../../protocol/messages/rootcoord.ts";
import type { Logger } from "../../runtime/logger.ts";
import type { ClusterEnv } from "../env.ts";
import { publishEvent } from "../events.ts";

export class EventOutbox {
  private readonly queue: DdlEvent[] = [];

  constructor(
    private readonly env: ClusterEnv,
    private readonly log: Logger,
    /** called when events wait for a retry */
    private readonly retryLater: () => void,
  ) {}

  get pending(): number {
    return this.queue.length;
  }

  /** Queues the event and publishes what is queued; true when all of it went out. Never throws. */
  publish(ev: DdlEvent): Promise<boolean> {
    this.queue.push(ev);
    return this.flush();
  }

  /** Publishes the queued events in order; true when none is left. Never throws. */
  async flush(): Promise<boolean> {
    while (this.queue.length > 0) {
      const ev = this.queue[0]!;
      try {
        await publishEvent(this.env, ev);
      } catch (err) {
        this.log.warn({ err, kind: ev.kind, pending: this.queue.length }, "could not publish a DDL event; will retry");
        this.retryLater();
        return false;
      }
      this.queue.shift();
    }
    return true;
  }
}
