/**
 * The Milvus front door: one TCP port (19530 by default) for Milvus's gRPC MilvusService and its
 * REST v2 API (rest/rest_v2.ts). A `net.Server` reads the first bytes of each connection: the HTTP/2 preface goes to
 * grpc-js through `createConnectionInjector()`, anything else to `node:http` (DESIGN §8). Each call is
 * translated to the native API (milvus/service.ts) and answered with Milvus's status.
 */
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createNetServer, type Socket } from "node:net";
import * as grpc from "@grpc/grpc-js";
import type { NatsConnection } from "@nats-io/transport-node";
import { ErrorCode, VbError } from "../../protocol/errors.ts";
import type { ActorHost } from "../../runtime/host.ts";
import { createLogger } from "../../runtime/logger.ts";
import type { AskOptions } from "../../runtime/ask.ts";
import { metricsNode, serveMetricsRequest } from "../../runtime/metrics.ts";
import { parseTraceparent, startTrace, type Trace } from "../../runtime/trace.ts";
import { observeRequest, type Door } from "../metrics.ts";
import { clientOf, type VectorbusClient } from "../control/client.ts";
import { MILVUS_METHODS, MILVUS_SERVICE, TELEMETRY_SERVICE, type Msg } from "./milvus/proto.ts";
import { milvusHandlers, telemetryHandlers, type CallContext, type Handler } from "./milvus/service.ts";
import { errorStatus, okStatus, unimplemented } from "./milvus/status.ts";
import { replyJson, restHandlers, type RestContext, type RestHandler } from "./rest/rest_v2.ts";
import { consoleRouter } from "./console/console.ts";

export const DEFAULT_MILVUS_PORT = 19530;
const HTTP2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const DEFAULT_TIMEOUT_MS = 60_000;
const MAX_MESSAGE_BYTES = 512 * 1024 * 1024;

export interface MilvusFrontDoorOptions {
  /** TCP port (default 19530; 0 picks a free one) */
  port?: number;
  /** interface to listen on (default: every interface, IPv4 and IPv6) */
  host?: string;
  /** the native API to translate to; or a NATS connection (and prefix) to make one on */
  client?: VectorbusClient;
  nc?: NatsConnection;
  prefix?: string;
  /** the actor host of this process when it hosts the proxy: calls are handed to it in process */
  actorHost?: ActorHost;
  /** the version Connect reports in server_info */
  serverVersion?: string;
}

export interface MilvusFrontDoor extends AsyncDisposable {
  readonly port: number;
  readonly host: string;
  close(): Promise<void>;
}

function contextOf(call: grpc.ServerUnaryCall<Msg, Msg>): CallContext {
  const req = call.request ?? {};
  const header = call.metadata.get("dbname")[0];
  const dbName = (typeof req.db_name === "string" && req.db_name) || (typeof header === "string" && header) || undefined;
  const deadline = call.getDeadline();
  const ms = deadline instanceof Date ? deadline.getTime() - Date.now() : typeof deadline === "number" && Number.isFinite(deadline) ? deadline - Date.now() : Infinity;
  return { dbName, timeoutMs: Number.isFinite(ms) ? Math.max(1_000, Math.min(ms, 10 * DEFAULT_TIMEOUT_MS)) : DEFAULT_TIMEOUT_MS };
}

/**
 * A call at a Milvus door, observed: `vectorbus_proxy_req_count` and `_req_latency` (door grpc or rest),
 * and, when the caller sent a W3C `traceparent`, a span under it whose context the native calls carry on.
 */
function observedCall<T>(door: Door, name: string, traceparent: unknown, run: (trace: Trace | undefined) => Promise<T>): Promise<T> {
  const started = performance.now();
  const parent = parseTraceparent(traceparent);
  const trace = parent ? startTrace(`${door} ${name}`, parent, { "rpc.system": door, "rpc.method": name }) : undefined;
  const work = run(trace);
  const end = (error?: unknown) => {
    observeRequest(metricsNode(), door, name, error === undefined, performance.now() - started);
    trace?.end(error);
  };
  work.then(
    () => end(),
    (err: unknown) => end(err ?? "failed"),
  );
  return work;
}

/** grpc-js implementations for every method of a service: the handler's fields plus Milvus's status; "unimplemented" where there is none. */
function implementations(
  service: grpc.ServiceDefinition,
  handlers: Record<string, Handler>,
  statusFieldOf: (method: string) => string,
  log: ReturnType<typeof createLogger>,
): grpc.UntypedServiceImplementation {
  const impl: grpc.UntypedServiceImplementation = {};
  for (const [method, def] of Object.entries(service)) {
    if (def.requestStream || def.responseStream) continue; // grpc-js answers UNIMPLEMENTED for these
    const handler = handlers[method];
    const statusField = statusFieldOf(method);
    impl[method] = (call: grpc.ServerUnaryCall<Msg, Msg>, callback: grpc.sendUnaryData<Msg>) => {
      const reply = (status: Msg, body: Msg) => callback(null, statusField === "" ? status : { ...body, [statusField]: status });
      const run = observedCall("grpc", method, call.metadata.get("traceparent")[0], (trace) =>
        handler ? handler(call.request ?? {}, { ...contextOf(call), ...(trace ? { trace } : {}) }) : Promise.reject(unimplemented(method)),
      );
      run.then(
        (body) => reply(okStatus(), body),
        (err: unknown) => {
          if (!(err instanceof VbError)) log.warn({ err, method }, "Milvus call failed unexpectedly");
          reply(errorStatus(err), {});
        },
      );
    };
  }
  return impl;
}

const REST_PATH = /^\/v2\/vectordb\/([a-z_]+(?:\/[a-z_]+)?)\/([a-z_]+)\/?$/;
const MAX_REST_BODY = 256 * 1024 * 1024;

/** node:http handler of REST v2: POST /v2/vectordb/<category>/<action>, replies `{code, message, data}` with HTTP 200 (errors too, as Milvus). */
function restRouter(handlers: Record<string, RestHandler>, log: ReturnType<typeof createLogger>) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    if (serveMetricsRequest(req, res)) return; // GET /metrics: Prometheus text (runtime/metrics.ts)
    const send = (status: number, body: unknown) => {
      const text = replyJson(body);
      res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
      res.end(text);
    };
    let path: string;
    try {
      path = new URL(req.url ?? "/", "http://front").pathname;
    } catch {
      req.resume();
      send(400, { code: ErrorCode.ParameterInvalid, message: `the request target ${JSON.stringify(req.url)} is not a path: the Milvus REST API is POST /v2/vectordb/<category>/<action>` });
      return;
    }
    const m = REST_PATH.exec(path);
    if (!m) {
      req.resume();
      send(404, { code: ErrorCode.ParameterInvalid, message: `no such endpoint ${path}: the Milvus REST API is POST /v2/vectordb/<category>/<action>` });
      return;
    }
    const route = `${m[1]}/${m[2]}`;
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size <= MAX_REST_BODY) chunks.push(c);
    });
    req.on("end", () => {
      const handler = handlers[route];
      const fail = (err: unknown) => {
        if (!(err instanceof VbError)) log.warn({ err, route }, "Milvus REST call failed unexpectedly");
        const e = VbError.from(err);
        send(200, { code: e.code, message: e.message });
      };
      if (!handler) return fail(new VbError(ErrorCode.Unimplemented, `service unimplemented: ${path} is not implemented by Vectorbus's Milvus front door`));
      if (size > MAX_REST_BODY) return fail(new VbError(ErrorCode.ParameterTooLarge, `request body of ${size} bytes is over ${MAX_REST_BODY}`));
      let body: Record<string, unknown>;
      try {
        const text = Buffer.concat(chunks).toString("utf8").trim();
        const parsed = (text === "" ? {} : JSON.parse(text)) as unknown;
        if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("the body must be a JSON object");
        body = parsed as Record<string, unknown>;
      } catch (err) {
        return fail(new VbError(ErrorCode.ParameterInvalid, `${route}: the request body is not valid JSON: ${(err as Error).message}`));
      }
      const header = (name: string) => {
        const v = req.headers[name];
        return Array.isArray(v) ? v[0] : v;
      };
      const seconds = Number(header("request-timeout"));
      const dbName = (typeof body.dbName === "string" && body.dbName) || header("db-name") || undefined;
      const ctx: RestContext = {
        dbName,
        allowInt64: header("accept-type-allow-int64") === "true",
        timeoutMs: Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds * 1000, 10 * DEFAULT_TIMEOUT_MS) : DEFAULT_TIMEOUT_MS,
      };
      observedCall("rest", route, header("traceparent"), (trace) => handler(body, trace ? { ...ctx, trace } : ctx)).then(
        ({ data, extra }) => send(200, { code: 0, cost: 0, data: data ?? {}, ...extra }),
        fail,
      );
    });
  };
}

/** Starts the Milvus front door; resolves once it listens. */
export async function startMilvusFrontDoor(opts: MilvusFrontDoorOptions): Promise<MilvusFrontDoor> {
  const log = createLogger({ actor: "milvus-front" });
  const actorHost = opts.actorHost;
  const asker = actorHost ? { asker: <R>(a: string, t: string, b: unknown, o: AskOptions) => actorHost.ask<R>(a, t, b, o) } : {};
  const client = opts.client ?? (opts.nc ? clientOf(opts.nc, { prefix: opts.prefix ?? "vb", ...asker }) : undefined);
  if (!client) throw new VbError(ErrorCode.ParameterInvalid, "startMilvusFrontDoor needs a client or a NATS connection");

  const grpcServer = new grpc.Server({
    "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
    "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
  });
  const handlers = milvusHandlers(client, { serverVersion: opts.serverVersion ?? "unknown" });
  grpcServer.addService(MILVUS_SERVICE, implementations(MILVUS_SERVICE, handlers, (m) => MILVUS_METHODS.get(m)?.statusField ?? "status", log));
  grpcServer.addService(TELEMETRY_SERVICE, implementations(TELEMETRY_SERVICE, telemetryHandlers, () => "status", log));
  const injector = grpcServer.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const rest = restHandlers(client, { allowInt64: (ctx) => ctx.allowInt64 === true });
  const restRoutes = restRouter(rest, log);
  const consoleRoutes = consoleRouter({ client, prefix: opts.prefix ?? "vb" }, log); // the web console, under /console
  const http = createHttpServer((req, res) => consoleRoutes(req, res) || restRoutes(req, res));

  const sockets = new Set<Socket>();
  const route = (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const n = Math.min(head.length, HTTP2_PREFACE.length);
      const isH2 = head.subarray(0, n).equals(HTTP2_PREFACE.subarray(0, n));
      if (isH2 && head.length < HTTP2_PREFACE.length) return; // wait for the whole preface
      socket.off("data", onData);
      if (isH2) {
        socket.pause();
        socket.unshift(head);
        injector.injectConnection(socket);
      } else {
        // node:http's parser reads the socket's handle directly once it has the connection: the bytes
        // already read are handed to it as a data event
        http.emit("connection", socket);
        socket.emit("data", head);
      }
    };
    socket.on("data", onData);
  };
  const server = createNetServer(route);
  const host = opts.host;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(
        err.code === "EADDRINUSE"
          ? new VbError(ErrorCode.ServiceUnavailable, `Milvus port ${opts.port ?? DEFAULT_MILVUS_PORT} is taken: choose another with --milvus-port (0 for a free one)`, { cause: err })
          : err,
      );
    };
    server.once("error", onError);
    server.listen(opts.port ?? DEFAULT_MILVUS_PORT, host, () => {
      server.off("error", onError);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : (opts.port ?? DEFAULT_MILVUS_PORT);
  const boundHost = typeof address === "object" && address ? address.address : (host ?? "::");
  log.info({ port, host: boundHost }, "Milvus front door listening (gRPC MilvusService)");

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        injector.drain(1_000);
        http.closeAllConnections();
        for (const s of sockets) s.destroy();
      });
      injector.destroy();
      grpcServer.forceShutdown();
    })());
  return { port, host: boundHost, close, [Symbol.asyncDispose]: close };
}
