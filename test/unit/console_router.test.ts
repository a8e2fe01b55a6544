/**
 * The console's HTTP router on its own (no cluster): it answers only paths under /console, serves the
 * page's static files and nothing outside its folder, answers unknown API paths and bad bodies with a
 * JSON error that says what exists, and sends bigints and typed arrays as JSON.
 */
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { consoleRouter } from "../../actors/front/console/console.ts";
import { consoleJson } from "../../actors/front/console/api.ts";
import type { VectorbusClient } from "../../actors/control/client.ts";
import { createLogger } from "../../runtime/logger.ts";

/** a client no test path may reach: every call fails the test */
const unreachable = new Proxy({}, { get: (_t, key) => () => Promise.reject(new Error(`the client was called (${String(key)})`)) }) as VectorbusClient;

describe("console router", () => {
  let server: Server;
  let port: number;

  beforeAll(async () => {
    const routes = consoleRouter({ client: unreachable, prefix: "t" }, createLogger({ test: "console" }));
    server = createServer((req, res) => {
      if (routes(req, res)) return;
      res.writeHead(418).end("not the console");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  /** a request with the path sent as it is (fetch would normalize `..`) */
  const raw = (method: string, path: string, body?: string) =>
    new Promise<{ status: number; type: string; location?: string; text: string }>((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port, method, path }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => resolve({ status: res.statusCode!, type: String(res.headers["content-type"] ?? ""), location: res.headers.location, text }));
      });
      req.on("error", reject);
      req.end(body);
    });

  it("serves the page and its modules, and redirects /console to /console/", async () => {
    expect(await raw("GET", "/console")).toMatchObject({ status: 301, location: "/console/" });
    const page = await raw("GET", "/console/");
    expect(page).toMatchObject({ status: 200, type: "text/html; charset=utf-8" });
    expect(page.text).toContain('<script type="module" src="app.js">');
    for (const file of ["app.js", "dist.js", "charts.js", "playground.js", "html.js"]) {
      const js = await raw("GET", `/console/${file}`);
      expect(js.status, file).toBe(200);
      expect(js.type).toBe("text/javascript; charset=utf-8");
    }
    expect((await raw("GET", "/console/style.css")).type).toBe("text/css; charset=utf-8");
  });

  it("leaves every other path to the front door and serves nothing outside its folder", async () => {
    expect((await raw("GET", "/v2/vectordb/collections/list")).status).toBe(418);
    expect((await raw("GET", "/consoles")).status).toBe(418);
    expect((await raw("GET", "/console/../package.json")).status).toBe(418); // the URL is /package.json
    expect((await raw("GET", "/console/..%2f..%2f..%2fpackage.json")).status).toBe(404);
    expect((await raw("GET", "/console/..%2fconsole.ts")).status).toBe(404);
    expect((await raw("GET", "/console/missing.js")).status).toBe(404);
    expect((await raw("POST", "/console/app.js")).status).toBe(405);
    expect((await raw("GET", "http://[console")).status).toBe(418); // not a URL: not the console's, and no throw
  });

  it("answers unknown API paths and bad search bodies with JSON errors", async () => {
    const unknown = await raw("GET", "/console/api/collections");
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.text).message).toContain("GET /console/api/state, POST /console/api/search");
    const bad = await raw("POST", "/console/api/search", "{not json");
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.text)).toMatchObject({ code: 1100 });
    const noCollection = await raw("POST", "/console/api/search", JSON.stringify({ vector: [1, 2] }));
    expect(noCollection.status).toBe(400);
    expect(JSON.parse(noCollection.text).message).toContain('"collectionName" is missing');
  });

  it("sends bigints as decimal strings and typed arrays as arrays", () => {
    expect(consoleJson({ id: 2n ** 63n - 1n, v: new Float32Array([0.5, 1]), ids: new BigInt64Array([1n, -2n]) })).toBe(
      '{"id":"9223372036854775807","v":[0.5,1],"ids":["1","-2"]}',
    );
  });
});
