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

/** A column of a status table: its title, its cell for a row, and whether it is aligned right (numbers). */
interface Column<T> {
  readonly title: string;
  readonly cell: (row: T) => string;
  readonly right?: boolean;
}

const GAP = '  ';

/**
 * A title line, then a line per row (and the lines `under` adds beneath it). Each column is as wide
 * as its title or its widest cell, so a long name never pushes the columns after it out of line;
 * numbers are aligned right, under the end of their title. No line ends in spaces.
 */
function table<T>(columns: readonly Column<T>[], rows: readonly T[], under?: (row: T, indent: (column: number) => string) => string[]): string[] {
  const cells = rows.map((r) => columns.map((c) => c.cell(r)));
  const widths = columns.map((c, i) => Math.max(c.title.length, ...cells.map((line) => (line[i] as string).length)));
  const line = (texts: readonly string[]): string => texts.map((t, i) => (columns[i]?.right ? t.padStart(widths[i] as number) : t.padEnd(widths[i] as number))).join(GAP).trimEnd();
  const indent = (column: number): string => ' '.repeat(widths.slice(0, column).reduce((n, w) => n + w + GAP.length, 0));
  const out = [line(columns.map((c) => c.title))];
  rows.forEach((r, i) => out.push(line(cells[i] as string[]), ...(under?.(r, indent) ?? [])));
  return out;
}

const yes = (ok: boolean): string => (ok ? 'yes' : 'NO');
const ms = (v: number): string => `${v.toFixed(1)}ms`;

/** The controller's nodes: which snapshot each runs, and whether it keeps up. */
export function controllerText(s: ControllerStatus): string {
  const out: string[] = [];
  out.push(`controller: configuration version ${s.version ?? '-'} (${(s.hash ?? '').slice(0, 12) || 'none'}) from ${s.source}`);
  if (s.error) out.push(`last configuration refused (${s.error.at}; the version above stays): ${s.error.message}`);
  out.push('');
  type Node = ControllerStatus['nodes'][number];
  out.push(
    ...table<Node>(
      [
        { title: 'NODE', cell: (n) => n.name },
        { title: 'ROLE', cell: (n) => n.role },
        { title: 'APPS', cell: (n) => (n.apps.length ? n.apps.join(',') : n.role === 'proxy' ? '(every app)' : '-').slice(0, 21) },
        { title: 'APPLIED', cell: (n) => (n.applied ? `v${n.applied.version}` : '-') },
        { title: 'CURRENT', cell: (n) => yes(n.upToDate) },
        { title: 'HEALTHY', cell: (n) => yes(n.healthy) },
        { title: 'LAST-SEEN', cell: (n) => ago(n.lastSeenMs), right: true },
        { title: 'ERROR', cell: (n) => (n.error ? `v${n.error.version}: ${n.error.message}` : '') },
      ],
      s.nodes,
    ),
  );
  if (s.nodes.length === 0) out.push('(no broker or proxy has registered yet)');
  out.push(...restartLines(s.restartRequired));
  return out.join('\n');
}

export function nodeText(s: NodeStatus): string {
  const out: string[] = [];
  out.push(`configuration version ${s.version} (${s.hash.slice(0, 12)}), fairness: ${s.fairness}`);
  out.push('');
  const totalMs = s.groups.reduce((n, g) => n + g.acceleratorMs, 0) || 1;
  out.push(
    ...table<NodeStatus['groups'][number]>(
      [
        { title: 'GROUP', cell: (g) => g.name },
        { title: 'PRIO', cell: (g) => String(g.priority), right: true },
        { title: 'WEIGHT', cell: (g) => String(g.weight), right: true },
        { title: 'SHARE(cfg)', cell: (g) => `${(g.configuredShare * 100).toFixed(0)}%`, right: true },
        { title: 'SHARE(used)', cell: (g) => `${((g.acceleratorMs / totalMs) * 100).toFixed(1)}%`, right: true },
        { title: 'QUEUED/MAX', cell: (g) => `${g.queued}/${g.maxLength}`, right: true },
        { title: 'INFLIGHT', cell: (g) => String(g.inflight), right: true },
        { title: 'DISPATCHED', cell: (g) => String(g.dispatched), right: true },
        { title: 'DRAIN/s', cell: (g) => g.drainPerSecond.toFixed(1), right: true },
      ],
      s.groups,
    ),
  );
  out.push('');
  out.push(
    ...table<NodeStatus['endpoints'][number]>(
      [
        { title: 'BACKEND', cell: (e) => e.backend },
        { title: 'ENDPOINT', cell: (e) => e.url },
        { title: 'SLOTS', cell: (e) => String(e.slots), right: true },
        { title: 'INFLIGHT', cell: (e) => String(e.inflight), right: true },
        { title: 'HEALTHY', cell: (e) => yes(e.healthy), right: true },
        { title: 'SERVED', cell: (e) => String(e.served), right: true },
        { title: 'FAILURES', cell: (e) => String(e.failures), right: true },
        { title: 'LATENCY', cell: (e) => ms(e.latencyMs), right: true },
      ],
      s.endpoints,
      // A model out of service on one endpoint, under that endpoint's URL.
      (e, indent) => (e.modelsDown ?? []).map((m) => `${indent(1)}model ${m.model} DOWN here (tried again in ${(m.retryInMs / 1000).toFixed(1)}s): ${m.reason}`),
    ),
  );
  if (s.offload !== undefined && s.offload.length > 0) {
    out.push('');
    out.push(
      ...table(
        [
          { title: 'OFFLOAD MODEL', cell: (o) => o.model },
          { title: 'TO', cell: (o) => o.backend },
          { title: 'WHEN', cell: (o) => o.when },
          { title: 'BREAKER', cell: (o) => o.breaker },
          { title: 'EDGE-SVC', cell: (o) => ms(o.edgeServiceMs), right: true },
          { title: 'CLOUD', cell: (o) => ms(o.cloudMs), right: true },
          { title: 'SENT', cell: (o) => String(o.sent), right: true },
          { title: 'ANSWERED', cell: (o) => String(o.answered), right: true },
          { title: 'LEFT-TODAY', cell: (o) => (o.leftToday === undefined ? '-' : String(o.leftToday)), right: true },
        ],
        s.offload,
      ),
    );
  }
  if (s.batching !== undefined && s.batching.length > 0) {
    out.push('');
    out.push(
      ...table(
        [
          { title: 'BATCH MODEL', cell: (b) => b.model },
          { title: 'BACKEND', cell: (b) => b.backend },
          { title: 'MAX', cell: (b) => String(b.maxBatchSize), right: true },
          { title: 'BATCHES', cell: (b) => String(b.batches), right: true },
          { title: 'ROWS', cell: (b) => String(b.rows), right: true },
          { title: 'REQUESTS', cell: (b) => String(b.requests), right: true },
          { title: 'SIZE(recent)', cell: (b) => b.recentRows.toFixed(2), right: true },
          { title: 'ADDED(recent)', cell: (b) => ms(b.recentDelayMs), right: true },
        ],
        s.batching,
      ),
    );
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
