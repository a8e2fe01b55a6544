/**
 * Which actors a process hosts. Standalone hosts every role; a pod hosts one (`vbus serve --role R`).
 * Nothing else differs: every message goes through NATS either way (or straight to the mailbox when
 * both actors live in the process).
 *
 * Coordinators are active-standby: each runs only in the process that holds its role's lease (a KV key
 * with a TTL, runtime/lease.ts). A second process started with the role waits as a standby and starts
 * the coordinator when the leader stops (at once when it resigns on a graceful stop, after the lease's
 * TTL when it dies); a leader that loses its lease (cut off from NATS) stops its coordinator. The
 * coordinator recovers its state from KV when it starts, as after a restart.
 */
import type { ActorHost } from "../runtime/host.ts";
import { LeaderLease } from "../runtime/lease.ts";
import type { Logger } from "../runtime/logger.ts";
import { asNodeId, isValidNodeId } from "../protocol/ids.ts";
import type { ClusterEnv } from "../actors/env.ts";
import { spawnRootcoord } from "../actors/rootcoord/index.ts";
import { spawnDatacoord } from "../actors/datacoord/index.ts";
import { spawnDatanode } from "../actors/datanode/index.ts";
import { spawnProxy } from "../actors/proxy/index.ts";
import { spawnQuerycoord } from "../actors/querycoord/index.ts";
import { spawnQuerynode } from "../actors/querynode/index.ts";

export const ROLES = ["rootcoord", "datacoord", "datanode", "querycoord", "querynode", "proxy"] as const;
export type Role = (typeof ROLES)[number];

export interface RoleSet {
  rootcoord?: boolean;
  datacoord?: boolean;
  /** node ids of the datanodes to host */
  datanodes?: string[];
  querycoord?: boolean;
  /** node ids of the querynodes to host */
  querynodes?: string[];
  proxy?: boolean;
}

export const ALL_ROLES = (datanodes = 1, querynodes = 1): RoleSet => ({
  rootcoord: true,
  datacoord: true,
  datanodes: Array.from({ length: datanodes }, (_, i) => `dn${i + 1}`),
  querycoord: true,
  querynodes: Array.from({ length: querynodes }, (_, i) => `qn${i + 1}`),
  proxy: true,
});

export const COORDINATOR_LEASE_BUCKET = "COORD_LEASE";

/** What `spawnRoles` started: the addresses of the actors, and the coordinator leases this process holds. */
export interface SpawnedRoles {
  addresses: string[];
  /** Stops the coordinators this process leads and gives their leases up (call after the host stops). */
  resign(): Promise<void>;
}

/**
 * Spawns the roles in dependency order (rootcoord first: the others ask it at start). A coordinator
 * role first wins its lease (waiting as a standby while another process leads it); `holderId` names
 * this process in the lease (unique per live process: a restarted process with the same id takes its
 * lease back at once).
 */
export async function spawnRoles(host: ActorHost, env: ClusterEnv, roles: RoleSet, opts: { holderId: string }): Promise<SpawnedRoles> {
  const started: string[] = [];
  const leases: LeaderLease[] = [];
  const coordinator = async (role: "rootcoord" | "datacoord" | "querycoord", spawn: () => Promise<string>) => {
    const { lease, address } = await leadThenSpawn(host, env, role, opts.holderId, spawn);
    leases.push(lease);
    started.push(address);
  };
  const resign = async () => {
    // stop() even when the resign fails (NATS gone): no refresh loop outlives the process's roles
    await Promise.all(leases.map((l) => l.resign().finally(() => l.stop())));
  };
  // discovery shows each role's actor under the role's name (`vb.qn.qn1` is a querynode)
  const s = env.subjects;
  for (const [address, role] of [
    [s.rootcoord(), "rootcoord"],
    [s.datacoord(), "datacoord"],
    [s.querycoord(), "querycoord"],
    [s.proxy(), "proxy"],
    // (an invalid node id is refused by the node's spawn below, with the reason)
    ...(roles.datanodes ?? []).filter(isValidNodeId).map((id) => [s.datanode(asNodeId(id)), "datanode"]),
    ...(roles.querynodes ?? []).filter(isValidNodeId).map((id) => [s.querynode(asNodeId(id)), "querynode"]),
  ] as const) {
    host.setKind(address, role);
  }
  try {
    if (roles.rootcoord) await coordinator("rootcoord", () => spawnRootcoord(host, env));
    if (roles.datacoord) await coordinator("datacoord", () => spawnDatacoord(host, env));
    for (const nodeId of roles.datanodes ?? []) started.push(await spawnDatanode(host, env, { nodeId }));
    if (roles.querycoord) await coordinator("querycoord", () => spawnQuerycoord(host, env));
    for (const nodeId of roles.querynodes ?? []) started.push(await spawnQuerynode(host, env, { nodeId }));
    if (roles.proxy) started.push(await spawnProxy(host, env));
  } catch (err) {
    await resign().catch(() => undefined);
    throw err;
  }
  return { addresses: started, resign };
}

/** Wins the role's lease, then spawns the coordinator; stops it on a demotion and spawns it again when re-elected. */
async function leadThenSpawn(
  host: ActorHost,
  env: ClusterEnv,
  role: string,
  holderId: string,
  spawn: () => Promise<string>,
): Promise<{ lease: LeaderLease; address: string }> {
  const log: Logger = host.log.child({ role, lease: holderId });
  let address: string | undefined;
  let stopping: Promise<void> = Promise.resolve();
  const lease = new LeaderLease(env.nc, {
    bucket: env.subjects.bucket(COORDINATOR_LEASE_BUCKET),
    key: role,
    holderId,
    ttlMs: env.config.coordinatorLeaseMs,
    reclaimOwnIdentity: true,
    log,
    onDemoted: (d) => {
      if (d.reason === "resigned" || d.reason === "stopped" || address === undefined || !host.has(address)) return;
      log.warn({ reason: d.reason, term: d.term }, `lost the ${role} lease: stopping the ${role} until this process leads again`);
      stopping = host.stopActor(address);
    },
    onElected: (t) => {
      if (address === undefined) return; // the first election: spawned below
      void stopping.then(async () => {
        if (!lease.isLeader() || host.has(address!)) return;
        log.info({ term: t.term }, `leads ${role} again: starting it`);
        await spawn().catch((err: unknown) => log.error({ err }, `${role} did not start`));
      });
    },
  });
  const waiting = setTimeout(() => log.info(`another process leads ${role}: waiting as its standby`), 500);
  const term = await lease.campaign().finally(() => clearTimeout(waiting));
  if (term === undefined) throw new Error(`${role}: the lease stopped before this process led`);
  address = await spawn();
  log.info({ term: term.term }, `leads ${role}`);
  return { lease, address };
}
