/**
 * hard-example with the real Iris classifier on the edge: a confident answer stays on the edge; an
 * unsure one (top class probability under the threshold) is re-run in the cloud under the cloud's
 * model name and the cloud's answer is sent; when the cloud is later than cloudWait, the edge answer
 * is sent instead. The threshold is placed between the probabilities the edge model really gives.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Pool } from 'undici';
import type { Gateway } from '../../src/compose/gateway.ts';
import { startModelServer, type ModelServer } from '../../src/demo/index.ts';
import { accelerator } from '../helpers/harness.ts';
import { answerConfidence } from '../../src/broker/offload/confidence.ts';
import { type EdgeAndCloud, edgeAndCloud, infer, inferencesAt, irisBody, metric, metricSettles } from './helpers.ts';

const SETOSA = [5.1, 3.5, 1.4, 0.2];
/** Rows near the versicolor/virginica border: the least confident of them is the hard example. */
const BORDER = [
  [6.0, 2.7, 5.1, 1.6],
  [6.3, 2.8, 5.1, 1.5],
  [6.0, 2.2, 5.0, 1.5],
  [4.9, 2.5, 4.5, 1.7],
  [6.2, 2.8, 4.8, 1.8],
];

async function topProbability(server: ModelServer, rows: number[][]): Promise<number> {
  const res = await fetch(`${server.url}/v2/models/iris/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: 'input', shape: [rows.length, 4], datatype: 'FP32', data: rows.flat() }] }),
  });
  return answerConfidence(Buffer.from(await res.arrayBuffer()), 'probabilities') as number;
}

describe('hard-example offload', () => {
  let edge: ModelServer;
  let cloud: ModelServer;
  let gw: Gateway;
  let pool: Pool;
  let setup: EdgeAndCloud;
  let hard: number[];
  before(async () => {
    edge = await startModelServer({ mode: 'onnx', slots: 2 });
    cloud = await accelerator({ slots: 8, serviceTime: 10, models: ['iris-xl'] });
    const sure = await topProbability(edge, [SETOSA]);
    const scored = await Promise.all(BORDER.map(async (row) => ({ row, p: await topProbability(edge, [row]) })));
    scored.sort((a, b) => a.p - b.p);
    const least = scored[0]!;
    assert.ok(least.p < sure - 0.05, `border row ${least.p} vs setosa ${sure}`);
    hard = least.row;
    setup = await edgeAndCloud({ server: edge, slots: 2 }, { server: cloud, slots: 8 }, {
      models: [
        {
          name: 'iris',
          offload: { when: 'hard-example', confidenceThreshold: (least.p + sure) / 2, confidenceOutput: 'probabilities', backendModel: 'iris-xl', cloudWait: '300ms' },
        },
      ],
    });
    ({ gw, pool } = setup);
  });
  after(() => setup.close());

  it('keeps a confident answer on the edge', async () => {
    const r = await infer(pool, 'iris', { body: irisBody(SETOSA) });
    assert.equal(r.status, 200);
    assert.equal(r.servedBy, 'edge');
    assert.match(r.body, /"probabilities"/);
    assert.equal(inferencesAt(cloud), 0);
  });

  it('re-runs an unsure answer in the cloud, under the cloud model name, and answers with it', async () => {
    cloud.resetStats();
    const r = await infer(pool, 'iris', { body: irisBody(hard) });
    assert.equal(r.status, 200);
    assert.equal(r.servedBy, 'cloud');
    // Re-run as iris-xl (the cloud's request URL below); answered under the name the client asked for.
    assert.match(r.body, /"model_name":"iris"/);
    assert.deepEqual(cloud.requests().filter((q) => q.method === 'POST').map((q) => q.url), ['/v2/models/iris-xl/infer']);
    // One unsure row makes a batch unsure.
    const batch = await infer(pool, 'iris', { body: JSON.stringify({ inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', data: [...SETOSA, ...hard] }] }) });
    assert.equal(batch.servedBy, 'cloud');
  });

  it('answers with the edge result when the cloud is later than cloudWait', async () => {
    cloud.setServiceTime('iris-xl', '2s');
    const before = await metric(gw.adminUrl, 'modelguard_offload_decisions_total', { decision: 'cloud-failed' });
    const r = await infer(pool, 'iris', { body: irisBody(hard) });
    cloud.setServiceTime('iris-xl', 10);
    assert.equal(r.status, 200);
    assert.equal(r.servedBy, 'edge');
    assert.match(r.body, /"probabilities"/);
    assert.ok(r.ms >= 250 && r.ms < 1500, `answered after ${r.ms.toFixed(0)}ms (cloudWait 300ms)`);
    assert.equal(await metricSettles(gw.adminUrl, 'modelguard_offload_decisions_total', { decision: 'cloud-failed' }, before + 1), before + 1);
    // A late cloud is not a broken link: the breaker stays closed.
    assert.equal(await metric(gw.adminUrl, 'modelguard_offload_breaker_state', { model: 'iris' }), 0);
  });
});
