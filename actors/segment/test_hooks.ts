/**
 * Faults that tests inject into segment actors of their own process. Production code never sets
 * them: every set starts empty and the delay at 0, and only a test changes them.
 */
export const segmentTestHooks = {
  /** segments (id, as a string) whose next Search crashes their actor, once each */
  crashOnSearch: new Set<string>(),
  /** segments whose actor cannot start again after a crash (as if their columns were damaged) */
  refuseRestart: new Set<string>(),
  /** ms every Search of a segment actor (sealed or growing) waits before it answers: a slow search on purpose */
  searchDelayMs: 0,
};
