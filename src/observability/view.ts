/** Builds the live view (live-view.ts) from the recent window and one broker status sample. */
import type { BrokerStatus } from '../broker/broker.ts';
import type { Snapshot } from '../core/snapshot.ts';
import { addInto, newCounts, percentiles } from './histogram.ts';
import type { OffloadStatus } from '../broker/offload/offloader.ts';
import type { AppView, EndpointView, GroupView, LiveView, ModelView, OffloadView, PercentilesView } from './live-view.ts';
import { endpointKey, HISTORY_SECONDS, NONE, type RecentWindow, type Second, WINDOW_SECONDS } from './window.ts';

const round = (n: number, digits = 3): number => Math.round(n * 10 ** digits) / 10 ** digits;

function pct(counts: Uint32Array): PercentilesView | null {
  const p = percentiles(counts);
  return p ? { p50: round(p.p50), p95: round(p.p95), p99: round(p.p99), count: p.count } : null;
}

/** Sum over seconds of one number, per second of the window (0 for an empty window). */
function rate(seconds: readonly Second[], value: (s: Second) => number): number {
  if (seconds.length === 0) return 0;
  let sum = 0;
  for (const s of seconds) sum += value(s);
  return round(sum / seconds.length);
}

export function buildView(window: RecentWindow, status: BrokerStatus, snapshot: Snapshot, startedAt: number, offload: readonly OffloadStatus[] = []): LiveView {
  const history = window.recent(HISTORY_SECONDS);
  const recent = history.slice(-WINDOW_SECONDS);
  const byRequests = status.fairness === 'requests';
  const use = (s: Second, group: string): number => {
    const g = s.groups.get(group);
    return g === undefined ? 0 : byRequests ? g.dispatched : g.acceleratorMs;
  };
  const totalUse = (s: Second): number => {
    let n = 0;
    for (const g of s.groups.values()) n += byRequests ? g.dispatched : g.acceleratorMs;
    return n;
  };
  const windowUse = recent.reduce((n, s) => n + totalUse(s), 0);

  const groups = status.groups.map((gs): GroupView => {
    const waits = newCounts();
    for (const s of recent) {
      const g = s.groups.get(gs.name);
      if (g) addInto(waits, g.waits);
    }
    const used = recent.reduce((n, s) => n + use(s, gs.name), 0);
    return {
      name: gs.name,
      priority: gs.priority,
      weight: gs.weight,
      configuredShare: round(gs.configuredShare),
      usedShare: windowUse > 0 ? round(used / windowUse) : null,
      queued: gs.queued,
      maxLength: gs.maxLength,
      inflight: gs.inflight,
      perSecond: rate(recent, (s) => s.groups.get(gs.name)?.served ?? 0),
      rejectedPerSecond: rate(recent, (s) => s.groups.get(gs.name)?.rejected ?? 0),
      dispatched: gs.dispatched,
      wait: pct(waits),
      history: {
        perSecond: history.map((s) => s.groups.get(gs.name)?.served ?? 0),
        queued: history.map((s) => s.groups.get(gs.name)?.queued ?? 0),
        share: history.map((s) => {
          const total = totalUse(s);
          return total > 0 ? round(use(s, gs.name) / total) : null;
        }),
      },
    };
  });

  const endpoints = status.endpoints.map(
    (e): EndpointView => ({
      ...e,
      latencyMs: round(e.latencyMs),
      busy: history.map((s) => s.busy.get(endpointKey(e.backend, e.url)) ?? 0),
    }),
  );

  const appNames = new Set([...Object.keys(snapshot.apps), ...window.apps.keys()]);
  const apps = [...appNames].map((name): AppView => {
    const totals = window.apps.get(name);
    return {
      name,
      group: snapshot.apps[name]?.serviceGroup ?? (name === NONE ? '' : '?'),
      requests: totals?.requests ?? 0,
      perSecond: rate(recent, (s) => s.apps.get(name) ?? 0),
      rejections: Object.fromEntries(totals?.rejections ?? []),
    };
  });

  const models = Object.values(snapshot.models).map((m): ModelView => {
    const latency = newCounts();
    const backend = newCounts();
    for (const s of recent) {
      const ms = s.models.get(m.name);
      if (ms) {
        addInto(latency, ms.latency);
        addInto(backend, ms.backend);
      }
    }
    const b = status.batching?.find((x) => x.model === m.name);
    const batch = b === undefined ? {} : { batch: { maxBatchSize: b.maxBatchSize, size: round(b.recentRows, 2), delayMs: round(b.recentDelayMs, 2), batches: b.batches, rows: b.rows } };
    return { name: m.name, backend: m.backend, perSecond: rate(recent, (s) => s.models.get(m.name)?.requests ?? 0), latency: pct(latency), backendTime: pct(backend), ...batch };
  });

  return {
    at: Date.now(),
    startedAt,
    config: { name: snapshot.gateway.name, version: status.version, hash: status.hash, fairness: status.fairness, auth: snapshot.gateway.auth },
    shareUnit: byRequests ? 'requests' : 'accelerator time',
    windowSeconds: WINDOW_SECONDS,
    historySeconds: HISTORY_SECONDS,
    totals: { perSecond: rate(recent, (s) => sumValues(s.apps)), requests: window.requests, rejected: window.rejected },
    groups,
    endpoints,
    apps,
    models,
    errors: [...window.errors].reverse(),
    offload: offload.map(
      (o): OffloadView => ({
        model: o.model,
        backend: o.backend,
        when: o.when,
        breaker: o.breaker,
        breakerOpened: o.breakerOpened,
        cloudMs: round(o.cloudMs),
        edgeServiceMs: round(o.edgeServiceMs),
        sent: o.sent,
        answered: o.answered,
        leftToday: o.leftToday ?? null,
      }),
    ),
    refusals: [...window.refusals].map(([group, byReason]) => ({ group, byReason: Object.fromEntries(byReason) })),
  };
}

function sumValues(m: ReadonlyMap<string, number>): number {
  let n = 0;
  for (const v of m.values()) n += v;
  return n;
}
