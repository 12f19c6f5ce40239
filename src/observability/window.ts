/**
 * The recent window behind the live view: one slot per second for the last minute, filled from the
 * request events (answers, rejections, queue waits, latencies) and closed once a second with a
 * sample of the broker (accelerator time used, queue depths, busy slots). The broker knows nothing
 * of it. Recording a request is a few map lookups and increments; slots and their maps are reused,
 * so a steady load allocates nothing. Every key is a configured name or NONE (bounded).
 *
 *   seconds: [ s0 | s1 | … | s60 ]   ring; `head` is the second being filled, the others are complete
 */
import type { BrokerStatus } from '../broker/broker.ts';
import { refusalReason, type RequestRecord } from '../core/events.ts';
import type { ErrorView } from './live-view.ts';
import { newCounts, record } from './histogram.ts';

export const HISTORY_SECONDS = 60;
export const WINDOW_SECONDS = 10;
const MAX_ERRORS = 25;
/** The complete seconds kept, plus the one being filled. */
const SLOTS = HISTORY_SECONDS + 1;
/** Key for traffic that named no app, group or known model. Not a valid resource name, so it cannot clash. */
export const NONE = '(none)';

export class GroupSecond {
  served = 0;
  rejected = 0;
  readonly waits = newCounts();
  /** Sampled at the end of the second. */
  acceleratorMs = 0;
  dispatched = 0;
  queued = 0;

  reset(): void {
    this.served = this.rejected = this.acceleratorMs = this.dispatched = this.queued = 0;
    this.waits.fill(0);
  }
}

export class ModelSecond {
  requests = 0;
  readonly latency = newCounts();
  readonly backend = newCounts();

  reset(): void {
    this.requests = 0;
    this.latency.fill(0);
    this.backend.fill(0);
  }
}

export class Second {
  readonly groups = new Map<string, GroupSecond>();
  readonly models = new Map<string, ModelSecond>();
  readonly apps = new Map<string, number>();
  /** Requests in flight per endpoint (`backend url`), sampled at the end of the second. */
  readonly busy = new Map<string, number>();

  group(name: string): GroupSecond {
    let g = this.groups.get(name);
    if (!g) this.groups.set(name, (g = new GroupSecond()));
    return g;
  }

  model(name: string): ModelSecond {
    let m = this.models.get(name);
    if (!m) this.models.set(name, (m = new ModelSecond()));
    return m;
  }

  reset(): void {
    for (const g of this.groups.values()) g.reset();
    for (const m of this.models.values()) m.reset();
    for (const k of this.apps.keys()) this.apps.set(k, 0);
    this.busy.clear();
  }
}

export interface AppTotals {
  requests: number;
  readonly rejections: Map<string, number>;
}

export function endpointKey(backend: string, url: string): string {
  return `${backend} ${url}`;
}

export class RecentWindow {
  private readonly seconds: Second[] = Array.from({ length: SLOTS }, () => new Second());
  private head = 0;
  private complete = 0;
  /** Cumulative broker counters at the last sample, to turn them into per-second deltas. */
  private readonly last = new Map<string, { acceleratorMs: number; dispatched: number }>();
  /** Since start, per app (NONE for requests that named none). */
  readonly apps = new Map<string, AppTotals>();
  /** The latest MG_* outcomes, oldest first. */
  readonly errors: ErrorView[] = [];
  requests = 0;
  rejected = 0;
  /** Admission refusals since start, per group (NONE for none) and reason (core/events.ts RefusalReason). */
  readonly refusals = new Map<string, Map<string, number>>();

  observe(rec: RequestRecord, now: number): void {
    const s = this.seconds[this.head]!;
    const ok = rec.outcome === 'OK';
    const refused = !ok && rec.outcome !== 'CANCELLED';
    const g = s.group(rec.group ?? NONE);
    if (ok) g.served++;
    else if (refused) g.rejected++;
    if (rec.queueMs !== undefined) record(g.waits, rec.queueMs);
    if (rec.model !== undefined) {
      const m = s.model(rec.model);
      m.requests++;
      // Latency of answered requests only: a fast refusal says nothing about the model.
      if (ok) record(m.latency, now - rec.startedAt);
      if (rec.backendMs !== undefined) record(m.backend, rec.backendMs);
    }
    const app = rec.app ?? NONE;
    s.apps.set(app, (s.apps.get(app) ?? 0) + 1);
    let totals = this.apps.get(app);
    if (!totals) this.apps.set(app, (totals = { requests: 0, rejections: new Map() }));
    totals.requests++;
    this.requests++;
    const reason = refusalReason(rec);
    if (reason !== undefined) {
      const group = rec.group ?? NONE;
      let byReason = this.refusals.get(group);
      if (!byReason) this.refusals.set(group, (byReason = new Map<string, number>()));
      byReason.set(reason, (byReason.get(reason) ?? 0) + 1);
    }
    if (refused) {
      this.rejected++;
      totals.rejections.set(rec.outcome, (totals.rejections.get(rec.outcome) ?? 0) + 1);
      this.errors.push({
        at: Date.now(),
        id: rec.id,
        app: rec.app ?? null,
        group: rec.group ?? null,
        model: rec.model ?? null,
        outcome: rec.outcome,
        status: rec.status,
      });
      if (this.errors.length > MAX_ERRORS) this.errors.shift();
    }
  }

  /** Closes the second being filled with a sample of the broker, and starts the next one. */
  tick(status: BrokerStatus): void {
    const s = this.seconds[this.head]!;
    for (const gs of status.groups) {
      const g = s.group(gs.name);
      const prev = this.last.get(gs.name) ?? { acceleratorMs: 0, dispatched: 0 };
      // Charges are corrected when answers arrive; a correction never makes a second negative.
      g.acceleratorMs = Math.max(0, gs.acceleratorMs - prev.acceleratorMs);
      g.dispatched = Math.max(0, gs.dispatched - prev.dispatched);
      g.queued = gs.queued;
      this.last.set(gs.name, { acceleratorMs: gs.acceleratorMs, dispatched: gs.dispatched });
    }
    for (const e of status.endpoints) s.busy.set(endpointKey(e.backend, e.url), e.inflight);
    this.head = (this.head + 1) % SLOTS;
    this.complete = Math.min(HISTORY_SECONDS, this.complete + 1);
    this.seconds[this.head]!.reset();
  }

  /** The last `n` complete seconds, oldest first. */
  recent(n = HISTORY_SECONDS): Second[] {
    const count = Math.min(n, this.complete);
    const out: Second[] = [];
    for (let i = count; i >= 1; i--) out.push(this.seconds[(this.head - i + SLOTS) % SLOTS]!);
    return out;
  }
}
