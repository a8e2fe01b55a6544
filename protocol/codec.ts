/**
 * The wire codec: msgpack through msgpackr. 64-bit integers travel as `bigint`, vectors as typed arrays
 * (Float32Array, BigInt64Array, Uint8Array ...), never as arrays of numbers. Decoding is exact: what goes
 * in comes out with the same types. One exception, on purpose: msgpackr renames a `__proto__` key
 * (to `__proto_`) so that a payload cannot reach an object's prototype.
 */
import { Packr, addExtension } from "msgpackr";
import { ErrorCode, VbError } from "./errors.ts";

const BIGINT64_EXT = 0x42;
const BIGUINT64_EXT = 0x43;

function bytesOf(view: ArrayBufferView): Buffer {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength);
}

function alignedCopy(buf: Uint8Array): ArrayBuffer {
  const out = new ArrayBuffer(buf.byteLength);
  new Uint8Array(out).set(buf);
  return out;
}

// msgpackr has typed-array support for the number arrays but not the bigint ones.
addExtension({
  Class: BigInt64Array,
  type: BIGINT64_EXT,
  pack: (v: BigInt64Array) => bytesOf(v),
  unpack: (buf: Uint8Array) => new BigInt64Array(alignedCopy(buf)),
});
addExtension({
  Class: BigUint64Array,
  type: BIGUINT64_EXT,
  pack: (v: BigUint64Array) => bytesOf(v),
  unpack: (buf: Uint8Array) => new BigUint64Array(alignedCopy(buf)),
});

const packr = new Packr({
  useRecords: false,
  moreTypes: true,
  int64AsType: "bigint",
  mapsAsObjects: true,
});

export function encode(value: unknown): Uint8Array {
  return packr.pack(value);
}

/** Decodes msgpack; bytes that are not one well-formed value raise a VbError with code 1100. */
export function decode<T = unknown>(bytes: Uint8Array): T {
  if (bytes.byteLength === 0) {
    throw new VbError(ErrorCode.ParameterInvalid, "malformed msgpack payload: empty");
  }
  let value: unknown;
  try {
    value = packr.unpack(bytes);
  } catch (err) {
    throw new VbError(
      ErrorCode.ParameterInvalid,
      `malformed msgpack payload: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
  // 0xC1 is "never used" in msgpack; msgpackr hands back a placeholder object for it instead of failing.
  if (typeof value === "object" && value !== null && value.constructor?.name === "C1Type") {
    throw new VbError(ErrorCode.ParameterInvalid, "malformed msgpack payload: reserved byte 0xc1");
  }
  return value as T;
}
