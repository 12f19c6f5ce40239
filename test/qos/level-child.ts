// The apps of test/qos/priority.test.ts, run inside the edge namespace: one JSON command per stdin
// line, one JSON line back. argv: ModelGuard's HTTP URL, and `kserve` for small calls as KServe v2
// inference of model demo (default: pass-through to /models/demo/infer). Every call names its group
// (auth: none).
//   {"cmd":"ready","timeoutMs":N}               → {"ok":true} once a call answers 200
//   {"cmd":"run","rate":R,"ms":D,"group":G}     → {"samples":[{"status":200,"ms":7.1},...]} (small calls, open loop)
//   {"cmd":"bulk","streams":N,"bytes":B,"group":G} → {"ok":true}: N callers each upload B bytes per call, back to back
//   {"cmd":"stop-bulk"}                         → {"calls":N,"not200":M}
//   {"cmd":"get","url":U}                       → {"status":200,"text":"..."}
import { createInterface } from 'node:readline';
import { Pool } from 'undici';

const url = process.argv[2] as string;
const kserve = process.argv[3] === 'kserve';
const smallPath = kserve ? '/v2/models/demo/infer' : '/models/demo/infer';
const smallBody = kserve ? JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] }) : '{"x":1}';
const small = new Pool(url, { connections: 64 });
const big = new Pool(url, { connections: 16 });

async function call(group: string): Promise<{ status: number; ms: number }> {
  const t0 = performance.now();
  try {
    const res = await small.request({ method: 'POST', path: smallPath, headers: { 'content-type': 'application/json', 'x-service-group': group }, body: smallBody, headersTimeout: 30_000, bodyTimeout: 30_000 });
    await res.body.dump();
    return { status: res.statusCode, ms: performance.now() - t0 };
  } catch {
    return { status: 0, ms: performance.now() - t0 };
  }
}

async function run(rate: number, ms: number, group: string): Promise<unknown> {
  const pending: Promise<{ status: number; ms: number }>[] = [];
  const start = performance.now();
  for (let i = 0; ; i++) {
    const due = start + (i * 1000) / rate;
    if (due - start >= ms) break;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    pending.push(call(group));
  }
  return { samples: await Promise.all(pending) };
}

let bulkOn = false;
const bulkStats = { calls: 0, not200: 0 };
const streams: Promise<void>[] = [];

async function uploader(bytes: number, group: string): Promise<void> {
  const body = Buffer.alloc(bytes, 0x61);
  while (bulkOn) {
    try {
      const res = await big.request({ method: 'POST', path: '/models/demo/upload', headers: { 'content-type': 'application/octet-stream', 'x-service-group': group }, body, headersTimeout: 60_000, bodyTimeout: 60_000 });
      await res.body.dump();
      bulkStats.calls++;
      if (res.statusCode !== 200) bulkStats.not200++;
    } catch {
      bulkStats.calls++;
      bulkStats.not200++;
    }
  }
}

async function ready(timeoutMs: number): Promise<unknown> {
  const end = performance.now() + timeoutMs;
  let last: unknown;
  while (performance.now() < end) {
    last = await call('safety');
    if ((last as { status: number }).status === 200) return { ok: true };
    await new Promise((r) => setTimeout(r, 100));
  }
  return { ok: false, last };
}

for await (const line of createInterface({ input: process.stdin })) {
  const c = JSON.parse(line) as { cmd: string; rate?: number; ms?: number; timeoutMs?: number; url?: string; group?: string; streams?: number; bytes?: number };
  let out: unknown;
  if (c.cmd === 'run') out = await run(c.rate ?? 20, c.ms ?? 1000, c.group ?? 'default');
  else if (c.cmd === 'bulk') {
    bulkOn = true;
    for (let i = 0; i < (c.streams ?? 4); i++) streams.push(uploader(c.bytes ?? 1 << 19, c.group ?? 'default'));
    out = { ok: true };
  } else if (c.cmd === 'stop-bulk') {
    bulkOn = false;
    await Promise.all(streams.splice(0));
    out = { ...bulkStats };
  } else if (c.cmd === 'get') out = await fetch(c.url ?? '').then(async (r) => ({ status: r.status, text: await r.text() }));
  else out = await ready(c.timeoutMs ?? 10_000);
  process.stdout.write(`${JSON.stringify(out)}\n`);
}
await Promise.all([small.close(), big.close()]);
