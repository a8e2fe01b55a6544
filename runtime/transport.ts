/** The NATS connection of a process: one per process, shared by every actor it hosts. */
import { connect as natsConnect, type NatsConnection, type ConnectionOptions } from "@nats-io/transport-node";
import { watchConnection } from "./metrics.ts";

export type { NatsConnection } from "@nats-io/transport-node";

/** Connects; the connection's reconnects and slow-consumer events are counted under its name (runtime/metrics.ts). */
export async function connectNats(servers: string | string[], opts: Partial<ConnectionOptions> = {}): Promise<NatsConnection> {
  const nc = await natsConnect({
    servers,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    // The DML log and the feed carry large batches; the client must not refuse what the server allows.
    ...opts,
  });
  watchConnection(nc.status(), opts.name ?? "nats");
  return nc;
}
