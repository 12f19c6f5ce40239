/** `modelguard status`: the admin API's view, as a table; a broker, a proxy, `up`, or a controller. */
import type { BrokerStatus } from '../broker/broker.ts';
import type { ConfigView, NodeView } from '../controller/controller.ts';
import { adminFetch } from './admin-client.ts';

/** What a controller answers on /api/v1/status. */
export interface ControllerStatus extends ConfigView {
  readonly role: 'controller';
  readonly nodes: readonly NodeView[];
  readonly restartRequired: readonly string[];
}

type NodeStatus = BrokerStatus & { readonly restartRequired?: readonly string[] };

/** Reads /api/v1/status of any role. */
export async function fetchStatus(adminUrl: string): Promise<NodeStatus | ControllerStatus> {
  let res: Response;
  try {
    res = await adminFetch(adminUrl, '/api/v1/status');
  } catch (err) {
    throw new Error(`cannot reach the admin listener at ${adminUrl} (${(err as Error).message}); is ModelGuard running? pass --admin URL (or --role ROLE for a role's default port)`);
  }
  if (res.status === 401) throw new Error('the admin listener needs a token: pass --token or set MODELGUARD_ADMIN_TOKEN (`modelguard keys create --kind admin` makes one)');
  if (!res.ok) throw new Error(`admin listener at ${adminUrl} answered ${res.status} to /api/v1/status; is it a ModelGuard admin listener?`);
  return (await res.json()) as NodeStatus | ControllerStatus;
}

function restartLines(fields: readonly string[] | undefined): string[] {
  if (!fields || fields.length === 0) return [];
  return ['', `RESTART REQUIRED: the configuration changed ${fields.join(', ')}, read only at start; restart this process to apply it`];
}

const ago = (ms: number): string => (ms < 1000 ? `${ms}ms` : `${(ms / 1000).toFixed(1)}s`);

/** The controller's nodes: which snapshot each runs, and whether it keeps up. */
export function controllerText(s: ControllerStatus): string {
  const out: string[] = [];
  out.push(`controller: configuration version ${s.version ?? '-'} (${(s.hash ?? '').slice(0, 12) || 'none'}) from ${s.source}`);
  if (s.error) out.push(`last configuration refused (${s.error.at}; the version above stays): ${s.error.message}`);
  out.push('');
  out.push('NODE                      ROLE    APPS                  APPLIED     CURRENT  HEALTHY  LAST-SEEN  ERROR');
  for (const n of s.nodes) {
    out.push(
      [
        n.name.padEnd(25),
        n.role.padEnd(7),
        (n.apps.length ? n.apps.join(',') : n.role === 'proxy' ? '(every app)' : '-').slice(0, 21).padEnd(21),
        (n.applied ? `v${n.applied.version}` : '-').padEnd(11),
        (n.upToDate ? 'yes' : 'NO').padEnd(8),
        (n.healthy ? 'yes' : 'NO').padEnd(8),
        ago(n.lastSeenMs).padStart(9),
        n.error ? ` v${n.error.version}: ${n.error.message}` : '',
      ].join(' '),
    );
  }
  if (s.nodes.length === 0) out.push('(no broker or proxy has registered yet)');
  out.push(...restartLines(s.restartRequired));
  return out.join('\n');
}

export function nodeText(s: NodeStatus): string {
  const out: string[] = [];
  out.push(`configuration version ${s.version} (${s.hash.slice(0, 12)}), fairness: ${s.fairness}`);
  out.push('');
  const totalMs = s.groups.reduce((n, g) => n + g.acceleratorMs, 0) || 1;
  out.push('GROUP             PRIO  WEIGHT  SHARE(cfg)  SHARE(used)  QUEUED/MAX   INFLIGHT  DISPATCHED  DRAIN/s');
  for (const g of s.groups) {
    out.push(
      [
        g.name.padEnd(16),
        String(g.priority).padStart(5),
        String(g.weight).padStart(7),
        `${(g.configuredShare * 100).toFixed(0)}%`.padStart(11),
        `${((g.acceleratorMs / totalMs) * 100).toFixed(1)}%`.padStart(12),
        `${g.queued}/${g.maxLength}`.padStart(12),
        String(g.inflight).padStart(10),
        String(g.dispatched).padStart(11),
        g.drainPerSecond.toFixed(1).padStart(8),
      ].join(' '),
    );
  }
  out.push('');
  out.push('BACKEND           ENDPOINT                          SLOTS  INFLIGHT  HEALTHY  SERVED  FAILURES  LATENCY');
  for (const e of s.endpoints) {
    out.push(
      [
        e.backend.padEnd(16),
        e.url.padEnd(33),
        String(e.slots).padStart(5),
        String(e.inflight).padStart(9),
        (e.healthy ? 'yes' : 'NO').padStart(8),
        String(e.served).padStart(7),
        String(e.failures).padStart(9),
        `${e.latencyMs.toFixed(1)}ms`.padStart(8),
      ].join(' '),
    );
    for (const m of e.modelsDown ?? []) out.push(`${''.padEnd(17)}model ${m.model} DOWN here (tried again in ${(m.retryInMs / 1000).toFixed(1)}s): ${m.reason}`);
  }
  if (s.offload !== undefined && s.offload.length > 0) {
    out.push('');
    out.push('OFFLOAD MODEL     TO                WHEN          BREAKER    EDGE-SVC  CLOUD     SENT  ANSWERED  LEFT-TODAY');
    for (const o of s.offload) {
      out.push(
        [
          o.model.padEnd(17),
          o.backend.padEnd(17),
          o.when.padEnd(13),
          o.breaker.padEnd(10),
          `${o.edgeServiceMs.toFixed(1)}ms`.padStart(9),
          `${o.cloudMs.toFixed(1)}ms`.padStart(9),
          String(o.sent).padStart(5),
          String(o.answered).padStart(9),
          (o.leftToday === undefined ? '-' : String(o.leftToday)).padStart(11),
        ].join(' '),
      );
    }
  }
  if (s.batching !== undefined && s.batching.length > 0) {
    out.push('');
    out.push('BATCH MODEL       BACKEND           MAX  BATCHES    ROWS  REQUESTS  SIZE(recent)  ADDED(recent)');
    for (const b of s.batching) {
      out.push(
        [
          b.model.padEnd(17),
          b.backend.padEnd(17),
          String(b.maxBatchSize).padStart(3),
          String(b.batches).padStart(8),
          String(b.rows).padStart(7),
          String(b.requests).padStart(9),
          b.recentRows.toFixed(2).padStart(13),
          `${b.recentDelayMs.toFixed(1)}ms`.padStart(14),
        ].join(' '),
      );
    }
  }
  out.push(...restartLines(s.restartRequired));
  return out.join('\n');
}

export function statusText(s: NodeStatus | ControllerStatus): string {
  return 'role' in s && s.role === 'controller' ? controllerText(s) : nodeText(s as NodeStatus);
}

export async function printStatus(adminUrl: string): Promise<void> {
  process.stdout.write(`${statusText(await fetchStatus(adminUrl))}\n`);
}
