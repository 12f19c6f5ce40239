/**
 * Proxy → broker over the link, in one process on loopback: identity is asserted only by an
 * authenticated proxy, rejections happen at the proxy, and the broker's answers (including its
 * errors and Retry-After) reach the client unchanged.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { proxySnapshot, brokerSnapshot } from '../../src/config/partition.ts';
import { startBroker, startProxy, type BrokerRole, type ProxyRole } from '../../src/compose/roles.ts';
import type { RequestRecord } from '../../src/core/events.ts';
import type { ModelServer } from '../../src/demo/index.ts';
import { sha256Hex } from '../../src/security/identity.ts';
import { accelerator, INFER_BODY, keyFor, pool, send, snapshotFor, waitFor } from '../helpers/harness.ts';

const TOKEN_A = 'proxy-token-a';
const TOKEN_ANY = 'proxy-token-any';

describe('proxy → broker link', () => {
  let model: ModelServer;
  let broker: BrokerRole;
  let proxy: ProxyRole;
  const seenAtBroker: RequestRecord[] = [];

  before(async () => {
    model = await accelerator({ slots: 1, serviceTime: 100 });
    const full = snapshotFor({
      endpoints: [{ url: model.url, slots: 1 }],
      groups: [{ name: 'a', weight: 1, maxLength: 2 }, { name: 'b' }],
      gateway: {
        proxies: [
          { name: 'sidecar-a', tokens: [{ sha256: sha256Hex(TOKEN_A) }], apps: ['app-a'] },
          { name: 'shared', tokens: [{ sha256: sha256Hex(TOKEN_ANY) }] },
        ],
      },
    });
    broker = await startBroker(brokerSnapshot(full, 'node-1'), { listen: '127.0.0.1:0', admin: '127.0.0.1:0' });
    broker.pipeline.events.subscribe((r) => seenAtBroker.push(r));
    proxy = await startProxy(proxySnapshot(full, []), { broker: broker.linkUrl, token: TOKEN_ANY, http: '127.0.0.1:0', grpc: '127.0.0.1:0', admin: '127.0.0.1:0' });
    await waitFor(() => proxy.pipeline.ready(), 'the proxy to see its broker');
  });

  after(async () => {
    await proxy.close();
    await broker.close();
    await model.close();
  });

  it('answers through the proxy as the backend answered, with the app identified at the broker', async () => {
    const p = pool(proxy.httpUrl);
    const direct = pool(model.url);
    const before = seenAtBroker.length;
    const res = await send(p, '/v2/models/demo/infer', { key: keyFor('a'), body: INFER_BODY });
    const ref = await send(direct, '/v2/models/demo/infer', { body: INFER_BODY });
    assert.equal(res.status, 200, res.body);
    assert.deepEqual(JSON.parse(res.body).outputs, JSON.parse(ref.body).outputs);
    await waitFor(() => seenAtBroker.length > before, 'the broker record');
    const rec = seenAtBroker.at(-1)!;
    assert.equal(rec.app, 'app-a');
    assert.equal(rec.group, 'a');
    assert.equal(rec.model, 'demo');
    await p.close();
    await direct.close();
  });

  it('ignores identity and group headers a client sends to the proxy', async () => {
    const p = pool(proxy.httpUrl);
    const before = seenAtBroker.length;
    const res = await send(p, '/v2/models/demo/infer', {
      key: keyFor('a'),
      body: INFER_BODY,
      headers: { 'x-modelguard-app': 'app-b', 'x-modelguard-group': 'b', 'x-modelguard-proxy-authorization': `Bearer ${TOKEN_A}` },
    });
    assert.equal(res.status, 200, res.body);
    await waitFor(() => seenAtBroker.length > before, 'the broker record');
    assert.equal(seenAtBroker.at(-1)!.app, 'app-a');
    assert.equal(seenAtBroker.at(-1)!.group, 'a');
    await p.close();
  });

  it('refuses calls straight to the broker without a proxy credential, or asserting an app the proxy may not', async () => {
    const b = pool(broker.linkUrl);
    const headers = { 'x-modelguard-app': 'app-a', 'x-modelguard-model': 'demo', 'x-modelguard-api': 'kserve-v2' };
    const none = await send(b, '/v2/models/demo/infer', { body: INFER_BODY, headers });
    assert.equal(none.status, 401);
    assert.equal(none.code, 'MG_UNAUTHENTICATED');
    const appKey = await send(b, '/v2/models/demo/infer', { key: keyFor('a'), body: INFER_BODY, headers });
    assert.equal(appKey.status, 401, 'an app key is not a proxy credential');
    const wrong = await send(b, '/v2/models/demo/infer', { body: INFER_BODY, headers: { ...headers, 'x-modelguard-proxy-authorization': 'Bearer nope' } });
    assert.equal(wrong.status, 401);
    const other = await send(b, '/v2/models/demo/infer', {
      body: INFER_BODY,
      headers: { ...headers, 'x-modelguard-app': 'app-b', 'x-modelguard-proxy-authorization': `Bearer ${TOKEN_A}` },
    });
    assert.equal(other.status, 403);
    assert.equal(other.code, 'MG_FORBIDDEN');
    const ok = await send(b, '/v2/models/demo/infer', { body: INFER_BODY, headers: { ...headers, 'x-modelguard-proxy-authorization': `Bearer ${TOKEN_A}` } });
    assert.equal(ok.status, 200, ok.body);
    await b.close();
  });

  it('rejects bad credentials at the proxy: the broker never sees them', async () => {
    const p = pool(proxy.httpUrl);
    const before = seenAtBroker.length;
    const noKey = await send(p, '/v2/models/demo/infer', { body: INFER_BODY });
    const badKey = await send(p, '/v2/models/demo/infer', { key: 'not-a-key', body: INFER_BODY });
    const unknown = await send(p, '/v2/models/nope/infer', { key: keyFor('a'), body: INFER_BODY });
    assert.deepEqual([noKey.status, badKey.status, unknown.status], [401, 401, 404]);
    // A request that does reach the broker afterwards proves the broker's records are flowing.
    await send(p, '/v2/models/demo/infer', { key: keyFor('b'), body: INFER_BODY });
    await waitFor(() => seenAtBroker.length > before, 'the broker record');
    assert.equal(seenAtBroker.length, before + 1);
    assert.equal(seenAtBroker.at(-1)!.app, 'app-b');
    await p.close();
  });

  it("carries the broker's rejection back with its code and Retry-After", async () => {
    const p = pool(proxy.httpUrl, 16);
    // Group a holds at most 2 queued behind the one running: 8 at once overflow it.
    const answers = await Promise.all(Array.from({ length: 8 }, () => send(p, '/v2/models/demo/infer', { key: keyFor('a'), body: INFER_BODY })));
    const full = answers.filter((a) => a.status === 429);
    assert.ok(full.length >= 3, `expected queue-full rejections, got ${answers.map((a) => a.status).join(',')}`);
    for (const a of full) {
      assert.equal(a.code, 'MG_QUEUE_FULL');
      assert.ok(Number(a.retryAfter) >= 1);
    }
    assert.ok(answers.some((a) => a.status === 200));
    await p.close();
  });

  it('removes queued work at the broker when the client goes away', async () => {
    const p = pool(proxy.httpUrl, 16);
    const ac = new AbortController();
    const running = send(p, '/v2/models/demo/infer', { key: keyFor('b'), body: INFER_BODY }).catch(() => undefined);
    const queued = send(p, '/v2/models/demo/infer', { key: keyFor('b'), body: INFER_BODY, signal: ac.signal, headers: { 'x-request-id': 'cancel-me-1' } }).catch(
      () => 'aborted',
    );
    await waitFor(() => broker.broker.status().groups.find((g) => g.name === 'b')!.queued === 1, 'the call to queue at the broker');
    ac.abort();
    assert.equal(await queued, 'aborted');
    await waitFor(() => broker.broker.status().groups.find((g) => g.name === 'b')!.queued === 0, 'the queue to empty');
    await running;
    assert.equal(model.receivedIds().has('cancel-me-1'), false, 'the cancelled call never reached the model');
    await p.close();
  });
});
