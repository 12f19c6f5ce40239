/**
 * How long a simulated model holds an accelerator slot per request: fixed, uniform, or exponential,
 * sampled from a seeded generator so that a benchmark or test run can be repeated exactly. A batch
 * of R rows (dim 0) can cost more than one row: `perRowMs` is added for every row after the first,
 * as an accelerator runs a batch in little more time than a single input (`20ms+1ms/row`).
 */
import { parseDuration } from '../core/duration.ts';

export type ServiceTime = (
  | { readonly kind: 'fixed'; readonly ms: number }
  | { readonly kind: 'uniform'; readonly minMs: number; readonly maxMs: number }
  | { readonly kind: 'exponential'; readonly meanMs: number }
) & {
  /** Added per row after the first (dim 0 of the first input); default 0: a batch costs one row's time. */
  readonly perRowMs?: number;
};

/**
 * Accepted everywhere a service time is configured: a number of milliseconds, a string
 * (`20ms`, `10ms..30ms` or `uniform:10ms..30ms`, `exp:20ms` or `exponential:20ms`, each optionally
 * followed by `+1ms/row`), or the object form.
 */
export type ServiceTimeSpec = number | string | ServiceTime;

export type Random = () => number;

function duration(text: string, whole: string): number {
  const ms = parseDuration(text);
  if (ms === undefined) throw new Error(`invalid service time "${whole}": "${text}" is not a duration like 20ms`);
  return ms;
}

function check(st: ServiceTime): ServiceTime {
  const values = [...(st.kind === 'fixed' ? [st.ms] : st.kind === 'uniform' ? [st.minMs, st.maxMs] : [st.meanMs]), st.perRowMs ?? 0];
  if (values.some((v) => !Number.isFinite(v) || v < 0)) throw new Error(`invalid service time: ${JSON.stringify(st)} (values must be finite and ≥ 0)`);
  if (st.kind === 'uniform' && st.minMs > st.maxMs) throw new Error(`invalid service time: uniform min ${st.minMs}ms > max ${st.maxMs}ms`);
  return Object.freeze({ ...st });
}

/** Normalizes and validates a spec; throws an Error naming the problem. */
export function parseServiceTime(spec: ServiceTimeSpec): ServiceTime {
  if (typeof spec === 'number') return check({ kind: 'fixed', ms: spec });
  if (typeof spec !== 'string') return check(spec);
  const plus = /^(.*)\+\s*([^+]+)\/row$/.exec(spec.trim());
  if (plus) {
    const perRowMs = duration(plus[2]?.trim() ?? '', spec);
    return check({ ...parseServiceTime(plus[1] ?? ''), perRowMs });
  }
  const text = spec.trim();
  const colon = text.indexOf(':');
  const kind = colon < 0 ? '' : text.slice(0, colon).toLowerCase();
  const rest = colon < 0 ? text : text.slice(colon + 1);
  if (kind === 'exp' || kind === 'exponential') return check({ kind: 'exponential', meanMs: duration(rest, spec) });
  if (kind !== '' && kind !== 'uniform' && kind !== 'fixed') throw new Error(`invalid service time "${spec}": unknown kind "${kind}" (fixed, uniform, exp)`);
  const range = rest.split('..');
  if (range.length === 2) return check({ kind: 'uniform', minMs: duration(range[0] ?? '', spec), maxMs: duration(range[1] ?? '', spec) });
  if (kind === 'uniform') throw new Error(`invalid service time "${spec}": uniform needs min..max`);
  return check({ kind: 'fixed', ms: duration(rest, spec) });
}

export function formatServiceTime(st: ServiceTime): string {
  const perRow = st.perRowMs ? `+${st.perRowMs}ms/row` : '';
  if (st.kind === 'fixed') return `${st.ms}ms${perRow}`;
  if (st.kind === 'uniform') return `uniform:${st.minMs}ms..${st.maxMs}ms${perRow}`;
  return `exp:${st.meanMs}ms${perRow}`;
}

/** mulberry32: a tiny, fast, well-distributed 32-bit generator. Returns values in [0, 1). */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a, to derive a per-model seed so one model's samples do not depend on another's traffic. */
export function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** One sample for a request of `rows` rows (dim 0): the base sample, plus perRowMs per row after the first. */
export function sampleServiceTime(st: ServiceTime, random: Random, rows = 1): number {
  const extra = (st.perRowMs ?? 0) * Math.max(0, rows - 1);
  switch (st.kind) {
    case 'fixed':
      return st.ms + extra;
    case 'uniform':
      return st.minMs + (st.maxMs - st.minMs) * random() + extra;
    case 'exponential':
      return -st.meanMs * Math.log(1 - random()) + extra;
  }
}
