/**
 * A dispatch domain: the per-group queues of work waiting for one backend, the fairness decision
 * and the gate. The backend's replicas, slots, health and the call itself belong to its
 * EndpointSet (dispatch/endpoint-set.ts); this file never touches a slot.
 *
 *   enqueue ─► flow queues (one per group) ─► fairness policy picks a flow ─► gate: a replica with a
 *   free slot? ─► set.send ─► answer; when the slot is given back: charge the group ─► pump again
 *
 * Work leaves the queue only when a slot is free, so the waiting happens here, where priority,
 * weights and deadlines apply, and not inside the accelerator.
 */
import { CancelledError } from '../core/cancel.ts';
import { MGError } from '../core/errors.ts';
import type { BackendSnapshot, Fairness } from '../core/snapshot.ts';
import { ConnectionFailure } from '../dispatch/client.ts';
import type { CostModel } from '../dispatch/cost.ts';
import type { Endpoint } from '../dispatch/endpoint.ts';
import { EndpointSet, type Sent, type SlotUse } from '../dispatch/endpoint-set.ts';
import { VirtualTimePolicy } from './fairness/virtual-time.ts';
import { LinkedQueue } from './queue.ts';
import { type DomainFlow, type GroupState, type Work } from './work.ts';

/** Attempts per request when replicas refuse connections (the request never reached a model). */
const MAX_ATTEMPTS = 3;

export interface DomainHooks {
  /** Retry-After for a group's rejections, from its measured drain rate. */
  retryAfterMs(group: GroupState): number;
  fairness(): Fairness;
  /** Slots that groups above `priority` keep free (their reservedSlots, summed). */
  reservedAbove(priority: number): number;
  /**
   * Work this domain cannot serve (no healthy replica left): true when someone else took it (the
   * offloader sends it to the cloud); otherwise it is answered MG_NO_BACKEND / MG_BACKEND_ERROR.
   */
  rescue?(work: Work): boolean;
}

let flowSeq = 0;

export class Domain {
  readonly flows = new Map<string, DomainFlow>();
  private readonly policy = new VirtualTimePolicy<DomainFlow>();
  /** The backend's replicas: clients, slots, health, the one send. */
  readonly set: EndpointSet;
  queued = 0;
  /** Works dispatched so far (the offload predictor counts how many went ahead of a queued one). */
  dispatched = 0;
  private pumping = false;

  constructor(
    backend: BackendSnapshot,
    private readonly cost: CostModel,
    private readonly hooks: DomainHooks,
  ) {
    this.set = new EndpointSet(backend, {
      onHealthChange: (set) => {
        if (set.anyHealthy) this.pump();
        else this.failQueued();
      },
    });
  }

  start(): void {
    this.set.start();
  }

  get backend(): BackendSnapshot {
    return this.set.backend;
  }

  get name(): string {
    return this.set.name;
  }

  get endpoints(): readonly Endpoint[] {
    return this.set.endpoints;
  }

  get anyHealthy(): boolean {
    return this.set.anyHealthy;
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
    // A model failing on every replica is refused at once, not after a wait in the queue.
    const down = this.set.modelRefusal(work.call.model);
    if (down) {
      work.reject(down);
      return;
    }
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
    const wait = work.startBy - performance.now();
    work.timer = setTimeout(() => this.expire(work), Math.max(0, wait));
    work.onAbort = () => this.cancel(work);
    work.call.signal.once('abort', work.onAbort);
  }

  /** Takes queued work out (the offloader moves it to the cloud); false when it is no longer queued. */
  withdraw(work: Work): boolean {
    if (!work.node?.list) return false;
    this.unqueue(work);
    work.detach();
    work.record.queueMs = (work.record.queueMs ?? 0) + (performance.now() - work.enqueuedAt);
    return true;
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
        work.detach();
        work.record.queueMs = (work.record.queueMs ?? 0) + (performance.now() - work.enqueuedAt);
        if (this.hooks.rescue?.(work) === true) continue;
        work.reject(new MGError('MG_NO_BACKEND', `no healthy endpoint for backend "${this.name}"`, {
          retryAfterMs: this.backend.healthCheck.intervalMs,
        }));
      }
    }
  }

  /** Dispatches while there is queued work and a free slot. */
  pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queued > 0) {
        if (!this.set.pick()) break;
        const flow = this.policy.peek();
        if (!flow) break;
        // Reserved slots: lower priorities stop short of the slots kept for higher ones. Every other
        // backlogged flow has this priority or lower, so nothing else may go either.
        const reserved = this.hooks.reservedAbove(flow.priority);
        if (reserved > 0 && this.set.inflight() >= this.set.healthyCapacity() - reserved) break;
        const work = flow.queue.peek() as Work;
        const ep = this.set.pick(work.call.model, work.lastEndpoint as Endpoint | undefined);
        if (!ep) {
          const down = this.set.modelRefusal(work.call.model);
          if (!down) break; // its model is up only on busy replicas: it waits for one
          this.unqueue(work);
          work.record.queueMs = (work.record.queueMs ?? 0) + (performance.now() - work.enqueuedAt);
          work.reject(down);
          continue;
        }
        this.unqueue(work);
        work.detach();
        const now = performance.now();
        work.record.queueMs = (work.record.queueMs ?? 0) + (now - work.enqueuedAt);
        if (now >= work.startBy) {
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
    this.dispatched++;
    work.attempts++;
    work.dispatchedAt = now;
    work.record.dispatchedAt = now;
    const group = work.group;
    group.inflight++;
    group.drain.add();
    group.dispatched++;
    work.record.endpoint = ep.url;
    work.lastEndpoint = ep;
    const sent: Sent = this.set.send(work.call, work.callDeadline, ep, undefined, group.priority);
    // The slot is given back (by the set) when the server is done; the group is charged then.
    void sent.done.then((use) => this.charge(work, use));
    sent.answer.then(
      (reply) => work.resolve(reply),
      (err: unknown) => {
        if (err instanceof ConnectionFailure && this.mayRetry(work, err)) {
          this.enqueue(work); // back to the front of its queue, for another replica
          return;
        }
        if (err instanceof ConnectionFailure) {
          if (!this.anyHealthy && this.hooks.rescue?.(work) === true) return;
          work.reject(new MGError('MG_BACKEND_ERROR', err.message, { cause: err }));
          return;
        }
        work.reject(err);
      },
    );
  }

  /**
   * A call that got no answer because its connection failed: another attempt when it never reached
   * a model (refused), or broke before any answer and the Backend allows that (retryOnReset).
   */
  private mayRetry(work: Work, err: ConnectionFailure): boolean {
    if (work.attempts >= MAX_ATTEMPTS || work.call.signal.aborted || !this.anyHealthy) return false;
    if (err.phase === 'reset' && (!this.backend.retryOnReset || work.attempts >= 2)) return false;
    return work.callDeadline - performance.now() > 0;
  }

  /**
   * Charges the group for the slot time its work held: from leaving the queue until the server was
   * done (transport included), also when its client left early (cancelInFlight: finish). Work that
   * never reached a model (refused, or refused by the local client) is not charged.
   */
  private charge(work: Work, use: SlotUse): void {
    const group = work.group;
    group.inflight--;
    const c = use.completion;
    work.record.backendMs = use.ms;
    const compute = this.hooks.fairness() === 'compute';
    if (c.served) this.cost.observe(this.name, work.call.model, use.ms, c.units ?? work.units);
    if (c.fault === 'refused' || c.fault === 'request' || c.fault === 'local') {
      this.policy.correct(work.flow, -work.charged);
    } else {
      group.costMs += use.ms;
      if (compute) this.policy.correct(work.flow, use.ms - work.charged);
    }
    this.pump();
  }

  /** A group's priority or weight changed. */
  reconfigureGroup(group: GroupState): void {
    const flow = this.flows.get(group.name);
    if (!flow) return;
    flow.priority = group.priority;
    flow.weight = group.weight;
    this.policy.reconfigure(flow);
  }

  /** Applies a changed backend definition (the set keeps replicas that stay, with their work and health). */
  reconfigure(backend: BackendSnapshot): void {
    this.set.reconfigure(backend);
    this.pump();
  }

  async close(): Promise<void> {
    for (const flow of this.flows.values()) for (const work of [...flow.queue]) this.cancel(work);
    await this.set.close();
  }
}
