/** `modelguard status`: the admin API's view, as a table. */
import type { BrokerStatus } from '../broker/broker.ts';
import { adminFetch } from './admin-client.ts';

export async function printStatus(adminUrl: string): Promise<void> {
  let res: Response;
  try {
    res = await adminFetch(adminUrl, '/api/v1/status');
  } catch (err) {
    throw new Error(`cannot reach the admin listener at ${adminUrl} (${(err as Error).message}); is ModelGuard running? pass --admin URL`);
  }
  if (res.status === 401) throw new Error('the admin listener needs a token: pass --token or set MODELGUARD_ADMIN_TOKEN');
  if (!res.ok) throw new Error(`admin listener answered ${res.status}`);
  const s = (await res.json()) as BrokerStatus;
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
  process.stdout.write(`${out.join('\n')}\n`);
}
