/**
 * The index artifact: the self-describing bytes a build produces, the object store keeps under
 * `index_files/...`, and a load reads back.
 *
 *     0   "VBIX"                      magic
 *     4   u32 LE  format version (1)
 *     8   u32 LE  header length L
 *     12  L bytes of JSON header      {indexType, metric, dim, rows, params, extra, sections}
 *     ..  zero padding to 8 bytes
 *     ..  sections, each starting at a multiple of 8 (so typed arrays can view them in place); a
 *         section's offset in the header counts from the first one
 *
 * Each section (`usearch`, `codec`, `centroids`, ...) is listed in the header with its offset, length
 * and CRC-32, so a truncated or damaged artifact is refused at load instead of answering wrongly.
 */
import { crc32 } from "node:zlib";
import { VbError } from "../../protocol/errors.ts";
import type { Metric } from "../search/metric.ts";
import type { IndexSpec } from "./index_params.ts";

const MAGIC = [0x56, 0x42, 0x49, 0x58]; // "VBIX"
export const ARTIFACT_FORMAT = 1;
const PREFIX_BYTES = 12;

export interface SectionEntry {
  name: string;
  offset: number;
  length: number;
  crc32: number;
}

export interface ArtifactHeader {
  indexType: IndexSpec["indexType"];
  metric: Metric;
  dim: number;
  /** rows indexed: the segment's row offsets 0..rows-1 */
  rows: number;
  params: IndexSpec["params"];
  /** what the index kind needs beyond the params (the engine's settings, the seed, list counts) */
  extra: Record<string, number | string | boolean>;
  sections: SectionEntry[];
}

export interface Artifact {
  header: ArtifactHeader;
  /** the named section, a view into the artifact's bytes; 1100 when absent */
  section(name: string): Uint8Array;
}

const align8 = (x: number) => (x + 7) & ~7;

/** Lays out the header and the sections into one buffer. */
export function encodeArtifact(header: Omit<ArtifactHeader, "sections">, sections: { name: string; bytes: Uint8Array }[]): Uint8Array {
  // section offsets count from the start of the data area (the first multiple of 8 after the header)
  let at = 0;
  const entries: SectionEntry[] = sections.map((s) => {
    const e = { name: s.name, offset: at, length: s.bytes.byteLength, crc32: crc32(s.bytes) };
    at = align8(at + s.bytes.byteLength);
    return e;
  });
  const json = new TextEncoder().encode(JSON.stringify({ ...header, sections: entries }));
  const start = align8(PREFIX_BYTES + json.byteLength);
  const out = new Uint8Array(start + at);
  out.set(MAGIC, 0);
  const view = new DataView(out.buffer);
  view.setUint32(4, ARTIFACT_FORMAT, true);
  view.setUint32(8, json.byteLength, true);
  out.set(json, PREFIX_BYTES);
  sections.forEach((s, i) => out.set(s.bytes, start + entries[i]!.offset));
  return out;
}

/** Reads an artifact's header and checks every section; 1100 naming `bytes` when it is not one. */
export function decodeArtifact(bytes: Uint8Array): Artifact {
  if (!(bytes instanceof Uint8Array)) throw VbError.invalid("bytes: an index artifact must be a Uint8Array");
  if (bytes.byteLength < PREFIX_BYTES || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw VbError.invalid("bytes: not a Vectorbus index artifact (no VBIX magic)");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const format = view.getUint32(4, true);
  if (format !== ARTIFACT_FORMAT) {
    throw VbError.invalid(`bytes: index artifact format ${format} is not supported (this build reads ${ARTIFACT_FORMAT})`);
  }
  const len = view.getUint32(8, true);
  if (PREFIX_BYTES + len > bytes.byteLength) throw VbError.invalid("bytes: index artifact is truncated inside its header");
  let header: ArtifactHeader;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(PREFIX_BYTES, PREFIX_BYTES + len))) as ArtifactHeader;
  } catch (err) {
    throw VbError.invalid("bytes: index artifact header is not valid JSON", err);
  }
  if (
    typeof header !== "object" ||
    header === null ||
    typeof header.indexType !== "string" ||
    typeof header.metric !== "string" ||
    !Array.isArray(header.sections) ||
    typeof header.extra !== "object" ||
    header.extra === null ||
    !Number.isInteger(header.dim) ||
    !Number.isInteger(header.rows)
  ) {
    throw VbError.invalid("bytes: index artifact header lacks its fields");
  }
  const start = align8(PREFIX_BYTES + len);
  for (const s of header.sections) {
    if (
      typeof s !== "object" ||
      s === null ||
      !Number.isInteger(s.offset) ||
      !Number.isInteger(s.length) ||
      s.offset < 0 ||
      s.length < 0 ||
      start + s.offset + s.length > bytes.byteLength
    ) {
      throw VbError.invalid(`bytes: index artifact is truncated or damaged (a section lies outside its ${bytes.byteLength} bytes)`);
    }
    if (crc32(bytes.subarray(start + s.offset, start + s.offset + s.length)) !== s.crc32) {
      throw VbError.invalid(`bytes: index artifact section ${s.name} is damaged (CRC-32 mismatch)`);
    }
  }
  return {
    header,
    section(name: string): Uint8Array {
      const s = header.sections.find((e) => e.name === name);
      if (s === undefined) throw VbError.invalid(`bytes: index artifact has no section ${name}`);
      return bytes.subarray(start + s.offset, start + s.offset + s.length);
    },
  };
}

/** A typed view over a section's bytes, copied only when they are not aligned for the type. */
export function viewAs<T extends Float32Array | Int32Array | Uint32Array>(
  section: Uint8Array,
  Ctor: { new (buffer: ArrayBufferLike, byteOffset: number, length: number): T; new (length: number): T; BYTES_PER_ELEMENT: number },
): T {
  const size = Ctor.BYTES_PER_ELEMENT;
  if (section.byteLength % size !== 0) throw VbError.invalid(`bytes: section of ${section.byteLength} bytes is not whole ${size}-byte values`);
  if (section.byteOffset % size === 0) return new Ctor(section.buffer, section.byteOffset, section.byteLength / size);
  const copy = new Ctor(section.byteLength / size);
  new Uint8Array(copy.buffer).set(section);
  return copy;
}

/** The bytes of a typed array (a view, no copy). */
export function bytesOf(a: Float32Array | Int32Array | Uint32Array | Int8Array | Float64Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
