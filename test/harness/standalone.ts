/**
 * A Vectorbus standalone for a test: every role (or the ones asked for) in this process, on the suite's
 * nats-server under a prefix of its own, with a filesystem object store in a temporary directory.
 */
import { mkdtemp, rm } from "node:fs/promises";
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
  const start = () => startStandalone(config, opts.roles ? { roles: opts.roles } : {});
  const tc = {
    sa: await start(),
    client: undefined as unknown as VectorbusClient,
    config,
    dataDir,
    async restart() {
      await tc.sa.stop();
      tc.sa = await start();
      tc.client = clientOf(tc.sa.nc, { prefix: config.prefix });
    },
    async stop() {
      await tc.sa.stop();
      if (!opts.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
    [Symbol.asyncDispose]: () => tc.stop(),
  };
  tc.client = clientOf(tc.sa.nc, { prefix: config.prefix });
  return tc;
}
