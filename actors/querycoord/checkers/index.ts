/** Every checker of one reconcile round, in priority order: channels, leaders, segments, leftovers, indexes. */
import { checkChannels } from "./channel_checker.ts";
import { checkIndexes } from "./index_checker.ts";
import { checkLeaders } from "./leader_checker.ts";
import { checkSegments } from "./segment_checker.ts";
import { checkReleased } from "./stray_checker.ts";
import { mergeResults, type CheckInput, type CheckResult } from "./types.ts";
import { qcCheckerRound } from "../../metrics.ts";

export { checkChannels, checkLeaders, checkSegments, checkReleased, checkIndexes };
export * from "./types.ts";

/** One round; its time goes to `vectorbus_querycoord_checker_round_latency`. */
export function runCheckers(input: CheckInput, lap?: (stage: string) => void): CheckResult {
  const t0 = performance.now();
  const timed = (stage: string, check: (input: CheckInput) => CheckResult) => {
    const r = check(input);
    lap?.(stage);
    return r;
  };
  const result = mergeResults(
    timed("channels", checkChannels),
    timed("leaders", checkLeaders),
    timed("segments", checkSegments),
    timed("released", checkReleased),
    timed("indexes", checkIndexes),
  );
  qcCheckerRound.observe(performance.now() - t0);
  return result;
}
