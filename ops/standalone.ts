/**
 * Standalone: a nats-server of its own (unless a URL is given), one NATS connection, one process host,
 * and every actor in this one process, on the filesystem object store (or S3 when configured).
 * Stopping it stops the actors, drains the connection and stops the nats-server child; the data
 * directory is kept.
 */
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { mkdir } from "node:fs/promises";
import { ActorHost } from "../runtime/host.ts";
import { startDiscovery, type DiscoveryResponder } from "../runtime/discovery.ts";
import { connectNats, type NatsConnection } from "../runtime/transport.ts";
import { createLogger } from "../runtime/logger.ts";
import { openObjectStore, describeObjectStore } from "../runtime/object_store_url.ts";
import { createClusterEnv, type ClusterEnv } from "../actors/env.ts";
import { startNatsServer, type NatsServer } from "./nats_server.ts";
import { ask } from "../runtime/ask.ts";
import { drainQuerynodes, DEFAULT_DRAIN_TIMEOUT_MS } from "../actors/querynode/drain.ts";
import { spawnRoles, ALL_ROLES, type RoleSet, type SpawnedRoles } from "./roles.ts";
import { VB_VERSION, type VbConfig } from "./config.ts";
import { startMilvusFrontDoor, type MilvusFrontDoor } from "../actors/front/server.ts";
import { setMetricsNode, startMetricsServer, type MetricsServer } from "../runtime/metrics.ts";

export interface Standalone extends AsyncDisposable {
  readonly natsUrl: string;
  readonly nc: NatsConnection;
  readonly host: ActorHost;
  readonly env: ClusterEnv;
  readonly config: VbConfig;
  /** the nats-server child, when standalone started one */
  readonly natsServer: NatsServer | undefined;
  /** answers NATS service discovery (`$SRV.*`) for this process's actors */
  readonly discovery: DiscoveryResponder;
  /** the Milvus front door (gRPC MilvusService), when asked for and this process hosts the proxy */
  readonly milvus: MilvusFrontDoor | undefined;
  /** the `/metrics` endpoint on a port of its own, when asked for (the Milvus port serves `/metrics` too) */
  readonly metrics: MetricsServer | undefined;
  stop(): Promise<void>;
}

export interface StandaloneOptions {
  /** which roles this process hosts (default: all, one datanode) */
  roles?: RoleSet;
  /**
   * This process in the coordinator leases (default: host name and data directory). Two live processes
   * must not share one; a restarted process with the same id takes its leases back at once.
   */
  holderId?: string;
  /** This process's node id in logs and discovery (default `standalone`). */
  nodeId?: string;
  /**
   * How long a querynode pod's stop waits for its drain (default `VB_DRAIN_TIMEOUT_MS`, else 60 s).
   * Only a process that hosts querynodes without querycoord drains (a standalone stops everything).
   */
  drainTimeoutMs?: number;
  /** Serve Milvus's gRPC API on this port (0: a free one) once the roles run; only with the proxy role. */
  milvus?: { port: number; host?: string };
  /** Serve Prometheus metrics at `/metrics` on this port (0: a free one): `--metrics-port`. */
  metrics?: { port: number; host?: string };
}

export async function startStandalone(config: VbConfig, opts: StandaloneOptions = {}): Promise<Standalone> {
  const log = createLogger({ role: "standalone" });
  setMetricsNode(opts.nodeId ?? "standalone");
  let server: NatsServer | undefined;
  let natsUrl = config.natsUrl;
  if (!natsUrl) {
    await mkdir(config.dataDir, { recursive: true });
    server = await startNatsServer({
      storeDir: join(config.dataDir, "nats"),
      ...(config.natsPort ? { port: config.natsPort } : {}),
      maxPayload: config.maxPayload,
      logFile: join(config.dataDir, "nats-server.log"),
      detached: true,
    });
    natsUrl = server.url;
    log.info({ nats: natsUrl, natsPid: server.pid }, "started nats-server");
  }
  // two connections: control traffic (asks, heartbeats, KV, the feed) never queues behind the DML
  // backlog its datanodes and delegators read on the data connection (see docs/architecture.md)
  let nc: NatsConnection;
  let dataNc: NatsConnection;
  try {
    nc = await connectNats(natsUrl, { name: "vbus-standalone" });
    dataNc = await connectNats(natsUrl, { name: "vbus-standalone-data" }).catch(async (err: unknown) => {
      await nc.close();
      throw err;
    });
  } catch (err) {
    await server?.stop({ keepStore: true });
    throw err;
  }
  const storeSpec = config.objectStore ?? join(config.dataDir, "objects");
  const env = createClusterEnv(nc, openObjectStore(storeSpec), { prefix: config.prefix, config: config.cluster ?? {}, dataNc });
  log.info({ objectStore: describeObjectStore(storeSpec), prefix: config.prefix }, "object store");
  const host = new ActorHost(nc, { nodeId: opts.nodeId ?? "standalone" });
  const discovery = startDiscovery(host, { version: VB_VERSION, metadata: { prefix: config.prefix } });
  let spawned: SpawnedRoles | undefined;
  let milvus: MilvusFrontDoor | undefined;
  let metrics: MetricsServer | undefined;
  let stopping: Promise<void> | undefined;
  // one stop however often it is called (a second signal waits for the first stop); the nats-server
  // child is stopped even when stopping the actors fails
  const stop = () =>
    (stopping ??= (async () => {
      try {
        // a querynode pod drains first: what it holds moves to other nodes before it stops
        const drain = opts.roles && !opts.roles.querycoord ? (opts.roles.querynodes ?? []) : [];
        if (drain.length > 0 && spawned) {
          const d = await drainQuerynodes(host, env, drain, { log, timeoutMs: opts.drainTimeoutMs ?? Number(process.env.VB_DRAIN_TIMEOUT_MS ?? DEFAULT_DRAIN_TIMEOUT_MS) });
          log.info({ nodes: drain, ms: d.ms, drained: d.drained }, d.drained ? "drained: nothing left on this node" : "stopping before the drain finished");
        }
        await milvus?.close();
        await metrics?.close();
        discovery.stop();
        await host.stop();
        // a datanode pod hands its vchannels over now (datacoord gives them to the other datanodes,
        // which read on from the checkpoints) instead of after its heartbeats run out
        if (opts.roles && !opts.roles.datacoord && spawned) {
          for (const nodeId of opts.roles.datanodes ?? []) {
            await ask(nc, env.subjects.datacoord(), "datacoord.DatanodeLeaving", { nodeId }, { timeoutMs: 3_000 }).then(
              (r) => log.info({ node: nodeId, ...(r as object) }, "datanode left: datacoord moved its vchannels"),
              (err: unknown) => log.warn({ node: nodeId, err: String(err) }, "could not tell datacoord this datanode leaves (it finds out from the heartbeats)"),
            );
          }
        }
        await spawned?.resign().catch((err: unknown) => log.warn({ err }, "could not give the coordinator leases up"));
        if (!dataNc.isClosed()) await dataNc.drain().catch(() => undefined);
        if (!nc.isClosed()) await nc.drain().catch(() => undefined);
      } finally {
        await server?.stop({ keepStore: true });
      }
    })());
  try {
    const holderId = opts.holderId ?? `${hostname()}:${resolve(config.dataDir)}`;
    const roles = opts.roles ?? ALL_ROLES(config.datanodes ?? 1, config.querynodes ?? 1);
    spawned = await spawnRoles(host, env, roles, { holderId });
    if (opts.metrics) {
      metrics = await startMetricsServer(opts.metrics.port, opts.metrics.host);
      log.info({ port: metrics.port }, "metrics at /metrics");
    }
    if (opts.milvus && roles.proxy) {
      milvus = await startMilvusFrontDoor({ ...opts.milvus, nc, prefix: config.prefix, actorHost: host, serverVersion: VB_VERSION });
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { natsUrl, nc, host, env, config, natsServer: server, discovery, milvus, metrics, stop, [Symbol.asyncDispose]: stop };
}
