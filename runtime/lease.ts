/**
 * Active-standby leadership on a JetStream KV bucket whose bucket-level TTL is the lease (nats-server
 * 2.9 has no per-key TTL). Contenders loop on `create(key)`; the winner refreshes the key every TTL/4
 * with a revision-checked update, so no `create` by another contender succeeds while it holds it; when
 * the holder stops, its key expires at TTL and the next `create` wins. Watches see no event on expiry,
 * so standbys poll (a resign deletes the key, which they do see, and they take over at once).
 *
 * The holder judges its leadership on its own monotonic clock: a tenure ends at `t0 + ttl - margin`,
 * where t0 is taken before sending the write that acquired or last refreshed the key. The server stamps
 * that write after t0, so the key outlives the tenure, and no two tenures overlap. `isLeader()` reads the
 * clock each time; a timer also fires `onDemoted` at the deadline. The tenure's `term` (the key revision
 * that began it) grows strictly from one leader to the next: pass it along as a fencing token.
 */
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { NatsConnection } from "@nats-io/transport-node";
import { decode, encode } from "../protocol/codec.ts";
import { ErrorCode, VbError } from "../protocol/errors.ts";
import { isCasConflict, KvMeta, type KvWatch } from "./kv_meta.ts";
import { createLogger, type Logger } from "./logger.ts";
import { errorText } from "./streams.ts";

export interface LeaseOptions {
  /** The KV bucket of the lease; its TTL is set to `ttlMs` (one bucket per TTL). */
  bucket: string;
  /** The lease key in the bucket. Default "leader". */
  key?: string;
  /** Who this contender is; stored in the key so others can see who leads. */
  holderId: string;
  /** The lease: how long a key lives after its last refresh. */
  ttlMs: number;
  /** How often the leader refreshes. Default ttlMs / 4. */
  refreshIntervalMs?: number;
  /** How often a standby tries to take the key. Default ttlMs / 4. */
  pollIntervalMs?: number;
  /** How much earlier than the key's expiry the leader stops considering itself leader. Default ttlMs / 10. */
  marginMs?: number;
  /** Storage of the bucket. Default "file" (revisions, hence terms, keep growing across server restarts). */
  storage?: "file" | "memory";
  /** Watch the key for deletes so a resign is taken over at once. Default true. */
  watchReleases?: boolean;
  /**
   * Take the key at once when it holds this `holderId` written by another instance: a previous run of
   * the same holder (a restarted process) whose lease has not expired yet. Only safe when no two live
   * processes share a holder id. Default false.
   */
  reclaimOwnIdentity?: boolean;
  onElected?: (t: LeaderTerm) => void;
  onDemoted?: (d: Demotion) => void;
  log?: Logger;
}

export interface LeaderTerm {
  /** The key revision that began this tenure: the fencing token. */
  term: number;
  holderId: string;
  /** When this contender became leader, on its monotonic clock (`performance.now()`). */
  since: number;
}

export type DemotionReason = "expired" | "lost" | "resigned" | "stopped";

export interface Demotion {
  term: number;
  since: number;
  /** When `isLeader()` stopped being true (`performance.now()`): the deadline, or the moment of the demotion. */
  until: number;
  reason: DemotionReason;
}

export interface LeaseHolder {
  holderId: string;
  revision: number;
}

interface Tenure {
  term: number;
  since: number;
  /** performance.now() after which this contender no longer leads */
  deadline: number;
}

interface Held {
  h: string;
  n: string;
}

const now = (): number => performance.now();

export class LeaderLease implements AsyncDisposable {
  readonly holderId: string;
  readonly key: string;
  private readonly ttl: number;
  private readonly refreshMs: number;
  private readonly pollMs: number;
  private readonly margin: number;
  private readonly value: Uint8Array;
  private readonly nonce = randomBytes(8).toString("hex");
  private readonly log: Logger;

  private kv: KvMeta | undefined;
  private opening: Promise<KvMeta> | undefined;
  private watch: KvWatch | undefined;
  private campaigning = false;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private tenure: Tenure | undefined;
  /** The revision of our last write to the key that we have not released (we may hold the key). */
  private owned: number | undefined;
  private nextRefreshAt = 0;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private wakeSleep: (() => void) | undefined;
  private readonly electedCbs = new Set<(t: LeaderTerm) => void>();
  private readonly demotedCbs = new Set<(d: Demotion) => void>();
  private waiters: Array<(t: LeaderTerm | undefined) => void> = [];

  constructor(
    readonly nc: NatsConnection,
    private readonly opts: LeaseOptions,
  ) {
    const ttl = opts.ttlMs;
    if (!(ttl > 0)) throw VbError.invalid(`lease ttlMs must be > 0, got ${ttl}`);
    this.ttl = ttl;
    this.refreshMs = opts.refreshIntervalMs ?? ttl / 4;
    this.pollMs = opts.pollIntervalMs ?? ttl / 4;
    this.margin = opts.marginMs ?? ttl / 10;
    if (this.refreshMs + this.margin >= ttl) {
      throw VbError.invalid(
        `lease refreshIntervalMs (${this.refreshMs}) + marginMs (${this.margin}) must be below ttlMs (${ttl}), or the leader steps down before it refreshes`,
      );
    }
    this.holderId = opts.holderId;
    this.key = opts.key ?? "leader";
    this.value = encode({ h: this.holderId, n: this.nonce } satisfies Held);
    this.log = opts.log ?? createLogger({ module: "lease", bucket: opts.bucket, holder: opts.holderId });
    if (opts.onElected) this.electedCbs.add(opts.onElected);
    if (opts.onDemoted) this.demotedCbs.add(opts.onDemoted);
  }

  /** true while this contender leads, judged on its own clock at the moment of the call. */
  isLeader(): boolean {
    return this.tenure !== undefined && now() < this.tenure.deadline;
  }

  /** The fencing token of the current tenure (the revision that began it), undefined when not leader. */
  get term(): number | undefined {
    return this.isLeader() ? this.tenure!.term : undefined;
  }

  /** The key's revision after our last successful write, while leader (it changes at every refresh). */
  get revision(): number | undefined {
    return this.isLeader() ? this.owned : undefined;
  }

  /** The local deadline of the current tenure (`performance.now()` time), undefined when not leader. */
  get deadline(): number | undefined {
    return this.isLeader() ? this.tenure!.deadline : undefined;
  }

  onElected(cb: (t: LeaderTerm) => void): () => void {
    this.electedCbs.add(cb);
    return () => this.electedCbs.delete(cb);
  }

  onDemoted(cb: (d: Demotion) => void): () => void {
    this.demotedCbs.add(cb);
    return () => this.demotedCbs.delete(cb);
  }

  /**
   * Starts contending (if not already) and resolves with the term once this contender leads; resolves
   * undefined if it resigns or stops first. After a demotion it keeps contending as a standby until
   * `resign()` or `stop()`.
   */
  async campaign(): Promise<LeaderTerm | undefined> {
    if (this.stopped) throw new VbError(ErrorCode.ServiceNotReady, `lease "${this.opts.bucket}/${this.key}" is stopped: make a new LeaderLease`);
    if (this.isLeader()) return { term: this.tenure!.term, holderId: this.holderId, since: this.tenure!.since };
    const elected = new Promise<LeaderTerm | undefined>((resolve) => this.waiters.push(resolve));
    if (!this.campaigning) {
      // a previous loop (before a resign) must be gone before a new one starts
      if (this.loop) await this.loop;
      if (!this.campaigning && !this.stopped) {
        this.campaigning = true;
        this.loop = this.run();
      }
    }
    return elected;
  }

  /** Who holds the lease now (by reading the key), if anyone. */
  async currentHolder(): Promise<LeaseHolder | undefined> {
    const kv = await this.bucket();
    const e = await kv.get(this.key);
    if (!e) return undefined;
    try {
      return { holderId: decode<Held>(e.value).h, revision: e.revision };
    } catch {
      return undefined;
    }
  }

  /**
   * Gives the lease up at once: stops acting as leader, stops contending, and deletes the key (only if it
   * is still ours) so that a standby takes over without waiting for the TTL. `campaign()` contends again.
   */
  async resign(): Promise<void> {
    await this.halt("resigned");
    await this.release();
  }

  /**
   * Stops contending and acting as leader, without deleting the key: a standby takes over when it
   * expires (as after a crash). Stops the watch; the lease cannot campaign again.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.halt("stopped");
    await this.watch?.stop();
    this.watch = undefined;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.resign();
    await this.stop();
  }

  // ---------------------------------------------------------------------------------------------------

  private async halt(reason: DemotionReason): Promise<void> {
    this.campaigning = false;
    this.demote(reason);
    this.wake();
    await this.loop;
    this.loop = undefined;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w(undefined);
  }

  private async bucket(): Promise<KvMeta> {
    if (this.kv) return this.kv;
    this.opening ??= KvMeta.open(this.nc, this.opts.bucket, {
      history: 1,
      ttlMs: this.ttl,
      storage: this.opts.storage ?? "file",
      timeoutMs: Math.max(this.ttl, 1000),
      log: this.log,
    }).finally(() => {
      this.opening = undefined;
    });
    this.kv = await this.opening;
    return this.kv;
  }

  private async run(): Promise<void> {
    while (this.campaigning) {
      try {
        const kv = await this.bucket();
        if (this.opts.watchReleases !== false && !this.watch) {
          this.watch = await kv.watchKey(this.key, (c) => {
            if (c.operation !== "PUT" && !this.tenure) this.wake();
          }, { includeInitial: false });
        }
        if (this.tenure) {
          const wait = this.nextRefreshAt - now();
          if (wait > 0) await this.sleep(wait);
          if (this.campaigning && this.tenure) await this.refresh(kv, this.tenure);
        } else if (!(await this.tryAcquire(kv)) && this.campaigning) {
          await this.sleep(this.pollMs);
        }
      } catch (err) {
        this.log.warn({ err: errorText(err) }, "lease loop error; retrying");
        if (this.campaigning) await this.sleep(this.pollMs);
      }
    }
  }

  /** One attempt to take the key. true when this contender now leads. */
  private async tryAcquire(kv: KvMeta): Promise<boolean> {
    const t0 = now();
    let rev: number;
    try {
      if (this.owned !== undefined) {
        // we may still hold the key (a refresh that landed after we gave up): renew it in place
        rev = await kv.update(this.key, this.value, this.owned);
      } else {
        rev = await kv.create(this.key, this.value);
      }
    } catch (err) {
      if (!isCasConflict(err)) {
        this.log.warn({ err: errorText(err) }, "lease acquire failed");
        return false;
      }
      if (this.owned !== undefined) {
        this.owned = await this.ownRevision(kv);
        return false;
      }
      const taken = this.opts.reclaimOwnIdentity ? await this.reclaim(kv) : undefined;
      if (taken === undefined) return false;
      rev = taken;
    }
    this.owned = rev;
    if (!this.campaigning) return false; // resigned (resign() releases the key) or stopped (the key expires)
    if (now() >= t0 + this.ttl - this.margin) return false; // the ack came too late to lead on; renew next round
    this.elect(rev, t0);
    return true;
  }

  private async refresh(kv: KvMeta, tenure: Tenure): Promise<void> {
    const t0 = now();
    try {
      const rev = await kv.update(this.key, this.value, this.owned!);
      this.owned = rev;
      if (this.tenure !== tenure) return; // the deadline passed while we waited: we hold the key but lead no more
      tenure.deadline = Math.max(tenure.deadline, t0 + this.ttl - this.margin);
      this.nextRefreshAt = t0 + this.refreshMs;
      this.armDeadline(tenure);
    } catch (err) {
      if (isCasConflict(err)) {
        // an earlier refresh whose ack we missed may have landed: then the key is still ours at a newer revision
        this.owned = await this.ownRevision(kv).catch(() => undefined);
        if (this.owned === undefined) {
          this.demote("lost");
          return;
        }
      } else {
        this.log.warn({ err: errorText(err), term: tenure.term }, "lease refresh failed; retrying until the deadline");
      }
      this.nextRefreshAt = now() + Math.min(this.refreshMs, Math.max(5, (tenure.deadline - now()) / 4));
    }
  }

  /**
   * Takes the key over, in one revision-checked update, when a previous run of this holder wrote it
   * (see `reclaimOwnIdentity`); the new revision, or undefined. An update, not a delete: a standby
   * watching for deletes cannot slip in between.
   */
  private async reclaim(kv: KvMeta): Promise<number | undefined> {
    const e = await kv.get(this.key);
    if (!e) return undefined;
    let held: Held;
    try {
      held = decode<Held>(e.value);
    } catch {
      return undefined;
    }
    if (held.h !== this.holderId || held.n === this.nonce) return undefined;
    try {
      const rev = await kv.update(this.key, this.value, e.revision);
      this.log.info({ revision: e.revision }, "took back the lease a previous run of this holder left");
      return rev;
    } catch (err) {
      if (isCasConflict(err)) return undefined;
      throw err;
    }
  }

  /** The key's revision if the key holds our own value (written by this very instance), else undefined. */
  private async ownRevision(kv: KvMeta): Promise<number | undefined> {
    const e = await kv.get(this.key);
    if (!e) return undefined;
    try {
      const held = decode<Held>(e.value);
      return held.n === this.nonce && held.h === this.holderId ? e.revision : undefined;
    } catch {
      return undefined;
    }
  }

  private elect(rev: number, t0: number): void {
    const tenure: Tenure = { term: rev, since: now(), deadline: t0 + this.ttl - this.margin };
    this.tenure = tenure;
    this.nextRefreshAt = t0 + this.refreshMs;
    this.armDeadline(tenure);
    const t: LeaderTerm = { term: rev, holderId: this.holderId, since: tenure.since };
    this.log.info({ term: rev }, "elected leader");
    for (const cb of this.electedCbs) this.safely(() => cb(t));
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w(t);
  }

  private demote(reason: DemotionReason): void {
    const t = this.tenure;
    if (!t) return;
    this.tenure = undefined;
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    const d: Demotion = { term: t.term, since: t.since, until: Math.min(now(), t.deadline), reason };
    this.log.info({ term: t.term, reason }, "no longer leader");
    for (const cb of this.demotedCbs) this.safely(() => cb(d));
    this.wake();
  }

  private armDeadline(tenure: Tenure): void {
    clearTimeout(this.deadlineTimer);
    const fire = (): void => {
      if (this.tenure !== tenure) return;
      const left = tenure.deadline - now();
      if (left > 0) {
        this.deadlineTimer = setTimeout(fire, Math.ceil(left));
        return;
      }
      this.demote("expired");
    };
    this.deadlineTimer = setTimeout(fire, Math.max(0, Math.ceil(tenure.deadline - now())));
  }

  /** Deletes the key if our last write is still its latest revision. */
  private async release(): Promise<void> {
    const rev = this.owned;
    if (rev === undefined || !this.kv) return;
    this.owned = undefined;
    try {
      await this.kv.delete(this.key, { expectedRevision: rev });
    } catch (err) {
      if (!isCasConflict(err)) this.log.warn({ err: errorText(err) }, "could not release the lease key; it expires at its TTL");
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wakeSleep = done;
    });
  }

  private wake(): void {
    const w = this.wakeSleep;
    this.wakeSleep = undefined;
    w?.();
  }

  private safely(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error({ err: errorText(err) }, "lease callback failed");
    }
  }
}
