/**
 * A model out of service on one endpoint is visible where an operator looks: the admin API's
 * status names it on its endpoint (with the reason and when it is tried again), and `modelguard
 * status` prints it, while the endpoint itself stays healthy for its other models.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { Pool } from 'undici';
import { INFER_BODY, keyFor } from '../helpers/harness.ts';
import { guard, httpCall, modelServer } from './helpers.ts';

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

describe('a model down on an endpoint, in status', () => {
  it('the status API and `modelguard status` show the broken model down, the endpoint healthy', { timeout: 60_000 }, async () => {
    const server = await modelServer(2, 10);
    closers.push(() => server.close());
    const mg = await guard({
      endpoints: [{ url: server.url, slots: 2 }],
      models: ['demo', 'broken'],
      groups: [{ name: 'a' }],
      backend: { healthCheck: { interval: '5s', timeout: '1s' } },
      gateway: { accessLog: { enabled: false } },
    });
    closers.push(() => mg.close());
    const pool = new Pool(mg.httpUrl, { connections: 2 });
    closers.push(() => pool.close());
    for (let i = 0; i < 6; i++) await httpCall(pool, '/v2/models/broken/infer', keyFor('a'), INFER_BODY);
    assert.equal((await httpCall(pool, '/v2/models/demo/infer', keyFor('a'), INFER_BODY)).status, 200);

    const status = (await (await fetch(`${mg.adminUrl}/api/v1/status`)).json()) as { endpoints: { url: string; healthy: boolean; modelsDown?: { model: string; reason: string; retryInMs: number }[] }[] };
    const ep = status.endpoints.find((e) => e.url === server.url);
    assert.ok(ep, JSON.stringify(status.endpoints));
    assert.equal(ep.healthy, true);
    assert.deepEqual(ep.modelsDown?.map((m) => m.model), ['broken']);
    assert.ok((ep.modelsDown?.[0]?.retryInMs ?? -1) >= 0);
    assert.match(ep.modelsDown?.[0]?.reason ?? '', /500/);

    const printed = execFileSync(process.execPath, ['bin/modelguard.js', 'status', '--admin', mg.adminUrl], { encoding: 'utf8' });
    assert.match(printed, /model broken DOWN here/);
    assert.doesNotMatch(printed, /model demo DOWN/);
  });
});
