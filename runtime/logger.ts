/**
 * pino JSON logs on stderr (stdout belongs to the CLI's own output). Actors log through a child logger
 * that carries `actor` and `node`; callers add `collection`, `segment`, `task` where they apply.
 */
import { pino, type Logger } from "pino";

export type { Logger } from "pino";

function defaultLevel(): string {
  if (process.env.VB_LOG_LEVEL) return process.env.VB_LOG_LEVEL;
  return process.env.VITEST ? "error" : "info";
}

let root: Logger | undefined;

export function rootLogger(): Logger {
  root ??= pino({ level: defaultLevel(), base: { pid: process.pid } }, pino.destination({ fd: 2, sync: false }));
  return root;
}

export function createLogger(fields: Record<string, unknown> = {}, level?: string): Logger {
  const child = rootLogger().child(fields);
  if (level) child.level = level;
  return child;
}
