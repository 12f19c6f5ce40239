/**
 * A fixed log-scale histogram of milliseconds, for the recent-window percentiles the dashboard shows.
 * Recording is one logarithm and one increment; percentiles are read from summed bucket counts, so
 * seconds can be added together into any window. Relative error of a percentile: at most ±12%
 * (half a bucket of factor 1.25), plenty for a chart, and independent of the request rate.
 *
 *   bucket   0        1            2              i
 *          ≤0.05 | (0.05, 0.0625] | (0.0625, 0.078] | … (0.05·1.25^(i-1), 0.05·1.25^i] … up to 2 min
 */

const MIN_MS = 0.05;
const FACTOR = 1.25;
const LN_FACTOR = Math.log(FACTOR);
/** Buckets up to two minutes; longer values land in the last one. */
export const BUCKETS = 1 + Math.ceil(Math.log(120_000 / MIN_MS) / LN_FACTOR);

export function newCounts(): Uint32Array {
  return new Uint32Array(BUCKETS);
}

export function bucketOf(ms: number): number {
  if (!(ms > MIN_MS)) return 0;
  return Math.min(BUCKETS - 1, Math.ceil(Math.log(ms / MIN_MS) / LN_FACTOR));
}

export function record(counts: Uint32Array, ms: number): void {
  counts[bucketOf(ms)]! += 1;
}

/** Adds `from` into `into`, bucket by bucket. */
export function addInto(into: Uint32Array, from: Uint32Array): void {
  for (let i = 0; i < BUCKETS; i++) into[i]! += from[i]!;
}

export interface Percentiles {
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  /** Values the percentiles are taken from. */
  readonly count: number;
}

/** p50, p95 and p99 in ms (the geometric middle of the bucket holding each rank); undefined when empty. */
export function percentiles(counts: Uint32Array): Percentiles | undefined {
  let total = 0;
  for (let i = 0; i < BUCKETS; i++) total += counts[i]!;
  if (total === 0) return undefined;
  const ranks = [0.5, 0.95, 0.99].map((p) => Math.max(1, Math.ceil(p * total)));
  const out: number[] = [];
  let seen = 0;
  for (let i = 0; i < BUCKETS && out.length < ranks.length; i++) {
    seen += counts[i]!;
    while (out.length < ranks.length && seen >= ranks[out.length]!) out.push(i === 0 ? MIN_MS : MIN_MS * FACTOR ** (i - 0.5));
  }
  return { p50: out[0]!, p95: out[1]!, p99: out[2]!, count: total };
}
