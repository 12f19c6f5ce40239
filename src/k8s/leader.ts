/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go does it: the holder renews
 * renewTime every retryPeriod; a candidate takes the Lease over only after it has seen the same
 * record unchanged for a whole leaseDuration on its own clock (so clocks need not agree); every write
 * carries the resourceVersion read, so two candidates racing for it cannot both win (one gets 409).
 * A leader that cannot renew within renewDeadline steps down before its lease could be taken.
 * Releasing on stop() empties holderIdentity so a successor need not wait out the lease.
 */
import { EventEmitter } from 'node:events';
import { CoordinationV1Api, V1MicroTime } from '@kubernetes/client-node';
import type { KubeConfig, V1Lease } from '@kubernetes/client-node';
import { statusOf, withTimeout } from './reflector.ts';

export interface LeaderElectorOptions {
  readonly kubeConfig: KubeConfig;
  readonly namespace: string;
  /** Lease name; default modelguard-controller. */
  readonly name?: string;
  /** This replica's identity (the pod name). */
  readonly identity: string;
  /** How long a lease is valid without renewal; default 15 s. */
  readonly leaseDurationMs?: number;
  /** A leader that has not renewed for this long steps down; default 10 s (less than leaseDuration). */
  readonly renewDeadlineMs?: number;
  /** Time between attempts to acquire or renew; default 2 s. */
  readonly retryPeriodMs?: number;
  /** Empty the Lease on stop() so a successor takes over at once; default true. */
  readonly releaseOnStop?: boolean;
  readonly onError?: (err: Error) => void;
}

export class LeaderElector {
  readonly #o: Required<Omit<LeaderElectorOptions, 'onError' | 'kubeConfig'>> & { onError?: (err: Error) => void };
  readonly #api: CoordinationV1Api;
  readonly #events = new EventEmitter<{ change: [boolean] }>();
  #leader = false;
  #timer: NodeJS.Timeout | undefined;
  #stopped = true;
  #lastRenew = 0;
  /** The record last seen and when (our clock), to judge expiry without trusting other clocks. */
  #observed: { key: string; at: number } | undefined;
  #running: Promise<void> = Promise.resolve();

  constructor(options: LeaderElectorOptions) {
    const leaseDurationMs = options.leaseDurationMs ?? 15_000;
    this.#o = {
      namespace: options.namespace,
      name: options.name ?? 'modelguard-controller',
      identity: options.identity,
      leaseDurationMs,
      renewDeadlineMs: options.renewDeadlineMs ?? Math.round((leaseDurationMs * 2) / 3),
      retryPeriodMs: options.retryPeriodMs ?? 2000,
      releaseOnStop: options.releaseOnStop ?? true,
      ...(options.onError === undefined ? {} : { onError: options.onError }),
    };
    if (this.#o.renewDeadlineMs >= leaseDurationMs) throw new RangeError('renewDeadlineMs must be shorter than leaseDurationMs');
    this.#api = options.kubeConfig.makeApiClient(CoordinationV1Api);
  }

  get isLeader(): boolean {
    return this.#leader;
  }

  /** Called with true on gaining and false on losing leadership. Returns an unsubscribe function. */
  onChange(listener: (leader: boolean) => void): () => void {
    this.#events.on('change', listener);
    return () => this.#events.off('change', listener);
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#tick();
  }

  /** Stops campaigning; a leader steps down and releases the Lease. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
    if (this.#leader) {
      this.#set(false);
      if (this.#o.releaseOnStop) await this.#release().catch((e: unknown) => this.#o.onError?.(e as Error));
    }
  }

  #set(leader: boolean): void {
    if (this.#leader === leader) return;
    this.#leader = leader;
    this.#events.emit('change', leader);
  }

  #tick(): void {
    if (this.#stopped) return;
    // A request that hangs must not hold the leader past renewDeadline: it counts as a failure.
    this.#running = withTimeout(this.#attempt(), this.#o.renewDeadlineMs, 'lease').then(
      (ok) => {
        if (ok) this.#lastRenew = Date.now();
        else if (this.#leader && Date.now() - this.#lastRenew > this.#o.renewDeadlineMs) this.#set(false);
      },
      (err: unknown) => {
        this.#o.onError?.(err as Error);
        if (this.#leader && Date.now() - this.#lastRenew > this.#o.renewDeadlineMs) this.#set(false);
      },
    );
    void this.#running.then(() => {
      if (!this.#stopped) this.#timer = setTimeout(() => this.#tick(), this.#o.retryPeriodMs);
    });
  }

  #spec(previous: V1Lease['spec'] | undefined, now: V1MicroTime): NonNullable<V1Lease['spec']> {
    const ours = previous?.holderIdentity === this.#o.identity;
    return {
      holderIdentity: this.#o.identity,
      leaseDurationSeconds: Math.max(1, Math.ceil(this.#o.leaseDurationMs / 1000)),
      acquireTime: ours && previous?.acquireTime !== undefined ? previous.acquireTime : now,
      renewTime: now,
      leaseTransitions: (previous?.leaseTransitions ?? 0) + (ours || previous === undefined ? 0 : 1),
    };
  }

  /** One acquire-or-renew; true when we hold the Lease afterwards. */
  async #attempt(): Promise<boolean> {
    const { namespace, name } = this.#o;
    let lease: V1Lease;
    try {
      lease = await this.#api.readNamespacedLease({ name, namespace });
    } catch (e) {
      if (statusOf(e) !== 404) throw e;
      try {
        await this.#api.createNamespacedLease({ namespace, body: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace }, spec: this.#spec(undefined, new V1MicroTime()) } });
      } catch (err) {
        if (statusOf(err) === 409) return false; // another candidate created it first
        throw err;
      }
      this.#set(true);
      return true;
    }
    const spec = lease.spec;
    const holder = spec?.holderIdentity ?? '';
    const key = `${holder}|${String(spec?.renewTime)}|${lease.metadata?.resourceVersion ?? ''}`;
    const now = Date.now();
    if (this.#observed?.key !== key) this.#observed = { key, at: now };
    const durationMs = (spec?.leaseDurationSeconds ?? 0) * 1000;
    const held = holder !== '' && holder !== this.#o.identity && now - this.#observed.at < durationMs;
    if (held) {
      this.#set(false);
      return false;
    }
    try {
      await this.#api.replaceNamespacedLease({ name, namespace, body: { ...lease, spec: this.#spec(spec, new V1MicroTime()) } });
    } catch (e) {
      if (statusOf(e) === 409) {
        this.#set(false);
        return false;
      }
      throw e;
    }
    this.#set(true);
    return true;
  }

  async #release(): Promise<void> {
    const { namespace, name } = this.#o;
    const lease = await this.#api.readNamespacedLease({ name, namespace });
    if (lease.spec?.holderIdentity !== this.#o.identity) return;
    await this.#api.replaceNamespacedLease({
      name,
      namespace,
      body: { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: new V1MicroTime() } },
    });
  }
}
