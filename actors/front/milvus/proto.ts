/**
 * Milvus's protocol as the Node SDK ships it (`@zilliz/milvus2-sdk-node/dist/milvus/proto-json`): the
 * protobufjs JSON descriptors, loaded once. grpc-js gets the services through `@grpc/proto-loader`'s
 * `fromJSON`; protobufjs decodes the messages that travel as bytes inside requests (the collection
 * schema of CreateCollection, the placeholder group of Search).
 */
import { createRequire } from "node:module";
import * as grpc from "@grpc/grpc-js";
import { fromJSON } from "@grpc/proto-loader";
import type * as Protobuf from "protobufjs";

const require = createRequire(import.meta.url);
const protobuf = require("protobufjs") as typeof Protobuf;
const descriptors = (require("@zilliz/milvus2-sdk-node/dist/milvus/proto-json/milvus.js") as { default: Protobuf.INamespace }).default;

/** A decoded protobuf message as grpc-js hands it over (snake_case keys, int64 as decimal strings, enums by name). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Msg = Record<string, any>;

/** How messages are turned into objects: the same options the SDK uses, so both sides read alike. */
export const LOADER_OPTIONS = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true } as const;

const packageDefinition = fromJSON(descriptors, LOADER_OPTIONS);
const grpcObject = grpc.loadPackageDefinition(packageDefinition) as unknown as {
  milvus: { proto: { milvus: Record<string, grpc.ServiceClientConstructor> } };
};

export const MILVUS_SERVICE: grpc.ServiceDefinition = grpcObject.milvus.proto.milvus.MilvusService!.service;
export const TELEMETRY_SERVICE: grpc.ServiceDefinition = grpcObject.milvus.proto.milvus.ClientTelemetryService!.service;

const root = protobuf.Root.fromJSON(descriptors);
root.resolveAll();

const collectionSchemaType = root.lookupType("milvus.proto.schema.CollectionSchema");
const placeholderGroupType = root.lookupType("milvus.proto.common.PlaceholderGroup");

function decodeAs(type: Protobuf.Type, bytes: Uint8Array, what: string): Msg {
  try {
    return type.toObject(type.decode(bytes), LOADER_OPTIONS) as Msg;
  } catch (err) {
    throw new Error(`${what} is not a valid ${type.fullName.slice(1)}: ${(err as Error).message}`);
  }
}

export const decodeCollectionSchema = (bytes: Uint8Array): Msg => decodeAs(collectionSchemaType, bytes, "schema");
export const decodePlaceholderGroup = (bytes: Uint8Array): Msg => decodeAs(placeholderGroupType, bytes, "placeholder_group");

/** Every MilvusService method name, and where its reply keeps the status (`""`: the reply is a bare Status). */
export const MILVUS_METHODS: ReadonlyMap<string, { statusField: string }> = new Map(
  Object.values(root.lookupService("milvus.proto.milvus.MilvusService").methods).map((m) => {
    const res = m.resolvedResponseType!;
    if (res.fullName === ".milvus.proto.common.Status") return [m.name, { statusField: "" }];
    const f = res.fieldsArray.find((x) => x.resolvedType?.fullName === ".milvus.proto.common.Status");
    return [m.name, { statusField: f?.name ?? "status" }];
  }),
);
