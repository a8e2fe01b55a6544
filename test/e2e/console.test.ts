/**
 * The web console in a real browser (Debian's Chromium driven by playwright-core): a standalone with two
 * querynodes and the front door on a free port; the test creates, fills, indexes and loads a collection
 * with the native client while the page is open. The page lists the collection, shows its load reaching
 * 100 %, draws one box per querynode with every loaded segment inside, and its playground's searches (by
 * vector and by a row's id) return the ids the native client's search returns. Then a third querynode
 * joins: the page draws its box and the segments balance moves to it, each starting from the copy it
 * replaces. Screenshots go to test-output/console/.
 */
import { existsSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromium, type Browser, type Page } from "playwright-core";
import { startMilvusFrontDoor, type MilvusFrontDoor } from "../../actors/front/server.ts";
import { spawnQuerynode } from "../../actors/querynode/index.ts";
import { startTestCluster, type TestCluster } from "../harness/standalone.ts";
import { waitFor } from "../harness/index.ts";
import { embeddingVectors } from "../harness/sealed.ts";

const CHROMIUM = process.env.VB_CHROMIUM ?? "/usr/bin/chromium";
const OUT = fileURLToPath(new URL("../../test-output/console/", import.meta.url));
const DIM = 8;
const BATCHES = 3;
const ROWS = 400;
const NAME = "console_books";

// deterministic embedding-like vectors: row i's is the i-th of one set
const VECTORS = embeddingVectors(BATCHES * ROWS + 1, DIM, 7);
const vectorOf = (i: number): number[] => Array.from(VECTORS.subarray(i * DIM, (i + 1) * DIM));
const QUERY = BATCHES * ROWS; // a vector no row has

describe("web console", () => {
  let tc: TestCluster;
  let door: MilvusFrontDoor;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's Chromium with "bash ops/install --test" (or set VB_CHROMIUM)`);
    mkdirSync(OUT, { recursive: true });
    tc = await startTestCluster({ querynodes: 2 });
    door = await startMilvusFrontDoor({ port: 0, host: "127.0.0.1", nc: tc.sa.nc, prefix: tc.config.prefix, actorHost: tc.sa.host, serverVersion: "test" }); // in process, as the standalone serves it
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--disable-dev-shm-usage", ...(process.getuid?.() === 0 ? ["--no-sandbox"] : [])] });
    page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await door?.close();
    await tc?.stop();
  });

  /** a screenshot once the page's transitions have finished (or after 10 s of them: it is only a picture) */
  const shot = async (opts: { path: string; fullPage: boolean }) => {
    await page.waitForFunction("document.getAnimations().length === 0", undefined, { timeout: 10_000 }).catch(() => undefined);
    await page.screenshot(opts);
  };

  it("lists a collection, shows its load reach 100 %, draws one box per querynode, and searches as the native client does", { timeout: 240_000 }, async () => {
    const vb = tc.client;
    const url = `http://127.0.0.1:${door.port}/console`;
    await page.goto(url);
    expect(new URL(page.url()).pathname).toBe("/console/");
    await page.waitForFunction(`Number(document.querySelector("#updated")?.getAttribute("data-polls") ?? 0) > 0`);
    // both querynodes are there before any collection
    await page.waitForSelector('#nodes tr[data-node="qn2"]');
    // the process (this test's standalone) and what it hosts, from service discovery
    await expect.poll(() => page.locator("#processes tbody").textContent(), { timeout: 30_000 }).toMatch(/rootcoord.*datanode dn1.*querynode qn1 qn2.*proxy/);

    await vb.createCollection({
      schema: {
        name: NAME,
        fields: [
          { name: "id", type: "Int64", isPrimaryKey: true },
          { name: "vec", type: "FloatVector", dim: DIM },
          { name: "title", type: "VarChar", maxLength: 32 },
        ],
      },
      shardsNum: 2,
    });
    // one flushed segment per shard and batch
    for (let b = 0; b < BATCHES; b++) {
      const rows = Array.from({ length: ROWS }, (_, k) => {
        const i = b * ROWS + k;
        return { id: i, vec: vectorOf(i), title: `book ${i}` };
      });
      await vb.insert({ collectionName: NAME, rows });
      await vb.flush({ collectionNames: [NAME] });
    }
    await vb.createIndex({ collectionName: NAME, fieldName: "vec", indexType: "HNSW", metricType: "L2", params: { M: 16, efConstruction: 64 } });

    // the page lists it, not loaded, with its schema and index
    const card = page.locator(`.collection[data-collection="${NAME}"]`);
    await card.waitFor();
    await expect.poll(() => card.locator('[data-testid="load-state"]').textContent(), { timeout: 30_000 }).toBe("NotLoad");
    expect(await card.locator("table").first().textContent()).toContain("FloatVector");
    await expect.poll(() => card.locator('[data-testid="index-progress-vec"]').textContent(), { timeout: 60_000 }).toBe("100 %");
    await shot({ path: `${OUT}/01-created.png`, fullPage: true });

    await vb.loadCollection({ collectionName: NAME });
    await expect.poll(() => card.locator('[data-testid="load-progress"]').textContent(), { timeout: 120_000 }).toBe("100 %");
    await expect.poll(() => card.locator('[data-testid="load-state"]').textContent(), { timeout: 30_000 }).toBe("Loaded");
    expect((await vb.getLoadingProgress({ collectionName: NAME })).progress).toBe(100);

    // the picture: one box per querynode, every loaded segment inside the box of the node that holds it,
    // and every segment's index loaded (so both searches below go through the same indexes)
    const expected = async () => {
      const st = await vb.getStatus({});
      return { nodes: st.nodes.map((n) => n.nodeId).sort(), segments: st.nodes.reduce((s, n) => s + n.segments, 0) };
    };
    // (run in the page: the test's own TypeScript has no DOM types)
    const drawn = () =>
      page.evaluate<{ nodes: string[]; segments: number; unindexed: number }>(`(() => {
        const svg = document.querySelector("#distribution");
        const nodes = [...svg.querySelectorAll("g.node:not(.gone)")].map((g) => g.getAttribute("data-node")).sort();
        const segs = [...svg.querySelectorAll("g.seg:not(.gone)")];
        return { nodes, segments: segs.length, unindexed: segs.filter((g) => g.matches(".noindex, .loading, .failed")).length };
      })()`);
    await waitFor(
      async () => {
        const [want, got] = await Promise.all([expected(), drawn()]);
        return want.segments === BATCHES * 2 && got.segments === want.segments && got.unindexed === 0 && JSON.stringify(got.nodes) === JSON.stringify(want.nodes);
      },
      { timeoutMs: 90_000, intervalMs: 500, what: "the distribution drawn with every segment, indexed" },
    );
    const picture = await drawn();
    expect(picture.nodes).toEqual(["qn1", "qn2"]);
    expect(picture.segments).toBe(BATCHES * 2);
    expect(await page.locator("#distribution g.dlg").count()).toBe(2); // one delegator per shard
    await shot({ path: `${OUT}/02-loaded.png`, fullPage: true });

    // the picture is redrawn in place: the same elements, only moved (what lets CSS transitions show a
    // move), across later polls (nothing moves here: two nodes, 1,200 rows, nothing for balance to do)
    const polls = () => page.evaluate<number>(`Number(document.querySelector("#updated").getAttribute("data-polls"))`);
    await page.evaluate(`document.querySelectorAll("#distribution g.seg, #distribution g.node").forEach((g) => { g.dataset.mark = "kept"; })`);
    const from = await polls();
    await waitFor(async () => (await polls()) >= from + 2, { timeoutMs: 30_000, what: "two more polls" });
    expect(await page.locator('#distribution g.seg:not([data-mark="kept"]), #distribution g.node:not([data-mark="kept"])').count()).toBe(0);
    expect(await page.locator('#distribution g.seg[data-mark="kept"]:not(.gone)').count()).toBe(BATCHES * 2);

    // the same port still answers Milvus's REST v2 and the console's API says what it lacks
    const base = `http://127.0.0.1:${door.port}`;
    const listed = (await (await fetch(`${base}/v2/vectordb/collections/list`, { method: "POST", body: "{}" })).json()) as { code: number; data: string[] };
    expect(listed).toMatchObject({ code: 0, data: [NAME] });
    const missing = await fetch(`${base}/console/api/nothing`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { message: string }).message).toContain("/console/api/state");
    const state = (await (await fetch(`${base}/console/api/state`)).json()) as { nodes: { nodeId: string; segmentList: unknown[] }[]; collections: { name: string; load: { progress: number } }[] };
    expect(state.nodes.map((n) => n.nodeId).sort()).toEqual(["qn1", "qn2"]);
    expect(state.nodes.reduce((k, n) => k + n.segmentList.length, 0)).toBe(BATCHES * 2);
    expect(state.collections.find((c) => c.name === NAME)?.load.progress).toBe(100);

    // the playground, by vector
    const query = vectorOf(QUERY);
    const native = await vb.search({ collectionName: NAME, data: [query], limit: 10 });
    const nativeIds = Array.from(native.results[0]!.ids as BigInt64Array, String);
    expect(nativeIds).toHaveLength(10);
    await page.selectOption("#pg-collection", { label: NAME });
    await page.fill("#pg-vector", JSON.stringify(query));
    await page.fill("#pg-limit", "10");
    await page.click("#pg-run");
    await page.waitForSelector('#pg-status[data-state="done"], #pg-status[data-state="error"]');
    expect(await page.locator("#pg-status").getAttribute("data-state"), (await page.locator("#pg-status").textContent()) ?? "").toBe("done");
    const shown = await page.locator("#results td.id").allTextContents();
    expect(shown).toEqual(nativeIds);
    await shot({ path: `${OUT}/03-search-vector.png`, fullPage: true });

    // by a row's id, with a filter: the row itself comes first (distance 0), as in the native search
    const filter = "id >= 100";
    const byRow = await vb.search({ collectionName: NAME, data: [vectorOf(421)], limit: 5, filter });
    await page.check('input[name="by"][value="id"]');
    await page.fill("#pg-id", "421");
    await page.fill("#pg-filter", filter);
    await page.fill("#pg-limit", "5");
    await page.click("#pg-run");
    await expect.poll(() => page.locator("#results td.id").allTextContents(), { timeout: 30_000 }).toEqual(Array.from(byRow.results[0]!.ids as BigInt64Array, String));
    expect(await page.locator("#results td.id").first().textContent()).toBe("421");
    // the charts: requests per second, and the playground's searches in the latency chart (from /metrics)
    await page.waitForSelector('#chart-qps polyline[data-series="requests"]', { state: "attached" });
    await page.waitForSelector('#chart-latency polyline[data-series="search"]', { state: "attached" });
    expect(await page.locator("#latency-source").textContent()).toBe("(from /metrics)");
    await shot({ path: `${OUT}/04-search-id.png`, fullPage: true });

    // a bad vector is said in the page, not thrown
    await page.check('input[name="by"][value="vector"]');
    await page.fill("#pg-vector", "[1, 2]");
    await page.click("#pg-run");
    await page.waitForSelector('#pg-status[data-state="error"]');
    expect(await page.locator("#pg-status").textContent()).toMatch(/dim/i);
    expect(await page.locator("#results td.id").count()).toBe(0);
  });

  it("draws a querynode that joins and the segments balance moves to it, travelling from the node that gave them", { timeout: 180_000 }, async () => {
    const vb = tc.client;
    await spawnQuerynode(tc.sa.host, tc.sa.env, { nodeId: "qn3" });
    await page.waitForSelector('#distribution g.node[data-node="qn3"]');
    // balance moves segments to qn3 (the gap in rows plus delegators is over 1,000 rows); each copy
    // drawn there started where the copy on qn1 or qn2 was
    await waitFor(
      async () => {
        const st = await vb.getStatus({});
        const qn3 = st.nodes.find((n) => n.nodeId === "qn3");
        if (!qn3 || qn3.segments === 0 || (st.moves ?? []).length > 0) return false;
        const drawn = await page.locator('#distribution g.seg[data-node="qn3"]:not(.gone)').count();
        return drawn === qn3.segments;
      },
      { timeoutMs: 120_000, intervalMs: 500, what: "segments moved to qn3 and drawn there" },
    );
    const arrived = page.locator('#distribution g.seg[data-node="qn3"]:not(.gone)');
    const from = await arrived.evaluateAll((els) => els.map((e) => e.getAttribute("data-from")));
    expect(from.length).toBeGreaterThan(0);
    for (const f of from) expect(["qn1", "qn2"]).toContain(f);
    // and every copy is drawn once, in the box of the node that holds it
    await waitFor(
      async () => {
        const st = await vb.getStatus({});
        const counts = await Promise.all(st.nodes.map((n) => page.locator(`#distribution g.seg[data-node="${n.nodeId}"]:not(.gone)`).count()));
        return st.nodes.every((n, i) => counts[i] === n.segments);
      },
      { timeoutMs: 30_000, intervalMs: 500, what: "each node's segments drawn in its box" },
    );
    await shot({ path: `${OUT}/05-balanced.png`, fullPage: true });
  });
});
