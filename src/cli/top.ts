/**
 * `modelguard top`: the dashboard's live view in a terminal. Polls the admin listener's
 * `/api/v1/live` once a second and redraws; q or Ctrl-C quits. `-n N` draws N frames and exits
 * (for scripts; without a terminal, frames are printed one after another, without colour).
 */
import { adminFetch } from './admin-client.ts';
import { controllerText, fetchStatus } from './status.ts';
import type { AppView, EndpointView, ErrorView, GroupView, LiveView, ModelView } from '../observability/live-view.ts';

const SPARKS = '▁▂▃▄▅▆▇█';
const EIGHTHS = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
/** 256-colour codes for groups, in order of appearance (the dashboard's palette, near enough). */
const GROUP_COLORS = [81, 220, 205, 141, 50, 202, 120, 211];

export interface TopOptions {
  readonly width: number;
  readonly color: boolean;
}

interface Paint {
  (code: string, text: string): string;
}

function painter(color: boolean): Paint {
  return (code, text) => (color && text ? `\x1b[${code}m${text}\x1b[0m` : text);
}

/** Visible length: ANSI sequences take no columns. */
const visible = (s: string): number => s.replace(/\x1b\[[0-9;]*m/g, '').length;
const pad = (s: string, n: number): string => s + ' '.repeat(Math.max(0, n - visible(s)));
const lpad = (s: string, n: number): string => ' '.repeat(Math.max(0, n - visible(s))) + s;

function clip(line: string, width: number): string {
  if (visible(line) <= width) return line;
  let out = '';
  let cols = 0;
  for (let i = 0; i < line.length && cols < width - 1; i++) {
    const esc = /^\x1b\[[0-9;]*m/.exec(line.slice(i));
    if (esc) {
      out += esc[0];
      i += esc[0].length - 1;
    } else {
      out += line[i];
      cols++;
    }
  }
  return `${out}…\x1b[0m`;
}

export function sparkline(values: readonly number[], width: number, max?: number): string {
  const tail = values.slice(-width);
  const top = Math.max(max ?? 0, ...tail, 1e-9);
  return tail.map((v) => SPARKS[Math.min(7, Math.max(0, Math.round((v / top) * 7)))]).join('');
}

/** A bar of `width` cells filled to `frac`, in eighths of a cell. */
export function bar(frac: number, width: number): string {
  const eighths = Math.round(Math.max(0, Math.min(1, frac)) * width * 8);
  const full = Math.floor(eighths / 8);
  return `${'█'.repeat(full)}${EIGHTHS[eighths % 8] ?? ''}`.padEnd(width, ' ');
}

const num = (n: number): string => (n >= 100 || Number.isInteger(n) ? n.toFixed(0) : n.toFixed(n >= 10 ? 1 : 2));
const count = (n: number): string => Math.round(n).toLocaleString('en-US');
const ms = (v: number | undefined): string => (v === undefined ? '–' : v >= 1000 ? `${(v / 1000).toFixed(1)}s` : v >= 10 ? v.toFixed(0) : v.toFixed(1));
const pct = (v: number | null): string => (v === null ? '–' : `${Math.round(v * 100)}%`);
const clock = (t: number): string => new Date(t).toTimeString().slice(0, 8);

function groupLines(groups: readonly GroupView[], paint: Paint, colorOf: (g: string) => number): string[] {
  const head = paint('1', `${pad('GROUP', 14)} PRIO     W   REQ/S  ${pad('SHARE used (cfg)', 22)} ${lpad('QUEUE', 11)}  ${pad('WAIT p50/95/99 ms', 18)} INFL REFUSED/s  LAST 60 s`);
  const rows = groups.map((g) => {
    const share = `${paint(`38;5;${colorOf(g.name)}`, bar(g.usedShare ?? 0, 10))} ${lpad(pct(g.usedShare), 4)} (${pct(g.configuredShare)})`;
    const wait = g.wait ? `${ms(g.wait.p50)}/${ms(g.wait.p95)}/${ms(g.wait.p99)}` : '–';
    const queueFull = g.maxLength > 0 && g.queued / g.maxLength > 0.8;
    return [
      paint(`1;38;5;${colorOf(g.name)}`, pad(g.name, 14)),
      lpad(String(g.priority), 4),
      lpad(num(g.weight), 5),
      lpad(num(g.perSecond), 7),
      ` ${pad(share, 22)}`,
      lpad(paint(queueFull ? '31' : '', `${count(g.queued)}/${count(g.maxLength)}`), 11),
      ` ${pad(wait, 18)}`,
      lpad(String(g.inflight), 4),
      lpad(paint(g.rejectedPerSecond > 0 ? '31' : '', num(g.rejectedPerSecond)), 10),
      `  ${paint(`38;5;${colorOf(g.name)}`, sparkline(g.history.perSecond, 20))}`,
    ].join(' ');
  });
  return [head, ...rows];
}

function endpointLines(endpoints: readonly EndpointView[], paint: Paint): string[] {
  const head = paint('1', `${pad('ENDPOINT', 44)} HEALTH  ${pad('SLOTS BUSY', 14)}  SERVED  FAILURES  LATENCY  LAST 60 s`);
  const rows = endpoints.map((e) => {
    const boxes = e.slots <= 10 ? '■'.repeat(Math.min(e.inflight, e.slots)) + '□'.repeat(Math.max(0, e.slots - e.inflight)) : bar(e.inflight / e.slots, 10);
    return [
      pad(`${e.backend} ${e.url}`, 44),
      e.healthy ? paint('32', 'up    ') : paint('1;31', 'DOWN  '),
      ` ${pad(`${paint(e.healthy ? '32' : '31', boxes)} ${e.inflight}/${e.slots}`, 14)}`,
      lpad(count(e.served), 7),
      lpad(paint(e.failures > 0 ? '31' : '', count(e.failures)), 9),
      lpad(`${ms(e.latencyMs)}ms`, 8),
      ` ${sparkline(e.busy, 20, e.slots)}`,
    ].join(' ');
  });
  return [head, ...rows];
}

function modelLines(models: readonly ModelView[], paint: Paint): string[] {
  const head = paint('1', `${pad('MODEL', 20)} ${pad('BACKEND', 16)}  REQ/S  p50 ms  p95 ms  p99 ms  BACKEND p50`);
  return [
    head,
    ...models.map((m) =>
      [pad(m.name, 20), pad(m.backend, 16), lpad(num(m.perSecond), 6), lpad(ms(m.latency?.p50), 7), lpad(ms(m.latency?.p95), 7), lpad(ms(m.latency?.p99), 7), lpad(ms(m.backendTime?.p50), 12)].join(' '),
    ),
  ];
}

function appLines(apps: readonly AppView[], paint: Paint): string[] {
  const head = paint('1', `${pad('APP', 20)} ${pad('GROUP', 12)}  REQ/S  REQUESTS  REFUSED  BY REASON`);
  const sorted = [...apps].sort((a, b) => b.requests - a.requests || a.name.localeCompare(b.name));
  return [
    head,
    ...sorted.map((a) => {
      const reasons = Object.entries(a.rejections).sort((x, y) => y[1] - x[1]);
      const refused = reasons.reduce((n, [, v]) => n + v, 0);
      const text = reasons.map(([code, v]) => `${code.replace(/^MG_/, '')} ${count(v)}`).join(', ');
      return [pad(a.name, 20), pad(a.group, 12), lpad(num(a.perSecond), 6), lpad(count(a.requests), 9), lpad(paint(refused > 0 ? '31' : '', count(refused)), 8), ` ${text}`].join(' ');
    }),
  ];
}

function errorLines(errors: readonly ErrorView[], paint: Paint, max: number): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < errors.length && out.length < max) {
    const e = errors[i]!;
    let n = 1;
    while (i + n < errors.length && ((o) => o.outcome === e.outcome && o.app === e.app && o.group === e.group && o.model === e.model)(errors[i + n]!)) n++;
    const where = [e.app, e.group, e.model].map((x) => x ?? '–').join(' · ');
    out.push(`${clock(e.at)}  ${paint(e.status >= 500 ? '31' : '33', pad(e.outcome, 20))} ${lpad(n > 1 ? `×${n}` : '', 5)}  ${e.status}  ${where}  ${paint('2', e.id)}`);
    i += n;
  }
  return [paint('1', 'RECENT ERRORS'), ...(out.length > 0 ? out : [paint('2', 'none: every request so far was answered')])];
}

/** One frame of `top` for a live view. */
export function renderTop(v: LiveView, opts: TopOptions): string {
  const paint = painter(opts.color);
  const order = new Map<string, number>();
  const colorOf = (g: string): number => {
    if (!order.has(g)) order.set(g, order.size);
    return GROUP_COLORS[order.get(g)! % GROUP_COLORS.length]!;
  };
  const groups = [...v.groups].sort((a, b) => b.priority - a.priority || a.name.localeCompare(b.name));
  const up = Math.round((v.at - v.startedAt) / 1000);
  const lines = [
    `${paint('1;36', 'ModelGuard top')}  gateway ${v.config.name} · config ${paint('1', `v${v.config.version}`)} (${v.config.hash.slice(0, 12)}) · fairness ${v.config.fairness} · up ${up}s · ${paint('1', num(v.totals.perSecond))} req/s · ${clock(v.at)}`,
    paint('2', `rates and percentiles over the last ${v.windowSeconds} s; share of ${v.shareUnit}; cfg = weight ÷ weights at the same priority · q quits`),
    '',
    ...groupLines(groups, paint, colorOf),
    '',
    ...endpointLines(v.endpoints, paint),
    '',
    ...modelLines(v.models, paint),
    '',
    ...appLines(v.apps, paint),
    '',
    ...errorLines(v.errors, paint, 6),
  ];
  return lines.map((l) => clip(l, opts.width)).join('\n');
}

/** A node's live view; a controller has none, so its frame is its status (nodes and versions). */
async function readFrame(adminUrl: string, opts: TopOptions): Promise<string> {
  const res = await adminFetch(adminUrl, '/api/v1/live');
  if (res.status === 404) {
    const s = await fetchStatus(adminUrl);
    if ('role' in s && s.role === 'controller') return `ModelGuard top · controller ${adminUrl} · ${clock(Date.now())} · q quits\n\n${controllerText(s)}`;
  }
  if (!res.ok) throw new Error(`admin listener answered ${res.status}`);
  return renderTop((await res.json()) as LiveView, opts);
}

/** Runs until q / Ctrl-C, or for `iterations` frames. */
export async function top(adminUrl: string, opts: { iterations?: number; intervalMs?: number } = {}): Promise<void> {
  const out = process.stdout;
  const interactive = out.isTTY && opts.iterations === undefined;
  const color = out.isTTY && process.env['NO_COLOR'] === undefined;
  let stopped = false;
  let wake: (() => void) | undefined;
  const stop = (): void => {
    stopped = true;
    wake?.();
  };
  const restore = (): void => {
    if (interactive) out.write('\x1b[?25h\x1b[?1049l');
    if (process.stdin.isTTY) process.stdin.setRawMode(false);
    process.stdin.pause();
  };
  if (interactive) {
    out.write('\x1b[?1049h\x1b[?25l'); // alternate screen, cursor hidden
    process.stdin.setRawMode(true);
    process.stdin.resume();
    process.stdin.on('data', (d: Buffer) => {
      const k = d.toString();
      if (k === 'q' || k === 'Q' || k === '\u0003') stop();
    });
  }
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    for (let frame = 0; !stopped && (opts.iterations === undefined || frame < opts.iterations); frame++) {
      let text: string;
      try {
        text = await readFrame(adminUrl, { width: out.columns || 160, color });
      } catch (err) {
        if (!interactive) throw new Error(`cannot read ${adminUrl}/api/v1/live (${(err as Error).message}); is ModelGuard running? pass --admin URL`);
        text = `cannot read ${adminUrl}/api/v1/live (${(err as Error).message}); retrying…`;
      }
      out.write(interactive ? `\x1b[H\x1b[2J${text}` : `${text}\n\n`);
      if (opts.iterations !== undefined && frame + 1 >= opts.iterations) break;
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, opts.intervalMs ?? 1000);
      });
    }
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    restore();
  }
}
