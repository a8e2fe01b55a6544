export * from "./actor.ts";
export * from "./ask.ts";
export * from "./host.ts";
export * from "./logger.ts";
export * from "./mailbox.ts";
export * from "./transport.ts";
