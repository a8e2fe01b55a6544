import { describe, expect, it } from "vitest";
import { collectionLabel, collectionNotLoaded, ErrorCode, namingCollection, VbError } from "../../protocol/errors.ts";

describe("errors name collections by name", () => {
  it("labels a collection by name with its id, or by id alone when only that is known", () => {
    expect(collectionLabel(69n, "books")).toBe('"books" (69)');
    expect(collectionLabel(69n)).toBe("69");
  });

  it("says 101 with the CLI command and the API call to load it", () => {
    const e = collectionNotLoaded(69n, "books");
    expect(e.code).toBe(ErrorCode.CollectionNotLoaded);
    expect(e.message).toBe('collection "books" (69) is not loaded (101): load it first (vbus load books, or LoadCollection)');
    expect(collectionNotLoaded(69n).message).toBe("collection 69 is not loaded (101): load it first (vbus load <name>, or LoadCollection)");
  });

  it("puts the name into an error that named the collection by id, keeping code, retriable flag and cause", () => {
    const byId = collectionNotLoaded(69n);
    const named = namingCollection(byId, 69n, "books") as VbError;
    expect(named.code).toBe(ErrorCode.CollectionNotLoaded);
    expect(named.message).toBe(collectionNotLoaded(69n, "books").message);
    expect(named.cause).toBe(byId);

    const retriable = new VbError(ErrorCode.ChannelNotAvailable, "collection 69: no serviceable shard leader for v0 (503)", { retriable: true });
    const n2 = namingCollection(retriable, 69n, "books") as VbError;
    expect(n2.message).toBe('collection "books" (69): no serviceable shard leader for v0 (503)');
    expect(n2.retriable).toBe(true);
  });

  it("leaves other ids, already named collections and foreign errors as they are", () => {
    const other = new VbError(ErrorCode.CollectionNotFound, "collection 690 was dropped");
    expect(namingCollection(other, 69n, "books")).toBe(other);
    const named = collectionNotLoaded(69n, "books");
    expect(namingCollection(named, 69n, "books")).toBe(named);
    const plain = new Error("collection 69 is not loaded");
    expect(namingCollection(plain, 69n, "books")).toBe(plain);
  });
});
