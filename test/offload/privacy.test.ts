/**
 * Private models never leave the box unless the model says so: under every policy (saturated at
 * overload, hard-example with unsure answers, failover with the edge down, never), not one request
 * of a private model reaches the cloud, while public models (and a private one with allowPrivate)
 * in the same conditions do.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Pool } from 'undici';
import type { Gateway } from '../../src/compose/gateway.ts';
import type { ModelServer } from '../../src/demo/index.ts';
import { accelerator, waitFor } from '../helpers/harness.ts';
import { type EdgeAndCloud, type Reply, edgeAndCloud, infer, irisBody, metricSettles } from './helpers.ts';

/** The simulated model answers [sum, mean, min, max] of the row: here top value 0.2, an unsure answer. */
const UNSURE = irisBody([0.05, 0.05, 0.05, 0.05]);
const MODELS = ['secret-sat', 'secret-hard', 'secret-fail', 'secret-never', 'open-sat', 'open-hard', 'shared-fail'];

describe('private models and offload', () => {
  let edge: ModelServer;
  let cloud: ModelServer;
  let gw: Gateway;
  let pool: Pool;
  let setup: EdgeAndCloud;
  before(async () => {
    edge = await accelerator({ slots: 1, serviceTime: 20, models: MODELS });
    cloud = await accelerator({ slots: 64, serviceTime: 5, models: MODELS, recordLimit: 10_000 });
    setup = await edgeAndCloud({ server: edge, slots: 1 }, { server: cloud, slots: 64 }, {
      models: [
        { name: 'secret-sat', visibility: 'private', offload: { when: 'saturated' } },
        { name: 'secret-hard', visibility: 'private', offload: { when: 'hard-example', confidenceThreshold: 0.5 } },
        { name: 'secret-fail', visibility: 'private', offload: { when: 'failover' } },
        { name: 'secret-never', visibility: 'private', offload: { when: 'never' } },
        { name: 'open-sat', offload: { when: 'saturated' } },
        { name: 'open-hard', offload: { when: 'hard-example', confidenceThreshold: 0.5 } },
        { name: 'shared-fail', visibility: 'private', offload: { when: 'failover', allowPrivate: true } },
      ],
    });
    ({ gw, pool } = setup);
  });
  after(() => setup.close());

  const burst = (model: string, n: number, body?: string): Promise<Reply[]> => Promise.all(Array.from({ length: n }, () => infer(pool, model, body ? { body } : {})));
  const cloudSaw = (model: string): number => cloud.requests().filter((r) => r.url.includes(`/models/${model}/`)).length;

  it('sends no request of a private model to the cloud under any policy', async () => {
    // saturated: 30 at once on a one-slot edge.
    const sat = await burst('secret-sat', 30);
    const openSat = await burst('open-sat', 30);
    // hard-example: unsure answers.
    const hard = await burst('secret-hard', 5, UNSURE);
    const openHard = await burst('open-hard', 5, UNSURE);
    // never, with overload.
    const never = await burst('secret-never', 10);
    // failover: the edge goes down.
    await edge.stop();
    await waitFor(() => gw.broker.status().endpoints.some((e) => e.backend === 'edge' && !e.healthy), 'the edge to be ejected');
    const down = await Promise.all(['secret-sat', 'secret-hard', 'secret-fail', 'secret-never'].map((m) => burst(m, 5)));
    const openDown = await burst('open-sat', 5);
    const shared = await burst('shared-fail', 5);

    for (const m of ['secret-sat', 'secret-hard', 'secret-fail', 'secret-never']) assert.equal(cloudSaw(m), 0, `${m} reached the cloud`);
    // Private requests were served by the edge while it was up, and refused (not offloaded) when it was down.
    const show = (rs: Reply[]): string => JSON.stringify(rs.map((r) => `${r.status} ${r.code ?? r.servedBy}`));
    for (const rs of [sat, hard, never]) assert.ok(rs.every((r) => r.status === 200 && r.servedBy === 'edge'), show(rs));
    for (const rs of down) assert.ok(rs.every((r) => r.status === 503 && r.code === 'MG_NO_BACKEND'), JSON.stringify(rs.map((r) => r.code)));
    // The same conditions do offload public models, and a private one that allows it.
    assert.ok(openSat.filter((r) => r.servedBy === 'cloud').length > 0, show(openSat));
    assert.ok(openHard.every((r) => r.status === 200 && r.servedBy === 'cloud'), show(openHard));
    assert.ok(openDown.every((r) => r.status === 200 && r.servedBy === 'cloud'), show(openDown));
    assert.ok(shared.every((r) => r.status === 200 && r.servedBy === 'cloud'), show(shared));
    assert.equal(cloudSaw('shared-fail'), 5);
    // Every request of a private offload model is counted as denied-private (never has no offload state).
    assert.equal(await metricSettles(gw.adminUrl, 'modelguard_offload_decisions_total', { decision: 'denied-private' }, 30 + 5 + 15), 30 + 5 + 15);
  });
});
