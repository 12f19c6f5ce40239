/**
 * The circuit breaker on a cloud link. Closed: offloading is allowed and consecutive failed or slow
 * calls are counted. At `failureThreshold` it opens: nothing is offloaded, and every `openFor` the
 * link is probed (the backend's readiness path). A good probe half-opens it: one real request is
 * let through as a trial; its success closes the breaker, its failure opens it again.
 *
 *   closed ──N failures──► open ──probe ok──► half-open ──trial ok──► closed
 *                            ▲                    │
 *                            └────trial fails─────┘
 */
export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerSettings {
  readonly failureThreshold: number;
  readonly openForMs: number;
}

export class Breaker {
  state: BreakerState = 'closed';
  private failures = 0;
  private trialOut = false;
  private timer: NodeJS.Timeout | undefined;
  private probing = false;
  /** Times the breaker opened (for metrics). */
  opened = 0;

  constructor(
    private settings: BreakerSettings,
    /** True when the link answers its readiness probe. */
    private readonly probe: () => Promise<boolean>,
    private readonly onChange: (state: BreakerState, reason: string) => void,
  ) {}

  configure(settings: BreakerSettings): void {
    this.settings = settings;
  }

  /** May a request be sent now? In half-open, only the one trial. */
  allows(): boolean {
    if (this.state === 'closed') return true;
    return this.state === 'half-open' && !this.trialOut;
  }

  /** A request is being sent (call after `allows()`). */
  sending(): void {
    if (this.state === 'half-open') this.trialOut = true;
  }

  success(): void {
    this.failures = 0;
    if (this.state !== 'closed') {
      this.trialOut = false;
      this.set('closed', 'a cloud call succeeded');
    }
  }

  failure(reason: string): void {
    this.failures++;
    if (this.state === 'half-open') {
      this.trialOut = false;
      this.open(`trial failed: ${reason}`);
    } else if (this.state === 'closed' && this.failures >= this.settings.failureThreshold) {
      this.open(`${this.failures} consecutive failures, last: ${reason}`);
    }
  }

  /** A trial that ended without telling (client gone): let another one go. */
  trialAbandoned(): void {
    this.trialOut = false;
  }

  private open(reason: string): void {
    this.opened++;
    this.set('open', reason);
    this.schedule();
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tryProbe(), this.settings.openForMs);
    this.timer.unref();
  }

  private async tryProbe(): Promise<void> {
    this.timer = undefined;
    if (this.state !== 'open' || this.probing) return;
    this.probing = true;
    let ok = false;
    try {
      ok = await this.probe();
    } catch {
      ok = false;
    } finally {
      this.probing = false;
    }
    if (this.state !== 'open') return;
    if (ok) this.set('half-open', 'the link answered its probe');
    else this.schedule();
  }

  private set(state: BreakerState, reason: string): void {
    if (this.state === state) return;
    this.state = state;
    this.onChange(state, reason);
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
