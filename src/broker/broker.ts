/**
 * The broker: admission (bounded queues, deadlines, explicit rejections) in front of one dispatch
 * domain per backend. It owns the accelerator's slots; adapters hand it calls that identity and
 * policy have already accepted.
 */
import { CancelledError } from '../core/cancel.ts';
import { MGError } from '../core/errors.ts';
import type { RequestRecord } from '../core/events.ts';
import type { BackendReply, Identity, InferenceCall } from '../core/request.ts';
import type { GroupSnapshot, Snapshot } from '../core/snapshot.ts';
import { CostModel } from '../dispatch/cost.ts';
import type { DataPlane } from './plane.ts';
import { AdmissionGate } from './admission-gate.ts';
import type { BatchModelStatus } from './batching/stats.ts';
import { Domain } from './domain.ts';
import { Offloader, type OffloadStatus } from './offload/offloader.ts';
import { RateMeter } from './rate.ts';
import { type GroupState, Work } from './work.ts';

/** Bounds for Retry-After, ms. */
const MIN_RETRY_MS = 100;
const MAX_RETRY_MS = 60_000;

export interface GroupStatus {
  name: string;
  priority: number;
  weight: number;
  queued: number;
  inflight: number;
  maxLength: number;
  dispatched: number;
  drainPerSecond: number;
  acceleratorMs: number;
  /** weight ÷ the weights of all groups at this priority: the share it is configured to get when all are busy. */
  configuredShare: number;
}

export interface EndpointStatus {
  backend: string;
  url: string;
  slots: number;
  inflight: number;
  healthy: boolean;
  served: number;
  failures: number;
  latencyMs: number;
  /** Models out of service on this endpoint (their calls failed there; the endpoint serves the others). */
  modelsDown?: { model: string; reason: string; retryInMs: number }[];
}

export interface BrokerStatus {
  version: number;
  hash: string;
  fairness: Snapshot['gateway']['fairness'];
  groups: GroupStatus[];
  endpoints: EndpointStatus[];
  /** Per model with offload: breaker, predicted times, cloud sends, budget left (absent when none). */
  offload?: OffloadStatus[];
  /** Per model that batches: batches sent, rows, recent batch size and added delay (absent when none). */
  batching?: BatchingStatus[];
}

export interface BatchingStatus extends BatchModelStatus {
  readonly backend: string;
  /** Configured Model.spec.batching.maxBatchSize (0 once the model stopped batching). */
  readonly maxBatchSize: number;
}

export class Broker implements DataPlane {
  /** Answers come as the backend gave them; the exchange names an alias's model as asked. */
  readonly answersAsAsked = false;
  private snapshot: Snapshot;
  private readonly groups = new Map<string, GroupState>();
  private readonly domains = new Map<string, Domain>();
  readonly cost = new CostModel();
  readonly offloader: Offloader;
  /** Predictive admission: refuses at arrival what cannot start before its deadline (admission.ts). */
  private readonly admission: AdmissionGate;

  constructor(snapshot: Snapshot) {
    this.snapshot = snapshot;
    this.applyGroups(snapshot);
    for (const b of Object.values(snapshot.backends)) this.domains.set(b.name, this.newDomain(b));
    this.offloader = new Offloader({ domain: (name) => this.domains.get(name), cost: this.cost }, snapshot);
    this.admission = new AdmissionGate({
      domains: () => this.domains.values(),
      enabled: (g) => this.earlyRefusal(g),
      exempt: (work) => this.offloader.covers(work.call),
      retryAfterMs: (g) => this.retryAfterMs(g),
    });
  }

  start(): void {
    for (const d of this.domains.values()) d.start();
    this.admission.start();
  }

  get current(): Snapshot {
    return this.snapshot;
  }

  /** Admits a scheduled call: it is answered exactly once, by the backend or with an MGError. */
  submit(call: InferenceCall, identity: Identity, record: RequestRecord, now: number = performance.now()): Promise<BackendReply> {
    const model = this.snapshot.models[call.model];
    if (!model) return Promise.reject(new MGError('MG_MODEL_NOT_FOUND', `model "${call.model}" is not configured`));
    const domain = this.domains.get(model.backend);
    const group = this.groups.get(identity.group);
    if (!domain || !group || !group.live) return Promise.reject(new MGError('MG_INTERNAL', `no route for group "${identity.group}"`));
    record.backend = domain.name;
    if (call.signal.aborted) return Promise.reject(new CancelledError());
    // Effective deadline: the client's timeout, capped by the group's maxWait plus the backend timeout.
    const clientMs = call.timeoutMs ?? Infinity;
    const queueDeadline = call.receivedAt + Math.min(group.maxWaitMs, clientMs);
    const callDeadline = call.receivedAt + Math.min(clientMs, group.maxWaitMs + domain.backend.timeoutMs);
    const offload = this.offloader.covers(call);
    const work = (): Work => new Work(call, domain.flowFor(group), record, queueDeadline, callDeadline);
    if (!domain.anyHealthy) {
      const w = offload ? work() : undefined;
      if (w && this.offloader.rescue(w, domain, 'no-edge')) return w.promise;
      return Promise.reject(new MGError('MG_NO_BACKEND', `no healthy endpoint for backend "${domain.name}"`, {
        retryAfterMs: domain.backend.healthCheck.intervalMs,
      }));
    }
    if (group.queued >= group.maxLength) {
      const w = offload ? work() : undefined;
      if (w && this.offloader.rescue(w, domain, 'queue-full')) return w.promise;
      record.refusal = 'queue-full';
      return Promise.reject(new MGError('MG_QUEUE_FULL', `queue of group "${group.name}" is full (${group.maxLength})`, {
        retryAfterMs: this.retryAfterMs(group),
      }));
    }
    if (now >= queueDeadline) {
      return Promise.reject(new MGError('MG_QUEUE_TIMEOUT', 'deadline passed before admission', { retryAfterMs: this.retryAfterMs(group) }));
    }
    const w = work();
    if (offload && this.offloader.admit(w, domain)) return w.promise;
    const prediction = this.earlyRefusal(group) ? this.admission.predict(domain, w.flow, queueDeadline, now) : undefined;
    if (prediction) record.predictedWaitMs = prediction.waitMs;
    if (prediction?.refuse) {
      if (offload && this.offloader.rescue(w, domain, 'queue-full')) return w.promise;
      record.refusal = 'predicted-wait';
      const left = Math.max(0, queueDeadline - now);
      return Promise.reject(new MGError('MG_QUEUE_FULL', `group "${group.name}" cannot start this request before its deadline: predicted wait ${Math.round(prediction.waitMs)}ms, ${Math.round(left)}ms left`, {
        retryAfterMs: Math.min(MAX_RETRY_MS, Math.max(MIN_RETRY_MS, prediction.retryAfterMs)),
      }));
    }
    domain.enqueue(w, now);
    // hard-example: the edge answer is reviewed, and may be replaced by the cloud's.
    return offload && this.offloader.reviews(call) ? w.promise.then((reply) => this.offloader.review(w, reply)) : w.promise;
  }

  /** Metadata and readiness: answered by a healthy replica without queueing (not accelerator work). */
  async metadata(call: InferenceCall, record: RequestRecord): Promise<BackendReply> {
    const model = this.snapshot.models[call.model];
    if (!model) throw new MGError('MG_MODEL_NOT_FOUND', `model "${call.model}" is not configured`);
    const domain = this.domains.get(model.backend);
    if (!domain) throw new MGError('MG_INTERNAL', `no backend "${model.backend}"`);
    record.backend = domain.name;
    if (!domain.anyHealthy) throw new MGError('MG_NO_BACKEND', `no healthy endpoint for backend "${domain.name}"`, { retryAfterMs: domain.backend.healthCheck.intervalMs });
    const reply = await domain.set.request(call, performance.now() + Math.min(call.timeoutMs ?? Infinity, domain.backend.timeoutMs));
    record.endpoint = reply.endpoint;
    return reply;
  }

  /** Time until the group's current queue has drained at its measured rate. */
  retryAfterMs(group: GroupState): number {
    const rate = group.drain.rate();
    const ms = rate > 0 ? ((group.queued + 1) / rate) * 1000 : group.maxWaitMs;
    return Math.min(MAX_RETRY_MS, Math.max(MIN_RETRY_MS, ms));
  }

  /** ServiceGroup.spec.queue.earlyRefusal (on unless the group turned it off). */
  private earlyRefusal(group: GroupState): boolean {
    return this.snapshot.groups[group.name]?.queue.earlyRefusal !== false;
  }

  hasGroup(name: string): boolean {
    return this.groups.get(name)?.live === true;
  }

  /** Applies a new snapshot without dropping queued or in-flight work. */
  apply(next: Snapshot): void {
    this.snapshot = next;
    this.applyGroups(next);
    this.offloader.apply(next);
    for (const b of Object.values(next.backends)) {
      const d = this.domains.get(b.name);
      if (d) d.reconfigure(b);
      else {
        const nd = this.newDomain(b);
        this.domains.set(b.name, nd);
        nd.start();
      }
    }
    // Backends that left keep serving what they hold; new work cannot reach them (no model points there).
  }

  status(): BrokerStatus {
    const groups: GroupStatus[] = [];
    const levelWeight = new Map<number, number>();
    for (const g of this.groups.values()) if (g.live) levelWeight.set(g.priority, (levelWeight.get(g.priority) ?? 0) + g.weight);
    for (const g of this.groups.values()) {
      if (!g.live && g.queued === 0 && g.inflight === 0) continue;
      groups.push({
        name: g.name,
        priority: g.priority,
        weight: g.weight,
        queued: g.queued,
        inflight: g.inflight,
        maxLength: g.maxLength,
        dispatched: g.dispatched,
        drainPerSecond: g.drain.rate(),
        acceleratorMs: g.costMs,
        configuredShare: g.live ? g.weight / (levelWeight.get(g.priority) ?? g.weight) : 0,
      });
    }
    const endpoints: EndpointStatus[] = [];
    for (const d of this.domains.values()) {
      for (const e of d.endpoints) {
        endpoints.push({
          backend: d.name,
          url: e.url,
          slots: e.slots,
          inflight: e.inflight,
          healthy: e.healthy,
          served: e.served,
          failures: e.failures,
          latencyMs: e.latencyMs,
          modelsDown: [...e.models].flatMap(([model, h]) => (h.down === undefined ? [] : [{ model, reason: h.down.reason, retryInMs: Math.max(0, Math.round(h.down.until - performance.now())) }])),
        });
      }
    }
    const offload = this.offloader.status();
    const batching: BatchingStatus[] = [];
    for (const d of this.domains.values()) {
      for (const b of d.batchStats.status()) batching.push({ ...b, backend: d.name, maxBatchSize: this.snapshot.models[b.model]?.batching?.maxBatchSize ?? 0 });
    }
    return {
      version: this.snapshot.version,
      hash: this.snapshot.hash,
      fairness: this.snapshot.gateway.fairness,
      groups,
      endpoints,
      ...(offload.length > 0 ? { offload } : {}),
      ...(batching.length > 0 ? { batching } : {}),
    };
  }

  offloadStatus(): ReturnType<Offloader['status']> {
    return this.offloader.status();
  }

  /** True when every backend has at least one healthy replica (cloud-only offload targets are not local capacity). */
  ready(): boolean {
    const cloudOnly = Offloader.cloudOnly(this.snapshot);
    for (const d of this.domains.values()) if (!d.anyHealthy && !cloudOnly.has(d.name)) return false;
    return true;
  }

  async close(): Promise<void> {
    this.admission.close();
    this.offloader.close();
    await Promise.all([...this.domains.values()].map((d) => d.close()));
  }

  private newDomain(b: Snapshot['backends'][string]): Domain {
    return new Domain(b, this.cost, {
      retryAfterMs: (g) => this.retryAfterMs(g),
      fairness: () => this.snapshot.gateway.fairness,
      reservedAbove: (p) => this.reservedAbove(p),
      rescue: (work) => this.offloader.rescue(work, this.domains.get(b.name) as Domain, 'no-edge'),
      batching: (model) => this.snapshot.models[model]?.batching,
    });
  }

  /** Memoised per priority level (the pump asks once per decision); cleared on every reload. */
  private readonly reserved = new Map<number, number>();

  private reservedAbove(priority: number): number {
    let n = this.reserved.get(priority);
    if (n === undefined) {
      n = 0;
      for (const g of this.groups.values()) if (g.live && g.priority > priority) n += g.reservedSlots;
      this.reserved.set(priority, n);
    }
    return n;
  }

  private applyGroups(snapshot: Snapshot): void {
    this.reserved.clear();
    const seen = new Set<string>();
    for (const g of Object.values(snapshot.groups)) {
      seen.add(g.name);
      const state = this.groups.get(g.name);
      if (state) this.updateGroup(state, g);
      else this.groups.set(g.name, this.newGroup(g));
    }
    for (const g of this.groups.values()) if (!seen.has(g.name)) g.live = false;
  }

  private newGroup(g: GroupSnapshot): GroupState {
    return {
      name: g.name,
      priority: g.priority,
      weight: g.weight,
      reservedSlots: g.reservedSlots,
      maxLength: g.queue.maxLength,
      maxWaitMs: g.queue.maxWaitMs,
      queued: 0,
      inflight: 0,
      drain: new RateMeter(),
      dispatched: 0,
      costMs: 0,
      live: true,
    };
  }

  private updateGroup(state: GroupState, g: GroupSnapshot): void {
    state.live = true;
    state.maxLength = g.queue.maxLength;
    state.maxWaitMs = g.queue.maxWaitMs;
    state.reservedSlots = g.reservedSlots;
    if (state.priority === g.priority && state.weight === g.weight) return;
    state.priority = g.priority;
    state.weight = g.weight;
    for (const d of this.domains.values()) d.reconfigureGroup(state);
  }
}
