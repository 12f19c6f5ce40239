// Open-loop load from its own process, recording every answer's status, code, Retry-After and time.
// argv: url key model rate durationMs. Prints one JSON line (see LoadResult in helpers.ts).
import { Pool } from 'undici';
import { INFER_BODY } from '../helpers/harness.ts';
import { openLoop, tally, type Outcome } from './helpers.ts';

const [url, key, model, rateText, durationText] = process.argv.slice(2) as [string, string, string, string, string];
const pool = new Pool(url, { connections: 2048 });
let retryAfter = 0;
let errors = 0;
/** One body per failing status, to tell where an error came from. */
const samples: Record<string, string> = {};
const start = performance.now();
const slow: { at: number; ms: number; code: string }[] = [];
const outcomes = await openLoop(Number(rateText), Number(durationText), async (): Promise<Outcome> => {
  const t0 = performance.now();
  const o = await one(t0);
  slow.push({ at: Math.round(t0 - start), ms: Math.round(o.ms), code: `${o.status} ${o.code ?? ''}` });
  return o;
});

async function one(t0: number): Promise<Outcome> {
  try {
    const res = await pool.request({ method: 'POST', path: `/v2/models/${model}/infer`, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: INFER_BODY });
    const text = await res.body.text();
    const code = res.headers['x-modelguard-error'];
    if (res.statusCode >= 500) samples[`${res.statusCode}`] ??= text.slice(0, 240);
    if (res.statusCode === 429 && res.headers['retry-after'] !== undefined) retryAfter++;
    return { status: res.statusCode, code: Array.isArray(code) ? code[0] : code, ms: performance.now() - t0 };
  } catch {
    errors++;
    return { status: 0, code: 'client-error', ms: performance.now() - t0 };
  }
}
const maxMs: Record<string, number> = {};
for (const o of outcomes) {
  const k = o.code === undefined ? String(o.status) : `${o.status} ${o.code}`;
  maxMs[k] = Math.max(maxMs[k] ?? 0, Math.round(o.ms));
}
slow.sort((a, b) => b.ms - a.ms);
process.stdout.write(`${JSON.stringify({ sent: outcomes.length, errors, tally: tally(outcomes), retryAfter, maxMs, slowest: slow.slice(0, 4), samples })}\n`);
await pool.close();
