/**
 * Seeded random rows for a schema: what `vbus insert --random`, the demos and the benchmarks insert.
 * The same seed gives the same rows.
 */
import type { CollectionSchema, FieldSchema } from "../protocol/schema.ts";

/** mulberry32: a small, fast, seeded generator */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = ["alpha", "beta", "gamma", "delta", "nats", "vector", "segment", "shard", "query", "index", "ünïcödé", "数据"];

function value(f: FieldSchema, r: () => number, pk: number): unknown {
  switch (f.type) {
    case "Bool":
      return r() < 0.5;
    case "Int8":
      return Math.floor(r() * 256) - 128;
    case "Int16":
      return Math.floor(r() * 65_536) - 32_768;
    case "Int32":
      return Math.floor(r() * 2 ** 31) - 2 ** 30;
    case "Int64":
      return f.isPrimaryKey ? BigInt(pk) : BigInt(Math.floor(r() * 2 ** 52)) * (r() < 0.5 ? -1n : 1n);
    case "Float":
      return Math.fround(r() * 1000 - 500);
    case "Double":
      return r() * 1e6 - 5e5;
    case "VarChar": {
      if (f.isPrimaryKey) return `pk-${pk}`;
      const s = `${WORDS[Math.floor(r() * WORDS.length)]}-${Math.floor(r() * 1e6)}`;
      return s.slice(0, f.maxLength ?? 64);
    }
    case "JSON":
      return { n: Math.floor(r() * 100), tag: WORDS[Math.floor(r() * WORDS.length)], nested: { ok: r() < 0.5, list: [1, 2, 3] } };
    case "Array": {
      const len = Math.floor(r() * Math.min(4, f.maxCapacity ?? 4));
      return Array.from({ length: len }, () => value({ ...f, type: f.elementType!, isPrimaryKey: false }, r, pk));
    }
    case "FloatVector": {
      const v = new Float32Array(f.dim!);
      for (let i = 0; i < v.length; i++) v[i] = r() * 2 - 1;
      return v;
    }
  }
}

/** Rows `start` .. `start + count - 1` for the schema (pk = row number unless autoId). */
export function randomRows(schema: CollectionSchema, start: number, count: number, seed = 42): Record<string, unknown>[] {
  const rows: Record<string, unknown>[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const r = rng(seed * 1_000_003 + start + i);
    const row: Record<string, unknown> = {};
    for (const f of schema.fields) {
      if (f.isDynamic || (f.isPrimaryKey && f.autoId)) continue;
      if (f.nullable && r() < 0.1) continue;
      row[f.name] = value(f, r, start + i);
    }
    rows[i] = row;
  }
  return rows;
}

/** The schema of the demos: Int64 pk, VarChar, Float, JSON, FloatVector. */
export function demoSchema(name: string, dim: number): CollectionSchema {
  return {
    name,
    fields: [
      { name: "id", type: "Int64", isPrimaryKey: true },
      { name: "title", type: "VarChar", maxLength: 256 },
      { name: "price", type: "Float" },
      { name: "meta", type: "JSON" },
      { name: "vec", type: "FloatVector", dim },
    ],
  };
}
