/**
 * A dispatch domain: one backend's replicas and the per-group queues of work waiting for them.
 *
 *   enqueue ─► flow queues (one per group) ─► fairness policy picks a flow ─► gate: a replica with a
 *   free slot? ─► callBackend ─► answer; the slot frees ─► pump again
 *
 * Work leaves the queue only when a slot is free, so the waiting happens here, where priority,
 * weights and deadlines apply, and not inside the accelerator.
 */
import { MGError } from '../core/errors.ts';
import type { BackendSnapshot, Fairness } from '../core/snapshot.ts';
import { ConnectionFailure } from '../dispatch/client.ts';
import { createBackendClient } from '../dispatch/clients/index.ts';
import type { CostModel } from '../dispatch/cost.ts';
import { Endpoint, pickEndpoint } from '../dispatch/endpoint.ts';
import { callBackend } from '../dispatch/execute.ts';
import { HealthChecker } from '../dispatch/health.ts';
import { VirtualTimePolicy } from './fairness/virtual-time.ts';
import { LinkedQueue } from './queue.ts';
import { CancelledError, type DomainFlow, type GroupState, type Work } from './work.ts';

/** Attempts per request when replicas refuse connections (the request never reached a model). */
const MAX_ATTEMPTS = 3;

export interface DomainHooks {
  /** Retry-After for a group's rejections, from its measured drain rate. */
  retryAfterMs(group: GroupState): number;
  fairness(): Fairness;
  /** Slots that groups above `priority` keep free (their reservedSlots, summed). */
  reservedAbove(priority: number): number;
}

let flowSeq = 0;

export class Domain {
  readonly flows = new Map<string, DomainFlow>();
  private readonly policy = new VirtualTimePolicy<DomainFlow>();
  endpoints: Endpoint[] = [];
  queued = 0;
  private readonly health: HealthChecker;
  private pumping = false;

  constructor(
    public backend: BackendSnapshot,
    private readonly cost: CostModel,
    private readonly hooks: DomainHooks,
  ) {
    this.endpoints = backend.endpoints.map((e) => this.makeEndpoint(e.url, e.slots));
    this.health = new HealthChecker(backend, () => this.endpoints, (ep) => {
      if (ep.healthy) this.pump();
      else if (!this.endpoints.some((e) => e.healthy)) this.failQueued();
    });
  }

  start(): void {
    this.health.start();
  }

  get name(): string {
    return this.backend.name;
  }

  get anyHealthy(): boolean {
    return this.endpoints.some((e) => e.healthy);
  }

  flowFor(group: GroupState): DomainFlow {
    let flow = this.flows.get(group.name);
    if (!flow) {
      flow = {
        name: group.name,
        group,
        queue: new LinkedQueue<Work>(),
        priority: group.priority,
        weight: group.weight,
        pass: 0,
        seq: flowSeq++,
        heapIndex: -1,
      };
      this.flows.set(group.name, flow);
    }
    return flow;
  }

  enqueue(work: Work): void {
    const flow = work.flow;
    work.enqueuedAt = performance.now();
    work.record.queuedAt ??= work.enqueuedAt;
    work.node = work.attempts > 0 ? flow.queue.unshift(work) : flow.queue.push(work);
    this.queued++;
    flow.group.queued++;
    if (flow.queue.length === 1) this.policy.activate(flow);
    this.pump();
    if (work.node?.list) this.arm(work);
  }

  /** Deadline timer and client-abort listener for work that stays queued. */
  private arm(work: Work): void {
    const wait = work.queueDeadline - performance.now();
    work.timer = setTimeout(() => this.expire(work), Math.max(0, wait));
    work.onAbort = () => this.cancel(work);
    work.call.signal.once('abort', work.onAbort);
  }

  private unqueue(work: Work): void {
    const flow = work.flow;
    if (!work.node || !flow.queue.remove(work.node)) return;
    work.node = undefined;
    this.queued--;
    flow.group.queued--;
    if (flow.queue.length === 0) this.policy.deactivate(flow);
  }

  private expire(work: Work): void {
    this.unqueue(work);
    // Accumulates: a request retried on another replica has queued before.
    work.record.queueMs = (work.record.queueMs ?? 0) + (performance.now() - work.enqueuedAt);
    work.reject(new MGError('MG_QUEUE_TIMEOUT', `waited ${Math.round(work.record.queueMs)}ms in queue of group "${work.group.name}" past its deadline`, {
      retryAfterMs: this.hooks.retryAfterMs(work.group),
    }));
  }

  private cancel(work: Work): void {
    this.unqueue(work);
    work.reject(new CancelledError());
  }

  /** No replica is healthy: queued work is answered now rather than at its deadline. */
  private failQueued(): void {
    for (const flow of this.flows.values()) {
      for (const work of [...flow.queue]) {
        this.unqueue(work);
        work.reject(new MGError('MG_NO_BACKEND', `no healthy endpoint for backend "${this.name}"`, {
          retryAfterMs: this.backend.healthCheck.intervalMs,
        }));
      }
    }
  }

  private inflight(): number {
    let n = 0;
    for (const e of this.endpoints) n += e.inflight;
    return n;
  }

  private healthyCapacity(): number {
    let n = 0;
    for (const e of this.endpoints) if (e.healthy) n += e.capacity;
    return n;
  }

  /** Dispatches while there is queued work and a free slot. */
  pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queued > 0) {
        const ep = pickEndpoint(this.endpoints);
        if (!ep) break;
        const flow = this.policy.peek();
        if (!flow) break;
        // Reserved slots: lower priorities stop short of the slots kept for higher ones. Every other
        // backlogged flow has this priority or lower, so nothing else may go either.
        const reserved = this.hooks.reservedAbove(flow.priority);
        if (reserved > 0 && this.inflight() >= this.healthyCapacity() - reserved) break;
        const work = flow.queue.peek() as Work;
        this.unqueue(work);
        work.detach();
        const now = performance.now();
        work.record.queueMs = (work.record.queueMs ?? 0) + (now - work.enqueuedAt);
        if (now >= work.queueDeadline) {
          // Expired between its timer and this pump: answered, never dispatched, not charged.
          work.reject(new MGError('MG_QUEUE_TIMEOUT', 'deadline passed while queued', { retryAfterMs: this.hooks.retryAfterMs(work.group) }));
          continue;
        }
        const units = this.hooks.fairness() === 'compute' ? (work.call.costHint ?? 1) : 1;
        work.units = units;
        work.charged = this.hooks.fairness() === 'compute' ? this.cost.estimate(this.name, work.call.model, units) : 1;
        this.policy.charge(flow, work.charged, flow.queue.length > 0);
        this.dispatch(work, ep, now);
      }
    } finally {
      this.pumping = false;
    }
  }

  private dispatch(work: Work, ep: Endpoint, now: number): void {
    ep.inflight++;
    work.attempts++;
    work.dispatchedAt = now;
    work.record.dispatchedAt = now;
    const group = work.group;
    group.inflight++;
    group.drain.add();
    group.dispatched++;
    work.record.endpoint = ep.url;
    let released = false;
    /** served: answered; failed: the accelerator worked but no good answer; refused: never reached it. */
    const release = (how: 'served' | 'failed' | 'refused', units?: number): void => {
      if (released) return;
      released = true;
      ep.inflight--;
      group.inflight--;
      const ms = performance.now() - work.dispatchedAt;
      work.record.backendMs = ms;
      // Cost is slot time: from leaving the queue to the full answer (transport included).
      const cost = ms;
      const compute = this.hooks.fairness() === 'compute';
      if (how === 'served') {
        ep.observeLatency(ms);
        ep.served++;
        this.cost.observe(this.name, work.call.model, cost, units ?? work.units);
      }
      if (how === 'refused') {
        this.policy.correct(work.flow, -work.charged);
      } else {
        group.costMs += cost;
        if (compute) this.policy.correct(work.flow, cost - work.charged);
      }
      this.pump();
    };

    // The backend's own timeout runs from dispatch; the call's overall deadline may cut it shorter.
    callBackend(ep, work.call, Math.min(work.callDeadline, now + this.backend.timeoutMs)).then(
      (result) => {
        this.health.success(ep);
        result.done.then(
          ({ units }) => release('served', units),
          () => release('failed'),
        );
        work.resolve(result.reply);
      },
      (err: unknown) => {
        if (err instanceof ConnectionFailure) {
          this.health.eject(ep);
          release('refused');
          const remaining = work.queueDeadline - performance.now();
          if (work.attempts < MAX_ATTEMPTS && remaining > 0 && !work.call.signal.aborted && this.anyHealthy) {
            this.enqueue(work); // back to the front of its queue, for another replica
            return;
          }
          work.reject(new MGError('MG_BACKEND_ERROR', err.message, { cause: err }));
          return;
        }
        if (!(err instanceof CancelledError)) this.health.failure(ep);
        release('failed');
        work.reject(err);
      },
    );
  }

  /** A group's priority or weight changed. */
  reconfigureGroup(group: GroupState): void {
    const flow = this.flows.get(group.name);
    if (!flow) return;
    flow.priority = group.priority;
    flow.weight = group.weight;
    this.policy.reconfigure(flow);
  }

  /** Applies a changed backend definition; replicas that stay keep their in-flight work and state. */
  reconfigure(backend: BackendSnapshot): void {
    const old = new Map(this.endpoints.map((e) => [e.url, e]));
    this.backend = backend;
    this.endpoints = backend.endpoints.map((e) => {
      const kept = old.get(e.url);
      old.delete(e.url);
      if (kept && kept.slots === e.slots) {
        kept.capacity = e.slots + backend.dispatchAhead;
        return kept;
      }
      return this.makeEndpoint(e.url, e.slots);
    });
    // Replicas that left finish what they have, then close.
    for (const gone of old.values()) this.closeWhenIdle(gone);
    this.pump();
  }

  private makeEndpoint(url: string, slots: number): Endpoint {
    const capacity = slots + this.backend.dispatchAhead;
    return new Endpoint(this.backend.name, url, slots, capacity, createBackendClient(this.backend.protocol, url, capacity + 2));
  }

  private closeWhenIdle(ep: Endpoint): void {
    ep.capacity = 0;
    const check = (): void => {
      if (ep.inflight === 0) void ep.client.close();
      else setTimeout(check, 100).unref();
    };
    check();
  }

  async close(): Promise<void> {
    this.health.stop();
    for (const flow of this.flows.values()) for (const work of [...flow.queue]) this.cancel(work);
    await Promise.all(this.endpoints.map((e) => e.client.close()));
  }
}
