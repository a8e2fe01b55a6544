/**
 * NATS service discovery for a process host: the "micro" protocol (`$SRV.PING|INFO|STATS`, and the same
 * with `.<name>` or `.<name>.<id>`), answered with one service per actor kind the host holds (name
 * `vectorbus-<kind>`, one id per responder, the process in the service's metadata). INFO lists the
 * actors of the kind as the service's endpoints: name, subject = the actor's address, queue group, and
 * metadata = what the actor's `describe()` shows plus its kind and parent. STATS gives each endpoint's
 * requests, errors, last error and time spent in `receive`. Any micro client (`nats micro ls`,
 * @nats-io/services' `Svcm(nc).client()`) sees a Vectorbus process this way; `discover` below is the
 * client side that `vbus actors` uses.
 *
 * Hand-written rather than built on @nats-io/services: its Service owns a fixed set of endpoints, each a
 * subscription it makes itself and whose handler it runs and times. Actors come and go (segments by the
 * thousand) and are reached through the host's wildcard subscriptions, one per kind, with the host
 * routing each message to a mailbox; so this answers the protocol's three verbs from `host.actors()` at
 * the time of the request and leaves the routing to the host.
 *
 * A kind whose endpoints do not fit one message (the server's max_payload) answers INFO and STATS with
 * several messages of the same service name and id, each with a share of the endpoints.
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { createInbox, type Msg, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import type { ActorHost, HostedActor } from "./host.ts";

export const SERVICE_API_PREFIX = "$SRV";
export const SERVICE_NAME_PREFIX = "vectorbus-";

export type DiscoveryVerb = "PING" | "INFO" | "STATS";
const VERBS: readonly string[] = ["PING", "INFO", "STATS"];

export const ResponseType = {
  PING: "io.nats.micro.v1.ping_response",
  INFO: "io.nats.micro.v1.info_response",
  STATS: "io.nats.micro.v1.stats_response",
} as const;

/** What every response starts with (the micro spec's ServiceIdentity). */
export interface ServiceIdentity {
  type: (typeof ResponseType)[DiscoveryVerb];
  name: string;
  id: string;
  version: string;
  metadata: Record<string, string>;
}

export interface EndpointInfo {
  name: string;
  subject: string;
  queue_group: string;
  metadata: Record<string, string>;
}

export interface ServiceInfo extends ServiceIdentity {
  type: typeof ResponseType.INFO;
  description: string;
  endpoints: EndpointInfo[];
}

export interface EndpointStats {
  name: string;
  subject: string;
  queue_group: string;
  num_requests: number;
  num_errors: number;
  last_error: string;
  /** nanoseconds */
  processing_time: number;
  /** nanoseconds */
  average_processing_time: number;
}

export interface ServiceStats extends ServiceIdentity {
  type: typeof ResponseType.STATS;
  started: string;
  endpoints: EndpointStats[];
}

export interface DiscoveryOptions {
  /** The services' version (semver): the software's. */
  version: string;
  /** Put before the kind to name a service (default `vectorbus-`). */
  namePrefix?: string;
  /** Service metadata beside `process`, `pid`, `host` and `node` (a cluster's subject prefix, a role, ...). */
  metadata?: Record<string, string>;
  /** The process as the metadata names it (default `<hostname>:<pid>`). */
  process?: string;
}

/** Endpoint names are one token of letters, digits, `_` and `-`: the address with the rest made `_`. */
export function endpointName(address: string): string {
  return address.replace(/[^A-Za-z0-9_-]/g, "_");
}

/** Answers the micro protocol for one host until stopped. */
export class DiscoveryResponder {
  /** one id for this responder's services (a service is a name and an id) */
  readonly id = randomBytes(8).toString("hex");
  readonly started = new Date().toISOString();
  private readonly namePrefix: string;
  private readonly metadata: Record<string, string>;
  private sub: Subscription | undefined;

  constructor(
    private readonly host: ActorHost,
    private readonly opts: DiscoveryOptions,
  ) {
    this.namePrefix = opts.namePrefix ?? SERVICE_NAME_PREFIX;
    this.metadata = {
      process: opts.process ?? `${hostname()}:${process.pid}`,
      pid: String(process.pid),
      host: hostname(),
      ...(host.nodeId ? { node: host.nodeId } : {}),
      ...opts.metadata,
    };
  }

  /** Subscribes to `$SRV.>` (no queue group: every process answers for its own actors). */
  start(): this {
    this.sub ??= this.nc.subscribe(`${SERVICE_API_PREFIX}.>`, {
      callback: (err, msg) => {
        if (err) {
          this.host.log.warn({ err }, "discovery subscription failed");
          return;
        }
        try {
          this.answer(msg);
        } catch (e) {
          this.host.log.warn({ err: e, subject: msg.subject }, "could not answer a discovery request");
        }
      },
    });
    return this;
  }

  stop(): void {
    this.sub?.unsubscribe();
    this.sub = undefined;
  }

  private get nc(): NatsConnection {
    return this.host.nc;
  }

  /** The responses a request on `subject` gets from this process (one or more per matching kind). */
  responses(subject: string): object[] {
    const [, verb, name, id, ...rest] = subject.split(".");
    if (rest.length > 0 || verb === undefined || !VERBS.includes(verb)) return [];
    if (id !== undefined && id !== this.id) return [];
    const out: object[] = [];
    for (const [kind, actors] of this.byKind()) {
      const service = this.namePrefix + kind;
      if (name !== undefined && name !== service) continue;
      out.push(...this.respond(verb as DiscoveryVerb, service, actors));
    }
    return out;
  }

  private answer(msg: Msg): void {
    if (!msg.reply) return;
    for (const r of this.responses(msg.subject)) this.nc.publish(msg.reply, JSON.stringify(r));
  }

  private byKind(): Map<string, HostedActor[]> {
    const kinds = new Map<string, HostedActor[]>();
    for (const a of this.host.actors()) {
      const list = kinds.get(a.kind);
      if (list) list.push(a);
      else kinds.set(a.kind, [a]);
    }
    return kinds;
  }

  private respond(verb: DiscoveryVerb, name: string, actors: HostedActor[]): object[] {
    const identity = { name, id: this.id, version: this.opts.version, metadata: this.metadata };
    if (verb === "PING") return [{ type: ResponseType.PING, ...identity }];
    if (verb === "INFO") {
      const head = { type: ResponseType.INFO, ...identity, description: `Vectorbus ${name.slice(this.namePrefix.length)} actors of ${this.metadata.process}` };
      return this.split(head, actors.map(endpointInfo));
    }
    return this.split({ type: ResponseType.STATS, ...identity, started: this.started }, actors.map(endpointStats));
  }

  /** One response with every endpoint, or several when they would pass the server's max payload. */
  private split(head: object, endpoints: object[]): object[] {
    const max = (this.nc.info?.max_payload ?? 1024 * 1024) - 256;
    const base = Buffer.byteLength(JSON.stringify({ ...head, endpoints: [] }));
    const out: object[] = [];
    let part: object[] = [];
    let size = base;
    for (const e of endpoints) {
      const n = Buffer.byteLength(JSON.stringify(e)) + 1;
      if (part.length > 0 && size + n > max) {
        out.push({ ...head, endpoints: part });
        part = [];
        size = base;
      }
      part.push(e);
      size += n;
    }
    out.push({ ...head, endpoints: part });
    return out;
  }
}

function endpointInfo(a: HostedActor): EndpointInfo {
  return {
    name: endpointName(a.address),
    subject: a.address,
    queue_group: a.queue ?? "",
    metadata: { ...a.info, kind: a.kind, ...(a.parent ? { parent: a.parent } : {}) },
  };
}

function endpointStats(a: HostedActor): EndpointStats {
  const processing = Math.round(a.processingMs * 1e6);
  return {
    name: endpointName(a.address),
    subject: a.address,
    queue_group: a.queue ?? "",
    num_requests: a.requests,
    num_errors: a.errors,
    last_error: a.lastError,
    processing_time: processing,
    average_processing_time: a.requests > 0 ? Math.round(processing / a.requests) : 0,
  };
}

/** Starts answering discovery for `host`; stop it before the host stops. */
export function startDiscovery(host: ActorHost, opts: DiscoveryOptions): DiscoveryResponder {
  return new DiscoveryResponder(host, opts).start();
}

/**
 * Asks every process on the bus (or the services named `name`) and collects the responses until none
 * came for `quietMs` after the last one, and at most for `maxMs` in all.
 */
export async function discover<T = ServiceIdentity>(
  nc: NatsConnection,
  verb: DiscoveryVerb,
  opts: { name?: string; id?: string; quietMs?: number; maxMs?: number } = {},
): Promise<T[]> {
  const quietMs = opts.quietMs ?? 300;
  const maxMs = opts.maxMs ?? 2_000;
  const subject = [SERVICE_API_PREFIX, verb, ...(opts.name ? [opts.name] : []), ...(opts.name && opts.id ? [opts.id] : [])].join(".");
  const inbox = createInbox();
  const out: T[] = [];
  const sub = nc.subscribe(inbox);
  const timers: { quiet?: NodeJS.Timeout; max?: NodeJS.Timeout } = {};
  const done = () => {
    clearTimeout(timers.quiet);
    clearTimeout(timers.max);
    sub.unsubscribe();
  };
  timers.max = setTimeout(done, maxMs);
  const collecting = (async () => {
    for await (const m of sub) {
      try {
        out.push(m.json<T>());
      } catch {
        // not a JSON response: not a micro service's
      }
      clearTimeout(timers.quiet);
      timers.quiet = setTimeout(done, quietMs);
    }
  })();
  nc.publish(subject, "", { reply: inbox });
  await collecting;
  return out;
}
