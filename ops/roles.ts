/**
 * Which actors a process hosts. Standalone hosts every role; a pod hosts one (`vbus serve --role R`).
 * Nothing else differs: every message goes through NATS either way.
 */
import type { ActorHost } from "../runtime/host.ts";
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

/** Spawns the roles in dependency order (rootcoord first: the others ask it at start). */
export async function spawnRoles(host: ActorHost, env: ClusterEnv, roles: RoleSet): Promise<string[]> {
  const started: string[] = [];
  if (roles.rootcoord) started.push(await spawnRootcoord(host, env));
  if (roles.datacoord) started.push(await spawnDatacoord(host, env));
  for (const nodeId of roles.datanodes ?? []) started.push(await spawnDatanode(host, env, { nodeId }));
  if (roles.querycoord) started.push(await spawnQuerycoord(host, env));
  for (const nodeId of roles.querynodes ?? []) started.push(await spawnQuerynode(host, env, { nodeId }));
  if (roles.proxy) started.push(await spawnProxy(host, env));
  return started;
}
