/** One replica of a backend: its slots, what is in flight on it, its health and its latency. */
import type { BackendClient } from './client.ts';

export class Endpoint {
  /** Requests currently sent to this endpoint and not yet finished. */
  inflight = 0;
  healthy = true;
  consecutiveFailures = 0;
  /** Smoothed time per request, ms (latency-aware tie-break among equally loaded replicas). */
  latencyMs = 0;
  served = 0;
  failures = 0;

  constructor(
    readonly backend: string,
    readonly url: string,
    readonly slots: number,
    /** slots + dispatch-ahead: how many may be in flight at once. */
    public capacity: number,
    readonly client: BackendClient,
  ) {}

  get hasCapacity(): boolean {
    return this.healthy && this.inflight < this.capacity;
  }

  /** Fraction of slots busy (may exceed 1 with dispatch-ahead). */
  get load(): number {
    return this.inflight / this.slots;
  }

  observeLatency(ms: number): void {
    this.latencyMs = this.latencyMs === 0 ? ms : this.latencyMs * 0.8 + ms * 0.2;
  }
}

/**
 * Least-outstanding choice among replicas with a free slot, relative to their slot counts; ties go
 * to the replica with the lower smoothed latency.
 */
export function pickEndpoint(endpoints: readonly Endpoint[]): Endpoint | undefined {
  let best: Endpoint | undefined;
  for (const ep of endpoints) {
    if (!ep.hasCapacity) continue;
    if (!best || ep.load < best.load || (ep.load === best.load && ep.latencyMs < best.latencyMs)) best = ep;
  }
  return best;
}
