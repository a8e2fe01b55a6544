export * from "./api.ts";
export * from "./rootcoord.ts";
export * from "./datacoord.ts";
export * from "./proxy.ts";
