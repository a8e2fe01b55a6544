/**
 * querycoord's knobs (Milvus's `queryCoord.*` params). The cluster-wide ones (heartbeat timing) come
 * from `ClusterEnv.config`; these are querycoord's own, with defaults fit for a small cluster.
 */
export interface QuerycoordParams {
  /** how often the checkers run (ms); they also run right after a distribution change or a job */
  reconcileIntervalMs: number;
  /**
   * after a round, the next one waits at least this share of its duration, for the feed, task replies
   * and requests (what came during the round is served before the next one in any case): 0.25 lets
   * rounds have up to 80 % of querycoord's thread when the state is large. While querycoord reads the
   * feed more than two heartbeat intervals behind, the next round waits the whole duration.
   */
  roundRestShare: number;
  /** tasks in flight per querynode at most (Milvus's taskExecutionCap) */
  taskExecutionCap: number;
  /**
   * segment loads started together for one node, collection and replica go in one LoadSegments request
   * of at most this many segments (Milvus's taskMergeCap); each stays a task of its own
   */
  taskMergeCap: number;
  /**
   * new segment loads one reconcile round plans at most (across every collection and node): planning is
   * most of a round's work during a large load, and a round holds the mailbox (heartbeats, replies)
   */
  maxLoadsPerRound: number;
  /**
   * segment copies (target segments × replicas) whose segments, delegators' views, indexes, handoff,
   * load progress and balance one round looks at, at least one collection's: a cluster holding more
   * is looked at a share a round, collection by collection in turn, so that no round walks millions of
   * copies while heartbeats and replies wait (channels and released collections are looked at for every
   * collection every round); 0: every collection every round
   */
  maxCopiesPerRound: number;
  /**
   * segments the LeaderChecker walks in whole views per round at most (a delegator whose view must be
   * made anew: a new target, a replica that changed); the rest wait for the next rounds, which look
   * there first (0: no bound)
   */
  leaderWalkBudget: number;
  /** deadline of a LoadSegments ask (ms) */
  loadTimeoutMs: number;
  /** deadline of a WatchDmChannels ask (ms) */
  watchTimeoutMs: number;
  /** deadline of the other asks to querynodes and delegators (ms) */
  requestTimeoutMs: number;
  /**
   * after a reply, how long a task waits for the distribution to show its change before it fails (ms),
   * once querycoord read a distribution of the node published after the change; `distWaitMaxMs` in any case
   */
  distWaitMs: number;
  distWaitMaxMs: number;
  /** backoff before a failed task is tried again: base · 2^(attempts-1), capped (ms) */
  retryBaseMs: number;
  retryMaxMs: number;
  /** how often the next target is refreshed from datacoord without an event (ms) */
  targetRefreshMs: number;
  /** how often a collection's vector indexes are refreshed from datacoord without an event (ms) */
  indexRefreshMs: number;
  /** how long ReleaseCollection waits for the querynodes to drop the collection before it answers (ms) */
  releaseWaitMs: number;
  /** how long preStart waits for the distribution feed's snapshot (ms) */
  distReadyTimeoutMs: number;
  /**
   * for this long after querycoord starts, a load short of querynodes waits for them to show up on the
   * feed instead of failing at once (ms)
   */
  startupGraceMs: number;
  /** how often the BalanceChecker plans segment moves when nothing else is to be done (ms; 0: never) */
  balanceIntervalMs: number;
  /** a balance move not done after this long is given up (ms) */
  balanceMoveTimeoutMs: number;
  /** segment moves planned per balance round at most, and in flight per replica at most */
  balanceMaxMovesPerRound: number;
  balanceMaxMovesPerReplica: number;
  /**
   * how long one balance look may plan segment moves (ms): the rest are planned in the next looks, so
   * that a balance of a large cluster does not hold a round (0: no bound)
   */
  balancePlanMs: number;
  /** told after every reconcile round: how long it took and what querycoord holds (benchmarks measure with it) */
  onRound?: (r: RoundStats) => void;
}

export interface RoundStats {
  /** the round's duration (ms) */
  ms: number;
  /**
   * where the round's time went (ms), by stage in order: liveness, resource groups and replicas, confirming
   * tasks, targets (`targets.readiness`: whether a next target is loaded everywhere; `targets.promote`:
   * the handoff; `targets`: refreshes asked for), each checker, balance, starting tasks, observers
   */
  stagesMs: Record<string, number>;
  /** distribution messages taken from the feed since querycoord started */
  feedMessages: number;
  /** how long the feed's thread has been busy since it started (ms; 0 without one) */
  feedThreadActiveMs: number;
  aliveNodes: number;
  tasksInFlight: number;
  /** tasks the round's checkers asked for, and how many of them it started (the rest wait for a node's cap) */
  tasksPlanned: number;
  tasksStarted: number;
  /** the tasks started, by kind (LoadSegment, SyncLeader, ...) */
  tasksStartedByKind: Record<string, number>;
  /** tasks done since the round before, and what they took on average (ms): asked → replied, replied → seen in the distribution */
  tasksDone: number;
  taskAskMs: number;
  taskConfirmMs: number;
  movesInFlight: number;
  /** how far behind the distribution feed querycoord reads (ms) */
  feedLagMs: number;
  /** heads the feed's pulse read since it started (each a heartbeat heard; 0 without a pulse) */
  pulseMessages: number;
  /** how far behind the feed the pulse reads (ms) */
  pulseLagMs: number;
}

export const DEFAULT_QUERYCOORD_PARAMS: QuerycoordParams = {
  reconcileIntervalMs: 200,
  roundRestShare: 0.25,
  taskExecutionCap: 4,
  taskMergeCap: 8,
  maxLoadsPerRound: 4_096,
  maxCopiesPerRound: 200_000,
  leaderWalkBudget: 30_000,
  loadTimeoutMs: 60_000,
  watchTimeoutMs: 30_000,
  requestTimeoutMs: 10_000,
  distWaitMs: 10_000,
  distWaitMaxMs: 60_000,
  retryBaseMs: 500,
  retryMaxMs: 10_000,
  targetRefreshMs: 10_000,
  indexRefreshMs: 10_000,
  releaseWaitMs: 10_000,
  distReadyTimeoutMs: 10_000,
  startupGraceMs: 3_000,
  balanceIntervalMs: 3_000,
  balanceMoveTimeoutMs: 120_000,
  balanceMaxMovesPerRound: 8,
  balanceMaxMovesPerReplica: 2,
  balancePlanMs: 250,
};
