/** What integration tests share: the suite's nats-server, fresh prefixes, connections, waiting. */
import { inject } from "vitest";
import { randomBytes } from "node:crypto";
import { connectNats, type NatsConnection } from "../../runtime/transport.ts";
import { ActorHost } from "../../runtime/host.ts";

export { startNatsServer, startNatsCluster, freePort } from "../../ops/nats_server.ts";

export function natsUrl(): string {
  return inject("natsUrl");
}

/** A subject prefix of its own for one test, so tests never see each other's streams or actors. */
export function uniquePrefix(base = "t"): string {
  return `${base}${randomBytes(5).toString("hex")}`;
}


export async function connectTest(url = natsUrl()): Promise<NatsConnection & AsyncDisposable> {
  const nc = await connectNats(url);
  return Object.assign(nc, {
    [Symbol.asyncDispose]: async () => {
      if (!nc.isClosed()) await nc.close();
    },
  });
}

/** An actor host on a connection of its own (a process of its own, as far as NATS sees); disposing stops both. */
export async function testHost(): Promise<ActorHost & AsyncDisposable> {
  const nc = await connectTest();
  const host = new ActorHost(nc);
  return Object.assign(host, {
    [Symbol.asyncDispose]: async () => {
      await host.stop();
      await nc[Symbol.asyncDispose]();
    },
  });
}

/** Polls a condition until it holds or the deadline passes; never a fixed sleep. */
export async function waitFor<T>(
  cond: () => T | undefined | false | null | Promise<T | undefined | false | null>,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${opts.what ?? "condition"}${lastErr ? `: ${String(lastErr)}` : ""}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 20));
  }
}

/**
 * Clients reading while a test changes the cluster: `loops` loops run `read` back to back until
 * stopped; `read` returns what is wrong with the answer (or nothing), and a throw is kept as a problem.
 */
export function startReaders(read: () => Promise<string | undefined>, loops = 2): { stop(): Promise<{ reads: number; problems: string[] }> } {
  let stopped = false;
  let reads = 0;
  const problems: string[] = [];
  const loop = async () => {
    while (!stopped) {
      try {
        const problem = await read();
        if (problem) problems.push(problem);
        reads++;
      } catch (err) {
        problems.push((err as Error).message);
      }
    }
  };
  const running = Array.from({ length: loops }, loop);
  return {
    async stop() {
      stopped = true;
      await Promise.all(running);
      return { reads, problems };
    },
  };
}
