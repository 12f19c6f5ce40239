/**
 * One Backend's endpoints and everything about them, in one owner: their clients (and the link
 * those are built with), their slots, their health, and the one `send` that every caller uses —
 * queue dispatch (broker/domain.ts), the offloader, and metadata calls.
 *
 *   send(call, deadline) ─► pick a replica with a free slot (that takes this model) ─► take the slot
 *        ─► callBackend (execute.ts) ─► answer ──► caller
 *                                   └─► done ───► attribute the outcome (health.ts), give the slot back
 *
 * The slot is taken and given back here and nowhere else, on every path: the caller that left
 * (with cancelInFlight: finish, the slot is held until the server has finished), the backend's
 * timeout, a refused connection. The broker's domain keeps queues, fairness and the gate; it asks
 * this set whether a slot is free and hands it work.
 */
import { MGError } from '../core/errors.ts';
import type { BackendReply, InferenceCall } from '../core/request.ts';
import type { BackendSnapshot, PriorityLevelsSnapshot } from '../core/snapshot.ts';
import { levelOf, levelPorts } from '../core/levels.ts';
import { type BackendClient, ConnectionFailure } from './client.ts';
import type { PortBlock } from './clients/bound-connect.ts';
import { createBackendClient, hasLevelPools } from './clients/index.ts';
import { LevelledClient } from './clients/levelled.ts';
import { Endpoint, pickEndpoint } from './endpoint.ts';
import { callBackend, type Completion } from './execute.ts';
import { Health, metadataCall, modelProbePath } from './health.ts';
import { type LinkOptions, linkOptions } from './link.ts';

/** How long a call held its slot and how it ended. */
export interface SlotUse {
  readonly ms: number;
  readonly completion: Completion;
}

export interface Sent {
  readonly endpoint: Endpoint;
  /**
   * The caller's answer; rejects with an MGError, a CancelledError, or a ConnectionFailure (no
   * answer, the request may go elsewhere) only after the set has taken the failure into account.
   */
  readonly answer: Promise<BackendReply>;
  /** Settles when the slot has been given back. */
  readonly done: Promise<SlotUse>;
}

/** A slot taken ahead of its call: used once by `send`, or given back by `release`. */
export interface SlotHold {
  readonly endpoint: Endpoint;
  send(call: InferenceCall, deadline: number): Sent;
  release(): void;
}

export interface EndpointSetHooks {
  /** Endpoints came into or went out of service. */
  onHealthChange(set: EndpointSet): void;
  /**
   * Builds an endpoint's client; default by the backend's protocol (clients/index.ts). Tests inject
   * fakes. `ports`: a priority level's client, whose connections leave from that block of local ports.
   */
  client?(url: string, connections: number, ports?: PortBlock): BackendClient;
}

/** What identifies a link's settings (the secret compared as it was read, never logged). */
function linkKey(link: LinkOptions): string {
  const t = link.connect;
  const pem = (b: Buffer | undefined): string => (b === undefined ? '' : b.toString('base64'));
  return JSON.stringify([link.headers, link.problem, t?.servername, t?.rejectUnauthorized, pem(t?.ca), pem(t?.cert), pem(t?.key)]);
}

/** Where the level pools' ports are (not which priorities a level holds: that changes no connection). */
function portsKey(levels: PriorityLevelsSnapshot | undefined): string {
  return levels === undefined ? '' : `${levels.firstPort}/${levels.portsPerLevel}`;
}

/** An endpoint on this machine: its traffic never crosses the uplink, so it needs no level pools. */
function isLocal(url: string): boolean {
  try {
    const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
    return host === 'localhost' || host === '::1' || host.startsWith('127.') || host.startsWith('::ffff:127.');
  } catch {
    return true;
  }
}

export class EndpointSet {
  endpoints: Endpoint[];
  private link: LinkOptions;
  readonly health: Health;

  constructor(
    public backend: BackendSnapshot,
    private readonly hooks: EndpointSetHooks,
  ) {
    this.link = linkOptions(backend);
    this.endpoints = backend.endpoints.map((e) => this.makeEndpoint(e.url, e.slots));
    this.health = new Health(() => this.backend, () => this.endpoints, () => this.hooks.onHealthChange(this));
  }

  get name(): string {
    return this.backend.name;
  }

  start(): void {
    this.health.start();
  }

  get anyHealthy(): boolean {
    return this.endpoints.some((e) => e.healthy);
  }

  /** The replica a call of `model` would go to now (a free slot in service), if any. */
  pick(model?: string, avoid?: Endpoint): Endpoint | undefined {
    return pickEndpoint(this.endpoints, model, avoid);
  }

  inflight(): number {
    let n = 0;
    for (const e of this.endpoints) n += e.inflight;
    return n;
  }

  healthyCapacity(): number {
    let n = 0;
    for (const e of this.endpoints) if (e.healthy) n += e.capacity;
    return n;
  }

  /**
   * The fast refusal for a model that is down on every endpoint in service (its calls failed, its
   * trial is not due): 502 MG_BACKEND_ERROR with the time until it is tried again.
   */
  modelRefusal(model: string): MGError | undefined {
    let soonest = Infinity;
    let reason = '';
    let any = false;
    for (const ep of this.endpoints) {
      if (!ep.healthy) continue;
      any = true;
      const d = ep.models.get(model)?.down;
      if (d === undefined || (d.due && !d.trial)) return undefined;
      if (d.until < soonest) {
        soonest = d.until;
        reason = d.reason;
      }
    }
    if (!any) return undefined;
    const wait = Math.max(this.backend.healthCheck.intervalMs, soonest - performance.now());
    return new MGError('MG_BACKEND_ERROR', `model "${model}" is failing on backend "${this.name}" and is out of service there until a probe and a trial call pass (last failure: ${reason})`, {
      retryAfterMs: Math.round(wait),
    });
  }

  /**
   * The one send. Takes a slot on `ep` (default: the best replica for the call's model; the caller
   * has checked there is one) at once; `deadline` is the caller's (performance.now()). The call's
   * own time limit is Backend.spec.timeout, or `limitMs` when shorter (the offload link's slowCall).
   * `priority` (the caller's ServiceGroup priority) picks the connection pool of its level on a
   * remote endpoint when traffic QoS has per-priority classes.
   */
  send(call: InferenceCall, deadline: number, ep: Endpoint | undefined = this.pick(call.model), limitMs?: number, priority?: number, now?: number): Sent {
    if (!ep) throw new MGError('MG_NO_BACKEND', `no endpoint of backend "${this.name}" has a free slot`, { retryAfterMs: this.backend.healthCheck.intervalMs });
    ep.inflight++;
    return this.run(ep, call, deadline, limitMs, priority, now);
  }

  /**
   * Takes a slot on `ep` now, for a call that is not composed yet (a batch waiting for more rows,
   * broker/batching): `send` then runs the call in that slot, or `release` gives it back unused.
   * `priority` as for `send`.
   */
  hold(ep: Endpoint, priority?: number): SlotHold {
    ep.inflight++;
    let open = true;
    return {
      endpoint: ep,
      send: (call, deadline) => {
        if (!open) throw new Error('slot hold already used');
        open = false;
        return this.run(ep, call, deadline, undefined, priority);
      },
      release: () => {
        if (!open) return;
        open = false;
        ep.inflight--;
      },
    };
  }

  /** A call in a slot already taken on `ep`; the slot is given back when the server is done. */
  private run(ep: Endpoint, call: InferenceCall, deadline: number, limitMs: number | undefined, priority: number | undefined, now?: number): Sent {
    const t0 = now ?? performance.now();
    const model = call.op === 'infer' ? call.model : undefined;
    const down = model === undefined ? undefined : ep.models.get(model)?.down;
    if (down?.due) down.trial = true;
    const b = this.backend;
    const level = priority !== undefined && b.priorityLevels !== undefined && ep.client instanceof LevelledClient ? levelOf(b.priorityLevels, priority) : undefined;
    const c = callBackend(ep, call, { caller: deadline, backend: t0 + Math.min(b.timeoutMs, limitMs ?? Infinity), finish: b.cancelInFlight === 'finish' }, level, t0);
    let failure = '';
    const done = c.done.then((completion): SlotUse => {
      ep.inflight--;
      const end = performance.now();
      const ms = end - t0;
      if (completion.served) {
        ep.served++;
        ep.observeLatency(ms);
      }
      this.health.observe(ep, model, completion, () => ({
        reason: failure || `status ${completion.status ?? '-'}`,
        probePath: model === undefined ? undefined : modelProbePath(b.protocol, call.path),
      }), end);
      return { ms, completion };
    });
    // A connection failure reaches the caller after it was counted: a retry then sees the endpoint
    // as it now is. Other failures (the caller's deadline, its cancel) are answered at once.
    const answer = c.answer.catch(async (err: unknown) => {
      failure = err instanceof Error ? err.message.slice(0, 200) : String(err);
      if (err instanceof ConnectionFailure) await done;
      throw err;
    });
    return { endpoint: ep, answer, done };
  }

  /**
   * A call that is not accelerator work (metadata, readiness): no slot, any replica in service
   * (one with a free slot first); tried once more elsewhere when the connection failed.
   */
  async request(call: InferenceCall, deadline: number): Promise<BackendReply> {
    let lastErr: unknown;
    const tried = new Set<Endpoint>();
    for (let attempt = 0; attempt < 2; attempt++) {
      const healthy = this.endpoints.filter((e) => e.healthy && !tried.has(e));
      const ep = pickEndpoint(healthy) ?? healthy[0];
      if (!ep) break;
      tried.add(ep);
      const c = callBackend(ep, call, { caller: deadline, backend: performance.now() + this.backend.timeoutMs, finish: false });
      void c.done.then((completion) => this.health.observe(ep, undefined, completion, metadataCall));
      try {
        return await c.answer;
      } catch (err) {
        await c.done;
        if (!(err instanceof ConnectionFailure) || call.signal.aborted) throw err;
        lastErr = err;
      }
    }
    if (lastErr !== undefined) throw new MGError('MG_BACKEND_ERROR', (lastErr as Error).message, { cause: lastErr });
    throw new MGError('MG_NO_BACKEND', `no healthy endpoint for backend "${this.name}"`, { retryAfterMs: this.backend.healthCheck.intervalMs });
  }

  /** Applies a changed backend definition; replicas that stay keep their in-flight work and state. */
  reconfigure(backend: BackendSnapshot): void {
    // A changed protocol needs new clients: no endpoint is kept then.
    const old = new Map(backend.protocol === this.backend.protocol ? this.endpoints.map((e) => [e.url, e]) : []);
    if (backend.protocol !== this.backend.protocol) for (const e of this.endpoints) this.closeWhenIdle(e);
    const intervalChanged = backend.healthCheck.intervalMs !== this.backend.healthCheck.intervalMs;
    const levelsBefore = this.backend.priorityLevels;
    this.backend = backend;
    // A changed link (TLS files, a rotated secret) needs new connections: no replica is kept then.
    // So do level pools that moved to other ports (or came or went with trafficQoS.priorityClasses).
    const link = linkOptions(backend);
    const relink = linkKey(link) !== linkKey(this.link) || portsKey(backend.priorityLevels) !== portsKey(levelsBefore);
    this.link = link;
    this.endpoints = backend.endpoints.map((e) => {
      const kept = relink ? undefined : old.get(e.url);
      if (!relink) old.delete(e.url);
      if (kept && kept.slots === e.slots) {
        kept.capacity = e.slots + backend.dispatchAhead;
        // A reload with more priority levels adds their pools (levels are ports, not priorities).
        if (kept.client instanceof LevelledClient) kept.client.grow(backend.priorityLevels?.levels.length ?? 0);
        return kept;
      }
      return this.makeEndpoint(e.url, e.slots);
    });
    // Replicas that left finish what they have, then close.
    for (const gone of old.values()) this.closeWhenIdle(gone);
    if (intervalChanged) {
      this.health.stop();
      this.health.start();
    }
    this.health.recompute();
  }

  private makeEndpoint(url: string, slots: number): Endpoint {
    const capacity = slots + this.backend.dispatchAhead;
    const make = (ports?: PortBlock): BackendClient =>
      this.hooks.client?.(url, capacity + 2, ports) ?? createBackendClient(this.backend.protocol, url, capacity + 2, this.link, ports);
    const levels = this.backend.priorityLevels;
    // Remote endpoints get a pool per priority level (traffic QoS): the uplink's classes tell the
    // levels apart by the local port block their connections leave from (src/core/levels.ts).
    const client =
      levels !== undefined && !isLocal(url) && hasLevelPools(this.backend.protocol)
        ? new LevelledClient(make(), (i) => make(levelPorts(levels, i)), levels.levels.length)
        : make();
    return new Endpoint(this.backend.name, url, slots, capacity, client);
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
    await Promise.all(this.endpoints.map((e) => e.client.close()));
  }
}
