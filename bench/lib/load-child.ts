/**
 * Load generator, run as its own process (see load.ts) so that it never shares an event loop with
 * the process under test. It takes LoadCommands over the IPC channel and answers each with one
 * LoadResult. HTTP/1.1 keep-alive connections from undici Pools.
 */
import { Pool } from 'undici';
import type { BurstResult, ClosedResult, HoldResult, LoadCommand, LoadResult, OpenResult, Target } from './load-protocol.ts';
import { percentile, seededRandom } from './stats.ts';

const pools = new Map<string, Pool>();

function poolFor(url: string, connections: number): Pool {
  const key = `${url}|${connections}`;
  let pool = pools.get(key);
  if (!pool) {
    pool = new Pool(url, { connections, pipelining: 1, keepAliveTimeout: 60_000 });
    pools.set(key, pool);
  }
  return pool;
}

function count(map: Record<string, number>, key: string): void {
  map[key] = (map[key] ?? 0) + 1;
}

function errorName(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') return err.code;
  return err instanceof Error ? err.name : 'error';
}

async function send(pool: Pool, t: Target, pipelined = false): Promise<{ status: number; code: string | undefined }> {
  const res = await pool.request({
    method: 'POST',
    path: t.path,
    headers: t.headers,
    body: t.body,
    // undici sends a request on a busy connection only if it may be retried (idempotent) and does not
    // wait for the previous answer's headers (blocking, true for every method but HEAD by default).
    ...(pipelined ? { idempotent: true, blocking: false } : {}),
  });
  await res.body.dump();
  const code = res.headers['x-modelguard-error'];
  return { status: res.statusCode, code: Array.isArray(code) ? code[0] : code };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function openLoop(c: Extract<LoadCommand, { op: 'open' }>): Promise<OpenResult> {
  const pool = poolFor(c.target.url, c.connections);
  const random = seededRandom(c.seed);
  const gapMs = 1000 / c.rate;
  const total = Math.round((c.rate * c.durationMs) / 1000);
  const due = new Float64Array(total);
  let t = 0;
  for (let i = 0; i < total; i++) {
    t += c.poisson ? -Math.log(1 - random()) * gapMs : gapMs;
    due[i] = t;
  }
  const latencies: number[] = [];
  const byStatus: Record<string, number> = {};
  const pending: Promise<void>[] = [];
  let maxLateMs = 0;
  const one = async (): Promise<void> => {
    const t0 = performance.now();
    try {
      const r = await send(pool, c.target);
      latencies.push(performance.now() - t0);
      count(byStatus, String(r.status));
    } catch (err) {
      count(byStatus, errorName(err));
    }
  };
  const start = performance.now();
  let next = 0;
  while (next < total) {
    const now = performance.now() - start;
    while (next < total && due[next]! <= now) {
      maxLateMs = Math.max(maxLateMs, now - due[next]!);
      pending.push(one());
      next++;
    }
    if (next < total) await sleep(Math.max(0, due[next]! - (performance.now() - start)));
  }
  await Promise.all(pending);
  return { op: 'open', sent: total, latencies, byStatus, elapsedMs: performance.now() - start, maxLateMs };
}

async function closedLoop(c: Extract<LoadCommand, { op: 'closed' }>): Promise<ClosedResult> {
  const pool = poolFor(c.target.url, c.concurrency);
  const byStatus: Record<string, number> = {};
  const latencies: number[] = [];
  const start = performance.now();
  const from = start + c.warmupMs;
  const until = from + c.durationMs;
  let completed = 0;
  let answered = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < until) {
      const t0 = performance.now();
      try {
        const r = await send(pool, c.target);
        const t1 = performance.now();
        answered++;
        if (t1 >= from && t1 < until) {
          completed++;
          latencies.push(t1 - t0);
          count(byStatus, String(r.status));
        }
      } catch (err) {
        count(byStatus, errorName(err));
        await sleep(1);
      }
    }
  };
  await Promise.all(Array.from({ length: c.concurrency }, worker));
  return { op: 'closed', completed, answered, elapsedMs: c.durationMs, byStatus, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99) };
}

const held = { answered: 0, failed: 0, firstError: undefined as string | undefined };

function hold(c: Extract<LoadCommand, { op: 'hold' }>): HoldResult {
  const pool = new Pool(c.target.url, {
    connections: c.connections,
    pipelining: c.pipelining,
    // The held requests wait in ModelGuard's queue for as long as the benchmark runs.
    headersTimeout: 0,
    bodyTimeout: 0,
    connect: { timeout: 60_000 },
  });
  pools.set(`hold|${pools.size}`, pool);
  for (let i = 0; i < c.count; i++) {
    send(pool, c.target, c.pipelining > 1).then(
      () => void held.answered++,
      (err: unknown) => {
        held.failed++;
        held.firstError ??= err instanceof Error ? `${errorName(err)}: ${err.message}` : String(err);
      },
    );
  }
  return { op: 'hold', dispatched: c.count };
}

async function burst(c: Extract<LoadCommand, { op: 'burst' }>): Promise<BurstResult> {
  const pool = new Pool(c.target.url, { connections: c.connections, pipelining: 1 });
  const latencies: number[] = [];
  const byStatus: Record<string, number> = {};
  const byCode: Record<string, number> = {};
  const one = async (): Promise<void> => {
    const t0 = performance.now();
    try {
      const r = await send(pool, c.target);
      latencies.push(performance.now() - t0);
      count(byStatus, String(r.status));
      if (r.code !== undefined) count(byCode, r.code);
    } catch (err) {
      count(byStatus, errorName(err));
    }
  };
  const start = performance.now();
  if (c.sequential) for (let i = 0; i < c.count; i++) await one();
  else await Promise.all(Array.from({ length: c.count }, one));
  const elapsedMs = performance.now() - start;
  await pool.close();
  return { op: 'burst', latencies, elapsedMs, byStatus, byCode, held: { answered: held.answered, failed: held.failed, ...(held.firstError === undefined ? {} : { firstError: held.firstError }) } };
}

async function run(c: LoadCommand): Promise<LoadResult> {
  switch (c.op) {
    case 'open':
      return openLoop(c);
    case 'closed':
      return closedLoop(c);
    case 'hold':
      return hold(c);
    case 'burst':
      return burst(c);
    case 'exit':
      await Promise.all([...pools.values()].map((p) => p.destroy()));
      process.exit(0);
  }
}

if (!process.send) {
  process.stderr.write('load-child: run me through bench/lib/load.ts (needs an IPC channel)\n');
  process.exit(2);
}
process.on('message', (m: LoadCommand) => {
  run(m).then(
    (r) => process.send?.(r),
    (err: unknown) => process.send?.({ op: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
  );
});
process.on('disconnect', () => process.exit(0));
