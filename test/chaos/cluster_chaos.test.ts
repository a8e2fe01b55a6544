/**
 * The cluster under failure, as `vbus chaos` runs it (ops/chaos.ts): a pods cluster of its own on
 * loopback (one process per role, 3 querynodes, a collection with 2 replicas), Strong searches and
 * inserts from clients, and one kind of fault at an interval. Shorter than the CLI's runs; what the
 * clients saw is asserted, not how fast it was (`vbus chaos ... --json` prints the latencies).
 */
import { describe, expect, it } from "vitest";
import { runChaos, type ChaosReport, type ChaosScenario } from "../../ops/chaos.ts";

function run(scenario: ChaosScenario, durationS: number, intervalS: number): Promise<ChaosReport> {
  return runChaos({ scenario, durationS, intervalS, querynodes: 3, replicas: 2, rows: 4_000, say: () => undefined });
}

/** Every acknowledged insert is counted once at the end (rows that failed ambiguously may be there too). */
function nothingLost(r: ChaosReport): void {
  expect(r.final_count).toBeGreaterThanOrEqual(0);
  expect(r.rows_lost).toBe(0);
  expect(r.rows_extra).toBe(0);
  expect(r.inserts_acked).toBeGreaterThan(0);
}

describe("the cluster under failure (pods on loopback)", { timeout: 240_000 }, () => {
  it("querynode SIGKILL under Strong searches and inserts: searches move to the other replica, nothing is lost", async () => {
    const r = await run("querynode-kill", 36, 12);
    expect(r.faults).toBeGreaterThanOrEqual(2);
    expect(r.searches).toBeGreaterThan(100);
    expect(r.search_success_ratio).toBeGreaterThanOrEqual(0.999);
    expect(r.load_state).toBe("Loaded");
    nothingLost(r);
  });

  it("querynode SIGTERM: the node drains before it exits, no search fails", async () => {
    const r = await run("querynode-drain", 36, 12);
    expect(r.faults).toBeGreaterThanOrEqual(2);
    expect(r.search_failures).toBe(0);
    expect(r.errors).toEqual({});
    nothingLost(r);
  });

  it("nats-server restart: every process reconnects by itself, nothing acknowledged is lost, searches resume", async () => {
    const r = await run("nats-restart", 30, 12);
    expect(r.faults).toBeGreaterThanOrEqual(2);
    // the final Strong count(*) ran after the last restart: searches and queries resumed
    expect(r.final_count).toBeGreaterThan(0);
    expect(r.search_success_ratio).toBeGreaterThan(0.9);
    nothingLost(r);
  });

  it("SIGKILL of each coordinator's leader in turn: the standby takes over, the load stays Loaded, searches go on", async () => {
    const r = await run("coordinator-kill", 40, 12);
    expect(r.faults).toBeGreaterThanOrEqual(3);
    expect(r.search_failures).toBe(0);
    expect(r.load_state).toBe("Loaded");
    nothingLost(r);
  });
});
