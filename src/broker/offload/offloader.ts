/**
 * Edge-to-cloud offload: which admitted requests leave the box, and what happens when the cloud
 * link fails. The broker asks it at three points; everything else stays in the broker's domains.
 *
 *   admission ──► saturated: predicted edge wait > predicted cloud time? ──yes──► cloud
 *       │          failover: no healthy edge replica?                      ──yes──► cloud
 *       ▼
 *   edge queue ──► revisited every tick while it waits (saturated) ──────────────► cloud
 *       │
 *   edge answer ─► hard-example: top probability < threshold? ──yes──► cloud; first good answer
 *                                                                      in time wins, else the edge's
 *
 *   every send passes: privacy (private models only with allowPrivate) → breaker (closed, or the
 *   half-open trial) → a healthy cloud replica with a free slot → budget (per second, per day). A failed or slow cloud call
 *   counts against the breaker and the request goes back to the edge queue (front), so losing the
 *   cloud costs time, never an answer the edge could have given.
 */
import { MGError } from '../../core/errors.ts';
import type { OffloadDecision } from '../../core/events.ts';
import type { BackendReply, InferenceCall } from '../../core/request.ts';
import { Cancel, CancelledError } from '../../core/cancel.ts';
import type { ModelSnapshot, OffloadSnapshot, Snapshot } from '../../core/snapshot.ts';
import type { CostModel } from '../../dispatch/cost.ts';
import type { Endpoint } from '../../dispatch/endpoint.ts';
import { defaultProbePath } from '../../dispatch/health.ts';
import type { Domain } from '../domain.ts';
import { type Work } from '../work.ts';
import { Breaker, type BreakerState } from './breaker.ts';
import { OffloadBudget } from './budget.ts';
import { answerConfidence } from './confidence.ts';
import { CloudTime, edgeWaitMs, queuedAhead } from './predictor.ts';

/** How often queued work is revisited while any waits, ms. */
const REVISIT_MS = 20;
/** While nothing can be offloaded, revisits only sweep finished work, every this many ticks. */
const SWEEP_EVERY = 50;

interface ModelState {
  model: ModelSnapshot;
  offload: OffloadSnapshot;
  readonly budget: OffloadBudget;
  readonly breaker: Breaker;
  readonly cloudTime: CloudTime;
  /** Requests sent to the cloud, and those answered by it. */
  sent: number;
  answered: number;
}

interface Watched {
  readonly work: Work;
  readonly state: ModelState;
  readonly local: Domain;
  /** Queue ahead of it at admission, and the domain's dispatch count then. */
  readonly ahead: number;
  readonly dispatched: number;
}

export interface OffloadStatus {
  model: string;
  backend: string;
  when: OffloadSnapshot['when'];
  breaker: BreakerState;
  breakerOpened: number;
  /** Predicted cloud time (measured round trip + cloud service), ms. */
  cloudMs: number;
  /** Measured edge service time per request, ms. */
  edgeServiceMs: number;
  sent: number;
  answered: number;
  leftToday: number | undefined;
}

export interface OffloadEnv {
  domain(name: string): Domain | undefined;
  readonly cost: CostModel;
}

/** What a cloud call ends in: an answer, a failure (the link's fault), or the caller gone. */
interface Outcome {
  ok(reply: BackendReply): void;
  failed(reason: string): void;
  cancelled(err: unknown): void;
}

type Verdict = { ok: true; cloud: Domain; ep: Endpoint } | { ok: false; decision: OffloadDecision };

export class Offloader {
  private readonly states = new Map<string, ModelState>();
  private readonly watched = new Set<Watched>();
  private timer: NodeJS.Timeout | undefined;
  private kicked = false;
  private idleTicks = 0;

  constructor(
    private readonly env: OffloadEnv,
    snapshot: Snapshot,
  ) {
    this.apply(snapshot);
  }

  /** Models with offload get their state; reloads keep budgets spent and breakers as they are. */
  apply(snapshot: Snapshot): void {
    const seen = new Set<string>();
    for (const m of Object.values(snapshot.models)) {
      const o = m.offload;
      if (o === undefined || o.when === 'never') continue;
      seen.add(m.name);
      const st = this.states.get(m.name);
      if (st && st.offload.backend === o.backend) {
        st.model = m;
        st.offload = o;
        st.budget.configure(o.budget?.requestsPerSecond, o.budget?.requestsPerDay);
        st.breaker.configure(o.breaker);
        continue;
      }
      st?.breaker.close();
      this.states.set(m.name, this.newState(m, o));
    }
    for (const [name, st] of this.states) {
      if (seen.has(name)) continue;
      st.breaker.close();
      this.states.delete(name);
    }
  }

  private newState(model: ModelSnapshot, offload: OffloadSnapshot): ModelState {
    const st: ModelState = {
      model,
      offload,
      budget: new OffloadBudget(offload.budget?.requestsPerSecond, offload.budget?.requestsPerDay),
      breaker: new Breaker(offload.breaker, () => this.probe(st), (state, reason) => {
        console.warn(`modelguard: offload of model "${st.model.name}" to "${st.offload.backend}": breaker ${state} (${reason})`);
        if (state !== 'open') this.kick();
      }),
      cloudTime: new CloudTime(),
      sent: 0,
      answered: 0,
    };
    return st;
  }

  /** The link's readiness probe, on a replica of the cloud backend. */
  private async probe(st: ModelState): Promise<boolean> {
    const cloud = this.env.domain(st.offload.backend);
    if (!cloud) return false;
    const hc = cloud.backend.healthCheck;
    const path = hc.path ?? defaultProbePath(cloud.backend.protocol);
    const results = await Promise.all(cloud.endpoints.map((ep) => ep.client.probe(path, hc.timeoutMs)));
    return results.some(Boolean);
  }

  /** The offload state of an inference call's model, when offload applies to it. */
  private stateFor(call: InferenceCall): ModelState | undefined {
    if (call.op !== 'infer') return undefined;
    return this.states.get(call.model);
  }

  /** True when the model may offload at all (for admission: a failover or queue-full rescue). */
  covers(call: InferenceCall): boolean {
    return this.stateFor(call) !== undefined;
  }

  /** hard-example models run on the edge first and are reviewed when the edge answers. */
  reviews(call: InferenceCall): boolean {
    return this.stateFor(call)?.offload.when === 'hard-example' && call.api === 'kserve-v2';
  }

  /**
   * Admission of work whose edge domain has healthy replicas and queue room. Returns true when the
   * work went to the cloud; otherwise the caller queues it on the edge.
   */
  admit(work: Work, local: Domain): boolean {
    const st = this.stateFor(work.call);
    if (!st || st.offload.when !== 'saturated') return false;
    if (this.isPrivate(st)) {
      work.record.offload = 'denied-private';
      return false;
    }
    const ahead = queuedAhead(local);
    const wait = edgeWaitMs(local, this.serviceMs(st, local, work), ahead);
    if (wait > this.cloudMs(st, local, work) && this.trySend(work, st, this.requeue(work, local))) return true;
    work.record.offload ??= 'edge';
    // Work that finds a free slot is dispatched at once: nothing to revisit.
    if (ahead > 0) this.watch({ work, state: st, local, ahead, dispatched: local.dispatched });
    return false;
  }

  /**
   * The edge cannot take the work (no healthy replica, or its group's queue is full): the cloud
   * may. Returns true when it did; the caller answers the usual error otherwise.
   */
  rescue(work: Work, local: Domain, why: 'no-edge' | 'queue-full'): boolean {
    const st = this.stateFor(work.call);
    if (!st) return false;
    // Only saturated spills a full queue; every policy fails over when the edge is down.
    if (why === 'queue-full' && st.offload.when !== 'saturated') return false;
    return this.trySend(work, st, this.requeue(work, local));
  }

  /**
   * hard-example: the edge answered; re-run in the cloud when it is unsure. Resolves with the cloud
   * answer when it arrives in time, else with the edge one.
   */
  review(work: Work, reply: BackendReply): Promise<BackendReply> | BackendReply {
    const st = this.stateFor(work.call);
    const o = st?.offload;
    if (!st || o?.when !== 'hard-example' || o.confidenceThreshold === undefined) return reply;
    if (reply.status !== 200 || !Buffer.isBuffer(reply.body)) return reply;
    const record = work.record;
    if (this.isPrivate(st)) {
      record.offload = 'denied-private';
      return reply;
    }
    const confidence = answerConfidence(reply.body, o.confidenceOutput);
    if (confidence === undefined || confidence >= o.confidenceThreshold) {
      record.offload = 'edge';
      return reply;
    }
    const verdict = this.permit(st);
    if (!verdict.ok) {
      record.offload = verdict.decision;
      return reply;
    }
    const edge = { endpoint: record.endpoint, backendMs: record.backendMs };
    return new Promise<BackendReply>((resolve) => {
      const useEdge = (decision: OffloadDecision): void => {
        record.endpoint = edge.endpoint;
        record.backendMs = edge.backendMs;
        record.offload = decision;
        resolve(reply);
      };
      this.send(work, st, verdict, {
        ok: resolve,
        failed: () => useEdge('cloud-failed'),
        cancelled: () => useEdge('cloud-failed'),
      }, o.cloudWaitMs);
    });
  }

  /** After a failed cloud call: back to the front of the edge queue, if the edge can still serve it. */
  private requeue(work: Work, local: Domain): Outcome {
    return {
      ok: (reply) => work.resolve(reply),
      cancelled: (err) => work.reject(err),
      failed: (reason) => {
        work.record.offload = 'cloud-failed';
        if (work.settled) return;
        if (!local.anyHealthy) {
          work.reject(new MGError('MG_NO_BACKEND', `no healthy endpoint for backend "${local.name}" and the cloud failed: ${reason}`, {
            retryAfterMs: local.backend.healthCheck.intervalMs,
          }));
          return;
        }
        local.enqueue(work);
      },
    };
  }

  /** Measured edge service time of this request: per request, or per token × its estimated tokens (LLM calls). */
  private serviceMs(st: ModelState, local: Domain, work: Work): number {
    return this.env.cost.estimate(local.name, st.model.name, work.call.costHint ?? 1);
  }

  private cloudMs(st: ModelState, local: Domain, work: Work): number {
    return st.cloudTime.predict(this.serviceMs(st, local, work));
  }

  /** A private model leaves the box only when it says so. */
  private isPrivate(st: ModelState): boolean {
    return st.model.visibility === 'private' && !st.offload.allowPrivate;
  }

  /** The checks every send passes, in order; the budget is only looked at, not spent. */
  private permit(st: ModelState): Verdict {
    if (this.isPrivate(st)) return { ok: false, decision: 'denied-private' };
    if (!st.breaker.allows()) return { ok: false, decision: 'breaker-open' };
    const cloud = this.env.domain(st.offload.backend);
    if (!cloud?.anyHealthy) return { ok: false, decision: 'cloud-down' };
    // A cloud Backend that also serves its own models: offload never jumps its queue.
    const ep = cloud.queued > 0 ? undefined : cloud.set.pick(st.model.name);
    if (!ep) return { ok: false, decision: 'cloud-busy' };
    if (st.budget.check(performance.now()) !== 'ok') return { ok: false, decision: 'budget' };
    return { ok: true, cloud, ep };
  }

  private trySend(work: Work, st: ModelState, outcome: Outcome): boolean {
    const verdict = this.permit(st);
    if (!verdict.ok) {
      work.record.offload = verdict.decision;
      return false;
    }
    this.send(work, st, verdict, outcome, undefined);
    return true;
  }

  /** One cloud call on a free cloud slot; `waitMs` bounds how long the caller waits for it. */
  private send(work: Work, st: ModelState, target: { cloud: Domain; ep: Endpoint }, outcome: Outcome, waitMs: number | undefined): void {
    const { cloud, ep } = target;
    const now = performance.now();
    st.budget.take(now);
    st.breaker.sending();
    st.sent++;
    work.attempts++;
    const record = work.record;
    record.offload = 'cloud';
    record.endpoint = ep.url;
    record.dispatchedAt = now;
    const cancel = new Cancel();
    const call = cloudCall(work.call, st.model.backendModel, st.offload.backendModel, cancel);
    const onClientAbort = (): void => cancel.abort();
    if (work.call.signal.aborted) cancel.abort();
    else work.call.signal.once('abort', onClientAbort);
    const waitTimer = waitMs === undefined ? undefined : setTimeout(() => cancel.abort(), waitMs);
    const done = (): void => {
      if (waitTimer) clearTimeout(waitTimer);
      work.call.signal.removeListener('abort', onClientAbort);
    };
    const fail = (reason: string): void => {
      st.breaker.failure(reason);
      outcome.failed(reason);
    };
    const slowAt = now + st.offload.breaker.slowCallMs;
    // Which limit a timeout means: the request's own deadline (nobody's fault) or slowCall (the link's).
    const ownDeadline = work.callDeadline < slowAt;
    // The cloud's slot and health are its EndpointSet's: taken here, given back when the cloud is done.
    // slowCall is the link's own time limit (its fault, like a backend timeout); the request's deadline is the caller's.
    // The group's priority picks its level's connections to the cloud (traffic QoS per priority level).
    const sent = cloud.set.send(call, work.callDeadline, ep, st.offload.breaker.slowCallMs, work.group.priority);
    void sent.done.then(({ ms, completion }) => {
      if (completion.served) record.backendMs = ms;
      cloud.pump(); // work queued on the cloud Backend itself (if it serves models of its own)
      this.kick();
    });
    sent.answer.then(
      (reply) => {
        done();
        if (reply.status < 200 || reply.status >= 300) {
          if (!Buffer.isBuffer(reply.body)) reply.body.resume();
          fail(`the cloud answered ${reply.status}`);
          return;
        }
        const ms = performance.now() - now;
        st.cloudTime.observe(ms);
        st.breaker.success();
        st.answered++;
        record.backendMs = ms;
        outcome.ok({ ...reply, servedBy: 'cloud' });
      },
      (err: unknown) => {
        done();
        if (err instanceof CancelledError) {
          st.breaker.trialAbandoned();
          outcome.cancelled(err);
          return;
        }
        if (err instanceof MGError && err.code === 'MG_BACKEND_TIMEOUT' && ownDeadline) {
          // The request's own deadline ran out before the link counted as slow: not the link's fault.
          st.breaker.trialAbandoned();
          outcome.cancelled(err);
          return;
        }
        fail(err instanceof Error ? err.message : String(err));
      },
    );
  }

  // ---- revisiting queued work ----

  private watch(w: Watched): void {
    this.watched.add(w);
    if (!this.timer) {
      this.timer = setInterval(() => this.revisit(), REVISIT_MS);
      this.timer.unref();
    }
  }

  /** Something changed (a cloud slot freed, the breaker closed): revisit soon. */
  private kick(): void {
    if (this.kicked || this.watched.size === 0) return;
    this.kicked = true;
    setImmediate(() => {
      this.kicked = false;
      this.revisit();
    });
  }

  /**
   * Moves queued work to the cloud when its predicted remaining edge wait now exceeds the cloud
   * time, newest first (the back of the queue waits longest). The decision recorded at admission
   * stands for work that stays. While no model can send at all, the list is only swept of work that
   * has left the queue, once a second.
   */
  private revisit(): void {
    if (this.watched.size === 0) {
      if (this.timer) clearInterval(this.timer);
      this.timer = undefined;
      return;
    }
    const verdicts = new Map<ModelState, Verdict>();
    let anyOpen = false;
    for (const st of this.states.values()) {
      const v = this.permit(st);
      verdicts.set(st, v);
      anyOpen ||= v.ok;
    }
    if (!anyOpen && ++this.idleTicks % SWEEP_EVERY !== 0) return;
    for (const w of [...this.watched].reverse()) {
      const { work, state: st, local } = w;
      if (work.settled || !work.node?.list || this.states.get(st.model.name) !== st) {
        this.watched.delete(w);
        continue;
      }
      let verdict = verdicts.get(st);
      if (verdict === undefined) {
        verdict = this.permit(st);
        verdicts.set(st, verdict);
      }
      if (!verdict.ok) continue;
      const ahead = Math.max(0, w.ahead - (local.dispatched - w.dispatched));
      const wait = edgeWaitMs(local, this.serviceMs(st, local, work), ahead);
      if (wait <= this.cloudMs(st, local, work)) continue;
      if (!local.withdraw(work)) continue;
      this.watched.delete(w);
      this.send(work, st, verdict, this.requeue(work, local), undefined);
      verdicts.delete(st); // a slot and some budget are spent: ask again for the next one
    }
  }

  status(): OffloadStatus[] {
    return [...this.states.values()].map((st) => {
      const local = this.env.domain(st.model.backend);
      const edgeServiceMs = local ? this.env.cost.estimate(local.name, st.model.name) : 0;
      return {
        model: st.model.name,
        backend: st.offload.backend,
        when: st.offload.when,
        breaker: st.breaker.state,
        breakerOpened: st.breaker.opened,
        cloudMs: st.cloudTime.predict(edgeServiceMs),
        edgeServiceMs,
        sent: st.sent,
        answered: st.answered,
        leftToday: st.budget.leftToday(),
      };
    });
  }

  /** Backends only reached by offload: not local capacity, so not part of readiness. */
  static cloudOnly(snapshot: Snapshot): Set<string> {
    const targets = new Set<string>();
    for (const m of Object.values(snapshot.models)) if (m.offload) targets.add(m.offload.backend);
    for (const m of Object.values(snapshot.models)) targets.delete(m.backend);
    return targets;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const st of this.states.values()) st.breaker.close();
  }
}

/**
 * The call as the cloud backend should see it: the model under the cloud's name (in the KServe
 * path, or the OpenAI body), and its own cancellation so a late answer can be abandoned.
 */
export function cloudCall(call: InferenceCall, edgeName: string, cloudName: string, signal: Cancel): InferenceCall {
  let path = call.path;
  let body = call.body;
  let headers = call.headers;
  if (edgeName !== cloudName) {
    if (call.api === 'kserve-v2') {
      const from = `/v2/models/${encodeURIComponent(edgeName)}`;
      if (path.startsWith(from)) path = `/v2/models/${encodeURIComponent(cloudName)}${path.slice(from.length)}`;
    } else if (call.api === 'openai' && body !== undefined) {
      try {
        const doc = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
        body = Buffer.from(JSON.stringify({ ...doc, model: cloudName }));
        headers = { ...headers };
        delete headers['content-length'];
      } catch {
        // Not JSON: the edge would refuse it too; sent as it is.
      }
    }
  }
  return { ...call, path, body, headers, signal };
}
