// Two ModelGuard instances on one MQTT 5 shared subscription: the broker hands each request to one
// of them, so every request is served exactly once and both take a share.
import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Gateway } from '../../src/compose/gateway.ts';
import { accelerator, delay, gateway, keyFor, INFER_BODY, waitFor } from '../helpers/harness.ts';
import { Caller, errorCode, startMosquitto } from './helpers.ts';

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

it('N requests on a shared subscription: N replies, each request served by exactly one instance', { timeout: 30_000 }, async () => {
  const broker = await startMosquitto();
  closers.push(() => broker.close());
  const acc = await accelerator({ slots: 4, serviceTime: 2 });
  closers.push(() => acc.close());
  const served: number[] = [];
  const instances: Gateway[] = [];
  for (const name of ['mg-1', 'mg-2']) {
    const gw = await gateway({
      endpoints: [{ url: acc.url, slots: 4 }],
      groups: [{ name: 'a' }],
      gateway: { mqtt: { url: broker.url, sharedGroup: 'modelguard', clientId: name } },
    });
    closers.push(() => gw.close());
    const i = served.push(0) - 1;
    gw.pipeline.events.subscribe((r) => {
      if (r.protocol === 'mqtt') served[i] = (served[i] ?? 0) + 1;
    });
    instances.push(gw);
  }
  const c = await Caller.create(broker.url, 5);
  closers.push(() => c.close());
  const N = 40;
  const body = JSON.parse(INFER_BODY) as Record<string, unknown>;
  const replies = await Promise.all(Array.from({ length: N }, () => c.request('demo', body, { key: keyFor('a') })));
  for (const r of replies) assert.equal(errorCode(r), undefined);
  await waitFor(() => (served[0] ?? 0) + (served[1] ?? 0) >= N, 'both instances recorded their requests');
  // A request served twice would show up as a second reply (a stray) or an extra record: give a
  // duplicate the time a request takes to arrive before checking there is none.
  await delay(200);
  assert.deepEqual(c.strays, [], 'no request answered twice');
  assert.equal((served[0] ?? 0) + (served[1] ?? 0), N, `served ${served.join('+')} for ${N} requests`);
  assert.ok((served[0] ?? 0) > 0 && (served[1] ?? 0) > 0, `both instances take a share: ${served.join(', ')}`);
});
