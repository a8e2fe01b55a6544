/**
 * The typed client as a user's app gets it: `npm pack` (which builds it), the tarball unpacked into the
 * node_modules of a temporary ESM project and of a temporary CommonJS project, then plain `node` imports
 * or requires "vectorbus" and talks to a standalone started here.
 *
 * `npm install <tarball>` needs the registry's metadata of every dependency, which this machine may not
 * reach; so the tarball is unpacked as npm would place it, and the package's declared dependencies (and
 * only those) are linked from the repository's node_modules. What the tarball holds, its `exports`, the
 * built JavaScript and the `vbus` bin are the package's own.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode } from "../../protocol/errors.ts";
import { VB_VERSION } from "../../ops/config.ts";
import { freePort } from "../harness/index.ts";
import { startTestCluster, type TestCluster } from "../harness/standalone.ts";

const run = promisify(execFile);
const REPO = fileURLToPath(new URL("../..", import.meta.url));
const NAME = "pkg_books";

/** What the apps print: the collections they listed and the error an unknown collection got. */
const APP_BODY = `
const out = {};
try {
  const vb = await connect(process.env.APP_SERVERS ? { servers: process.env.APP_SERVERS } : undefined);
  out.collections = (await vb.listCollections({})).collections;
  try {
    await vb.describeCollection({ collectionName: "no_such_collection" });
  } catch (e) {
    out.unknown = { isVbError: e instanceof VbError, code: e.code };
  }
  await vb.close();
} catch (e) {
  out.connectError = { isVbError: e instanceof VbError, code: e.code, message: e.message };
}
console.log(JSON.stringify(out));
`;

const ESM_APP = `import { connect, VbError } from "vectorbus";\n${APP_BODY}`;
const CJS_APP = `const { connect, VbError } = require("vectorbus");\n(async () => {${APP_BODY}})();\n`;

interface AppOut {
  collections?: string[];
  unknown?: { isVbError: boolean; code: number };
  connectError?: { isVbError: boolean; code: number; message: string };
}

describe("the typed client package from npm pack", () => {
  let tc: TestCluster;
  let work: string;
  const projects: Record<"esm" | "cjs", string> = { esm: "", cjs: "" };

  /** Runs the app of a project under plain node with this environment (no VB_* from the test's). */
  const app = async (kind: "esm" | "cjs", env: Record<string, string>): Promise<AppOut> => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("VB_") && k !== "NODE_OPTIONS"));
    const { stdout } = await run(process.execPath, [kind === "esm" ? "app.mjs" : "app.js"], { cwd: projects[kind], env: { ...clean, ...env }, timeout: 30_000 });
    return JSON.parse(stdout) as AppOut;
  };

  beforeAll(async () => {
    tc = await startTestCluster();
    await tc.client.createCollection({
      schema: {
        name: NAME,
        fields: [
          { name: "id", type: "Int64", isPrimaryKey: true },
          { name: "vector", type: "FloatVector", dim: 4 },
        ],
      },
    });
    work = await mkdtemp(join(tmpdir(), "vbus-pack-"));
    // prepare builds dist/ before the tarball is made
    const packed = await run("npm", ["pack", "--pack-destination", work, "--json"], { cwd: REPO, timeout: 120_000, maxBuffer: 16 << 20 });
    const tarball = join(work, (JSON.parse(packed.stdout) as { filename: string }[])[0]!.filename);
    const deps = Object.keys((JSON.parse(await readFile(join(REPO, "package.json"), "utf8")) as { dependencies: Record<string, string> }).dependencies);
    for (const kind of ["esm", "cjs"] as const) {
      const dir = (projects[kind] = join(work, kind));
      const pkg = join(dir, "node_modules", "vectorbus");
      await mkdir(pkg, { recursive: true });
      await writeFile(join(dir, "package.json"), JSON.stringify({ name: `${kind}-app`, private: true, type: kind === "esm" ? "module" : "commonjs" }));
      await run("tar", ["-xzf", tarball, "-C", pkg, "--strip-components=1"]);
      for (const d of deps) {
        await mkdir(dirname(join(dir, "node_modules", d)), { recursive: true });
        await symlink(join(REPO, "node_modules", d), join(dir, "node_modules", d), "dir");
      }
      await writeFile(join(dir, kind === "esm" ? "app.mjs" : "app.js"), kind === "esm" ? ESM_APP : CJS_APP);
    }
  }, 180_000);

  afterAll(async () => {
    await tc?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("ships the built client with types and leaves tests and benchmarks out", () => {
    const pkg = join(projects.esm, "node_modules", "vectorbus");
    for (const f of ["dist/esm/index.js", "dist/esm/index.d.ts", "dist/cjs/index.js", "dist/cjs/index.d.ts", "ops/vbus.mjs", "package.json"]) {
      expect(existsSync(join(pkg, f)), f).toBe(true);
    }
    for (const f of ["test", "bench", "vitest.config.ts"]) expect(existsSync(join(pkg, f)), f).toBe(false);
  });

  it("imports in an ESM project and requires in a CommonJS one, given the servers", async () => {
    const env = { APP_SERVERS: tc.config.natsUrl!, VB_PREFIX: tc.config.prefix };
    for (const kind of ["esm", "cjs"] as const) {
      const out = await app(kind, env);
      expect(out.connectError, kind).toBeUndefined();
      expect(out.collections, kind).toEqual([NAME]);
      expect(out.unknown, kind).toEqual({ isVbError: true, code: ErrorCode.CollectionNotFound });
    }
  }, 60_000);

  it("connect() with no servers finds the cluster from VB_NATS_URL or from a local vbus up's runfile", async () => {
    const viaEnv = await app("esm", { VB_NATS_URL: tc.config.natsUrl!, VB_PREFIX: tc.config.prefix });
    expect(viaEnv.collections).toEqual([NAME]);
    // the runfile names the NATS URL and the prefix
    const data = join(work, "data");
    await mkdir(data, { recursive: true });
    await writeFile(join(data, "vbus.json"), JSON.stringify({ natsUrl: tc.config.natsUrl, prefix: tc.config.prefix, pid: process.pid }));
    const viaRunfile = await app("cjs", { VB_DATA_DIR: data });
    expect(viaRunfile.collections).toEqual([NAME]);
  }, 60_000);

  it("fails with a VbError naming the URL and where it came from when nothing answers", async () => {
    const data = join(work, "gone");
    await mkdir(data, { recursive: true });
    const url = `nats://127.0.0.1:${await freePort()}`;
    await writeFile(join(data, "vbus.json"), JSON.stringify({ natsUrl: url, prefix: "vb", pid: 1 }));
    const out = await app("esm", { VB_DATA_DIR: data });
    expect(out.connectError?.isVbError).toBe(true);
    expect(out.connectError?.code).toBe(ErrorCode.ServiceUnavailable);
    expect(out.connectError?.message).toContain(url);
    expect(out.connectError?.message).toContain(join(data, "vbus.json"));
  }, 60_000);

  it("runs the vbus bin from the package: --version", async () => {
    const { stdout } = await run(process.execPath, [join(projects.cjs, "node_modules", "vectorbus", "ops", "vbus.mjs"), "--version"], {
      cwd: projects.cjs,
      timeout: 60_000,
    });
    expect(stdout.trim()).toBe(VB_VERSION);
  }, 60_000);
});
