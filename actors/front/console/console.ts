/**
 * The web console on the front door's HTTP port: `GET /console` serves the page (plain ES modules from
 * `static/`, no build step), `GET /console/api/state` what the page draws, `POST /console/api/search` the
 * playground's search (api.ts). The router answers only paths under `/console` and says so by its
 * return value, so the front door hands every other request on unchanged.
 */
import { readFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { ErrorCode, VbError } from "../../../protocol/errors.ts";
import type { Logger } from "../../../runtime/logger.ts";
import { clusterState, ConsoleCalls, consoleJson, playgroundSearch, type ConsoleSource, type PlaygroundSearch } from "./api.ts";

export const CONSOLE_PATH = "/console";
const STATIC_DIR = fileURLToPath(new URL("./static/", import.meta.url));
const MAX_BODY = 1024 * 1024;
const SHARE_MS = 1_000;

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};

export type ConsoleRouter = (req: IncomingMessage, res: ServerResponse) => boolean;

/** The console's routes; returns false (and touches nothing) for a path outside `/console`. */
export function consoleRouter(src: ConsoleSource, log: Logger): ConsoleRouter {
  const calls = new ConsoleCalls();
  // polls from several pages share one gathering: one in flight, or one finished less than a second ago
  let shared: { promise: Promise<unknown>; done?: number } | undefined;
  const state = () => {
    if (shared && (shared.done === undefined || Date.now() - shared.done < SHARE_MS)) return shared.promise;
    const s: { promise: Promise<unknown>; done?: number } = { promise: clusterState(src, calls) };
    s.promise.then(
      () => (s.done = Date.now()),
      () => (s.done = 0), // a failure is not shared with later polls
    );
    shared = s;
    return s.promise;
  };
  const send = (res: ServerResponse, status: number, body: string, type: string) => {
    res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body), "cache-control": "no-store" });
    res.end(body);
  };
  const sendJson = (res: ServerResponse, status: number, value: unknown) => send(res, status, consoleJson(value), "application/json");
  const fail = (res: ServerResponse, err: unknown) => {
    if (!(err instanceof VbError)) log.warn({ err }, "console request failed unexpectedly");
    const e = VbError.from(err);
    sendJson(res, e.code === ErrorCode.ParameterInvalid ? 400 : 500, { code: e.code, message: e.message });
  };

  return (req, res) => {
    const path = pathOf(req.url);
    if (path === undefined || (path !== CONSOLE_PATH && !path.startsWith(`${CONSOLE_PATH}/`))) return false;
    const method = req.method ?? "GET";
    const rest = path.slice(CONSOLE_PATH.length);

    if (rest === "/api/state" && method === "GET") {
      req.resume();
      state().then((st) => sendJson(res, 200, st), (err: unknown) => fail(res, err));
      return true;
    }
    if (rest === "/api/search" && method === "POST") {
      readJson(req)
        .then((body) => playgroundSearch(src, calls, body as unknown as PlaygroundSearch))
        .then((r) => sendJson(res, 200, r), (err: unknown) => fail(res, err));
      return true;
    }
    if (rest.startsWith("/api/")) {
      req.resume();
      sendJson(res, 404, { code: ErrorCode.ParameterInvalid, message: `no console endpoint ${method} ${path}: GET /console/api/state, POST /console/api/search` });
      return true;
    }
    req.resume();
    if (method !== "GET" && method !== "HEAD") {
      send(res, 405, "the console's pages are read with GET\n", "text/plain; charset=utf-8");
      return true;
    }
    if (rest === "") {
      res.writeHead(301, { location: `${CONSOLE_PATH}/` });
      res.end();
      return true;
    }
    const file = rest === "/" ? "index.html" : rest.slice(1);
    const full = normalize(join(STATIC_DIR, file));
    if (!full.startsWith(STATIC_DIR.endsWith(sep) ? STATIC_DIR : STATIC_DIR + sep) || !TYPES[extname(full)]) {
      send(res, 404, "not found\n", "text/plain; charset=utf-8");
      return true;
    }
    readFile(full, "utf8").then(
      (text) => send(res, 200, text, TYPES[extname(full)]!),
      () => send(res, 404, "not found\n", "text/plain; charset=utf-8"),
    );
    return true;
  };
}

/** The request's path, normalized (`..` resolved); undefined for a target that is not a URL. */
function pathOf(url: string | undefined): string | undefined {
  try {
    return new URL(url ?? "/", "http://console").pathname;
  } catch {
    return undefined;
  }
}

function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c);
    });
    req.on("error", reject);
    req.on("end", () => {
      if (size > MAX_BODY) return reject(new VbError(ErrorCode.ParameterInvalid, `request body of ${size} bytes is over ${MAX_BODY}`));
      try {
        const parsed = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as unknown;
        if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("the body must be a JSON object");
        resolve(parsed as Record<string, unknown>);
      } catch (err) {
        reject(new VbError(ErrorCode.ParameterInvalid, `the request body is not valid JSON: ${(err as Error).message}`));
      }
    });
  });
}
