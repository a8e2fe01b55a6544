/**
 * Vectorbus for programs: the typed client of the native API, the error class and codes, and the
 * contracts (schemas, messages, ids).
 *
 *     import { connect } from "vectorbus";
 *     const vb = await connect(); // a local `vbus up`, or VB_NATS_URL; or connect({ servers: "nats://host:4222" })
 */
export { connect, clientOf, type VectorbusClient, type ConnectOptions, type CallOptions, type InsertOptions } from "./actors/control/client.ts";
export { locateCluster, DEFAULT_NATS_PORT, DEFAULT_NATS_URL, type LocateOptions, type Located } from "./actors/control/locate.ts";
export * from "./protocol/index.ts";
