/**
 * How long a simulated model holds an accelerator slot per request: fixed, uniform, or exponential,
 * sampled from a seeded generator so that a benchmark or test run can be repeated exactly.
 */
import { parseDuration } from '../core/duration.ts';

export type ServiceTime =
  | { readonly kind: 'fixed'; readonly ms: number }
  | { readonly kind: 'uniform'; readonly minMs: number; readonly maxMs: number }
  | { readonly kind: 'exponential'; readonly meanMs: number };

/**
 * Accepted everywhere a service time is configured: a number of milliseconds, a string
 * (`20ms`, `10ms..30ms` or `uniform:10ms..30ms`, `exp:20ms` or `exponential:20ms`), or the object form.
 */
export type ServiceTimeSpec = number | string | ServiceTime;

export type Random = () => number;

function duration(text: string, whole: string): number {
  const ms = parseDuration(text);
  if (ms === undefined) throw new Error(`invalid service time "${whole}": "${text}" is not a duration like 20ms`);
  return ms;
}

function check(st: ServiceTime): ServiceTime {
  const values = st.kind === 'fixed' ? [st.ms] : st.kind === 'uniform' ? [st.minMs, st.maxMs] : [st.meanMs];
  if (values.some((v) => !Number.isFinite(v) || v < 0)) throw new Error(`invalid service time: ${JSON.stringify(st)} (values must be finite and ≥ 0)`);
  if (st.kind === 'uniform' && st.minMs > st.maxMs) throw new Error(`invalid service time: uniform min ${st.minMs}ms > max ${st.maxMs}ms`);
  return Object.freeze({ ...st });
}

/** Normalizes and validates a spec; throws an Error naming the problem. */
export function parseServiceTime(spec: ServiceTimeSpec): ServiceTime {
  if (typeof spec === 'number') return check({ kind: 'fixed', ms: spec });
  if (typeof spec !== 'string') return check(spec);
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
  if (st.kind === 'fixed') return `${st.ms}ms`;
  if (st.kind === 'uniform') return `uniform:${st.minMs}ms..${st.maxMs}ms`;
  return `exp:${st.meanMs}ms`;
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

export function sampleServiceTime(st: ServiceTime, random: Random): number {
  switch (st.kind) {
    case 'fixed':
      return st.ms;
    case 'uniform':
      return st.minMs + (st.maxMs - st.minMs) * random();
    case 'exponential':
      return -st.meanMs * Math.log(1 - random());
  }
}
