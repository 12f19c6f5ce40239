/**
 * `modelguard demo-load`: puts the demo (or a configuration's apps) above the accelerator's
 * capacity for a few seconds and prints what each group got. Sharing by weight only shows under
 * overload: while a group does not wait, it gets what it asks for, whatever its weight. So every app
 * keeps more requests outstanding than the accelerator has slots, and every group always has a
 * queue; the scheduler then decides, and the split between the groups is their weights' ratio.
 */
import type { BrokerStatus, GroupStatus } from '../broker/broker.ts';
import { loadConfig } from '../config/index.ts';
import { adminAddress } from '../compose/admin-address.ts';
import { adminFetch } from './admin-client.ts';
import { readDemoState, type DemoState } from './demo-state.ts';

export interface DemoLoadOptions {
  readonly seconds: number;
  /** A configuration's apps instead of the running demo's (with keys). */
  readonly config?: string;
  /** app=KEY, one per app to drive (with --config). */
  readonly key?: readonly string[];
  readonly url?: string;
  readonly admin?: string;
  readonly model?: string;
  /** Requests each app keeps outstanding; default 2 × the accelerator's slots + 2. */
  readonly concurrency?: number;
  /** Where progress and the result go (tests capture it). */
  readonly out?: (line: string) => void;
}

export interface GroupResult {
  readonly group: string;
  readonly apps: readonly string[];
  readonly ok: number;
  readonly refused: Readonly<Record<string, number>>;
  /** Share of the accelerator's busy time during the run (from the admin API), 0..1. */
  readonly share: number;
  readonly configuredShare: number;
}

export interface DemoLoadResult {
  readonly groups: readonly GroupResult[];
  /** The two groups with the largest configured shares, and served(first) / served(second). */
  readonly split: { readonly groups: readonly [string, string]; readonly ratio: number } | undefined;
}

const hostUrl = (addr: string): string => `http://${addr.replace(/^0\.0\.0\.0:/, '127.0.0.1:').replace(/^\[::\]:/, '[::1]:')}`;

/** The demo's apps from the running demo, or a configuration's apps from --config and --key. */
async function target(o: DemoLoadOptions): Promise<DemoState> {
  if (o.config === undefined) {
    if (o.key !== undefined && o.key.length > 0) throw new Error('--key APP=KEY goes with --config PATH (the demo\'s own keys are read from the running demo)');
    const s = readDemoState();
    return { ...s, ...(o.url ? { httpUrl: o.url } : {}), ...(o.admin ? { adminUrl: o.admin } : {}), ...(o.model ? { model: o.model } : {}) };
  }
  const snap = (await loadConfig(o.config)).snapshot;
  const apps = (o.key ?? []).map((kv) => {
    const eq = kv.indexOf('=');
    const name = kv.slice(0, eq);
    if (eq <= 0 || eq === kv.length - 1) throw new Error(`--key ${kv}: expected APP=KEY`);
    const app = snap.apps[name];
    if (!app) throw new Error(`--key ${name}=…: no App "${name}" in ${o.config} (apps: ${Object.keys(snap.apps).join(', ') || 'none'})`);
    return { name, group: app.serviceGroup, key: kv.slice(eq + 1) };
  });
  if (apps.length === 0) throw new Error('with --config, give the apps to drive and their keys: --key APP=KEY (repeat; two apps in two groups show the split)');
  const usable = (m: string): boolean => {
    const model = snap.models[m];
    return model !== undefined && apps.every((a) => model.visibility === 'public' || (snap.apps[a.name]?.models.includes(m) ?? false));
  };
  const model = o.model ?? Object.keys(snap.models).find(usable);
  if (model === undefined) throw new Error(`no model in ${o.config} that every given app may use; pick one with --model NAME`);
  return {
    httpUrl: o.url ?? hostUrl(snap.gateway.listeners.http),
    adminUrl: o.admin ?? hostUrl(adminAddress(snap.gateway, 'up')),
    model,
    apps,
    pid: 0,
  };
}

async function status(adminUrl: string): Promise<BrokerStatus> {
  let res: Response;
  try {
    res = await adminFetch(adminUrl, '/api/v1/status');
  } catch (err) {
    throw new Error(`cannot reach the admin listener at ${adminUrl} (${(err as Error).message}); is ModelGuard running? (--admin URL)`);
  }
  if (!res.ok) throw new Error(`admin listener at ${adminUrl} answered ${res.status} to /api/v1/status${res.status === 401 ? ' (an admin token: MODELGUARD_ADMIN_TOKEN)' : ''}`);
  return (await res.json()) as BrokerStatus;
}

/** One KServe v2 inference the demo's iris model (and any 4-feature FP32 model) accepts. */
const BODY = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [5.1, 3.5, 1.4, 0.2] }] });

interface AppCounter {
  ok: number;
  refused: Record<string, number>;
}

export async function demoLoad(o: DemoLoadOptions): Promise<DemoLoadResult> {
  const out = o.out ?? ((l: string) => process.stdout.write(`${l}\n`));
  if (!Number.isFinite(o.seconds) || o.seconds <= 0) throw new Error('--seconds N: a positive number of seconds');
  const t = await target(o);
  const first = await status(t.adminUrl);
  const slots = first.endpoints.reduce((n, e) => n + e.slots, 0) || 1;
  // Connections open and queues form in the first moments: the counts start after a warm-up.
  const warmupMs = Math.min(1000, (o.seconds * 1000) / 4);
  const concurrency = o.concurrency ?? 2 * slots + 2;
  const url = `${t.httpUrl.replace(/\/$/, '')}/v2/models/${encodeURIComponent(t.model)}/infer`;
  out(`demo-load: ${o.seconds} s against ${url}; ${t.apps.length} apps × ${concurrency} requests outstanding, ${slots} accelerator slot(s): above capacity, so every group queues`);
  out(`counting after a ${(warmupMs / 1000).toFixed(1)} s warm-up; watch the dashboard at ${t.adminUrl.replace(/\/$/, '')}/`);

  const counts = new Map<string, AppCounter>(t.apps.map((a) => [a.name, { ok: 0, refused: {} }]));
  const stop = new AbortController();
  const started = performance.now();
  const countFrom = started + warmupMs;
  const deadline = started + o.seconds * 1000;
  let transportErrors = 0;
  let fatal: Error | undefined;
  const giveUp = (err: Error): void => {
    fatal ??= err;
    stop.abort();
  };
  const worker = async (app: DemoState['apps'][number]): Promise<void> => {
    const c = counts.get(app.name) as AppCounter;
    while (!stop.signal.aborted) {
      try {
        const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${app.key}`, 'content-type': 'application/json' }, body: BODY, signal: stop.signal });
        await res.arrayBuffer();
        const code = res.ok ? undefined : (res.headers.get('x-modelguard-error') ?? `HTTP ${res.status}`);
        if (code === 'MG_UNAUTHENTICATED' || code === 'MG_FORBIDDEN' || code === 'MG_MODEL_NOT_FOUND') {
          return giveUp(new Error(`${app.name}: ${code} from ${url}; check its key (--key ${app.name}=KEY) and --model`));
        }
        const at = performance.now();
        if (at > deadline) return; // finished after the window: not counted
        if (at >= countFrom) {
          if (code === undefined) c.ok++;
          else c.refused[code] = (c.refused[code] ?? 0) + 1;
        }
        const retry = Number(res.headers.get('x-modelguard-retry-after-ms') ?? 0);
        if (code !== undefined && retry > 0) await new Promise((r) => setTimeout(r, Math.min(retry, 1000)));
      } catch (err) {
        if (stop.signal.aborted) return;
        if (++transportErrors > 20) return giveUp(new Error(`cannot reach ${url} (${(err as Error).message}); is ModelGuard running? (--url URL)`));
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  let before: Promise<BrokerStatus> | undefined;
  const warm = setTimeout(() => {
    before = status(t.adminUrl);
    before.catch(() => undefined); // awaited below
  }, warmupMs);
  const progress = setInterval(() => {
    const s = Math.round((performance.now() - started) / 1000);
    out(`  ${String(s).padStart(3)}s  ${t.apps.map((a) => `${a.name} (${a.group}) ${counts.get(a.name)?.ok ?? 0}`).join('   ')}`);
  }, 1000);
  const timer = setTimeout(() => stop.abort(), o.seconds * 1000);
  try {
    await Promise.all(t.apps.flatMap((a) => Array.from({ length: concurrency }, () => worker(a))));
  } finally {
    clearTimeout(timer);
    clearTimeout(warm);
    clearInterval(progress);
    stop.abort();
  }
  if (fatal) throw fatal;
  const after = await status(t.adminUrl);
  return report(t, counts, before ? await before : first, after, out);
}

function report(t: DemoState, counts: Map<string, AppCounter>, before: BrokerStatus, after: BrokerStatus, out: (l: string) => void): DemoLoadResult {
  const was = new Map(before.groups.map((g) => [g.name, g]));
  const now = new Map(after.groups.map((g) => [g.name, g]));
  const used = (g: GroupStatus | undefined): number => Math.max(0, (g?.acceleratorMs ?? 0) - (was.get(g?.name ?? '')?.acceleratorMs ?? 0));
  const names = [...new Set(t.apps.map((a) => a.group))];
  const busy = names.reduce((n, g) => n + used(now.get(g)), 0) || 1;
  const raw: GroupResult[] = names.map((g) => {
    const apps = t.apps.filter((a) => a.group === g).map((a) => a.name);
    const refused: Record<string, number> = {};
    let ok = 0;
    for (const a of apps) {
      const c = counts.get(a) as AppCounter;
      ok += c.ok;
      for (const [k, v] of Object.entries(c.refused)) refused[k] = (refused[k] ?? 0) + v;
    }
    return { group: g, apps, ok, refused, share: used(now.get(g)) / busy, configuredShare: now.get(g)?.configuredShare ?? 0 };
  });
  // Configured shares among the groups driven here (idle groups, like `default`, take nothing).
  const cfgSum = raw.reduce((n, g) => n + g.configuredShare, 0) || 1;
  const groups = raw.map((g) => ({ ...g, configuredShare: g.configuredShare / cfgSum }));
  groups.sort((a, b) => b.configuredShare - a.configuredShare || b.ok - a.ok);
  out('');
  out('GROUP      APPS                  SERVED  REFUSED                 ACCELERATOR  CONFIGURED');
  for (const g of groups) {
    const refused = Object.entries(g.refused).map(([k, v]) => `${k} ${v}`).join(', ') || '0';
    out(
      [g.group.padEnd(10), g.apps.join(',').slice(0, 21).padEnd(21), String(g.ok).padStart(6), ` ${refused.padEnd(23)}`, `${(g.share * 100).toFixed(1)}%`.padStart(11), `${(g.configuredShare * 100).toFixed(0)}%`.padStart(11)].join(' '),
    );
  }
  const [a, b] = groups;
  let split: DemoLoadResult['split'];
  out('');
  if (a && b && b.ok > 0) {
    split = { groups: [a.group, b.group], ratio: a.ok / b.ok };
    const want = b.configuredShare > 0 ? a.configuredShare / b.configuredShare : Number.NaN;
    out(`served split ${a.group}:${b.group} = ${split.ratio.toFixed(2)}:1 (configured ${Number.isFinite(want) ? `${want.toFixed(2).replace(/\.00$/, '')}:1` : 'n/a'}, by weight among groups of one priority)`);
  } else if (a && b) {
    out(`served split ${a.group}:${b.group}: ${b.group} was served nothing (a higher priority takes everything while it waits)`);
  } else out('one group only: give apps of two groups to see the split');
  return { groups, split };
}
