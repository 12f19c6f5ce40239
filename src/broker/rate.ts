/**
 * Events per second over a sliding window of fixed buckets: the measured drain rate behind
 * Retry-After. O(1) per event; no timers.
 */
export class RateMeter {
  private readonly buckets: Float64Array;
  private readonly bucketMs: number;
  private current = 0; // index of the bucket `currentStart` belongs to
  private currentStart: number;
  private readonly startedAt: number;

  constructor(
    private readonly windowMs = 2000,
    bucketCount = 20,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.buckets = new Float64Array(bucketCount);
    this.bucketMs = windowMs / bucketCount;
    this.startedAt = this.currentStart = now();
  }

  /** `at`: the caller's reading of the clock, when it has one. */
  add(n = 1, at: number = this.now()): void {
    this.advance(at);
    this.buckets[this.current] = (this.buckets[this.current] ?? 0) + n;
  }

  /** Events per second over the window (or since creation, when younger than the window). */
  rate(): number {
    this.advance();
    let sum = 0;
    for (const b of this.buckets) sum += b;
    const span = Math.min(this.windowMs, Math.max(this.bucketMs, this.now() - this.startedAt));
    return (sum * 1000) / span;
  }

  private advance(now: number = this.now()): void {
    let steps = Math.floor((now - this.currentStart) / this.bucketMs);
    if (steps <= 0) return;
    if (steps > this.buckets.length) steps = this.buckets.length;
    for (let i = 0; i < steps; i++) {
      this.current = (this.current + 1) % this.buckets.length;
      this.buckets[this.current] = 0;
    }
    this.currentStart += Math.floor((now - this.currentStart) / this.bucketMs) * this.bucketMs;
  }
}
