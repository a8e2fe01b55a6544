/**
 * The task scheduler (Milvus's querycoordv2/task/scheduler.go), without I/O: the actor feeds it what the
 * checkers want, asks it which tasks to start, and tells it about replies and distributions.
 *
 * - One task per key at a time (per replica and segment or channel); the checkers' wishes of a round
 *   replace the previous round's tasks that have not started.
 * - Highest priority first (channel > segment > balance); at most `capPerNode` tasks in flight per
 *   querynode.
 * - A task is finished when its reply came back and the distribution shows its change; a task whose
 *   reply is an error, or whose change does not show within `distWaitMs`, or whose node goes down,
 *   fails: its key backs off (base · 2^(attempts-1), capped) and its reason is kept for load progress
 *   reports until a task of that key succeeds or is no longer wanted.
 */
import { describeAction, type Task, type TaskKind, type TaskSpec } from "./task.ts";
import type { PendingLoad } from "../balance/node_load.ts";
import { qcTaskFailures, qcTaskLatency, qcTaskNum } from "../../metrics.ts";

export interface SchedulerParams {
  capPerNode: number;
  distWaitMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
}

export interface TaskFailure {
  key: string;
  /** the failed task's kind */
  kind: TaskKind;
  collectionId: bigint;
  /** the node it failed on */
  nodeId: string;
  what: string;
  reason: string;
  attempts: number;
  at: number;
  retryAt: number;
}

/**
 * What a round's checkers did not look at (`TaskScheduler.replacePending`): the waiting tasks to keep,
 * and the failures to keep, by kind and collection.
 */
export interface Unlooked {
  task(kind: TaskKind, collectionId: bigint): boolean;
  failure(kind: TaskKind, collectionId: bigint): boolean;
}

let epochCounter = 0;

export class TaskScheduler {
  private pending = new Map<string, Task>();
  /** running (asked, no reply yet) or confirming (replied, waiting for the distribution) */
  private readonly inflight = new Map<string, Task>();
  private readonly byId = new Map<string, Task>();
  private readonly failuresByKey = new Map<string, TaskFailure>();
  private readonly epoch = `${Date.now().toString(36)}${(epochCounter++).toString(36)}`;
  private seq = 0;
  /**
   * What the tasks in flight add up to, kept as they start and end (a round reads them, and walking
   * tens of thousands of tasks for each was a good part of a round during a large load): tasks per
   * node, the segments loading per replica, and what loads and watches will add to each node.
   */
  private readonly running = new Map<string, number>();
  private readonly loading = new Map<bigint, Set<bigint>>();
  private readonly pendingByNode = new Map<string, PendingLoad>();
  /** the SyncLeader tasks in flight */
  private readonly syncs = new Set<Task>();
  /**
   * The confirming tasks by node, the nodes that got new ones since the last look, and at which of its
   * revisions each node's tasks were last looked at: a round looks only at the nodes whose distribution
   * changed (or that have new tasks), not at the tens of thousands waiting on nodes that said nothing new.
   */
  private readonly confirming = new Map<string, Set<Task>>();
  private readonly freshNodes = new Set<string>();
  private readonly nodeLookedAt = new Map<string, number>();
  /** the confirming tasks in the order they replied (a finished one leaves it): whose wait ran out */
  private readonly waits = new Set<Task>();

  constructor(private readonly params: SchedulerParams) {}

  /**
   * Replaces the tasks that have not started with this round's wishes. A wish whose key has a task in
   * flight, or whose key is backing off after a failure, waits. Failures of keys nobody wants any more
   * are forgotten once their backoff is over. A wish for the same key and node as a task still waiting
   * keeps that task (and its id), taking the wish's action.
   *
   * `unlooked`, when given, names what this round's checkers did not look at (a collection outside the
   * round's share): a waiting task it names stays waiting, and a failure it names is kept, until a round
   * looks there again.
   */
  replacePending(specs: readonly TaskSpec[], now: number, unlooked?: Unlooked): void {
    const before = this.pending;
    this.pending = new Map();
    const wanted = new Set<string>();
    for (const s of specs) {
      wanted.add(s.key);
      if (this.inflight.has(s.key) || this.pending.has(s.key)) continue;
      const f = this.failuresByKey.get(s.key);
      if (f && f.retryAt > now) continue;
      const prev = before.get(s.key);
      if (prev && prev.action.kind === s.action.kind && prev.action.nodeId === s.action.nodeId) {
        prev.action = s.action;
        prev.priority = s.priority;
        this.pending.set(s.key, prev);
        continue;
      }
      this.pending.set(s.key, {
        ...s,
        id: `${this.epoch}-${++this.seq}`,
        state: "pending",
        attempt: (f?.attempts ?? 0) + 1,
        startedAt: 0,
        repliedAt: 0,
      });
    }
    if (unlooked) {
      for (const [key, t] of before) if (!wanted.has(key) && unlooked.task(t.action.kind, t.action.collectionId)) this.pending.set(key, t);
    }
    for (const [key, f] of this.failuresByKey) {
      if (!wanted.has(key) && !this.inflight.has(key) && f.retryAt <= now && !unlooked?.failure(f.kind, f.collectionId)) this.failuresByKey.delete(key);
    }
  }

  /** Starts what may start: by priority, then in the order wished, within each node's cap. */
  dispatch(now: number): Task[] {
    const perNode = new Map(this.running);
    const order = [...this.pending.values()].sort((a, b) => a.priority - b.priority);
    const started: Task[] = [];
    for (const t of order) {
      const n = perNode.get(t.action.nodeId) ?? 0;
      if (n >= this.params.capPerNode) continue;
      perNode.set(t.action.nodeId, n + 1);
      this.pending.delete(t.key);
      t.state = "running";
      t.startedAt = now;
      this.inflight.set(t.key, t);
      this.counted(t, 1);
      this.byId.set(t.id, t);
      started.push(t);
    }
    this.countTasks();
    return started;
  }

  /** Queue lengths per action and state (`vectorbus_querycoord_task_num`), after each round's dispatch (the running ones kept as they start and end). */
  private countTasks(): void {
    qcTaskNum.reset();
    const pendingByKind = new Map<string, number>();
    for (const t of this.pending.values()) pendingByKind.set(t.action.kind, (pendingByKind.get(t.action.kind) ?? 0) + 1);
    for (const [state, byKind] of [
      ["pending", pendingByKind],
      ["running", this.inflightByKind],
    ] as const) {
      for (const [kind, n] of byKind) if (n > 0) qcTaskNum.set({ querycoord_task_type: kind, task_state: state }, n);
    }
  }
  private readonly inflightByKind = new Map<string, number>();

  /** The reply of a task's ask. Returns the task (undefined when it is no longer tracked). */
  onReply(id: string, result: { ok: true } | { ok: false; reason: string }, now: number): Task | undefined {
    const t = this.byId.get(id);
    if (!t || t.state !== "running") return undefined;
    if (!result.ok) {
      this.fail(t, result.reason, now);
      return t;
    }
    t.state = "confirming";
    t.repliedAt = now;
    const node = t.action.nodeId;
    let set = this.confirming.get(node);
    if (!set) this.confirming.set(node, (set = new Set()));
    set.add(t);
    this.freshNodes.add(node);
    this.waits.add(t);
    return t;
  }

  /**
   * Finishes the confirming tasks whose change `visible` shows, fails those that waited too long.
   * Returns both.
   *
   * With `seen` (when the server stored the newest distribution of each node that querycoord took), a
   * task past `distWaitMs` fails only once a distribution its node published `afterMs` after the reply
   * (the change was made before the reply, and a node publishes at once after a change) still does not
   * show it, or once it waited `maxMs` in any case: a querycoord that reads its feed behind, or that the
   * feed starves of a node's distributions, does not fail work whose result it has not read yet.
   */
  confirm(
    visible: (t: Task) => boolean,
    now: number,
    seen?: { distAt(nodeId: string): number; afterMs: number; maxMs: number },
    /** when given: what `visible` says of a task changes only with its node's revision (it is not asked again until then) */
    revision?: (nodeId: string) => number,
  ): { done: Task[]; failed: Task[] } {
    const done: Task[] = [];
    const failed: Task[] = [];
    // what shows: the tasks of each node whose distribution changed since its tasks were looked at
    for (const [node, tasks] of this.confirming) {
      const rev = revision?.(node);
      if (rev !== undefined && this.nodeLookedAt.get(node) === rev && !this.freshNodes.has(node)) continue;
      if (rev !== undefined) this.nodeLookedAt.set(node, rev);
      for (const t of [...tasks]) {
        if (rev !== undefined && t.lookedAt === rev) continue;
        if (visible(t)) {
          this.finish(t);
          this.failuresByKey.delete(t.key);
          done.push(t);
        } else {
          t.lookedAt = rev;
        }
      }
    }
    this.freshNodes.clear();
    // whose wait ran out: the oldest replies first, up to the first still within its wait (a task that fails leaves the set as it is walked, which a Set allows)
    for (const t of this.waits) {
      const waited = now - t.repliedAt;
      if (waited <= this.params.distWaitMs) break;
      if (seen && waited <= seen.maxMs && seen.distAt(t.action.nodeId) <= t.repliedAt + seen.afterMs) continue; // its result not read yet
      this.fail(
        t,
        seen && waited <= seen.maxMs
          ? `node ${t.action.nodeId} replied but its distribution published ${Math.round(seen.distAt(t.action.nodeId) - t.repliedAt)} ms later does not show the change`
          : `node ${t.action.nodeId} replied but its distribution did not show the change within ${seen ? seen.maxMs : this.params.distWaitMs} ms`,
        now,
      );
      failed.push(t);
    }
    return { done, failed };
  }

  get(id: string): Task | undefined {
    return this.byId.get(id);
  }

  /** Drops a task that turned out to be moot before it was asked (its collection went away). */
  cancel(id: string): void {
    const t = this.byId.get(id);
    if (t) this.finish(t, "cancelled");
  }

  /** A node went down: its tasks in flight fail, its pending ones go. */
  /** Nodes gone at once (node → why): one pass over the tasks, however many went. */
  failNodes(reasons: ReadonlyMap<string, string>, now: number): Task[] {
    const failed: Task[] = [];
    for (const t of [...this.inflight.values()]) {
      const reason = reasons.get(t.action.nodeId);
      if (reason !== undefined) {
        this.fail(t, reason, now);
        failed.push(t);
      }
    }
    for (const [k, t] of this.pending) if (reasons.has(t.action.nodeId)) this.pending.delete(k);
    return failed;
  }

  /** Forgets the collection's pending tasks and failures (it was released); tasks in flight run out. */
  forgetCollection(collectionId: bigint): void {
    for (const [k, t] of this.pending) if (t.action.collectionId === collectionId) this.pending.delete(k);
    for (const [k, f] of this.failuresByKey) if (f.collectionId === collectionId) this.failuresByKey.delete(k);
  }

  failures(): ReadonlyMap<string, TaskFailure> {
    return this.failuresByKey;
  }

  inflightTasks(): Task[] {
    return [...this.inflight.values()];
  }

  pendingTasks(): Task[] {
    return [...this.pending.values()];
  }

  isInflight(key: string): boolean {
    return this.inflight.has(key);
  }

  /** A task entering (`sign` 1) or leaving (-1) the tasks in flight, counted in what they add up to. */
  private counted(t: Task, sign: 1 | -1): void {
    const a = t.action;
    this.inflightByKind.set(a.kind, (this.inflightByKind.get(a.kind) ?? 0) + sign);
    const n = (this.running.get(a.nodeId) ?? 0) + sign;
    if (n > 0) this.running.set(a.nodeId, n);
    else this.running.delete(a.nodeId);
    if (a.kind === "SyncLeader") {
      if (sign > 0) this.syncs.add(t);
      else this.syncs.delete(t);
    }
    if (a.kind === "LoadSegment") {
      let set = this.loading.get(a.replicaId);
      if (sign > 0) {
        if (!set) this.loading.set(a.replicaId, (set = new Set()));
        set.add(a.segmentId);
      } else if (set) {
        set.delete(a.segmentId);
        if (set.size === 0) this.loading.delete(a.replicaId);
      }
    }
    if (a.kind !== "LoadSegment" && a.kind !== "WatchChannel" && a.kind !== "LoadIndex") return;
    let p = this.pendingByNode.get(a.nodeId);
    if (!p) this.pendingByNode.set(a.nodeId, (p = { rows: 0, memoryBytes: 0, segments: 0, channels: 0 }));
    if (a.kind === "LoadSegment") {
      p.rows += sign * a.rows;
      p.memoryBytes += sign * a.memoryBytes;
      p.segments += sign;
    } else if (a.kind === "WatchChannel") {
      p.channels += sign;
    } else {
      p.memoryBytes += sign * a.info.memorySize;
    }
    if (p.rows === 0 && p.memoryBytes === 0 && p.segments === 0 && p.channels === 0) this.pendingByNode.delete(a.nodeId);
  }

  /** The SyncLeader tasks in flight. */
  inflightSyncs(): Task[] {
    return [...this.syncs];
  }

  /** Per replica, the segments with a LoadSegment in flight (kept up to date: read it, do not keep it). */
  loadingSegments(): ReadonlyMap<bigint, ReadonlySet<bigint>> {
    return this.loading;
  }

  /** Tasks in flight (asked or confirming) per node: what counts against its cap (kept up to date: read it, do not keep it). */
  runningPerNode(): ReadonlyMap<string, number> {
    return this.running;
  }

  /** What loads and watches in flight will add to each node, for node choice (kept up to date: read it, do not keep it). */
  pendingLoads(): ReadonlyMap<string, PendingLoad> {
    return this.pendingByNode;
  }

  /** Tasks done since `takeTimes` was last called, and how long they took: asked → replied → seen in the distribution. */
  private times = { done: 0, askMs: 0, confirmMs: 0 };

  /** What tasks done took since the last call (means, ms), and how many were done. */
  takeTimes(): { done: number; askMs: number; confirmMs: number } {
    const { done, askMs, confirmMs } = this.times;
    this.times = { done: 0, askMs: 0, confirmMs: 0 };
    return done === 0 ? { done, askMs: 0, confirmMs: 0 } : { done, askMs: askMs / done, confirmMs: confirmMs / done };
  }

  private finish(t: Task, status = "success"): void {
    const now = Date.now();
    if (this.inflight.get(t.key) === t && t.startedAt > 0) qcTaskLatency.observe({ querycoord_task_type: t.action.kind, status }, Math.max(0, now - t.startedAt));
    if (status === "success" && t.repliedAt > 0) {
      this.times.done++;
      this.times.askMs += t.repliedAt - t.startedAt;
      this.times.confirmMs += now - t.repliedAt;
    }
    if (this.inflight.get(t.key) === t) {
      this.inflight.delete(t.key);
      this.counted(t, -1);
    }
    if (t.state === "confirming") {
      this.waits.delete(t);
      const set = this.confirming.get(t.action.nodeId);
      set?.delete(t);
      if (set?.size === 0) {
        this.confirming.delete(t.action.nodeId);
        this.nodeLookedAt.delete(t.action.nodeId);
      }
    }
    this.byId.delete(t.id);
  }

  private fail(t: Task, reason: string, now: number): void {
    this.finish(t, "fail");
    qcTaskFailures.inc({ querycoord_task_type: t.action.kind });
    const prev = this.failuresByKey.get(t.key);
    const attempts = (prev?.attempts ?? 0) + 1;
    const backoff = Math.min(this.params.retryMaxMs, this.params.retryBaseMs * 2 ** (attempts - 1));
    this.failuresByKey.set(t.key, {
      key: t.key,
      kind: t.action.kind,
      collectionId: t.action.collectionId,
      nodeId: t.action.nodeId,
      what: describeAction(t.action),
      reason,
      attempts,
      at: now,
      retryAt: now + backoff,
    });
  }
}
