/**
 * Per-app limits whose state must survive configuration reloads: token buckets (per app, and per
 * app and model), in-flight caps and period quotas. A reload changes the parameters, never the
 * tokens already spent.
 */
import { MGError } from '../core/errors.ts';
import type { AppSnapshot, Snapshot } from '../core/snapshot.ts';

class TokenBucket {
  private tokens: number;
  private last = performance.now();

  constructor(
    private rate: number,
    private burst: number,
  ) {
    this.tokens = burst;
  }

  retune(rate: number, burst: number): void {
    this.refill();
    this.rate = rate;
    this.burst = burst;
    this.tokens = Math.min(this.tokens, burst);
  }

  /** Takes a token at `now` (performance.now()), or returns the ms until one is available (nothing taken). */
  take(now: number = performance.now()): number {
    this.refill(now);
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return ((1 - this.tokens) / this.rate) * 1000;
  }

  private refill(now: number = performance.now()): void {
    // A reading taken before this bucket existed (the caller's, for its whole admission) adds nothing.
    if (now <= this.last) return;
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.rate) / 1000);
    this.last = now;
  }
}

const HOUR = 3_600_000;
const DAY = 86_400_000;

/** A count per clock period (UTC), reset when the period changes. */
class PeriodCounter {
  private period = -1;
  count = 0;

  constructor(private readonly length: number) {}

  /** ms until the current period ends, if `limit` is reached; 0 after counting one more. */
  take(limit: number, now: number): number {
    const p = Math.floor(now / this.length);
    if (p !== this.period) {
      this.period = p;
      this.count = 0;
    }
    if (this.count >= limit) return (p + 1) * this.length - now;
    this.count++;
    return 0;
  }

  /** Gives back a count taken in vain (a later limit refused the request). */
  refund(): void {
    if (this.count > 0) this.count--;
  }
}

interface AppState {
  bucket: TokenBucket | undefined;
  models: Map<string, TokenBucket>;
  inflight: number;
  hour: PeriodCounter;
  day: PeriodCounter;
}

export class Limits {
  private readonly apps = new Map<string, AppState>();
  private snapshot: Snapshot;

  constructor(
    snapshot: Snapshot,
    /** Wall clock for quotas (tests pass a fake one). */
    private readonly now: () => number = Date.now,
  ) {
    this.snapshot = snapshot;
    this.apply(snapshot);
  }

  apply(snapshot: Snapshot): void {
    this.snapshot = snapshot;
    for (const [name, state] of this.apps) {
      const app = snapshot.apps[name];
      if (!app) {
        this.apps.delete(name);
        continue;
      }
      state.bucket = retuned(state.bucket, app.rateLimit);
      for (const [model, b] of state.models) {
        const l = app.modelRateLimits[model];
        if (l) b.retune(l.requestsPerSecond, l.burst);
        else state.models.delete(model);
      }
    }
  }

  /**
   * Admits one request of `app` to `model`, or throws MG_RATE_LIMITED with the true wait. On success
   * the caller must call `release(app)` exactly once when the request is finished.
   */
  admit(appName: string, model: string, at: number = performance.now()): void {
    const app = this.snapshot.apps[appName];
    if (!app) return;
    const s = this.state(app);
    if (app.maxInflight !== undefined && s.inflight >= app.maxInflight) {
      throw new MGError('MG_RATE_LIMITED', `app "${app.name}" already has ${s.inflight} requests in flight (maxInflight ${app.maxInflight})`, {
        retryAfterMs: 100,
      });
    }
    const q = app.quota;
    if (q !== undefined) {
      // The wall clock (quotas are per UTC hour and day), read only for an app that has one.
      const now = this.now();
      const hourWait = q.requestsPerHour !== undefined ? s.hour.take(q.requestsPerHour, now) : 0;
      if (hourWait > 0) throw quota(app, 'hourly', hourWait);
      const dayWait = q.requestsPerDay !== undefined ? s.day.take(q.requestsPerDay, now) : 0;
      if (dayWait > 0) {
        if (q.requestsPerHour !== undefined) s.hour.refund();
        throw quota(app, 'daily', dayWait);
      }
    }
    const wait = s.bucket?.take(at) ?? 0;
    if (wait > 0) {
      refundQuota(app, s);
      throw new MGError('MG_RATE_LIMITED', `app "${app.name}" is over its rate limit`, { retryAfterMs: wait });
    }
    const ml = app.modelRateLimits[model];
    if (ml) {
      let b = s.models.get(model);
      if (!b) s.models.set(model, (b = new TokenBucket(ml.requestsPerSecond, ml.burst)));
      const mw = b.take(at);
      if (mw > 0) {
        refundQuota(app, s);
        throw new MGError('MG_RATE_LIMITED', `app "${app.name}" is over its rate limit for model "${model}"`, { retryAfterMs: mw });
      }
    }
    s.inflight++;
  }

  release(appName: string): void {
    const s = this.apps.get(appName);
    if (s && s.inflight > 0) s.inflight--;
  }

  inflight(appName: string): number {
    return this.apps.get(appName)?.inflight ?? 0;
  }

  private state(app: AppSnapshot): AppState {
    let s = this.apps.get(app.name);
    if (!s) {
      s = { bucket: retuned(undefined, app.rateLimit), models: new Map(), inflight: 0, hour: new PeriodCounter(HOUR), day: new PeriodCounter(DAY) };
      this.apps.set(app.name, s);
    }
    return s;
  }
}

function retuned(b: TokenBucket | undefined, limit: AppSnapshot['rateLimit']): TokenBucket | undefined {
  if (!limit) return undefined;
  if (!b) return new TokenBucket(limit.requestsPerSecond, limit.burst);
  b.retune(limit.requestsPerSecond, limit.burst);
  return b;
}

/** A request refused after its quota was counted gives the count back. */
function refundQuota(app: AppSnapshot, s: AppState): void {
  if (app.quota?.requestsPerHour !== undefined) s.hour.refund();
  if (app.quota?.requestsPerDay !== undefined) s.day.refund();
}

function quota(app: AppSnapshot, which: string, waitMs: number): MGError {
  return new MGError('MG_RATE_LIMITED', `app "${app.name}" has used its ${which} quota`, { retryAfterMs: waitMs });
}
