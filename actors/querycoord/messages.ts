/**
 * The messages querycoord sends itself (the API verbs are `querycoord.<Verb>` of QuerycoordApi): private,
 * the runtime refuses them from any other sender. Work it waits on continues in the mailbox (`core.after`).
 */
export const MSG = {
  /** the periodic reconcile round */
  tick: "querycoord.internal.Tick",
  /** a reconcile round soon after a change */
  kick: "querycoord.internal.Kick",
  /** a querynode's distribution from the feed: { dist, storedAt, live } */
  dist: "querycoord.internal.Dist",
  /** the feed delivered its snapshot */
  distReady: "querycoord.internal.DistReady",
  /** following the feed failed: follow again */
  distLost: "querycoord.internal.DistLost",
  /** a DDL or segment event: { ev } */
  event: "querycoord.internal.Event",
  /** follow the distribution feed again (after it was lost) */
  refollow: "querycoord.internal.Refollow",
} as const;
