/**
 * SVG charts as strings. Only presentation attributes are used (no style attributes), so the page
 * runs under a Content-Security-Policy without 'unsafe-inline'. Time series are right-aligned: the
 * newest second is at the right edge, and a series shorter than `slots` starts part-way in.
 */
import { esc } from './format.ts';

const f = (n: number): string => (Math.round(n * 10) / 10).toString();

function xAt(i: number, n: number, slots: number, width: number): number {
  return ((slots - n + i) / Math.max(1, slots - 1)) * width;
}

/** A line with a soft area under it. `max` fixes the top of the scale (default: the largest value). */
export function sparkline(values: readonly number[], opts: { color: string; slots: number; max?: number; width?: number; height?: number; label?: string }): string {
  const w = opts.width ?? 120;
  const h = opts.height ?? 28;
  const top = Math.max(opts.max ?? 0, ...values, 1e-9);
  const pts = values.map((v, i) => `${f(xAt(i, values.length, opts.slots, w))},${f(h - 1 - (Math.max(0, v) / top) * (h - 2))}`);
  const label = opts.label ? `<title>${esc(opts.label)}</title>` : '';
  if (pts.length < 2) return `<svg class="spark" viewBox="0 0 ${w} ${h}" preserveAspectRatio="none">${label}</svg>`;
  const first = pts[0]!.split(',')[0]!;
  return (
    `<svg class="spark" viewBox="0 0 ${w} ${h}" preserveAspectRatio="none">${label}` +
    `<path d="M${first},${h} L${pts.join(' L')} L${w},${h} Z" fill="${opts.color}" fill-opacity="0.18"/>` +
    `<polyline points="${pts.join(' ')}" fill="none" stroke="${opts.color}" stroke-width="1.5" vector-effect="non-scaling-stroke"/></svg>`
  );
}

export interface Series {
  readonly name: string;
  readonly color: string;
  /** Share per second, 0..1; null where nothing ran. */
  readonly values: readonly (number | null)[];
}

/** Shares stacked to 100%: who had the accelerator, second by second. */
export function stackedArea(series: readonly Series[], slots: number, width = 600, height = 150): string {
  const n = Math.max(0, ...series.map((s) => s.values.length));
  const grid = [0.25, 0.5, 0.75].map((g) => `<line x1="0" x2="${width}" y1="${f(height * g)}" y2="${f(height * g)}" class="grid"/>`).join('');
  let out = `<svg class="area" viewBox="0 0 ${width} ${height}" preserveAspectRatio="none" role="img" aria-label="accelerator share per group over time">${grid}`;
  if (n >= 2) {
    const base = new Array<number>(n).fill(0);
    for (const s of series) {
      const lower = [...base];
      for (let i = 0; i < n; i++) base[i] = base[i]! + (s.values[i] ?? 0);
      const y = (v: number): string => f(height - Math.min(1, v) * height);
      const upper = base.map((v, i) => `${f(xAt(i, n, slots, width))},${y(v)}`);
      const back = lower.map((v, i) => `${f(xAt(i, n, slots, width))},${y(v)}`).reverse();
      out += `<polygon points="${[...upper, ...back].join(' ')}" fill="${s.color}" fill-opacity="0.85"><title>${esc(s.name)}</title></polygon>`;
    }
  }
  return `${out}</svg>`;
}

/** A horizontal bar filled to `value` (0..1), with an optional marker line at `marker` (0..1). */
export function meter(value: number, color: string, marker: number | null = null, title = ''): string {
  const w = 200;
  const v = Math.max(0, Math.min(1, value));
  const m = marker === null ? '' : `<line x1="${f(Math.min(1, marker) * w)}" x2="${f(Math.min(1, marker) * w)}" y1="-1" y2="11" class="marker"/>`;
  return (
    `<svg class="meter" viewBox="0 0 ${w} 10" preserveAspectRatio="none">${title ? `<title>${esc(title)}</title>` : ''}` +
    `<rect width="${w}" height="10" rx="3" class="track"/><rect width="${f(v * w)}" height="10" rx="3" fill="${color}"/>${m}</svg>`
  );
}

/** One box per slot, filled when busy (a meter instead beyond 24 slots). */
export function slotBoxes(busy: number, slots: number, color: string): string {
  if (slots > 24) return meter(busy / Math.max(1, slots), color, null, `${busy} of ${slots} slots busy`);
  const size = 12;
  const gap = 4;
  const boxes = Array.from({ length: slots }, (_, i) => `<rect x="${i * (size + gap)}" width="${size}" height="${size}" rx="2" ${i < busy ? `fill="${color}"` : 'class="free"'}/>`);
  // More in flight than slots (dispatchAhead) shows as a plus.
  const extra = busy > slots ? `<text x="${slots * (size + gap)}" y="10" class="extra">+${busy - slots}</text>` : '';
  return `<svg class="slots" width="${slots * (size + gap) + (extra ? 24 : 0)}" height="${size}"><title>${busy} of ${slots} slots busy</title>${boxes.join('')}${extra}</svg>`;
}

const LOG_LO = -1; // 0.1 ms
const LOG_HI = 4; // 10 s

/** p50..p99 as a range on a log scale from 0.1 ms to 10 s, p95 as a tick, p50 as a dot. */
export function latencyRange(p: { readonly p50: number; readonly p95: number; readonly p99: number } | null, color: string): string {
  const w = 220;
  const x = (v: number): number => ((Math.min(LOG_HI, Math.max(LOG_LO, Math.log10(Math.max(v, 1e-3)))) - LOG_LO) / (LOG_HI - LOG_LO)) * w;
  const ticks = ['1ms', '10ms', '100ms', '1s']
    .map((label, e) => `<line x1="${f(x(10 ** e))}" x2="${f(x(10 ** e))}" y1="0" y2="14" class="grid"/><text x="${f(x(10 ** e))}" y="23" text-anchor="middle">${label}</text>`)
    .join('');
  let marks = '';
  if (p) {
    marks =
      `<rect x="${f(x(p.p50))}" y="4" width="${f(Math.max(2, x(p.p99) - x(p.p50)))}" height="6" rx="3" fill="${color}" fill-opacity="0.45"/>` +
      `<line x1="${f(x(p.p95))}" x2="${f(x(p.p95))}" y1="2" y2="12" stroke="${color}" stroke-width="2"/>` +
      `<circle cx="${f(x(p.p50))}" cy="7" r="4" fill="${color}"/>`;
  }
  return `<svg class="range" width="${w}" height="24" viewBox="0 0 ${w} 24"><title>p50 (dot), p95 (tick) and p99 (end of bar); log scale 0.1 ms … 10 s</title>${ticks}${marks}</svg>`;
}

/** Parts of a whole side by side (rejections by reason). */
export function stackBar(parts: readonly { readonly value: number; readonly color: string; readonly title: string }[], width = 160): string {
  const total = parts.reduce((n, p) => n + p.value, 0);
  if (total === 0) return '';
  let x = 0;
  const rects = parts.map((p) => {
    const pw = (p.value / total) * width;
    const r = `<rect x="${f(x)}" width="${f(pw)}" height="10" fill="${p.color}"><title>${esc(p.title)}</title></rect>`;
    x += pw;
    return r;
  });
  return `<svg class="stack" viewBox="0 0 ${width} 10" preserveAspectRatio="none">${rects.join('')}</svg>`;
}
