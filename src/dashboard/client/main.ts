/**
 * The dashboard page: follows /api/v1/events (one live view a second) and redraws each section from
 * it. Everything is built as escaped HTML and SVG strings; nothing is fetched but the event stream.
 */
import type { AppView, EndpointView, ErrorView, GroupView, LiveView, ModelView, OffloadView, RefusalView } from '../../observability/live-view.ts';
import { latencyRange, meter, slotBoxes, sparkline, stackBar, stackedArea } from './charts.ts';
import { body, byId, setTitle, subscribe, textOf } from './dom.ts';
import { clock, count, duration, esc, ms, num, pct } from './format.ts';
import { followQos } from './qos.ts';

const PALETTE = ['#4cc9f0', '#f7b801', '#f15bb5', '#9b5de5', '#00f5d4', '#fb5607', '#80ed99', '#ff8fa3'];
const CODE_COLORS: Readonly<Record<string, string>> = {
  MG_RATE_LIMITED: '#f4a261',
  MG_QUEUE_FULL: '#e9c46a',
  MG_UNAUTHENTICATED: '#a8dadc',
  MG_FORBIDDEN: '#8ecae6',
  MG_MODEL_NOT_FOUND: '#b8c0ff',
  MG_BAD_REQUEST: '#cdb4db',
  MG_TOO_LARGE: '#ffc8dd',
  MG_QUEUE_TIMEOUT: '#ef476f',
  MG_NO_BACKEND: '#d62828',
  MG_BACKEND_TIMEOUT: '#f77f00',
  MG_BACKEND_ERROR: '#e63946',
  MG_INTERNAL: '#9d0208',
};
const OK_COLOR = '#52b788';
const BAD_COLOR = '#e63946';

/** A group keeps its colour for the life of the page, whatever comes and goes. */
const groupColors = new Map<string, string>();
function colorOf(group: string): string {
  let c = groupColors.get(group);
  if (c === undefined) groupColors.set(group, (c = PALETTE[groupColors.size % PALETTE.length]!));
  return c;
}
const codeColor = (code: string): string => CODE_COLORS[code] ?? '#adb5bd';
const dot = (color: string): string => `<svg class="dot" width="10" height="10"><circle cx="5" cy="5" r="5" fill="${color}"/></svg>`;
const stat = (label: string, value: string, field = ''): string => `<div><small>${label}</small><b${field ? ` data-field="${field}"` : ''}>${value}</b></div>`;

function renderHeader(v: LiveView): void {
  byId('gateway').textContent = `gateway ${v.config.name}`;
  byId('config-version').textContent = `v${v.config.version}`;
  byId('config-hash').textContent = v.config.hash.slice(0, 12);
  byId('fairness').textContent = `fairness ${v.config.fairness} · auth ${v.config.auth} · up ${duration((v.at - v.startedAt) / 1000)}`;
  byId('total-rate').textContent = num(v.totals.perSecond);
  byId('totals').textContent = `${count(v.totals.requests)} requests · ${count(v.totals.rejected)} refused or failed since start`;
  setTitle(`ModelGuard · ${num(v.totals.perSecond)} req/s`);
}

function renderShare(v: LiveView, groups: readonly GroupView[], span: number): void {
  byId('share-unit').textContent = `${v.shareUnit} per second, last ${span} s`;
  byId('share-chart').innerHTML = stackedArea(
    groups.map((g) => ({ name: g.name, color: colorOf(g.name), values: g.history.share })),
    span,
  );
  byId('share-legend').innerHTML = groups
    .map(
      (g) =>
        `<span data-group="${esc(g.name)}">${dot(colorOf(g.name))}<b>${esc(g.name)}</b> ${pct(g.usedShare)}` +
        `<small> configured ${pct(g.configuredShare)}${groups.some((o) => o.priority !== g.priority) ? ` at priority ${g.priority}` : ''}</small></span>`,
    )
    .join('');
}

function groupCard(g: GroupView, slots: number): string {
  const c = colorOf(g.name);
  const queueFull = g.maxLength > 0 ? g.queued / g.maxLength : 0;
  return (
    `<article class="card" data-group="${esc(g.name)}">` +
    `<header>${dot(c)}<h3>${esc(g.name)}</h3><span class="chip">priority ${g.priority}</span><span class="chip">weight ${num(g.weight)}</span></header>` +
    `<div class="big"><b data-field="perSecond">${num(g.perSecond)}</b><small>req/s</small>` +
    `${sparkline(g.history.perSecond, { color: c, slots, label: `answered per second, last ${slots} s` })}</div>` +
    `<div class="row"><label>share</label>${meter(g.usedShare ?? 0, c, g.configuredShare, 'used share; the line is the configured share')}` +
    `<span><b data-field="usedShare">${pct(g.usedShare)}</b> <small>of ${pct(g.configuredShare)}</small></span></div>` +
    `<div class="row"><label>queue</label>${meter(queueFull, queueFull > 0.8 ? BAD_COLOR : c, null, 'queued ÷ queue.maxLength')}` +
    `<span><b data-field="queued">${count(g.queued)}</b> <small>/ ${count(g.maxLength)}</small></span></div>` +
    `<div class="row"><label>depth</label>${sparkline(g.history.queued, { color: c, slots, width: 200, height: 18, label: `queue depth, last ${slots} s` })}<span></span></div>` +
    `<div class="stats">${stat('queue wait p50', ms(g.wait?.p50), 'waitP50')}${stat('p95', ms(g.wait?.p95))}${stat('p99', ms(g.wait?.p99))}` +
    `${stat('in flight', count(g.inflight))}${stat('dispatched', count(g.dispatched), 'dispatched')}` +
    `<div class="${g.rejectedPerSecond > 0 ? 'bad' : ''}"><small>refused/s</small><b data-field="rejectedPerSecond">${num(g.rejectedPerSecond)}</b></div></div>` +
    `</article>`
  );
}

function endpointRow(e: EndpointView, slots: number): string {
  const color = e.healthy ? OK_COLOR : BAD_COLOR;
  return (
    `<tr data-endpoint="${esc(e.url)}"><td>${dot(color)}</td><td><b>${esc(e.backend)}</b><br><small>${esc(e.url)}</small>${e.healthy ? '' : ' <span class="chip bad">ejected</span>'}</td>` +
    `<td>${slotBoxes(e.inflight, e.slots, color)}</td>` +
    `<td>${sparkline(e.busy, { color, slots, max: e.slots, width: 100, height: 20, label: `busy slots, last ${slots} s` })}</td>` +
    `<td class="n">${count(e.served)}</td><td class="n${e.failures > 0 ? ' bad' : ''}">${count(e.failures)}</td><td class="n">${ms(e.latencyMs)}</td></tr>`
  );
}

function offloadRow(o: OffloadView): string {
  const color = o.breaker === 'closed' ? OK_COLOR : BAD_COLOR;
  return (
    `<tr data-offload="${esc(o.model)}"><td>${dot(color)}</td><td><b>${esc(o.model)}</b><br><small>→ ${esc(o.backend)} · ${esc(o.when)}</small></td>` +
    `<td>${esc(o.breaker)}${o.breakerOpened > 0 ? ` <small>(opened ${count(o.breakerOpened)}×)</small>` : ''}</td>` +
    `<td class="n">${ms(o.edgeServiceMs)}</td><td class="n">${ms(o.cloudMs)}</td>` +
    `<td class="n">${count(o.sent)}</td><td class="n">${count(o.answered)}</td><td class="n">${o.leftToday === null ? '–' : count(o.leftToday)}</td></tr>`
  );
}

function modelRow(m: ModelView): string {
  const l = m.latency;
  return (
    `<tr data-model="${esc(m.name)}"><td><b>${esc(m.name)}</b><br><small>${esc(m.backend)}</small></td><td class="n">${num(m.perSecond)}</td>` +
    `<td>${latencyRange(l, '#4cc9f0')}</td><td class="n">${ms(l?.p50)}</td><td class="n">${ms(l?.p95)}</td><td class="n">${ms(l?.p99)}</td>` +
    `<td class="n">${ms(m.backendTime?.p50)}</td>` +
    `<td class="n" data-field="batch">${m.batch ? `<span title="rows per backend call (recent) / maxBatchSize; batching added ${ms(m.batch.delayMs)} per call">${num(m.batch.size)}<small>/${m.batch.maxBatchSize}</small></span>` : '–'}</td></tr>`
  );
}

function appRow(a: AppView): string {
  const reasons = Object.entries(a.rejections).sort((x, y) => y[1] - x[1]);
  const refused = reasons.reduce((n, [, v]) => n + v, 0);
  const bar = stackBar(reasons.map(([code, v]) => ({ value: v, color: codeColor(code), title: `${code}: ${v}` })));
  const list = reasons
    .slice(0, 3)
    .map(([code, v]) => `<span class="code">${dot(codeColor(code))}${esc(code.replace(/^MG_/, ''))} ${count(v)}</span>`)
    .join(' ');
  return (
    `<tr data-app="${esc(a.name)}"><td><b>${esc(a.name)}</b></td><td>${a.group ? `<span class="chip">${esc(a.group)}</span>` : ''}</td>` +
    `<td class="n" data-field="perSecond">${num(a.perSecond)}</td><td class="n">${count(a.requests)}</td>` +
    `<td class="n${refused > 0 ? ' bad' : ''}">${count(refused)}</td><td>${bar}<div>${list}</div></td></tr>`
  );
}

/** Admission refusals by reason: the first three answer at arrival (429), queue-timeout at the deadline (503). */
const REFUSAL_REASONS: readonly { reason: string; color: string; title: string }[] = [
  { reason: 'predicted-wait', color: '#e9c46a', title: 'refused at arrival: predicted wait past the deadline' },
  { reason: 'rate-drop', color: '#f4a261', title: 'queued, refused when a fall of the drain rate made it miss its deadline' },
  { reason: 'queue-full', color: '#ffd166', title: 'refused at arrival: queue.maxLength reached' },
  { reason: 'queue-timeout', color: '#ef476f', title: 'waited in the queue until its deadline (the prediction, if any, was wrong)' },
];

function refusalRow(r: RefusalView): string {
  const n = (reason: string): number => r.byReason[reason] ?? 0;
  const total = REFUSAL_REASONS.reduce((s, x) => s + n(x.reason), 0);
  const bar = stackBar(REFUSAL_REASONS.map((x) => ({ value: n(x.reason), color: x.color, title: `${x.reason}: ${n(x.reason)} — ${x.title}` })));
  return (
    `<tr data-refusals="${esc(r.group)}"><td>${dot(colorOf(r.group))}<b>${esc(r.group)}</b></td>` +
    REFUSAL_REASONS.map((x) => `<td class="n" data-reason="${x.reason}">${count(n(x.reason))}</td>`).join('') +
    `<td class="n">${pct(total > 0 ? 1 - n('queue-timeout') / total : null)}</td><td>${bar}</td></tr>`
  );
}

/** Runs of the same error (code, app, group, model) in a row, newest first: one line each. */
function errorRuns(errors: readonly ErrorView[], max: number): { e: ErrorView; n: number }[] {
  const runs: { e: ErrorView; n: number }[] = [];
  for (const e of errors) {
    const last = runs[runs.length - 1];
    if (last && last.e.outcome === e.outcome && last.e.app === e.app && last.e.group === e.group && last.e.model === e.model) last.n++;
    else if (runs.length < max) runs.push({ e, n: 1 });
    else break;
  }
  return runs;
}

function errorRow({ e, n }: { e: ErrorView; n: number }): string {
  const where = [e.app, e.group, e.model].map((x) => esc(x ?? '–')).join(' · ');
  return (
    `<tr><td class="n">${clock(e.at)}</td><td><span class="code">${dot(codeColor(e.outcome))}${esc(e.outcome)}</span>${n > 1 ? ` <small>×${n}</small>` : ''}</td>` +
    `<td class="n">${e.status}</td><td>${where}</td><td><small>${esc(e.id)}</small></td></tr>`
  );
}

const table = (head: readonly string[], rows: string, empty: string): string =>
  rows ? `<table><thead><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>${rows}</tbody></table>` : `<p class="empty">${empty}</p>`;

let updates = 0;
let lastUpdate = 0;

function render(v: LiveView): void {
  const groups = [...v.groups].sort((a, b) => b.priority - a.priority || a.name.localeCompare(b.name));
  // Charts span the history there is (up to a minute), so a fresh start is not a sliver at the edge.
  const span = Math.max(2, ...groups.map((g) => g.history.perSecond.length));
  renderHeader(v);
  renderShare(v, groups, span);
  byId('groups').innerHTML = groups.map((g) => groupCard(g, span)).join('');
  byId('endpoints').innerHTML = table(['', 'endpoint', 'slots', `busy, ${span} s`, 'served', 'failures', 'latency'], v.endpoints.map((e) => endpointRow(e, span)).join(''), 'No backends configured.');
  byId('models').innerHTML = table(['model', 'req/s', 'p50 · p95 · p99 (log scale)', 'p50', 'p95', 'p99', 'backend p50', '<span title="batch size: rows per backend call (recent) / maxBatchSize">batch</span>'], v.models.map(modelRow).join(''), 'No models configured.');
  const apps = [...v.apps].sort((a, b) => b.requests - a.requests || a.name.localeCompare(b.name));
  byId('apps').innerHTML = table(['app', 'group', 'req/s', 'requests', 'refused', 'by reason'], apps.map(appRow).join(''), 'No apps configured.');
  byId('refusals').innerHTML = table(
    ['group', ...REFUSAL_REASONS.map((x) => `<span title="${x.title}">${x.reason}</span>`), 'early', 'by reason'],
    (v.refusals ?? []).map(refusalRow).join(''),
    'No refusals: every request so far was admitted.',
  );
  byId('offload').innerHTML = table(['', 'model', 'cloud link', 'edge service', 'cloud predicted', 'sent', 'answered', 'budget left today'], v.offload.map(offloadRow).join(''), 'No model offloads to the cloud.');
  byId('errors').innerHTML = table(['last', 'code', 'status', 'app · group · model', 'request id'], errorRuns(v.errors, 10).map(errorRow).join(''), 'No errors: every request so far was answered.');
  updates++;
  lastUpdate = Date.now();
  body().setAttribute('data-updates', String(updates));
  body().setAttribute('data-version', String(v.config.version));
  setLive('live', `live · ${clock(v.at)}`);
}

function setLive(state: 'live' | 'stale' | 'down', text: string): void {
  byId('live').className = `live ${state}`;
  byId('live-text').textContent = text;
}

// A browser's EventSource cannot send headers: an admin token given in the page's URL
// (`/?token=...`) is passed on as a query parameter.
declare const location: { readonly search: string };
const token = /[?&]token=([^&]*)/.exec(location.search)?.[1];
// The view served inside the page: drawn at once, before the event stream's first message.
const initial = textOf('initial-view');
if (initial) render(JSON.parse(initial) as LiveView);
const events = subscribe(token === undefined ? '/api/v1/events' : `/api/v1/events?token=${token}`);
events.onmessage = (e) => render(JSON.parse(e.data) as LiveView);
events.onerror = () => setLive('down', 'disconnected · retrying');
followQos(token);
setInterval(() => {
  if (lastUpdate > 0 && Date.now() - lastUpdate > 3000) setLive('stale', `no update since ${clock(lastUpdate)}`);
}, 1000);
