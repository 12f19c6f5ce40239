// The mosquitto ACL documented in docs/security.md, run as written in a real mosquitto with a
// password file: over MQTT 5 and 3.1.1, a device reads only its own App's replies, never the
// requests (keys) or another App's answers, and ModelGuard refuses reply topics that would leak
// or loop. Retained requests are never run, also after ModelGuard reconnects.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import type { Gateway } from '../../src/compose/gateway.ts';
import type { ModelServer } from '../../src/demo/index.ts';
import { accelerator, gateway, keyFor, INFER_BODY, waitFor } from '../helpers/harness.ts';
import { Caller, connect, errorCode, startMosquitto, type Mosquitto } from '../mqtt/helpers.ts';
import { modelCalls } from './reach.ts';

const INFER = JSON.parse(INFER_BODY) as Record<string, unknown>;
const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

/** The ACL lines exactly as docs/security.md shows them. */
function documentedAcl(): string[] {
  const doc = readFileSync(new URL('../../docs/security.md', import.meta.url), 'utf8');
  const block = /<!-- mosquitto-acl:begin -->\n```text\n([\s\S]*?)```\n<!-- mosquitto-acl:end -->/.exec(doc)?.[1];
  assert.ok(block, 'docs/security.md has the mosquitto ACL block');
  return block.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
}

const PASSWORDS = { modelguard: 'mg-secret', 'app-a': 'pw-a', 'app-b': 'pw-b' };

/** A subscriber that records every message it is delivered. */
async function spy(url: string, version: 4 | 5, user: keyof typeof PASSWORDS, filters: string[]): Promise<{ client: MqttClient; seen: string[] }> {
  const client = await connect(url, version, { username: user, password: PASSWORDS[user] });
  closers.push(() => client.endAsync());
  const seen: string[] = [];
  client.on('message', (topic) => seen.push(topic));
  for (const f of filters) await client.subscribeAsync(f, { qos: 1 }).catch(() => undefined);
  return { client, seen };
}

describe('the documented mosquitto ACL, with ModelGuard as an external-broker client', () => {
  let broker: Mosquitto;
  let acc: ModelServer;
  let gw: Gateway;
  let pwFile: string;

  before(async () => {
    broker = await startMosquitto({ users: PASSWORDS, acl: documentedAcl() });
    closers.push(() => broker.close());
    acc = await accelerator({ slots: 2, serviceTime: 1, recordLimit: 1_000_000 });
    closers.push(() => acc.close());
    pwFile = join(mkdtempSync(join(tmpdir(), 'mg-acl-')), 'pw');
    writeFileSync(pwFile, `${PASSWORDS.modelguard}\n`);
    gw = await gateway({
      endpoints: [{ url: acc.url, slots: 2 }],
      groups: [{ name: 'a' }, { name: 'b' }],
      gateway: { mqtt: { url: broker.url, username: 'modelguard', passwordFile: pwFile } },
    });
    closers.push(() => gw.close());
  });

  for (const version of [5, 4] as const) {
    it(`MQTT ${version === 5 ? '5' : '3.1.1'}: a device is answered on its App's reply topic, and another App's device reads none of it`, { timeout: 30_000 }, async () => {
      const watcher = await spy(broker.url, version, 'app-b', ['#', 'modelguard/#', 'modelguard/v1/infer/+', 'modelguard/v1/infer/demo/#', 'modelguard/v1/app-a/replies/#', 'modelguard/v1/+/replies/#', '+/+/+/replies/#']);
      const a = await Caller.create(broker.url, version, { username: 'app-a', password: PASSWORDS['app-a'] }, 'modelguard/v1/app-a/replies');
      closers.push(() => a.close());
      const r = await a.request('demo', INFER, { key: keyFor('a') });
      assert.equal(errorCode(r), undefined, JSON.stringify(r.doc));
      assert.equal(r.topic.startsWith('modelguard/v1/app-a/replies/'), true);
      // A second answered request proves delivery has caught up; the watcher saw nothing of app-a.
      assert.equal(errorCode(await a.request('demo', INFER, { key: keyFor('a') })), undefined);
      const own = await Caller.create(broker.url, version, { username: 'app-b', password: PASSWORDS['app-b'] }, 'modelguard/v1/app-b/replies');
      closers.push(() => own.close());
      assert.equal(errorCode(await own.request('demo', INFER, { key: keyFor('b') })), undefined);
      assert.deepEqual(watcher.seen.filter((t) => !t.startsWith('modelguard/v1/app-b/replies/')), [], 'app-b read requests or app-a replies');
    });
  }

  it('a device cannot write into another App\'s replies, and ModelGuard refuses to: app-b naming app-a\'s reply topic is not run', { timeout: 30_000 }, async () => {
    const a = await Caller.create(broker.url, 5, { username: 'app-a', password: PASSWORDS['app-a'] }, 'modelguard/v1/app-a/replies');
    closers.push(() => a.close());
    const b = await connect(broker.url, 5, { username: 'app-b', password: PASSWORDS['app-b'] });
    closers.push(() => b.endAsync());
    const served = modelCalls(acc);
    const refused = gw.mqtt?.stats.refused ?? 0;
    // Forged answer straight into app-a's reply topic: mosquitto refuses it (PUBACK 0x87, not authorized).
    await assert.rejects(b.publishAsync(a.replyTopic, JSON.stringify({ outputs: 'forged' }), { qos: 1 }), (e: { code?: number }) => e.code === 0x87);
    // A request whose responseTopic is app-a's: ModelGuard refuses it, publishes nothing there.
    await b.publishAsync('modelguard/v1/infer/demo', INFER_BODY, { qos: 1, properties: { responseTopic: a.replyTopic, correlationData: Buffer.from('x'), userProperties: { 'x-api-key': keyFor('b') } } });
    await waitFor(() => (gw.mqtt?.stats.refused ?? 0) === refused + 1, 'the refused request');
    assert.equal(errorCode(await a.request('demo', INFER, { key: keyFor('a') })), undefined);
    assert.deepEqual(a.strays, [], 'nothing but its own answer reached app-a');
    assert.equal(modelCalls(acc), served + 1, 'only app-a\'s own request reached the model server');
  });

  it('a reply topic that is a request topic is refused, never run and never published (no loop)', { timeout: 30_000 }, async () => {
    const a = await Caller.create(broker.url, 4, { username: 'app-a', password: PASSWORDS['app-a'] }, 'modelguard/v1/app-a/replies');
    closers.push(() => a.close());
    const served = modelCalls(acc);
    const refused = gw.mqtt?.stats.refused ?? 0;
    const replied = gw.mqtt?.stats.replied ?? 0;
    await a.client.publishAsync('modelguard/v1/infer/demo', JSON.stringify({ ...INFER, apiKey: keyFor('a'), replyTo: 'modelguard/v1/infer/demo', id: 1 }), { qos: 1 });
    await waitFor(() => (gw.mqtt?.stats.refused ?? 0) === refused + 1, 'the refused request');
    assert.equal(errorCode(await a.request('demo', INFER, { key: keyFor('a') })), undefined);
    await waitFor(() => gw.mqtt?.stats.replied === replied + 1, 'the one answer counted');
    assert.equal(a.strays.length, 0);
    assert.equal(modelCalls(acc), served + 1);
  });

  it('a retained request is run once when published, never again when ModelGuard (re)subscribes', { timeout: 30_000 }, async () => {
    const a = await Caller.create(broker.url, 5, { username: 'app-a', password: PASSWORDS['app-a'] }, 'modelguard/v1/app-a/replies');
    closers.push(() => a.close());
    const served = modelCalls(acc);
    // Live delivery: mosquitto clears the flag for existing subscribers; it is served once.
    const props = { responseTopic: a.replyTopic, correlationData: Buffer.from('retained'), userProperties: { 'x-api-key': keyFor('a') } };
    await a.client.publishAsync('modelguard/v1/infer/demo', INFER_BODY, { qos: 1, retain: true, properties: props });
    await waitFor(() => modelCalls(acc) === served + 1, 'the live retained request served');
    // A second ModelGuard subscribes now: the stored request is not replayed to it.
    const second = await gateway({
      endpoints: [{ url: acc.url, slots: 2 }],
      groups: [{ name: 'a' }, { name: 'b' }],
      gateway: { mqtt: { url: broker.url, username: 'modelguard', passwordFile: pwFile } },
    });
    closers.push(() => second.close());
    await gw.close();
    assert.equal(errorCode(await a.request('demo', INFER, { key: keyFor('a') })), undefined);
    assert.equal(modelCalls(acc), served + 2, 'the retained request ran only once');
    // Clear the retained message so it cannot affect anything after this test.
    await a.client.publishAsync('modelguard/v1/infer/demo', '', { qos: 1, retain: true });
  });
});
