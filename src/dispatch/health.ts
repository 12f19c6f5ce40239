/**
 * Endpoint health: what counts against an endpoint or a model on it, and when they come back.
 * The rules (docs/health.md):
 *
 * - Active probes (the readiness path, every interval) decide whether an endpoint is up:
 *   `failureThreshold` consecutive failed probes take it down, the first good one brings it back.
 * - Passive signals (real calls) only count the server's own faults (attribution.ts). A refused
 *   connection ejects at once, resets and backend timeouts after `failureThreshold` in a row, and
 *   so do 5xx answers when they are the server's (a run of them across two or more models).
 * - A passive ejection never takes an endpoint out when that would leave fewer than
 *   `panicThreshold` of the endpoints (and never the last one) in service: the endpoint is probed
 *   at once instead, and a failed probe then takes it down. If probes take endpoints down so that
 *   fewer than `panicThreshold` are in service, passive ejections are ignored (panic: traffic
 *   spreads over every endpoint the probes still pass), as Envoy's healthy panic threshold does.
 * - An ejection lasts interval × 2^(n-1) (n: ejections without a healthy spell between, capped at
 *   MAX_EJECTION_MS), and ends with a successful probe after that time.
 * - 5xx answers of one model count against that model on that endpoint: after `failureThreshold`
 *   in a row it is down there (calls answered 502 at once), with the same backoff; then its
 *   readiness path is probed (KServe v2: /v2/models/{m}/ready) and one trial call decides.
 */
import type { BackendSnapshot } from '../core/snapshot.ts';
import type { Completion } from './execute.ts';
import type { Endpoint, ModelHealth } from './endpoint.ts';

/** The longest an ejection lasts (Envoy's max_ejection_time default). */
export const MAX_EJECTION_MS = 300_000;
/** A model or endpoint that has served this many intervals without failing forgets its past ejections. */
const HEALTHY_SPELL_INTERVALS = 10;

export function defaultProbePath(protocol: BackendSnapshot['protocol']): string {
  switch (protocol) {
    case 'kserve-v2-http':
    case 'kserve-v2-grpc':
      return '/v2/health/ready';
    case 'openai':
      return '/v1/models';
    case 'http':
      return '/';
  }
}

/** The KServe v2 readiness path of the model a call addresses, if the backend has one. */
export function modelProbePath(protocol: BackendSnapshot['protocol'], path: string): string | undefined {
  if (protocol !== 'kserve-v2-http' && protocol !== 'kserve-v2-grpc') return undefined;
  const m = /^\/v2\/models\/([^/?]+)(\/versions\/[^/?]+)?/.exec(path);
  return m ? `/v2/models/${m[1]}${m[2] ?? ''}/ready` : undefined;
}

/** A failed call, as a model that goes out of service remembers it. */
export interface CallFailure {
  readonly reason: string;
  /** The model's readiness path, probed before its trial call (undefined: none, the trial decides). */
  readonly probePath: string | undefined;
}

const METADATA_CALL: CallFailure = { reason: 'metadata call', probePath: undefined };
export const metadataCall = (): CallFailure => METADATA_CALL;

export class Health {
  private timer: NodeJS.Timeout | undefined;
  private probing = false;
  private readonly probingNow = new Set<Endpoint>();

  constructor(
    private readonly backend: () => BackendSnapshot,
    private readonly endpoints: () => readonly Endpoint[],
    /** Called when the set of endpoints in service changed. */
    private readonly onChange: () => void,
  ) {}

  private get hc(): BackendSnapshot['healthCheck'] {
    return this.backend().healthCheck;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.probeAll(), this.hc.intervalMs);
    this.timer.unref();
    void this.probeAll();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Ejection time after the n-th ejection. */
  private backoff(n: number): number {
    return Math.min(MAX_EJECTION_MS, this.hc.intervalMs * 2 ** Math.max(0, n - 1));
  }

  /**
   * What a finished call says about its endpoint and its model (undefined model: not inference).
   * `failure` describes it, asked only when its model counts a failure (most calls succeed).
   */
  observe(ep: Endpoint, model: string | undefined, c: Completion, failure: () => CallFailure, now: number = performance.now()): void {
    const mh = model === undefined ? undefined : this.model(ep, model);
    switch (c.fault) {
      case 'none':
        ep.consecutiveFailures = 0;
        ep.run5xx = 0;
        ep.runModels.clear();
        if (mh && (c.status ?? 0) < 500) this.modelAnswered(mh, now);
        return;
      case 'answer': {
        ep.failures++;
        ep.run5xx++;
        ep.runModels.add(model ?? '');
        if (mh) this.modelFailed(mh, now, failure);
        // The same 5xx from two or more models with nothing good between: the server's, not a model's.
        if (ep.runModels.size >= 2 && ep.run5xx >= this.hc.failureThreshold) this.serverFault(ep, now, false);
        return;
      }
      case 'refused':
        ep.failures++;
        ep.consecutiveFailures++;
        if (mh?.down) mh.down.trial = false;
        this.serverFault(ep, now, true);
        return;
      case 'reset':
      case 'timeout':
        ep.failures++;
        ep.consecutiveFailures++;
        if (mh?.down) mh.down.trial = false;
        if (ep.consecutiveFailures >= this.hc.failureThreshold) this.serverFault(ep, now, false);
        return;
      default:
        // The caller's, the request's or ours: says nothing about the server. A trial without a verdict is given again.
        if (mh?.down) mh.down.trial = false;
    }
  }

  private model(ep: Endpoint, model: string): ModelHealth {
    let mh = ep.models.get(model);
    if (!mh) {
      mh = { failures: 0, down: undefined, ejections: 0, upSince: performance.now() };
      ep.models.set(model, mh);
    }
    return mh;
  }

  private modelAnswered(mh: ModelHealth, now: number): void {
    mh.failures = 0;
    if (mh.down) {
      mh.down = undefined;
      mh.upSince = now;
    } else if (mh.ejections > 0 && now - mh.upSince > HEALTHY_SPELL_INTERVALS * this.hc.intervalMs) mh.ejections = 0;
  }

  private modelFailed(mh: ModelHealth, now: number, failure: () => CallFailure): void {
    mh.failures++;
    if (mh.down) {
      if (!mh.down.trial) return; // a call that left before the model went down
      mh.ejections++;
      Object.assign(mh.down, { until: now + this.backoff(mh.ejections), due: false, trial: false, reason: failure().reason });
      return;
    }
    if (mh.failures < this.hc.failureThreshold) return;
    mh.ejections++;
    const { reason, probePath } = failure();
    mh.down = { until: now + this.backoff(mh.ejections), ejections: mh.ejections, due: false, trial: false, probePath, reason };
  }

  /** A server fault: eject the endpoint if the panic threshold allows, else let a probe decide now. */
  private serverFault(ep: Endpoint, now: number, immediate: boolean): void {
    if (ep.ejected) return;
    if (!immediate && ep.consecutiveFailures < this.hc.failureThreshold && ep.run5xx < this.hc.failureThreshold) return;
    if (this.mayEject(ep)) {
      ep.ejections++;
      ep.ejectedUntil = now + this.backoff(ep.ejections);
      ep.consecutiveFailures = 0;
      ep.run5xx = 0;
      ep.runModels.clear();
      this.recompute();
    } else {
      void this.probeNow(ep);
    }
  }

  /** True when taking `ep` out leaves at least one endpoint, and at least panicThreshold of them, in service. */
  private mayEject(ep: Endpoint): boolean {
    const all = this.endpoints();
    let left = 0;
    for (const e of all) if (e !== ep && e.probeUp && !e.ejected) left++;
    return left >= 1 && left / all.length >= this.backend().healthCheck.panicThreshold;
  }

  /** Works out which endpoints are in service (panic included); tells the owner when that changed. */
  recompute(): void {
    const all = this.endpoints();
    let up = 0;
    for (const e of all) if (e.probeUp && !e.ejected) up++;
    const panic = all.length > 0 && up / all.length < this.backend().healthCheck.panicThreshold;
    let changed = false;
    for (const e of all) {
      const healthy = e.probeUp && (!e.ejected || panic);
      if (healthy !== e.healthy) {
        e.healthy = healthy;
        changed = true;
      }
    }
    if (changed) this.onChange();
  }

  private probeResult(ep: Endpoint, ok: boolean, decisive: boolean): void {
    const now = performance.now();
    if (ok) {
      ep.consecutiveProbeFailures = 0;
      ep.probeUp = true;
      if (ep.ejected && now >= ep.ejectedUntil) ep.ejectedUntil = 0;
      else if (!ep.ejected && ep.consecutiveFailures === 0 && ep.ejections > 0) ep.ejections--;
    } else {
      ep.consecutiveProbeFailures++;
      if (decisive || ep.consecutiveProbeFailures >= this.hc.failureThreshold) ep.probeUp = false;
    }
    this.recompute();
  }

  /** Probes one endpoint out of schedule (its calls failed but it may not be ejected): a failure takes it down. */
  async probeNow(ep: Endpoint): Promise<void> {
    if (this.probingNow.has(ep)) return;
    this.probingNow.add(ep);
    try {
      const hc = this.hc;
      const ok = await ep.client.probe(hc.path ?? defaultProbePath(this.backend().protocol), hc.timeoutMs);
      if (this.endpoints().includes(ep)) this.probeResult(ep, ok, true);
    } finally {
      this.probingNow.delete(ep);
    }
  }

  async probeAll(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    try {
      const hc = this.hc;
      const path = hc.path ?? defaultProbePath(this.backend().protocol);
      await Promise.all(
        this.endpoints().map(async (ep) => {
          const ok = await ep.client.probe(path, hc.timeoutMs);
          this.probeResult(ep, ok, false);
          if (ok) await this.probeModels(ep);
        }),
      );
    } finally {
      this.probing = false;
    }
  }

  /** Models down on `ep` whose time is up: probed where the protocol can, then given a trial call. */
  private async probeModels(ep: Endpoint): Promise<void> {
    const now = performance.now();
    for (const mh of ep.models.values()) {
      const d = mh.down;
      if (!d || d.due || d.until > now) continue;
      const ok = d.probePath === undefined ? true : await ep.client.probe(d.probePath, this.hc.timeoutMs);
      if (ok) d.due = true;
      else d.until = performance.now() + this.hc.intervalMs;
    }
  }
}
