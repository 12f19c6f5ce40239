// The inference client of test/qos/uplink.test.ts, run inside the edge namespace: takes one JSON
// command per stdin line and answers one JSON line. argv: ModelGuard's HTTP URL.
//   {"cmd":"ready","timeoutMs":N}      → {"ok":true} once an inference call answers 200
//   {"cmd":"run","rate":R,"ms":D}      → {"samples":[{"status":200,"ms":7.1},...]} (open loop, R per second)
//   {"cmd":"get","url":U}              → {"status":200,"text":"..."} (the admin listener, also on the edge's loopback)
import { createInterface } from 'node:readline';
import { Pool } from 'undici';

const url = process.argv[2] as string;
const pool = new Pool(url, { connections: 64 });
const body = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] });

async function call(): Promise<{ status: number; ms: number; code?: string }> {
  const t0 = performance.now();
  try {
    const res = await pool.request({ method: 'POST', path: '/v2/models/demo/infer', headers: { 'content-type': 'application/json' }, body, headersTimeout: 20_000, bodyTimeout: 20_000 });
    await res.body.dump();
    const code = res.headers['x-modelguard-error'];
    return { status: res.statusCode, ms: performance.now() - t0, ...(typeof code === 'string' ? { code } : {}) };
  } catch {
    return { status: 0, ms: performance.now() - t0 };
  }
}

async function run(rate: number, ms: number): Promise<unknown> {
  const pending: Promise<{ status: number; ms: number }>[] = [];
  const start = performance.now();
  for (let i = 0; ; i++) {
    const due = start + (i * 1000) / rate;
    if (due - start >= ms) break;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    pending.push(call());
  }
  return { samples: await Promise.all(pending) };
}

async function ready(timeoutMs: number): Promise<unknown> {
  const end = performance.now() + timeoutMs;
  let last: unknown;
  while (performance.now() < end) {
    last = await call();
    if ((last as { status: number }).status === 200) return { ok: true };
    await new Promise((r) => setTimeout(r, 100));
  }
  return { ok: false, last };
}

for await (const line of createInterface({ input: process.stdin })) {
  const c = JSON.parse(line) as { cmd: string; rate?: number; ms?: number; timeoutMs?: number; url?: string };
  const out =
    c.cmd === 'run' ? await run(c.rate ?? 20, c.ms ?? 1000)
    : c.cmd === 'get' ? await fetch(c.url ?? '').then(async (r) => ({ status: r.status, text: await r.text() }))
    : await ready(c.timeoutMs ?? 10_000);
  process.stdout.write(`${JSON.stringify(out)}\n`);
}
await pool.close();
