/**
 * Jobs (Milvus's querycoordv2/job): user-level operations — LoadCollection, LoadPartitions,
 * ReleaseCollection, ReleasePartitions — run one at a time per collection, in the order they came.
 *
 * A job runs in steps inside the actor's mailbox: `start` decides (and may throw a VbError: the caller
 * gets it), and returns either work to do off the mailbox (asks to rootcoord, ...) whose outcome comes
 * back to `resume`, or the KV writes of its change; once those are stored, `finished` answers the
 * caller (or leaves the answer to a waiter, e.g. until Loaded).
 */
import type { PipeResult } from "../../../runtime/actor.ts";
import type { QuerycoordCore } from "../core.ts";

export type JobStep = { wait: Promise<unknown> } | { stored: Promise<unknown> };

export abstract class Job {
  readonly result: Promise<null>;
  resolve!: (v: null) => void;
  reject!: (err: unknown) => void;

  constructor(readonly collectionId: bigint) {
    this.result = new Promise<null>((res, rej) => {
      this.resolve = res;
      this.reject = rej;
    });
    this.result.catch(() => undefined);
  }

  abstract readonly kind: string;
  abstract start(core: QuerycoordCore): JobStep;
  resume(_core: QuerycoordCore, outcome: PipeResult<unknown>): JobStep {
    if (!outcome.ok) throw outcome.error;
    return { stored: Promise.resolve() };
  }
  /** The change is stored: answer the caller (or arrange for a later answer). */
  finished(_core: QuerycoordCore): void {
    this.resolve(null);
  }
}

/** One queue of jobs per collection; the head of each queue is the running job. */
export class JobQueues {
  private readonly queues = new Map<bigint, Job[]>();

  /** Queues the job; true when it is at the head and must be started now. */
  submit(job: Job): boolean {
    let q = this.queues.get(job.collectionId);
    if (!q) this.queues.set(job.collectionId, (q = []));
    q.push(job);
    return q.length === 1;
  }

  /** Removes a finished job; returns the next one of its collection, to start. */
  done(job: Job): Job | undefined {
    const q = this.queues.get(job.collectionId);
    if (!q) return undefined;
    const i = q.indexOf(job);
    if (i >= 0) q.splice(i, 1);
    if (q.length === 0) {
      this.queues.delete(job.collectionId);
      return undefined;
    }
    return q[0];
  }

  running(): Job[] {
    return [...this.queues.values()].map((q) => q[0]!).filter(Boolean);
  }
}
