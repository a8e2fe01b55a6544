/**
 * The `vbus` CLI as a user runs it, a child process with stderr piped (not a terminal), against a
 * standalone started here: progress lines instead of bars, search by a stored row's id, and the one
 * line an error prints (the collection by name, the CLI command to run).
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestCluster, type TestCluster } from "../harness/standalone.ts";

const VBUS = fileURLToPath(new URL("../../ops/vbus.mjs", import.meta.url));
const NAME = "cli_books";
const DIM = 16;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe("vbus CLI with stderr not a terminal", () => {
  let tc: TestCluster;

  /** `vbus <args> --nats .. --prefix ..`; a line of progress on every update (VB_PROGRESS_INTERVAL_S=0) */
  const vbus = (...args: string[]): Promise<Run> =>
    new Promise((resolve) => {
      execFile(
        process.execPath,
        [VBUS, ...args, "--nats", tc.config.natsUrl!, "--prefix", tc.config.prefix],
        { timeout: 120_000, maxBuffer: 16 << 20, env: { ...process.env, VB_PROGRESS_INTERVAL_S: "0", VB_LOG_LEVEL: "warn" } },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });

  beforeAll(async () => {
    tc = await startTestCluster();
    await tc.client.createCollection({
      schema: {
        name: NAME,
        fields: [
          { name: "id", type: "Int64", isPrimaryKey: true },
          { name: "vector", type: "FloatVector", dim: DIM },
        ],
      },
    });
  }, 120_000);

  afterAll(async () => {
    await tc?.stop();
  });

  it("prints progress lines while inserting 20,000 random rows", async () => {
    const r = await vbus("insert", NAME, "--random", "20000", "--batch", "2000");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^inserted 20000 rows into "${NAME}"`));
    const lines = r.stderr.split("\n").filter((l) => l.startsWith(`inserting into "${NAME}": `));
    expect(lines.length).toBeGreaterThanOrEqual(2);
    for (const l of lines) expect(l).toMatch(/: \d+\/20000 rows sent \(\d+%\), \d+ rows\/s, \d+\.\d s elapsed$/);
    expect(lines.at(-1)).toContain("20000/20000 rows sent (100%)");
    // no bar's control characters in a pipe
    expect(r.stderr).not.toMatch(/\u001b\[/);
  }, 120_000);

  it("refuses a search of a collection that is not loaded in one line naming it and `vbus load`", async () => {
    const r = await vbus("search", NAME, "--id", "5");
    expect(r.code).not.toBe(0);
    const lines = r.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^error 101: /);
    expect(lines[0]).toContain(`collection "${NAME}"`);
    expect(lines[0]).toContain(`vbus load ${NAME}`);
    expect(lines[0]).not.toContain("<name>");
    expect(r.stdout).toBe("");
  }, 120_000);

  it("loads with progress lines and searches with a stored row's vector (--id)", async () => {
    const load = await vbus("load", NAME);
    expect(load.code, load.stderr).toBe(0);
    expect(load.stdout).toBe(`loaded "${NAME}"\n`);
    expect(load.stderr).toMatch(new RegExp(`^loading "${NAME}": 100%, \\d+\\.\\d s elapsed$`, "m"));

    const r = await vbus("search", NAME, "--id", "5", "--limit", "3", "--consistency", "Strong");
    expect(r.code, r.stderr).toBe(0);
    const hits = JSON.parse(r.stdout) as { id: unknown; score: number }[];
    expect(hits).toHaveLength(3);
    // the row itself is its own nearest neighbour (COSINE: score 1)
    expect(String(hits[0]!.id)).toBe("5");
    expect(hits[0]!.score).toBeCloseTo(1, 4);

    const missing = await vbus("search", NAME, "--id", "123456789");
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/no row of "cli_books" has id 123456789/);
  }, 180_000);

  it("flushes and builds an index with progress lines", async () => {
    const flush = await vbus("flush", NAME);
    expect(flush.code, flush.stderr).toBe(0);
    expect(flush.stdout).toMatch(new RegExp(`^flushed "${NAME}": \\d+ segment\\(s\\) sealed and written in \\d+\\.\\d+ s\\n$`));

    const index = await vbus("index", "create", NAME, "--field", "vector", "--type", "HNSW", "--metric", "COSINE");
    expect(index.code, index.stderr).toBe(0);
    expect(index.stdout).toBe(`indexed "${NAME}".vector: 20000 rows\n`);
    const lines = index.stderr.split("\n").filter((l) => l.startsWith(`building the index on "${NAME}".vector: `));
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(lines.at(-1)).toMatch(/: 20000\/20000 rows indexed \(100%\), 0 build\(s\) pending, \d+\.\d s elapsed$/);
  }, 300_000);
});
