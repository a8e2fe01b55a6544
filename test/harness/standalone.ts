/**
 * A Vectorbus standalone for a test: every role (or the ones asked for) in this process, on the suite's
 * nats-server under a prefix of its own, with a filesystem object store in a temporary directory. With
 * `querynodeProcesses`, the querynodes run as processes of their own (`vbus serve --role querynode`, as
 * pods do) and everything else in this process.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { openSync, closeSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ClusterConfig } from "../../actors/env.ts";
import { clientOf, type VectorbusClient } from "../../actors/control/client.ts";
import { defaultConfig, type VbConfig } from "../../ops/config.ts";
import { startStandalone, type Standalone } from "../../ops/standalone.ts";
import type { RoleSet } from "../../ops/roles.ts";
import { natsUrl, uniquePrefix } from "./index.ts";

export interface TestCluster extends AsyncDisposable {
  sa: Standalone;
  client: VectorbusClient;
  config: VbConfig;
  dataDir: string;
  /** stops the process's actors (the data stays) and starts them again on the same prefix and store */
  restart(): Promise<void>;
  /** the process of querynode `nodeId` when it runs in one of its own (`querynodeProcesses`) */
  querynodeProcess(nodeId: string): ChildProcess | undefined;
  stop(): Promise<void>;
}

export async function startTestCluster(
  opts: {
    roles?: RoleSet;
    cluster?: Partial<ClusterConfig>;
    prefix?: string;
    dataDir?: string;
    natsUrl?: string;
    querynodes?: number;
    /** an object store spec (default: files under the data directory) */
    objectStore?: string;
    /** this many querynodes, each a `vbus serve --role querynode` process of its own (qn1, qn2, ...) */
    querynodeProcesses?: number;
  } = {},
): Promise<TestCluster> {
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), "vbus-test-")));
  const config: VbConfig = {
    ...defaultConfig({}),
    natsUrl: opts.natsUrl ?? natsUrl(),
    prefix: opts.prefix ?? uniquePrefix("e"),
    dataDir,
    ...(opts.cluster ? { cluster: opts.cluster } : {}),
    ...(opts.querynodes ? { querynodes: opts.querynodes } : {}),
    ...(opts.objectStore ? { objectStore: opts.objectStore } : {}),
  };
  const external = opts.querynodeProcesses ?? 0;
  const roles: RoleSet | undefined =
    external > 0 ? { rootcoord: true, datacoord: true, datanodes: ["dn1"], querycoord: true, querynodes: [], proxy: true } : opts.roles;
  const start = () => startStandalone(config, roles ? { roles } : {});
  const sa = await start();
  const children = external > 0 ? await startQuerynodeProcesses(config, external) : [];
  const tc = {
    sa,
    client: undefined as unknown as VectorbusClient,
    config,
    dataDir,
    querynodeProcess: (nodeId: string) => (/^qn\d+$/.test(nodeId) ? children[Number(nodeId.slice(2)) - 1] : undefined),
    async restart() {
      await tc.sa.stop();
      tc.sa = await start();
      tc.client = clientOf(tc.sa.nc, { prefix: config.prefix });
    },
    async stop() {
      await stopProcesses(children);
      await tc.sa.stop();
      if (!opts.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
    [Symbol.asyncDispose]: () => tc.stop(),
  };
  tc.client = clientOf(tc.sa.nc, { prefix: config.prefix });
  if (external > 0) {
    // querycoord sees every querynode process before the test starts loading
    const deadline = Date.now() + 60_000;
    for (;;) {
      const st = await tc.client.getStatus({}).catch(() => undefined);
      if (st && st.nodes.filter((n) => n.alive).length >= external) break;
      if (Date.now() > deadline) {
        await tc.stop();
        throw new Error(`the ${external} querynode processes did not show up within 60 s (logs under ${join(dataDir, "logs")})`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return tc;
}

const VBUS = fileURLToPath(new URL("../../ops/vbus.mjs", import.meta.url));

async function startQuerynodeProcesses(config: VbConfig, n: number): Promise<ChildProcess[]> {
  const logs = join(config.dataDir, "logs");
  await mkdir(logs, { recursive: true });
  return Array.from({ length: n }, (_, i) => {
    const fd = openSync(join(logs, `querynode-qn${i + 1}.log`), "a");
    try {
      const args = ["serve", "--role", "querynode", "--node-id", `qn${i + 1}`, "--nats", config.natsUrl!, "--prefix", config.prefix, "--data", config.dataDir];
      return spawn(process.execPath, [VBUS, ...args], { stdio: ["ignore", fd, fd], env: { ...process.env, VB_LOG_LEVEL: process.env.VB_LOG_LEVEL ?? "info" } });
    } finally {
      closeSync(fd);
    }
  });
}

/** SIGTERM to every process (they stop together: none waits to drain), SIGKILL after 20 s. */
async function stopProcesses(children: ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          const kill = setTimeout(() => c.kill("SIGKILL"), 20_000);
          c.once("exit", () => {
            clearTimeout(kill);
            resolve();
          });
          c.kill("SIGTERM");
        }),
    ),
  );
}
