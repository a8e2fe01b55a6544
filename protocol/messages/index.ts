export * from "./api.ts";
export * from "./rootcoord.ts";
export * from "./datacoord.ts";
export * from "./proxy.ts";
export * from "./querycoord.ts";
export * from "./querynode.ts";
export * from "./indexes.ts";
export * from "./segment.ts";
