export * from "./errors.ts";
export * from "./ids.ts";
export * from "./codec.ts";
export * from "./subjects.ts";
export * from "./envelope.ts";
