/**
 * Range search as Milvus defines it: `radius` is the outer bound, `rangeFilter` the optional inner one.
 *
 * - L2 (smaller is better): keep `rangeFilter <= distance < radius`;
 * - IP, COSINE (larger is better): keep `radius < score <= rangeFilter`.
 *
 * The bounds compare against the float32 score a hit is reported with, so a score a user has seen can
 * be passed back as a bound and means exactly that value.
 */
import { VbError } from "../../protocol/errors.ts";
import { largerIsBetter, type Metric } from "./metric.ts";

/** 1100 naming the field when the bounds are not numbers or are the wrong way round (Milvus's checks). */
export function checkRange(metric: Metric, radius: number | undefined, rangeFilter: number | undefined): void {
  if (radius === undefined) {
    if (rangeFilter !== undefined) throw VbError.invalid("range_filter: needs radius (range search is set by radius)");
    return;
  }
  if (typeof radius !== "number" || Number.isNaN(radius)) throw VbError.invalid(`radius: must be a number, got ${String(radius)}`);
  if (rangeFilter === undefined) return;
  if (typeof rangeFilter !== "number" || Number.isNaN(rangeFilter)) {
    throw VbError.invalid(`range_filter: must be a number, got ${String(rangeFilter)}`);
  }
  if (largerIsBetter(metric) ? !(rangeFilter > radius) : !(rangeFilter < radius)) {
    const rel = largerIsBetter(metric) ? "greater" : "less";
    throw VbError.invalid(`range_filter: must be ${rel} than radius for ${metric} (radius ${radius}, range_filter ${rangeFilter})`);
  }
}

/** Whether `score` (as reported, float32) lies in the range. */
export function inRange(metric: Metric, score: number, radius: number, rangeFilter?: number): boolean {
  const s = Math.fround(score);
  if (largerIsBetter(metric)) return s > radius && (rangeFilter === undefined || s <= rangeFilter);
  return s < radius && (rangeFilter === undefined || s >= rangeFilter);
}
