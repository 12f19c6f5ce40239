// Open-loop KServe load from its own process, so the generator does not share an event loop with
// the gateway it measures. argv: url model key ratePerSecond durationMs. Prints one JSON array of
// {status, code, servedBy, ms} at the end, in send order.
import { Pool } from 'undici';

const [url, model, key, rateText, durationText] = process.argv.slice(2) as [string, string, string, string, string];
const rate = Number(rateText);
const total = Math.round((rate * Number(durationText)) / 1000);
const pool = new Pool(url, { connections: 256, pipelining: 1 });
const body = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] });
const one = (v: string | string[] | undefined): string | null => (Array.isArray(v) ? (v[0] ?? null) : (v ?? null));

const pending: Promise<{ status: number; code: string | null; servedBy: string | null; ms: number }>[] = [];
const start = performance.now();
for (let i = 0; i < total; i++) {
  const wait = start + (i * 1000) / rate - performance.now();
  if (wait > 1) await new Promise((r) => setTimeout(r, wait));
  const t0 = performance.now();
  pending.push(
    pool
      .request({ method: 'POST', path: `/v2/models/${model}/infer`, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body })
      .then(async (res) => {
        await res.body.dump();
        return { status: res.statusCode, code: one(res.headers['x-modelguard-error']), servedBy: one(res.headers['x-modelguard-served-by']), ms: performance.now() - t0 };
      }),
  );
}
const replies = await Promise.all(pending);
await pool.close();
process.stdout.write(`${JSON.stringify(replies)}\n`);
