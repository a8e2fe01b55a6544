/** The refusals rootcoord gives, each with its Milvus code and what to do about it. */
import { ErrorCode, VbError } from "../../protocol/errors.ts";

export function databaseNotFound(dbName: string): VbError {
  return new VbError(
    ErrorCode.DatabaseNotFound,
    `database "${dbName}" not found (800): create it with CreateDatabase, or pick one listed by ListDatabases`,
  );
}

export function collectionNotFound(dbName: string, name: string): VbError {
  return new VbError(
    ErrorCode.CollectionNotFound,
    `collection "${name}" not found in database "${dbName}" (100): check the name (vbus collection list, or ListCollections), or create it (vbus collection create ${name}, or CreateCollection)`,
  );
}

export function collectionIdNotFound(collectionId: bigint): VbError {
  return new VbError(
    ErrorCode.CollectionNotFound,
    `collection with id ${collectionId} not found (100): it was dropped or never existed; look it up by name (vbus collection list, or ListCollections)`,
  );
}

export function partitionNotFound(collection: string, partition: string): VbError {
  return new VbError(
    ErrorCode.PartitionNotFound,
    `partition "${partition}" not found in collection "${collection}" (200): check the name (vbus collection describe ${collection} lists them, or ListPartitions), or create it with CreatePartition`,
  );
}

export function aliasNotFound(dbName: string, alias: string): VbError {
  return new VbError(
    ErrorCode.AliasNotFound,
    `alias "${alias}" not found in database "${dbName}" (1600): create it with CreateAlias, or pick one listed by ListAliases`,
  );
}

export function aliasIsCollectionName(dbName: string, name: string): VbError {
  return new VbError(
    ErrorCode.AliasCollectionNameConflict,
    `"${name}" is the name of a collection in database "${dbName}" (1601): an alias and a collection cannot share a name; choose another`,
  );
}

export function nameIsAlias(dbName: string, name: string): VbError {
  return new VbError(
    ErrorCode.AliasCollectionNameConflict,
    `"${name}" is an alias in database "${dbName}" (1601): a collection and an alias cannot share a name; choose another name or drop the alias with DropAlias`,
  );
}

export function aliasExists(dbName: string, alias: string, collection: string): VbError {
  return new VbError(
    ErrorCode.AliasAlreadyExist,
    `alias "${alias}" already exists in database "${dbName}" and points at collection "${collection}" (1602): use AlterAlias to point it elsewhere`,
  );
}

export function collectionExists(dbName: string, name: string): VbError {
  return VbError.invalid(
    `collection "${name}" already exists in database "${dbName}" (1100): choose another name, or drop it first (vbus collection drop ${name}, or DropCollection)`,
  );
}
