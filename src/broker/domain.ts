/**
 * A dispatch domain: the per-group queues of work waiting for one backend, the fairness decision
 * and the gate. The backend's replicas, slots, health and the call itself belong to its
 * EndpointSet (dispatch/endpoint-set.ts); this file never touches a slot.
 *
 *   enqueue ─► flow queues (one per group) ─► fairness policy picks a flow ─► gate: a replica with a
 *   free slot? ─► set.send ─► answer; when the slot is given back: charge the group ─► pump again
 *
 * Work leaves the queue only when a slot is free, so the waiting happens here, where priority,
 * weights and deadlines apply, and not inside the accelerator. An arrival that finds nothing
 * queued and a free slot starts at once, charged exactly as if it had passed through the queue.
 *
 * A model with `batching` forms a batch in the slot instead (batching/former.ts): the scheduler's
 * next call leads, compatible queued calls join in scheduler order, one backend call serves them
 * all, and each member's group is charged its rows' share of the slot time it held.
 */
import { CancelledError } from '../core/cancel.ts';
import { MGError } from '../core/errors.ts';
import type { BackendReply, InferenceCall } from '../core/request.ts';
import type { BackendSnapshot, BatchingSnapshot, Fairness } from '../core/snapshot.ts';
import { ConnectionFailure } from '../dispatch/client.ts';
import type { CostModel } from '../dispatch/cost.ts';
import type { Endpoint } from '../dispatch/endpoint.ts';
import { EndpointSet, type Sent, type SlotUse } from '../dispatch/endpoint-set.ts';
import type { Batch } from './batching/batch.ts';
import { BatchFormer } from './batching/former.ts';
import { BatchStats } from './batching/stats.ts';
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
  /** The model's batching settings, when it batches (Model.spec.batching). */
  batching?(model: string): BatchingSnapshot | undefined;
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
  private readonly batches: BatchFormer;
  /** Batches sent, per model (sizes, rows, delay added): status and the dashboard read it. */
  readonly batchStats = new BatchStats();

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
    this.batches = new BatchFormer({
      flows: this.flows,
      mayRide: (flow, inflightBefore) => {
        const reserved = this.hooks.reservedAbove(flow.priority);
        return reserved === 0 || inflightBefore < this.set.healthyCapacity() - reserved;
      },
      take: (work) => this.take(work),
      send: (batch) => this.sendBatch(batch),
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

  /** `now`: performance.now() at admission (the broker's reading), or read here. */
  enqueue(work: Work, now: number = performance.now()): void {
    // A model failing on every replica is refused at once, not after a wait in the queue.
    const down = this.set.modelRefusal(work.call.model);
    if (down) {
      work.reject(down);
      return;
    }
    const flow = work.flow;
    work.enqueuedAt = now;
    work.record.queuedAt ??= now;
    // A batch of its kind waiting for rows takes it at once (it is the next compatible call in line).
    const key = this.batchKey(work);
    if (key !== undefined && this.batches.offer(work, key)) return;
    // The common arrival: nothing waits, no slot is reserved above it, and a replica has a free slot.
    // It starts now, as the queue would start it at once, without going through the queue.
    if (key === undefined && this.queued === 0 && !this.pumping && work.attempts === 0 && this.hooks.reservedAbove(flow.priority) === 0) {
      const ep = this.set.pick(work.call.model);
      if (ep !== undefined) {
        work.record.queueMs ??= 0;
        this.policy.activate(flow);
        this.startWork(work, flow, ep, now);
        return;
      }
    }
    work.node = work.attempts > 0 ? flow.queue.unshift(work) : flow.queue.push(work);
    this.queued++;
    flow.group.queued++;
    if (flow.queue.length === 1) this.policy.activate(flow);
    this.pump(now);
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

  /**
   * Dispatches while there is queued work and a free slot. `at`: the caller's reading of the clock
   * (an arrival's); otherwise the clock is read once, at the first dispatch.
   */
  pump(at?: number): void {
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
        const key = this.batchKey(work);
        if (key !== undefined) {
          if (!this.batches.offer(work, key)) {
            const inflightBefore = this.set.inflight();
            this.batches.form(work, key, this.hooks.batching?.(work.call.model) as BatchingSnapshot, this.set.hold(ep, work.group.priority), inflightBefore);
          }
          continue;
        }
        this.unqueue(work);
        work.detach();
        const now = (at ??= performance.now());
        work.record.queueMs = (work.record.queueMs ?? 0) + (now - work.enqueuedAt);
        if (now >= work.startBy) {
          // Expired between its timer and this pump: answered, never dispatched, not charged.
          work.reject(new MGError('MG_QUEUE_TIMEOUT', 'deadline passed while queued', { retryAfterMs: this.hooks.retryAfterMs(work.group) }));
          continue;
        }
        this.startWork(work, flow, ep, now);
      }
    } finally {
      this.pumping = false;
    }
  }

  /** Charges the flow for work leaving it (its queue or, from arrival, none) and dispatches it to `ep`. */
  private startWork(work: Work, flow: DomainFlow, ep: Endpoint, now: number): void {
    const compute = this.hooks.fairness() === 'compute';
    const units = compute ? (work.call.costHint ?? 1) : 1;
    work.units = units;
    work.charged = compute ? this.cost.estimate(this.name, work.call.model, units) : 1;
    this.policy.charge(flow, work.charged, flow.queue.length > 0);
    this.dispatch(work, ep, now);
  }

  private dispatch(work: Work, ep: Endpoint, now: number): void {
    this.dispatched++;
    work.attempts++;
    work.dispatchedAt = now;
    work.record.dispatchedAt = now;
    const group = work.group;
    group.inflight++;
    group.drain.add(1, now);
    group.dispatched++;
    work.record.endpoint = ep.url;
    work.lastEndpoint = ep;
    const sent: Sent = this.set.send(work.call, work.callDeadline, ep, undefined, group.priority, now);
    // The slot is given back (by the set) when the server is done; the group is charged then.
    void sent.done.then((use) => this.charge(work, use));
    sent.answer.then(
      (reply) => work.resolve(reply),
      (err: unknown) => this.failed(work, err),
    );
  }

  /** A call that got no answer: another attempt when its connection failed and that may help, else the error. */
  private failed(work: Work, err: unknown): void {
    if (work.settled) return;
    if (err instanceof ConnectionFailure && this.mayRetry(work, err)) {
      work.detach();
      this.enqueue(work); // back to the front of its queue, for another replica
      return;
    }
    if (err instanceof ConnectionFailure) {
      if (!this.anyHealthy && this.hooks.rescue?.(work) === true) return;
      work.reject(new MGError('MG_BACKEND_ERROR', err.message, { cause: err }));
      return;
    }
    work.reject(err);
  }

  // ---- batching (models with Model.spec.batching) ----

  /** The batch key of a call whose model batches, or undefined: it is dispatched alone. */
  private batchKey(work: Work): string | undefined {
    return this.hooks.batching?.(work.call.model) === undefined ? undefined : this.batches.keyOf(work);
  }

  /**
   * Takes a call into a batch: out of its queue, charged its rows' estimate like a dispatch (so the
   * scheduler's order moves on exactly as it would). False when its deadline had passed (answered).
   */
  private take(work: Work): boolean {
    this.unqueue(work);
    work.detach();
    const now = performance.now();
    work.record.queueMs = (work.record.queueMs ?? 0) + (now - work.enqueuedAt);
    if (now >= work.startBy) {
      work.reject(new MGError('MG_QUEUE_TIMEOUT', 'deadline passed while queued', { retryAfterMs: this.hooks.retryAfterMs(work.group) }));
      return false;
    }
    const compute = this.hooks.fairness() === 'compute';
    work.units = work.member?.rows ?? 1;
    work.charged = compute ? this.cost.estimate(this.name, work.call.model, work.units) : 1;
    // A call that joins straight from arrival was never backlogged: it starts at the level's virtual time.
    this.policy.activate(work.flow);
    this.policy.charge(work.flow, work.charged, work.flow.queue.length > 0);
    return true;
  }

  private sendBatch(batch: Batch): void {
    if (batch.members.every((w) => w.settled)) {
      // Every caller left (or ran out of time) while it formed: nothing is sent, nobody is charged.
      batch.hold.release();
      for (const w of batch.members) this.policy.correct(w.flow, -w.charged);
      this.pump();
      return;
    }
    let call: InferenceCall;
    try {
      call = batch.call();
    } catch (err) {
      // Members with equal keys always join; should that ever fail, each member is still answered once.
      batch.hold.release();
      for (const w of batch.members) {
        this.policy.correct(w.flow, -w.charged);
        w.reject(new MGError('MG_INTERNAL', `batch could not be joined: ${err instanceof Error ? err.message : String(err)}`));
      }
      this.pump();
      return;
    }
    const now = performance.now();
    const ep = batch.hold.endpoint;
    const delayMs = now - batch.formedAt;
    let deadline = 0;
    batch.members.forEach((work, i) => {
      this.dispatched++;
      work.attempts++;
      work.dispatchedAt = now;
      work.record.dispatchedAt = now;
      work.record.endpoint = ep.url;
      work.record.batch = { rows: batch.rows, requests: batch.members.length, ownRows: work.units, delayMs, first: i === 0 };
      work.lastEndpoint = ep;
      const group = work.group;
      group.inflight++;
      group.drain.add();
      group.dispatched++;
      deadline = Math.max(deadline, work.callDeadline);
    });
    this.batchStats.add(batch.model, batch.rows, batch.members.length, delayMs);
    const sent: Sent = batch.hold.send(call, deadline);
    void sent.done.then((use) => this.chargeBatch(batch, use));
    sent.answer.then(
      (reply) => this.answerBatch(batch, reply),
      (err: unknown) => {
        for (const w of batch.members) this.failed(w, err);
      },
    );
  }

  /**
   * Cuts the answer into the members' answers. A refusal of the whole batch (4xx) may be one member's
   * bad input: each member is then tried on its own, so no caller fails for what another sent.
   */
  private answerBatch(batch: Batch, reply: BackendReply): void {
    if (batch.members.length > 1 && reply.status >= 400 && reply.status < 500) {
      for (const w of batch.members) {
        if (w.settled) continue;
        w.solo = true;
        w.detach();
        this.enqueue(w);
      }
      return;
    }
    let answers: BackendReply[];
    try {
      answers = batch.split(reply);
    } catch (err) {
      // BatchingError: the answer does not have the batch's rows in dim 0 (or is not a tensor answer).
      const why = err instanceof Error ? err.message : String(err);
      for (const w of batch.members) w.reject(new MGError('MG_BACKEND_ERROR', `the batched answer of backend ${reply.endpoint} cannot be split by rows: ${why}`, { cause: err }));
      return;
    }
    batch.members.forEach((w, i) => w.resolve(answers[i] as BackendReply));
  }

  /** Each member's group pays its rows' share of the slot time the batch held (see charge()). */
  private chargeBatch(batch: Batch, use: SlotUse): void {
    const c = use.completion;
    const compute = this.hooks.fairness() === 'compute';
    if (c.served) this.cost.observe(this.name, batch.model, use.ms, batch.rows);
    for (const w of batch.members) {
      w.group.inflight--;
      w.record.backendMs = use.ms;
      if (c.fault === 'refused' || c.fault === 'request' || c.fault === 'local') {
        this.policy.correct(w.flow, -w.charged);
        continue;
      }
      const share = (use.ms * w.units) / batch.rows;
      w.group.costMs += share;
      if (compute) this.policy.correct(w.flow, share - w.charged);
    }
    this.pump();
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
    this.batches.cancelAll((work) => work.reject(new CancelledError()));
    for (const flow of this.flows.values()) for (const work of [...flow.queue]) this.cancel(work);
    await this.set.close();
  }
}
