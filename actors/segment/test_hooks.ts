/**
 * Faults that tests inject into segment actors of their own process. Production code never sets
 * them: every set starts empty, and only a test adds to it.
 */
export const segmentTestHooks = {
  /** segments (id, as a string) whose next Search crashes their actor, once each */
  crashOnSearch: new Set<string>(),
  /** segments whose actor cannot start again after a crash (as if their columns were damaged) */
  refuseRestart: new Set<string>(),
};
