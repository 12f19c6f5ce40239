/**
 * One replica of a backend: its slots, what is in flight on it, its health and its latency. The
 * EndpointSet that owns it is the only writer; everyone else reads.
 */
import type { BackendClient } from './client.ts';

/** A model that keeps failing on one endpoint: out for `until`, then probed and given one trial call. */
export interface ModelDown {
  /** performance.now() until which no call of the model goes to this endpoint. */
  until: number;
  /** How many times it went down without a long healthy spell between (the backoff's exponent). */
  ejections: number;
  /** Its time is up and its probe (if any) passed: one trial call may go (half-open). */
  due: boolean;
  /** The trial call is out: the others wait for its verdict. */
  trial: boolean;
  /** The backend's readiness path of this model (KServe v2), when it has one. */
  readonly probePath: string | undefined;
  /** The last failure, for the refusal's message. */
  reason: string;
}

export interface ModelHealth {
  /** Consecutive server-fault answers (5xx, broken answers) of this model on this endpoint. */
  failures: number;
  down: ModelDown | undefined;
  /** Ejections so far, remembered after the model is back (reset after a healthy spell). */
  ejections: number;
  /** performance.now() when it last came back. */
  upSince: number;
}

export class Endpoint {
  /** Requests currently sent to this endpoint and not yet finished by it. */
  inflight = 0;
  /** In service: the probes say it is up and no passive ejection holds (or the set is in panic). */
  healthy = true;
  /** Active view: its readiness probes pass. */
  probeUp = true;
  consecutiveProbeFailures = 0;
  /** Passive view: consecutive server faults seen on real calls. */
  consecutiveFailures = 0;
  /** performance.now() until which a passive ejection holds (0: not ejected). */
  ejectedUntil = 0;
  /** Passive ejections so far (the backoff's exponent); decays while it serves well. */
  ejections = 0;
  /** The current run of 5xx answers with no other answer between: how many, and of which models. */
  run5xx = 0;
  readonly runModels = new Set<string>();
  readonly models = new Map<string, ModelHealth>();
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

  get ejected(): boolean {
    return this.ejectedUntil > 0;
  }

  /** May a call of `model` go here (its model not down, or down with its trial due)? */
  takes(model: string): boolean {
    const d = this.models.get(model)?.down;
    return d === undefined || (d.due && !d.trial);
  }

  observeLatency(ms: number): void {
    this.latencyMs = this.latencyMs === 0 ? ms : this.latencyMs * 0.8 + ms * 0.2;
  }
}

/**
 * Least-outstanding choice among replicas with a free slot (that take `model`), relative to their
 * slot counts; ties go to the replica with the lower smoothed latency. `avoid` (where a retried
 * call just failed) is chosen only when no other replica can take the call now.
 */
export function pickEndpoint(endpoints: readonly Endpoint[], model?: string, avoid?: Endpoint): Endpoint | undefined {
  let best: Endpoint | undefined;
  for (const ep of endpoints) {
    if (!ep.hasCapacity || ep === avoid) continue;
    if (model !== undefined && ep.models.size > 0 && !ep.takes(model)) continue;
    if (!best || ep.load < best.load || (ep.load === best.load && ep.latencyMs < best.latencyMs)) best = ep;
  }
  // The replica to avoid (where the call just failed) only when no other can take it now.
  if (!best && avoid?.hasCapacity && (model === undefined || avoid.models.size === 0 || avoid.takes(model))) return avoid;
  return best;
}
