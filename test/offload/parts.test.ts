/**
 * The offload parts on their own, with a fake clock: the budget's sliding second and UTC day, the
 * breaker's states, the confidence of a classification answer, the predictions, and the rewrite
 * of a call for the cloud's model name.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it, mock } from 'node:test';
import { Breaker, type BreakerState } from '../../src/broker/offload/breaker.ts';
import { OffloadBudget } from '../../src/broker/offload/budget.ts';
import { answerConfidence } from '../../src/broker/offload/confidence.ts';
import { cloudCall } from '../../src/broker/offload/offloader.ts';
import { CloudTime } from '../../src/broker/offload/predictor.ts';
import { Cancel } from '../../src/core/cancel.ts';
import type { InferenceCall } from '../../src/core/request.ts';

describe('offload budget', () => {
  it('allows N sends in any one-second window, exactly', () => {
    const b = new OffloadBudget(3, undefined);
    for (const t of [0, 100, 200]) assert.equal(b.take(t), 'ok');
    assert.equal(b.take(999), 'second');
    assert.equal(b.take(1000), 'ok'); // the send at 0 left the window
    assert.equal(b.take(1099), 'second');
    assert.equal(b.check(1100), 'ok');
    assert.equal(b.take(1100), 'ok');
    assert.equal(b.take(1150), 'second');
  });

  it('allows M sends per UTC day and starts again the next day', () => {
    let wall = Date.UTC(2026, 0, 1, 23, 59, 59);
    const b = new OffloadBudget(undefined, 2, () => wall);
    assert.equal(b.leftToday(), 2);
    assert.equal(b.take(0), 'ok');
    assert.equal(b.take(1), 'ok');
    assert.equal(b.take(2), 'day');
    assert.equal(b.leftToday(), 0);
    wall += 1000; // past midnight UTC
    assert.equal(b.leftToday(), 2);
    assert.equal(b.take(3), 'ok');
  });

  it('keeps what was spent when reconfigured', () => {
    const b = new OffloadBudget(5, 10);
    for (let i = 0; i < 5; i++) b.take(i);
    b.configure(2, 10);
    assert.equal(b.take(10), 'second', 'the two newest sends fill a window of 2');
    assert.equal(b.take(1004), 'ok');
    b.configure(undefined, 6);
    assert.equal(b.take(1005), 'day', 'six sent today');
  });
});

describe('offload breaker', () => {
  afterEach(() => mock.timers.reset());

  async function flush(): Promise<void> {
    for (let i = 0; i < 5; i++) await Promise.resolve();
  }

  it('opens after N consecutive failures, probes every openFor, lets one trial through, and closes on its success', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    let linkUp = false;
    const changes: BreakerState[] = [];
    const b = new Breaker({ failureThreshold: 3, openForMs: 500 }, () => Promise.resolve(linkUp), (s) => changes.push(s));
    b.failure('x');
    b.failure('x');
    b.success(); // not consecutive
    b.failure('x');
    b.failure('x');
    assert.equal(b.state, 'closed');
    b.failure('x');
    assert.equal(b.state, 'open');
    assert.equal(b.allows(), false);
    mock.timers.tick(500);
    await flush();
    assert.equal(b.state, 'open', 'the probe failed');
    linkUp = true;
    mock.timers.tick(500);
    await flush();
    assert.equal(b.state, 'half-open');
    assert.equal(b.allows(), true);
    b.sending();
    assert.equal(b.allows(), false, 'one trial at a time');
    b.failure('trial');
    assert.equal(b.state, 'open', 'a failed trial opens it again');
    mock.timers.tick(500);
    await flush();
    b.sending();
    b.success();
    assert.equal(b.state, 'closed');
    assert.deepEqual(changes, ['open', 'half-open', 'open', 'half-open', 'closed']);
    assert.equal(b.opened, 2);
    b.close();
  });
});

describe('confidence of a classification answer', () => {
  const answer = (outputs: unknown[]): Buffer => Buffer.from(JSON.stringify({ model_name: 'm', outputs }));

  it('is the top probability, the lowest over the batch', () => {
    const probs = { name: 'probabilities', shape: [2, 3], datatype: 'FP32', data: [0.9, 0.05, 0.05, 0.4, 0.35, 0.25] };
    assert.equal(answerConfidence(answer([probs]), undefined), 0.4);
    const nested = { ...probs, data: [[0.9, 0.05, 0.05], [0.4, 0.35, 0.25]] };
    assert.equal(answerConfidence(answer([nested]), 'probabilities'), 0.4);
  });

  it('reads the named output, and is undefined when there is none to read', () => {
    const label = { name: 'label', shape: [1], datatype: 'INT64', data: [2] };
    const probs = { name: 'probabilities', shape: [1, 3], datatype: 'FP32', data: [0.1, 0.2, 0.7] };
    assert.equal(answerConfidence(answer([label, probs]), 'probabilities'), 0.7);
    assert.equal(answerConfidence(answer([label]), 'probabilities'), undefined);
    assert.equal(answerConfidence(Buffer.from('not json'), undefined), undefined);
    assert.equal(answerConfidence(answer([{ name: 'p', shape: [2, 3], data: [1, 2] }]), undefined), undefined);
  });
});

describe('predictions', () => {
  it('cloud time starts at the prior, follows measurements, and decays back when they stop', () => {
    const c = new CloudTime();
    assert.equal(c.predict(50, 0), 50);
    c.observe(200, 0);
    assert.equal(c.predict(50, 500), 200);
    c.observe(100, 600);
    assert.equal(c.predict(50, 600), 175);
    // 1 s after the last sample the estimate halves toward the prior every 2 s.
    assert.equal(c.predict(50, 1600 + 2000), 50 + 125 / 2);
    c.observe(80, 10_000); // a stale estimate is replaced, not blended
    assert.equal(c.predict(50, 10_000), 80);
  });
});

describe('the call as the cloud sees it', () => {
  const call = (over: Partial<InferenceCall>): InferenceCall => ({
    id: 'r1', protocol: 'http', api: 'kserve-v2', op: 'infer', model: 'm', method: 'POST', path: '/v2/models/m/infer', headers: { 'x-request-id': 'r1' },
    body: Buffer.from('{}'), timeoutMs: undefined, signal: new Cancel(), receivedAt: 0, costHint: undefined, ...over,
  });

  it('renames the model in a KServe path (versions too) and in an OpenAI body', () => {
    assert.equal(cloudCall(call({}), 'm', 'm-xl', new Cancel()).path, '/v2/models/m-xl/infer');
    assert.equal(cloudCall(call({ path: '/v2/models/m/versions/3/infer' }), 'm', 'm-xl', new Cancel()).path, '/v2/models/m-xl/versions/3/infer');
    const ai = cloudCall(call({ api: 'openai', path: '/v1/chat/completions', body: Buffer.from('{"model":"m","stream":true}') }), 'm', 'gpt-big', new Cancel());
    assert.deepEqual(JSON.parse(ai.body?.toString() ?? ''), { model: 'gpt-big', stream: true });
    assert.equal(ai.path, '/v1/chat/completions');
  });

  it('has its own cancel signal', () => {
    const mine = new Cancel();
    const out = cloudCall(call({}), 'm', 'm', mine);
    assert.equal(out.signal, mine);
    assert.equal(out.path, '/v2/models/m/infer');
  });
});
