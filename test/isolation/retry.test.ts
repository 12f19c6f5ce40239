/**
 * A call that never got an answer is retried: SIGKILL of one of two replicas under load resets the
 * calls it was running (retried once on the other replica, retryOnReset) and refuses the next ones
 * (ejected at once, retried): the clients see no 502 or 504. With retryOnReset: false the calls
 * that were running on the killed replica fail (502), as they may have reached a model.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Pool } from 'undici';
import { delay, INFER_BODY, keyFor } from '../helpers/harness.ts';
import { guard, httpCall, modelServer, modelStats, tally, type Child, type Outcome } from './helpers.ts';

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

async function killUnderLoad(retryOnReset: boolean, serviceMs = 40, maxWait = '5s'): Promise<{ outcomes: Outcome[]; afterKill: number }> {
  const r1: Child = await modelServer(2, serviceMs);
  const r2: Child = await modelServer(2, serviceMs);
  closers.push(() => r1.close(), () => r2.close());
  const mg = await guard({
    endpoints: [{ url: r1.url, slots: 2 }, { url: r2.url, slots: 2 }],
    groups: [{ name: 'a', maxLength: 1000, maxWait }],
    backend: { timeout: '5s', retryOnReset, healthCheck: { interval: '200ms', timeout: '150ms' } },
    gateway: { accessLog: { enabled: false } },
  });
  const pool = new Pool(mg.httpUrl, { connections: 16 });
  closers.push(() => mg.close(), () => pool.close());
  let running = true;
  let killedAt = Infinity;
  const outcomes: (Outcome & { at: number })[] = [];
  const worker = async (): Promise<void> => {
    while (running) {
      const o = await httpCall(pool, '/v2/models/demo/infer', keyFor('a'), INFER_BODY);
      outcomes.push({ ...o, at: performance.now() });
    }
  };
  const workers = Array.from({ length: 6 }, worker);
  await delay(600);
  // Killed while it runs calls (the server's own count, read just before).
  for (let i = 0; i < 200 && (await modelStats(r2.url)).outstanding === 0; i++) await delay(1);
  killedAt = performance.now();
  await r2.kill();
  await delay(900);
  running = false;
  await Promise.all(workers);
  return { outcomes, afterKill: outcomes.filter((o) => o.at > killedAt).length };
}

describe('retry of a call that never got an answer', () => {
  it('SIGKILL of one of two replicas under load: no 502 or 504, the other replica takes the work', { timeout: 60_000 }, async () => {
    const { outcomes, afterKill } = await killUnderLoad(true);
    assert.deepEqual(tally(outcomes), { 200: outcomes.length });
    assert.ok(afterKill > 20, `served after the kill: ${afterKill}`);
  });

  it('a call that outlived its queue wait (maxWait 100ms, 300 ms calls) is still retried: its own deadline decides, not the queue\'s', { timeout: 60_000 }, async () => {
    // Half the capacity is gone after the kill: queued calls may time out (503), none may fail.
    const { outcomes, afterKill } = await killUnderLoad(true, 300, '100ms');
    const t = tally(outcomes);
    assert.equal(t['502 MG_BACKEND_ERROR'], undefined, JSON.stringify(t));
    assert.equal(Object.keys(t).filter((k) => k.startsWith('504')).length, 0, JSON.stringify(t));
    assert.ok((t['200'] ?? 0) > 8 && afterKill > 2, `${JSON.stringify(t)}; answered after the kill: ${afterKill}`);
  });

  it('retryOnReset: false: the calls running on the killed replica fail with 502, the rest are served', { timeout: 60_000 }, async () => {
    const { outcomes } = await killUnderLoad(false);
    const t = tally(outcomes);
    assert.ok((t['502 MG_BACKEND_ERROR'] ?? 0) >= 1 && (t['502 MG_BACKEND_ERROR'] ?? 0) <= 4, JSON.stringify(t));
    assert.ok((t['200'] ?? 0) > 20, JSON.stringify(t));
  });
});
