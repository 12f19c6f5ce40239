/**
 * The two predictions `saturated` compares.
 *
 *   edge wait  = requests ahead of it × measured edge service time ÷ healthy edge slots
 *   cloud time = measured cloud call time (round trip + cloud service time), smoothed
 *
 * A request is offloaded when its edge wait alone exceeds the whole cloud time: the cloud takes
 * work only when the edge could not even start it sooner, so it gets the excess and no more.
 */
import { pickEndpoint } from '../../dispatch/endpoint.ts';
import type { Domain } from '../domain.ts';

/** Requests that must finish before a new one gets a slot: 0 when a slot is free and nobody waits. */
export function queuedAhead(local: Domain): number {
  if (local.queued === 0 && pickEndpoint(local.endpoints) !== undefined) return 0;
  // Everything queued, plus one running request that has to finish first.
  return local.queued + 1;
}

export function edgeWaitMs(local: Domain, serviceMs: number, ahead: number): number {
  if (ahead === 0) return 0;
  let slots = 0;
  for (const e of local.endpoints) if (e.healthy) slots += e.slots;
  return slots === 0 ? Infinity : (ahead * serviceMs) / slots;
}

const ALPHA = 0.25;
/** A measurement older than this is not trusted: the next one replaces it, not blends in. */
const STALE_MS = 1000;
/** Without fresh measurements the estimate halves toward the prior every this long. */
const HALF_LIFE_MS = 2000;

/**
 * Smoothed cloud call time. Before the first answer it is the edge service time (the link assumed
 * free): the first overflow goes out and is measured. When the cloud stopped being used because it
 * was slow, the estimate decays back toward that prior, so one request tries again and is measured.
 */
export class CloudTime {
  private ms: number | undefined;
  private at = 0;

  observe(ms: number, now = performance.now()): void {
    this.ms = this.ms === undefined || now - this.at > STALE_MS ? ms : this.ms + (ms - this.ms) * ALPHA;
    this.at = now;
  }

  predict(prior: number, now = performance.now()): number {
    if (this.ms === undefined) return prior;
    const age = now - this.at;
    if (age <= STALE_MS || this.ms <= prior) return this.ms;
    return prior + (this.ms - prior) * 0.5 ** ((age - STALE_MS) / HALF_LIFE_MS);
  }
}
