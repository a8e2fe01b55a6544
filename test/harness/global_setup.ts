/**
 * One real nats-server (JetStream on, free port, temporary store) for the whole suite. Tests that need
 * a server of their own (a restart, a cluster) start one with `startNatsServer`/`startNatsCluster`.
 * Every test works under its own subject prefix, so files can run side by side on the shared server.
 */
import type { TestProject } from "vitest/node";
import { startNatsServer, type NatsServer } from "../../ops/nats_server.ts";

let server: NatsServer | undefined;

export async function setup(project: TestProject): Promise<void> {
  server = await startNatsServer();
  project.provide("natsUrl", server.url);
}

export async function teardown(): Promise<void> {
  await server?.stop();
}

declare module "vitest" {
  export interface ProvidedContext {
    natsUrl: string;
  }
}
