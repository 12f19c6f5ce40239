/**
 * Endpoint health: active readiness probes on an interval, and passive outlier ejection from real
 * traffic. An endpoint is ejected after `failureThreshold` consecutive failures of either kind and
 * comes back on its first successful probe, so a replica that dies is skipped within a few requests
 * and one that returns is used again within one probe interval.
 */
import type { BackendSnapshot } from '../core/snapshot.ts';
import type { Endpoint } from './endpoint.ts';

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

export class HealthChecker {
  private timer: NodeJS.Timeout | undefined;
  private probing = false;

  constructor(
    private readonly backend: BackendSnapshot,
    private readonly endpoints: () => readonly Endpoint[],
    /** Called when an endpoint changes state (ejected or readmitted). */
    private readonly onChange: (ep: Endpoint) => void,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.probeAll(), this.backend.healthCheck.intervalMs);
    this.timer.unref();
    void this.probeAll();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  success(ep: Endpoint): void {
    ep.consecutiveFailures = 0;
    if (!ep.healthy) {
      ep.healthy = true;
      this.onChange(ep);
    }
  }

  failure(ep: Endpoint): void {
    ep.failures++;
    ep.consecutiveFailures++;
    if (ep.healthy && ep.consecutiveFailures >= this.backend.healthCheck.failureThreshold) {
      ep.healthy = false;
      this.onChange(ep);
    }
  }

  /** Marks the endpoint down at once (its connection was refused: nothing is listening). */
  eject(ep: Endpoint): void {
    ep.failures++;
    ep.consecutiveFailures = Math.max(ep.consecutiveFailures + 1, this.backend.healthCheck.failureThreshold);
    if (ep.healthy) {
      ep.healthy = false;
      this.onChange(ep);
    }
  }

  async probeAll(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    try {
      const hc = this.backend.healthCheck;
      const path = hc.path ?? defaultProbePath(this.backend.protocol);
      await Promise.all(
        this.endpoints().map(async (ep) => {
          const ok = await ep.client.probe(path, hc.timeoutMs);
          if (ok) this.success(ep);
          else this.failure(ep);
        }),
      );
    } finally {
      this.probing = false;
    }
  }
}
