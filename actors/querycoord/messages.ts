/** The messages querycoord sends itself (the API verbs are `querycoord.<Verb>` of QuerycoordApi). */
export const MSG = {
  /** the periodic reconcile round */
  tick: "querycoord.internal.Tick",
  /** a reconcile round soon after a change */
  kick: "querycoord.internal.Kick",
  /** a querynode's distribution from the feed: { dist, seenAt } */
  dist: "querycoord.internal.Dist",
  /** the feed delivered its snapshot */
  distReady: "querycoord.internal.DistReady",
  /** following the feed failed: follow again */
  distLost: "querycoord.internal.DistLost",
  /** a DDL or segment event: { ev } */
  event: "querycoord.internal.Event",
  /** a task's ask came back */
  taskReply: "querycoord.internal.TaskReply",
  /** datacoord's recovery info for a next target came back */
  targetFetched: "querycoord.internal.TargetFetched",
  /** datacoord's index infos for a collection came back */
  indexesFetched: "querycoord.internal.IndexesFetched",
  /** a job's work or writes came back */
  jobStep: "querycoord.internal.JobStep",
} as const;
