/**
 * Open-loop load for bench/overload.ts, in its own process so it never shares an event loop with
 * ModelGuard: `rate` arrivals per second (Poisson, seeded) for `durationMs`, whatever the answers do,
 * and one line of JSON at the end with every answer (send time, latency, status, error code), so
 * the benchmark can split refusals from answers and count per second.
 *
 *   node --import tsx bench/overload-child.ts URL RATE DURATION_MS CONNECTIONS SEED
 */
import { Pool } from 'undici';
import { INFER_BODY, INFER_PATH, JSON_HEADERS } from './lib/config.ts';
import { seededRandom } from './lib/stats.ts';

export interface OverloadAnswers {
  readonly sent: number;
  /** Per answer, in the order they were sent: ms after the start the request was sent. */
  readonly at: number[];
  /** Latency, ms. */
  readonly ms: number[];
  /** HTTP status; 0 when the request failed without an answer (connection error). */
  readonly status: number[];
  /** X-ModelGuard-Error, or the client's error name when there was no answer; '' for none. */
  readonly code: string[];
  readonly maxLateMs: number;
}

async function main(): Promise<void> {
  const [url, rateText, durationText, connectionsText, seedText] = process.argv.slice(2);
  const rate = Number(rateText);
  const durationMs = Number(durationText);
  const pool = new Pool(url ?? '', { connections: Number(connectionsText), pipelining: 1, keepAliveTimeout: 60_000 });
  const random = seededRandom(Number(seedText ?? 1));
  const total = Math.round((rate * durationMs) / 1000);
  const at: number[] = new Array<number>(total).fill(0);
  const ms: number[] = new Array<number>(total).fill(-1);
  const status: number[] = new Array<number>(total).fill(0);
  const code: string[] = new Array<string>(total).fill('');
  const pending: Promise<void>[] = [];
  const start = performance.now();
  let due = 0;
  let maxLateMs = 0;
  const send = (i: number): Promise<void> => {
    const t0 = performance.now();
    at[i] = Math.round(t0 - start);
    return pool.request({ method: 'POST', path: INFER_PATH, headers: JSON_HEADERS, body: INFER_BODY }).then(
      async (res) => {
        await res.body.dump();
        ms[i] = performance.now() - t0;
        status[i] = res.statusCode;
        const c = res.headers['x-modelguard-error'];
        code[i] = (Array.isArray(c) ? c[0] : c) ?? '';
      },
      (err: unknown) => {
        ms[i] = performance.now() - t0;
        code[i] = typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : 'error';
      },
    );
  };
  for (let i = 0; i < total; i++) {
    due += -Math.log(1 - random()) * (1000 / rate);
    const wait = start + due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    maxLateMs = Math.max(maxLateMs, performance.now() - (start + due));
    pending.push(send(i));
  }
  await Promise.all(pending);
  await pool.close();
  const out: OverloadAnswers = { sent: total, at, ms: ms.map((x) => Math.round(x * 10) / 10), status, code, maxLateMs };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

void main();
