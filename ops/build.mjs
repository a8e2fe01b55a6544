#!/usr/bin/env node
// `npm run build` (and `prepare`): the typed client package under dist/, from index.ts and what it
// imports. dist/esm: ES modules with .d.ts (the `import` condition); dist/cjs: CommonJS with .d.ts
// (the `require` condition), marked as such by its own package.json. `npm run typecheck` checks the
// types; the build only emits.
import { execFile } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const root = fileURLToPath(new URL("..", import.meta.url));
let tsc;
try {
  tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
} catch (err) {
  // `npm ci --omit=dev` (the container image) runs prepare too: the vbus CLI runs the sources, not dist/
  if (process.env.npm_lifecycle_event !== "prepare") throw err;
  process.stderr.write("prepare: typescript is not installed (--omit=dev): the typed client package (dist/) is not built\n");
  process.exit(0);
}
const run = promisify(execFile);

rmSync(new URL("../dist", import.meta.url), { recursive: true, force: true });
try {
  await Promise.all(["tsconfig.build.json", "tsconfig.build.cjs.json"].map((p) => run(process.execPath, [tsc, "-p", p], { cwd: root })));
} catch (err) {
  process.stderr.write(`${err.stdout ?? ""}${err.stderr ?? ""}build failed: ${err.message}\n`);
  process.exit(1);
}
writeFileSync(new URL("../dist/cjs/package.json", import.meta.url), '{ "type": "commonjs" }\n');
