/**
 * The offload budget holds exactly: with the edge down (failover), exactly requestsPerDay requests
 * reach the cloud and the rest are refused as the edge alone would refuse them; requestsPerSecond
 * lets exactly N through per one-second window. With saturated, requests beyond the budget queue on
 * the edge and are served there.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Pool } from 'undici';
import type { Gateway } from '../../src/compose/gateway.ts';
import type { ModelServer } from '../../src/demo/index.ts';
import { accelerator, delay, waitFor } from '../helpers/harness.ts';
import { type EdgeAndCloud, type Reply, edgeAndCloud, infer, metric } from './helpers.ts';

const MODELS = ['daily', 'per-second', 'spill'];

describe('offload budget', () => {
  let edge: ModelServer;
  let cloud: ModelServer;
  let gw: Gateway;
  let pool: Pool;
  let setup: EdgeAndCloud;
  before(async () => {
    edge = await accelerator({ slots: 1, serviceTime: 10, models: MODELS });
    cloud = await accelerator({ slots: 64, serviceTime: 5, models: MODELS, recordLimit: 10_000 });
    setup = await edgeAndCloud({ server: edge, slots: 1 }, { server: cloud, slots: 64 }, {
      models: [
        { name: 'daily', offload: { when: 'failover', budget: { requestsPerDay: 7 } } },
        { name: 'per-second', offload: { when: 'failover', budget: { requestsPerSecond: 5 } } },
        { name: 'spill', offload: { when: 'saturated', budget: { requestsPerDay: 4 } } },
      ],
    });
    ({ gw, pool } = setup);
  });
  after(() => setup.close());

  const burst = (model: string, n: number): Promise<Reply[]> => Promise.all(Array.from({ length: n }, () => infer(pool, model)));
  const cloudSaw = (model: string): number => cloud.requests().filter((r) => r.method === 'POST' && r.url.includes(`/models/${model}/`)).length;
  const byCloud = (rs: Reply[]): number => rs.filter((r) => r.status === 200 && r.servedBy === 'cloud').length;

  it('saturated: beyond the budget, requests queue on the edge and are served there', async () => {
    const rs = await burst('spill', 40);
    assert.equal(cloudSaw('spill'), 4);
    assert.equal(byCloud(rs), 4);
    assert.ok(rs.every((r) => r.status === 200), 'every request is served, on the edge beyond the budget');
    assert.equal(await metric(gw.adminUrl, 'modelguard_offload_budget_remaining', { model: 'spill' }), 0);
  });

  it('failover: exactly requestsPerDay, and exactly requestsPerSecond per window', async () => {
    await edge.stop();
    await waitFor(() => gw.broker.status().endpoints.some((e) => e.backend === 'edge' && !e.healthy), 'the edge to be ejected');

    const day1 = await burst('daily', 20);
    const day2 = await burst('daily', 5);
    assert.equal(byCloud(day1), 7);
    assert.equal(byCloud(day2), 0);
    assert.equal(cloudSaw('daily'), 7);
    // Beyond the budget: what the edge alone answers (it is down).
    assert.ok([...day1, ...day2].filter((r) => r.servedBy !== 'cloud').every((r) => r.status === 503 && r.code === 'MG_NO_BACKEND'));

    const t0 = performance.now();
    const s1 = await burst('per-second', 20);
    assert.equal(byCloud(s1), 5);
    const s2 = await burst('per-second', 20);
    assert.equal(byCloud(s2), 0, 'the same one-second window');
    await delay(Math.max(0, t0 + 1100 - performance.now()));
    const s3 = await burst('per-second', 20);
    assert.equal(byCloud(s3), 5, 'a new window');
    assert.equal(cloudSaw('per-second'), 10);
    assert.ok((await metric(gw.adminUrl, 'modelguard_offload_decisions_total', { decision: 'budget' })) >= 13 + 5 + 15 + 15 + 15);
    // The admin API (and `modelguard status`) show what was sent and what is left.
    const status = (await (await fetch(`${gw.adminUrl}/api/v1/status`)).json()) as { offload: { model: string; sent: number; answered: number; leftToday?: number; breaker: string }[] };
    const daily = status.offload.find((o) => o.model === 'daily');
    assert.deepEqual({ sent: daily?.sent, answered: daily?.answered, leftToday: daily?.leftToday, breaker: daily?.breaker }, { sent: 7, answered: 7, leftToday: 0, breaker: 'closed' });
  });
});
