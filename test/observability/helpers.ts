/** Helpers for the observability tests: a Prometheus text parser and a paced request sender. */
import type { Pool } from 'undici';
import { delay, INFER_BODY, send, type Answer } from '../helpers/harness.ts';

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Parses the Prometheus text format (the subset core/prom.ts writes). */
export function parseProm(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, '$1');
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** Sum of the samples of `name` whose labels include `match`. */
export function total(samples: readonly Sample[], name: string, match: Record<string, string> = {}): number {
  return samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v)).reduce((n, s) => n + s.value, 0);
}

export async function scrape(adminUrl: string): Promise<Sample[]> {
  const res = await fetch(`${adminUrl}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return parseProm(await res.text());
}

/** Sends one request every `everyMs` until `until` resolves (an open loop, unlike closedLoop). */
export async function paced(pool: Pool, path: string, opts: { key?: string; everyMs: number; until: Promise<unknown> }): Promise<Answer[]> {
  let running = true;
  void opts.until.then(() => (running = false));
  const pending: Promise<Answer>[] = [];
  while (running) {
    pending.push(send(pool, path, { ...(opts.key ? { key: opts.key } : {}), body: INFER_BODY }));
    await delay(opts.everyMs);
  }
  return Promise.all(pending);
}

/** Debian's Chromium, or CHROMIUM_PATH. */
export const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

/** The flags the project runs Chromium with: no network of its own, no sandbox (root in CI). */
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Polls an async condition every 100 ms, failing after `timeoutMs`. */
export async function until(cond: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(100);
  }
}
