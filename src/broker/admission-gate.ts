/**
 * The predictor (admission.ts) wired to the broker's dispatch domains: one drain estimate per
 * domain, sampled at every arrival and on a short tick; and, when a domain's rate falls a lot (a
 * replica lost), queued work predicted again and refused at once if it can no longer start in time,
 * rather than at its deadline.
 */
import { MGError } from '../core/errors.ts';
import { pickEndpoint } from '../dispatch/endpoint.ts';
import { DrainEstimate, dispatchesAhead, predict, type DomainView, type Prediction } from './admission.ts';
import type { Domain } from './domain.ts';
import type { DomainFlow, GroupState, Work } from './work.ts';

/** How often every domain is sampled (and checked for a fall of its rate), ms. */
const TICK_MS = 50;

/** predict()'s answer for a free slot (admission.ts), shared: a Prediction is never changed. */
const STARTS_NOW: Prediction = Object.freeze({ waitMs: 0, refuse: false, retryAfterMs: 0 });

export interface GateEnv {
  domains(): Iterable<Domain>;
  /** The group has early refusal on (ServiceGroup.spec.queue.earlyRefusal). */
  enabled(group: GroupState): boolean;
  /** Queued work someone else looks after (the offloader moves it to the cloud instead). */
  exempt(work: Work): boolean;
  retryAfterMs(group: GroupState): number;
}

function healthySlots(d: Domain): number {
  let n = 0;
  for (const e of d.endpoints) if (e.healthy) n += e.slots;
  return n;
}

function viewOf(d: Domain): DomainView {
  return { freeSlot: pickEndpoint(d.endpoints) !== undefined, queued: d.queued, dispatched: d.dispatched, capacity: healthySlots(d), flows: { [Symbol.iterator]: () => d.flows.values() } };
}

export class AdmissionGate {
  private readonly estimates = new WeakMap<Domain, DrainEstimate>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly env: GateEnv) {}

  start(): void {
    this.timer ??= setInterval(() => this.tick(), TICK_MS).unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The prediction for a new arrival at the back of `flow`; undefined while the rate is cold. */
  predict(domain: Domain, flow: DomainFlow, deadline: number, now: number = performance.now()): Prediction | undefined {
    const est = this.estimate(domain);
    // The common arrival: nothing waits and a slot is free. It starts now (a free slot always
    // admits), and the sample only says the domain is not backlogged: no view to build.
    if (domain.queued === 0 && pickEndpoint(domain.endpoints) !== undefined) {
      est.idle(now);
      return STARTS_NOW;
    }
    const view = viewOf(domain);
    est.sample(view);
    return predict(est, view, flow, flow.queue.length, now, deadline);
  }

  private estimate(d: Domain): DrainEstimate {
    let est = this.estimates.get(d);
    if (!est) this.estimates.set(d, (est = new DrainEstimate()));
    return est;
  }

  private tick(): void {
    for (const d of this.env.domains()) {
      const est = this.estimate(d);
      const view = viewOf(d);
      est.sample(view);
      if (d.queued > 0 && est.dropped(view.capacity)) this.repredict(d, est, view);
    }
  }

  /** The rate fell: queued work that can no longer start before its deadline is refused now. */
  private repredict(d: Domain, est: DrainEstimate, view: DomainView): void {
    if (view.freeSlot) return;
    const rate = est.rate(view.capacity);
    if (rate === undefined || rate <= 0) return;
    const now = performance.now();
    for (const flow of [...d.flows.values()]) {
      if (!this.env.enabled(flow.group)) continue;
      let position = 0;
      for (const work of [...flow.queue]) {
        const startMs = ((dispatchesAhead(d.flows.values(), flow, position) + 1) / rate) * 1000;
        if (this.env.exempt(work) || now + startMs <= work.startBy || !d.withdraw(work)) {
          position++;
          continue;
        }
        work.record.refusal = 'rate-drop';
        work.reject(new MGError('MG_QUEUE_FULL', `group "${flow.group.name}" can no longer start this request before its deadline: the drain rate fell to ${rate.toFixed(1)}/s`, {
          retryAfterMs: this.env.retryAfterMs(flow.group),
        }));
      }
    }
  }
}
