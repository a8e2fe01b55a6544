/**
 * The querycoord-sim bench in short: one real querycoord on the suite's nats-server, simulated
 * querynodes in processes of their own on the real feed, a made-up catalog served by a datacoord peer.
 * Loads converge, a few nodes die at once and their segments and shards are placed again, new nodes get
 * their share through balance; the counts are asserted, never the timings. Querycoord looks at half the
 * collections a round (`maxCopiesPerRound`), as it does a large cluster: the loads, the recovery and the
 * balance get there all the same.
 */
import { describe, expect, it } from "vitest";
import { runSim } from "../../bench/querycoord_sim.ts";
import { natsUrl, uniquePrefix } from "../harness/index.ts";

describe("querycoord reconciling simulated querynodes", () => {
  it("loads 20,000 segments of 4 collections in 2 replicas onto 50 nodes, half a round, recovers from 5 dead nodes and balances onto 5 new ones", async () => {
    const r = await runSim({
      nodes: 50,
      segments: 20_000,
      collections: 4,
      // (4 collections of 10,000 copies: two a round)
      maxCopiesPerRound: 20_000,
      shards: 4,
      workers: 2,
      kill: 5,
      add: 5,
      heartbeatRate: 1_000,
      timeoutS: 500,
      natsUrl: natsUrl(),
      prefix: uniquePrefix("qcsim"),
    });
    expect(r.final.copies).toBe(40_000);
    expect(r.final.expectedCopies).toBe(40_000);
    expect(r.final.delegators).toBe(4 * 2 * 4);
    expect(r.final.minRowsOverMean).toBeGreaterThanOrEqual(0.8);
    // loads for one node, collection and replica go together: fewer requests than segments
    expect(r.final.segmentsAsked).toBeGreaterThanOrEqual(40_000);
    expect(r.final.loadRequests).toBeLessThan(r.final.segmentsAsked / 2);
    expect(r.heartbeats_per_s).toBeGreaterThan(0);
    expect(r.heartbeats_heard_per_s).toBeGreaterThan(0);
  }, 900_000);
});
