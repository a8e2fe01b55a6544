/**
 * Vectorbus for programs: the typed client of the native API, the error class and codes, and the
 * contracts (schemas, messages, ids).
 *
 *     import { connect } from "vectorbus";
 *     const vb = await connect({ servers: "nats://127.0.0.1:4222" });
 */
export { connect, clientOf, type VectorbusClient, type ConnectOptions, type CallOptions, type InsertOptions } from "./actors/control/client.ts";
export * from "./protocol/index.ts";
