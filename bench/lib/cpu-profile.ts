/**
 * Summary of a V8 .cpuprofile (from `node --cpu-prof`): where the busy time went, by frame (self
 * time), by frame including callees (total time), and by origin (ModelGuard's src/, undici, Node's
 * internals, GC). Idle time is left out of the percentages.
 *
 *   node --import tsx bench/lib/cpu-profile.ts <file.cpuprofile> [top]
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT } from './processes.ts';
import { fixed, table } from './stats.ts';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples?: readonly number[];
  readonly timeDeltas?: readonly number[];
}

function shortUrl(url: string): string {
  if (url === '') return '';
  let path = url;
  if (url.startsWith('file://')) {
    try {
      path = fileURLToPath(url.split('?')[0]!);
    } catch {
      path = url;
    }
  }
  if (path.startsWith(ROOT)) path = path.slice(ROOT.length);
  return path.replace(/^node_modules\//, '');
}

export function origin(url: string, functionName: string): string {
  if (functionName === '(garbage collector)') return 'GC';
  if (functionName === '(program)') return '(program: native, not JS)';
  if (url === '') return 'native / V8 builtins';
  const u = shortUrl(url);
  if (u.startsWith('src/') || u.startsWith('dist/')) return `ModelGuard ${u.split('/').slice(0, 2).join('/')}`;
  if (u.startsWith('undici/')) return 'undici';
  if (u.startsWith('node:')) return 'Node internals';
  if (u.startsWith('tsx/') || u.startsWith('esbuild/')) return 'tsx loader';
  return u.split('/')[0] ?? u;
}

function label(f: CallFrame): string {
  const u = shortUrl(f.url);
  // Code loaded through tsx reports line 0 for every function (its transform output): omit it.
  const where = u === '' ? '' : f.lineNumber > 0 ? ` ${u}:${f.lineNumber + 1}` : ` ${u}`;
  return `${f.functionName || '(anonymous)'}${where}`;
}

export interface ProfileSummary {
  readonly busyMs: number;
  readonly idleMs: number;
  readonly self: readonly { readonly frame: string; readonly ms: number }[];
  readonly total: readonly { readonly frame: string; readonly ms: number }[];
  readonly origins: readonly { readonly origin: string; readonly ms: number }[];
}

export function summarize(profile: CpuProfile): ProfileSummary {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  const origins = new Map<string, number>();
  let busyMs = 0;
  let idleMs = 0;
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    // timeDeltas[i] is the gap before sample i; the gap after it is the time it stands for.
    const ms = (deltas[i + 1] ?? deltas[i] ?? 0) / 1000;
    const node = byId.get(samples[i]!);
    if (!node) continue;
    if (node.callFrame.functionName === '(idle)') {
      idleMs += ms;
      continue;
    }
    busyMs += ms;
    const key = label(node.callFrame);
    self.set(key, (self.get(key) ?? 0) + ms);
    const o = origin(node.callFrame.url, node.callFrame.functionName);
    origins.set(o, (origins.get(o) ?? 0) + ms);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const n = byId.get(id);
      if (!n || n.callFrame.functionName === '(root)') continue;
      const k = label(n.callFrame);
      if (seen.has(k)) continue;
      seen.add(k);
      total.set(k, (total.get(k) ?? 0) + ms);
    }
  }
  const sorted = (m: Map<string, number>): { frame: string; ms: number }[] => [...m].map(([frame, ms]) => ({ frame, ms })).sort((a, b) => b.ms - a.ms);
  return {
    busyMs,
    idleMs,
    self: sorted(self),
    total: sorted(total),
    origins: [...origins].map(([o, ms]) => ({ origin: o, ms })).sort((a, b) => b.ms - a.ms),
  };
}

export function formatSummary(s: ProfileSummary, top = 15): string {
  const pct = (ms: number): string => `${fixed((ms / s.busyMs) * 100, 1)}%`;
  return [
    `busy ${fixed(s.busyMs, 0)} ms, idle ${fixed(s.idleMs, 0)} ms (percentages are of busy time)`,
    '',
    'by origin (self time):',
    table(['origin', 'ms', 'share'], s.origins.slice(0, top).map((o) => [o.origin, fixed(o.ms, 0), pct(o.ms)])),
    '',
    `top ${top} frames by self time:`,
    table(['frame', 'ms', 'share'], s.self.slice(0, top).map((f) => [f.frame, fixed(f.ms, 0), pct(f.ms)])),
    '',
    `top ${top} ModelGuard frames by total time (self + callees):`,
    table(
      ['frame', 'ms', 'share'],
      s.total
        .filter((f) => f.frame.includes(' src/') || f.frame.includes(' dist/'))
        .slice(0, top)
        .map((f) => [f.frame, fixed(f.ms, 0), pct(f.ms)]),
    ),
  ].join('\n');
}

export function summarizeFile(file: string): ProfileSummary {
  return summarize(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: cpu-profile.ts <file.cpuprofile> [top]\n');
    process.exit(2);
  }
  process.stdout.write(`${formatSummary(summarizeFile(file), Number(process.argv[3] ?? 15))}\n`);
}

/** Busy time per request by origin, side by side for several profiled processes (µs/request). */
export function compareOrigins(runs: readonly { readonly name: string; readonly summary: ProfileSummary; readonly requests: number }[]): string {
  const origins = new Map<string, number>();
  for (const r of runs) for (const o of r.summary.origins) origins.set(o.origin, (origins.get(o.origin) ?? 0) + o.ms / r.requests);
  const names = [...origins].sort((a, b) => b[1] - a[1]).map(([o]) => o);
  const per = (r: (typeof runs)[number], origin: string): number => ((r.summary.origins.find((o) => o.origin === origin)?.ms ?? 0) / r.requests) * 1000;
  const rows = names.map((o) => [o, ...runs.map((r) => fixed(per(r, o), 1))]);
  rows.push(['total busy', ...runs.map((r) => fixed((r.summary.busyMs / r.requests) * 1000, 1))]);
  rows.push(['requests profiled', ...runs.map((r) => String(r.requests))]);
  return table(['origin (µs of busy time per request)', ...runs.map((r) => r.name)], rows);
}

/**
 * The main thread's .cpuprofile that `node --cpu-prof --cpu-prof-dir DIR` wrote, if any. Files are
 * named CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile; with `--import tsx` the loader's worker
 * thread writes its own (thread 1), which is not the program.
 */
export function profileIn(dir: string): string | undefined {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  const file = files.find((f) => f.split('.')[4] === '0') ?? files[0];
  return file === undefined ? undefined : join(dir, file);
}

/** Frames whose self time per request differs most between two profiles (µs/request, a − b). */
export function compareFrames(
  a: { readonly name: string; readonly summary: ProfileSummary; readonly requests: number },
  b: { readonly name: string; readonly summary: ProfileSummary; readonly requests: number },
  top = 20,
): string {
  const per = new Map<string, [number, number]>();
  for (const f of a.summary.self) per.set(f.frame, [(f.ms / a.requests) * 1000, 0]);
  for (const f of b.summary.self) {
    const e = per.get(f.frame) ?? [0, 0];
    e[1] = (f.ms / b.requests) * 1000;
    per.set(f.frame, e);
  }
  const rows = [...per]
    .map(([frame, [x, y]]) => ({ frame, x, y, d: x - y }))
    .sort((p, q) => q.d - p.d)
    .slice(0, top)
    .map((r) => [r.frame, fixed(r.x, 1), fixed(r.y, 1), fixed(r.d, 1)]);
  return table([`frame (self µs per request)`, a.name, b.name, 'difference'], rows);
}
