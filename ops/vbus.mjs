#!/usr/bin/env node
// The `vbus` command: loads the TypeScript sources through tsx and runs the CLI.
import { register } from "tsx/esm/api";

// demos print their result; the actors they start log only warnings unless asked
if (process.argv[2] === "demo") process.env.VB_LOG_LEVEL ??= "warn";

register();
await import("./cli.ts");
