/**
 * Admission that predicts: refuse at arrival what cannot start before its deadline, instead of
 * queueing it until the deadline passes.
 *
 *   arrival ─► a slot free? ──yes──► admit (work conservation: never refused)
 *                 │no
 *                 ▼
 *   drain rate warm? ──no──► admit (cold or stale: today's behaviour, the queue timer decides)
 *                 │yes
 *                 ▼
 *   start ≈ now + (dispatches ahead + 1) ÷ drain rate  >  deadline?  ──yes──► 429 MG_QUEUE_FULL
 *                 │no                                                        (reason predicted-wait,
 *                 ▼                                                          Retry-After: when it fits)
 *               queue
 *
 * "Dispatches ahead" follows the scheduler: all queued work of higher priority in the same dispatch
 * domain goes first (strict priority), then the request's own queue (FIFO), plus what the other
 * flows of its level get while its flow works through that queue (their weight share, bounded by
 * what they have queued). The drain rate is the domain's dispatches per second measured while it
 * had a backlog (only then is it the accelerator's pace rather than the demand), per healthy slot,
 * times the slots healthy now: losing a replica lowers the prediction at once.
 *
 * Pure logic over small views: the broker adapts its domains to `DomainView`, tests drive it with
 * a fake clock.
 */

/** One flow (a group's queue on a domain) as the predictor sees it (a DomainFlow is one). */
export interface FlowView {
  readonly priority: number;
  readonly weight: number;
  /** Requests waiting in it now. */
  readonly queue: { readonly length: number };
}

/** One dispatch domain at one instant. */
export interface DomainView {
  /** A request could be dispatched now: some healthy endpoint has a free slot. */
  readonly freeSlot: boolean;
  /** Requests waiting on the domain (all flows). */
  readonly queued: number;
  /** Dispatches made so far (a counter that only grows). */
  readonly dispatched: number;
  /** Slots of the healthy endpoints. */
  readonly capacity: number;
  readonly flows: Iterable<FlowView>;
}

export interface DrainOptions {
  /** Sliding window of the measurement, ms. */
  readonly windowMs: number;
  readonly buckets: number;
  /** Warm only with at least this many dispatches measured under backlog in the window. */
  readonly minDispatches: number;
  /** …and at least this much backlogged time in the window, ms. */
  readonly minBusyMs: number;
  /** Two samples further apart than this say nothing about the time between them, ms. */
  readonly maxGapMs: number;
  /** A fall of the rate by this fraction from the reference triggers a re-evaluation of queued work. */
  readonly dropFraction: number;
}

/**
 * 4 s: long enough that a slow accelerator (one replica of 10/s) gives its 10 dispatches well inside
 * it, short enough that a change of service time is learnt within seconds (a change in healthy slots
 * needs no learning: the rate is per slot).
 */
export const DRAIN_DEFAULTS: DrainOptions = { windowMs: 4000, buckets: 40, minDispatches: 10, minBusyMs: 500, maxGapMs: 250, dropFraction: 0.25 };

/**
 * The drain rate of one domain, measured only over backlogged time, per healthy slot. Fed by
 * samples of the domain's dispatch counter (at arrivals and on a short tick), so it needs no hook in
 * the dispatch path. O(1) per sample.
 */
export class DrainEstimate {
  private readonly opts: DrainOptions;
  private readonly bucketMs: number;
  private readonly dispatches: Float64Array;
  private readonly busyMs: Float64Array;
  /** Slot-milliseconds: backlogged time × healthy slots. */
  private readonly slotMs: Float64Array;
  private current = 0;
  private currentStart: number;
  private last: { at: number; dispatched: number; busy: boolean; capacity: number } | undefined;
  /** Rate at the last re-evaluation (or the highest since). */
  private reference: number | undefined;

  constructor(
    opts: Partial<DrainOptions> = {},
    private readonly now: () => number = () => performance.now(),
  ) {
    this.opts = { ...DRAIN_DEFAULTS, ...opts };
    this.bucketMs = this.opts.windowMs / this.opts.buckets;
    this.dispatches = new Float64Array(this.opts.buckets);
    this.busyMs = new Float64Array(this.opts.buckets);
    this.slotMs = new Float64Array(this.opts.buckets);
    this.currentStart = now();
  }

  /** Records the domain's state now; the time since the previous sample counts when both were backlogged. */
  sample(view: Pick<DomainView, 'dispatched' | 'queued' | 'capacity'>): void {
    const at = this.now();
    const busy = view.queued > 0;
    const prev = this.last;
    this.last = { at, dispatched: view.dispatched, busy, capacity: view.capacity };
    if (!prev || !prev.busy || !busy) return;
    const dt = at - prev.at;
    if (dt <= 0 || dt > this.opts.maxGapMs || prev.capacity <= 0) return;
    this.advance(at);
    const i = this.current;
    this.dispatches[i] = (this.dispatches[i] ?? 0) + Math.max(0, view.dispatched - prev.dispatched);
    this.busyMs[i] = (this.busyMs[i] ?? 0) + dt;
    this.slotMs[i] = (this.slotMs[i] ?? 0) + dt * prev.capacity;
  }

  /**
   * A sample of a domain with nothing queued (sample() with `queued` 0): it only ends a backlogged
   * stretch, so its counters are not needed. The broker's common arrival (a slot free) records this.
   */
  idle(at: number = this.now()): void {
    const last = this.last;
    if (last === undefined) this.last = { at, dispatched: 0, busy: false, capacity: 0 };
    else {
      last.at = at;
      last.busy = false;
    }
  }

  /** Dispatches per second with `capacity` healthy slots; undefined while cold or stale. */
  rate(capacity: number): number | undefined {
    this.advance(this.now());
    let n = 0;
    let busy = 0;
    let slot = 0;
    for (let i = 0; i < this.opts.buckets; i++) {
      n += this.dispatches[i] ?? 0;
      busy += this.busyMs[i] ?? 0;
      slot += this.slotMs[i] ?? 0;
    }
    if (n < this.opts.minDispatches || busy < this.opts.minBusyMs || slot <= 0) return undefined;
    return (n / slot) * 1000 * capacity;
  }

  /**
   * True when the rate fell by `dropFraction` or more since the last time this said so (or since
   * its highest value after that): queued work should be predicted again.
   */
  dropped(capacity: number): boolean {
    const r = this.rate(capacity);
    if (r === undefined) {
      this.reference = undefined;
      return false;
    }
    if (this.reference === undefined || r > this.reference) {
      this.reference = r;
      return false;
    }
    if (r >= this.reference * (1 - this.opts.dropFraction)) return false;
    this.reference = r;
    return true;
  }

  private advance(now: number): void {
    let steps = Math.floor((now - this.currentStart) / this.bucketMs);
    if (steps <= 0) return;
    this.currentStart += steps * this.bucketMs;
    if (steps > this.opts.buckets) steps = this.opts.buckets;
    for (let k = 0; k < steps; k++) {
      this.current = (this.current + 1) % this.opts.buckets;
      this.dispatches[this.current] = 0;
      this.busyMs[this.current] = 0;
      this.slotMs[this.current] = 0;
    }
  }
}

/**
 * Dispatches that happen before the request at `position` (0 = head) of flow `own` starts:
 * higher-priority backlog first, then `position` of its own, plus what each other flow of its level
 * is served meanwhile (its weight share of `position + 1`, at most what it has queued). Lower
 * priorities get nothing while it waits.
 */
export function dispatchesAhead(flows: Iterable<FlowView>, own: FlowView, position: number): number {
  let ahead = position;
  for (const f of flows) {
    const queued = f.queue.length;
    if (f === own || queued === 0) continue;
    if (f.priority > own.priority) ahead += queued;
    else if (f.priority === own.priority) ahead += Math.min(queued, ((position + 1) * f.weight) / own.weight);
  }
  return ahead;
}

export interface Prediction {
  /** Predicted time until the request starts (leaves the queue), ms. */
  readonly waitMs: number;
  /** It cannot start before its deadline. */
  readonly refuse: boolean;
  /** When a new request like it would fit: predicted wait − time it has, ms (refusals only; otherwise 0). */
  readonly retryAfterMs: number;
}

/**
 * The prediction for a request at `position` of flow `own` on a domain, with `deadline` (same clock
 * as `now`) as the last moment it may start. Undefined when there is nothing to predict from: the
 * rate is cold or stale. A free slot always admits.
 */
export function predict(estimate: DrainEstimate, view: DomainView, own: FlowView, position: number, now: number, deadline: number): Prediction | undefined {
  if (view.freeSlot) return { waitMs: 0, refuse: false, retryAfterMs: 0 };
  const rate = estimate.rate(view.capacity);
  if (rate === undefined || rate <= 0) return undefined;
  const waitMs = ((dispatchesAhead(view.flows, own, position) + 1) / rate) * 1000;
  const refuse = now + waitMs > deadline;
  return { waitMs, refuse, retryAfterMs: refuse ? waitMs - (deadline - now) : 0 };
}
