// The external broker comes and goes: ModelGuard starts without it, connects when it appears, and
// re-subscribes after the broker restarts; the process never stops serving HTTP meanwhile.
import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import { accelerator, delay, gateway, keyFor, INFER_BODY } from '../helpers/harness.ts';
import { Caller, errorCode, freePort, startMosquitto } from './helpers.ts';

const INFER = JSON.parse(INFER_BODY) as Record<string, unknown>;
const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

/** Retries a request until one is answered (the ingress may still be re-subscribing). */
async function served(url: string): Promise<string | undefined> {
  for (let i = 0; i < 50; i++) {
    const c = await Caller.create(url, 5).catch(() => undefined);
    if (c === undefined) {
      await delay(100);
      continue;
    }
    try {
      return errorCode(await c.request('demo', INFER, { key: keyFor('a'), timeoutMs: 500 }));
    } catch {
      // not subscribed yet: try again
    } finally {
      await c.close();
    }
  }
  throw new Error('never served');
}

it('broker down at start, then up, then restarted: requests are served after each', { timeout: 60_000 }, async () => {
  const acc = await accelerator({ slots: 1 });
  closers.push(() => acc.close());
  const port = await freePort();
  const url = `mqtt://127.0.0.1:${port}`;
  const t0 = performance.now();
  const gw = await gateway({ endpoints: [{ url: acc.url, slots: 1 }], groups: [{ name: 'a' }], gateway: { mqtt: { url } } });
  closers.push(() => gw.close());
  assert.ok(performance.now() - t0 < 8000, 'startGateway does not wait for a missing broker beyond its first-connect wait');
  assert.equal((await fetch(`${gw.httpUrl}/v2/health/live`)).status, 200);

  let broker = await startMosquitto({ port });
  assert.equal(await served(url), undefined, 'served once the broker appears');

  await broker.close();
  broker = await startMosquitto({ port });
  closers.push(() => broker.close());
  assert.equal(await served(url), undefined, 'served again after a broker restart (re-subscribed)');
  assert.ok((gw.mqtt?.stats.replied ?? 0) >= 2);
  assert.equal((await fetch(`${gw.httpUrl}/v2/health/live`)).status, 200, 'HTTP served throughout');
});
