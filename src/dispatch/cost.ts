/**
 * Accelerator cost estimates per backend and model, for compute fairness: a smoothed cost per unit
 * (a unit is one request, or one token for LLM calls) that follows a backend within a few requests
 * when it slows down or speeds up. Unknown models start at the backend's mean, or a fixed prior.
 */
const ALPHA = 0.25;
export const PRIOR_MS = 20;

interface Estimate {
  msPerUnit: number;
  samples: number;
}

export class CostModel {
  private readonly byBackend = new Map<string, Map<string, Estimate>>();

  /** Estimated accelerator milliseconds for a call of `units` units. */
  estimate(backend: string, model: string, units = 1): number {
    const e = this.byBackend.get(backend)?.get(model);
    return (e ? e.msPerUnit : this.prior(backend)) * units;
  }

  observe(backend: string, model: string, ms: number, units = 1): void {
    if (!(ms >= 0) || !(units > 0)) return;
    let models = this.byBackend.get(backend);
    if (!models) {
      models = new Map<string, Estimate>();
      this.byBackend.set(backend, models);
    }
    const per = ms / units;
    const e = models.get(model);
    if (!e) {
      const fresh = { msPerUnit: per, samples: 1 };
      models.set(model, fresh);
      return;
    }
    e.msPerUnit += (per - e.msPerUnit) * ALPHA;
    e.samples++;
  }

  /** The per-unit estimate if one has been measured. */
  measured(backend: string, model: string): number | undefined {
    return this.byBackend.get(backend)?.get(model)?.msPerUnit;
  }

  private prior(backend: string): number {
    const models = this.byBackend.get(backend);
    if (!models || models.size === 0) return PRIOR_MS;
    let sum = 0;
    for (const e of models.values()) sum += e.msPerUnit;
    return sum / models.size;
  }
}
