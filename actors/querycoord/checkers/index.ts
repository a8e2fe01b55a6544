/** Every checker of one reconcile round, in priority order: channels, leaders, segments, leftovers, indexes. */
import { checkChannels } from "./channel_checker.ts";
import { checkIndexes } from "./index_checker.ts";
import { checkLeaders } from "./leader_checker.ts";
import { checkSegments } from "./segment_checker.ts";
import { checkReleased } from "./stray_checker.ts";
import { mergeResults, type CheckInput, type CheckResult } from "./types.ts";

export { checkChannels, checkLeaders, checkSegments, checkReleased, checkIndexes };
export * from "./types.ts";

export function runCheckers(input: CheckInput): CheckResult {
  return mergeResults(checkChannels(input), checkLeaders(input), checkSegments(input), checkReleased(input), checkIndexes(input));
}
