/**
 * Parsed JSON per column. A JSON column holds JSON text; a path filter needs the parsed values, and a
 * segment is searched many times, so the parsed documents (and the values at each path asked for) are
 * kept in a WeakMap keyed by the column's data array: they live as long as the column does. Columns
 * only grow (a growing segment appends rows); rows never change in place, so a longer array is parsed
 * from where the cache stops.
 */

interface Entry {
  docs: unknown[];
  /** path (as JSON text) → the value at that path for each parsed row; undefined where it is missing */
  paths: Map<string, unknown[]>;
}

const cache = new WeakMap<string[], Entry>();

function entryFor(texts: string[], n: number): Entry {
  let e = cache.get(texts);
  if (!e) {
    e = { docs: [], paths: new Map() };
    cache.set(texts, e);
  }
  const docs = e.docs;
  for (let i = docs.length; i < n; i++) {
    const t = texts[i];
    let v: unknown;
    try {
      v = typeof t === "string" ? JSON.parse(t) : undefined;
    } catch {
      v = undefined; // not JSON: no value at any path
    }
    docs.push(v);
  }
  return e;
}

const INDEX_RE = /^(?:0|[1-9][0-9]*)$/;

/** The value at `path` in `doc` (JSON-pointer rules: an integer step indexes an array or names a key). */
export function walkPath(doc: unknown, path: readonly (string | number)[]): unknown {
  let v = doc;
  for (const k of path) {
    if (v === null || typeof v !== "object") return undefined;
    if (Array.isArray(v)) {
      const idx = typeof k === "number" ? k : INDEX_RE.test(k) ? Number(k) : -1;
      v = idx >= 0 && idx < v.length ? v[idx] : undefined;
    } else {
      const key = String(k);
      v = Object.hasOwn(v, key) ? (v as Record<string, unknown>)[key] : undefined;
    }
  }
  return v;
}

/** The value at `path` of each of the first `n` rows (the parsed document itself for path []). */
export function jsonPathValues(texts: string[], path: readonly (string | number)[], n: number): unknown[] {
  const e = entryFor(texts, n);
  if (path.length === 0) return e.docs;
  const key = JSON.stringify(path);
  let values = e.paths.get(key);
  if (!values) {
    values = [];
    e.paths.set(key, values);
  }
  for (let i = values.length; i < n; i++) values.push(walkPath(e.docs[i], path));
  return values;
}
