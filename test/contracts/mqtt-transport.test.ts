/**
 * The MqttTransport contract (src/adapters/mqtt/transport.ts), run against both implementations:
 * the embedded broker (aedes in-process) and the external one (an MQTT.js client of Debian's
 * mosquitto). A real MQTT 5 device (MQTT.js) publishes and reads; the ingress above the transport
 * is not involved, so what is checked is exactly what the ingress relies on.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import mqtt, { type MqttClient } from 'mqtt';
import type { MqttSnapshot } from '../../src/core/snapshot.ts';
import { EmbeddedBroker } from '../../src/adapters/mqtt/embedded.ts';
import { ExternalBroker } from '../../src/adapters/mqtt/external.ts';
import type { MqttTransport, RequestMessage } from '../../src/adapters/mqtt/transport.ts';
import { startMosquitto } from '../mqtt/helpers.ts';

const PREFIX = 'modelguard/v1';
const KEY = 'contract-key';
const APP = 'app1';
const REPLIES = `${PREFIX}/${APP}/replies/contract`;

function cfg(url: string, embedded: boolean): MqttSnapshot {
  return { url, embedded, qos: 1, topicPrefix: PREFIX, sharedGroup: undefined, clientId: `mg-contract-${embedded ? 'e' : 'x'}`, username: undefined, passwordFile: undefined, tls: undefined };
}

interface Made {
  transport: MqttTransport;
  /** MQTT 5 devices (aedes, under the embedded broker, speaks MQTT 3.1.1 only). */
  mqtt5: boolean;
  /** Where a device connects once the transport has started. */
  deviceUrl(): string;
  close(): Promise<void>;
}

const implementations: [string, () => Promise<Made>][] = [
  [
    'embedded (aedes)',
    async () => {
      const t = new EmbeddedBroker(cfg('mqtt://127.0.0.1:0', true), 'mqtt://127.0.0.1:0', async (key) => (key === KEY ? { app: APP } : undefined), 1024 * 1024);
      return { transport: t, mqtt5: false, deviceUrl: () => t.url, close: async () => undefined };
    },
  ],
  [
    'external (mosquitto)',
    async () => {
      const broker = await startMosquitto();
      const t = new ExternalBroker(cfg(broker.url, false), broker.url);
      return { transport: t, mqtt5: true, deviceUrl: () => broker.url, close: () => broker.close() };
    },
  ],
];

function device(url: string, mqtt5: boolean): Promise<MqttClient> {
  const c = mqtt.connect(url, { protocolVersion: mqtt5 ? 5 : 4, username: APP, password: KEY, reconnectPeriod: 0, connectTimeout: 5000 });
  return new Promise((resolve, reject) => {
    c.once('connect', () => resolve(c));
    c.once('error', reject);
  });
}

function next<T>(arr: T[], timeoutMs = 3000): Promise<T> {
  const end = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const poll = (): void => {
      const v = arr.shift();
      if (v !== undefined) return resolve(v);
      if (Date.now() > end) return reject(new Error('nothing arrived'));
      setTimeout(poll, 5);
    };
    poll();
  });
}

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

for (const [name, make] of implementations) {
  describe(`MqttTransport: ${name}`, () => {
    it('delivers a request (with its MQTT 5 properties where the protocol has them), sends the reply to the device, stops intake, closes', { timeout: 30_000 }, async () => {
      const made = await make();
      closers.push(() => made.close());
      const t = made.transport;
      const got: RequestMessage[] = [];
      await t.start((m) => got.push(m));
      closers.push(() => t.close());
      assert.equal(t.connected, true);
      assert.match(t.url, /^mqtt:\/\/127\.0\.0\.1:\d+$/);
      assert.notEqual(t.url, 'mqtt://127.0.0.1:0');

      const dev = await device(made.deviceUrl(), made.mqtt5);
      closers.push(() => dev.endAsync());
      const replies: { topic: string; payload: Buffer; correlation: string | undefined; props: unknown }[] = [];
      dev.on('message', (topic, payload, packet) => replies.push({ topic, payload, correlation: packet.properties?.correlationData?.toString(), props: packet.properties?.userProperties }));
      await dev.subscribeAsync(REPLIES, { qos: 1 });

      const body = Buffer.from('{"inputs":[]}');
      const props = made.mqtt5 ? { properties: { responseTopic: REPLIES, correlationData: Buffer.from('c-1'), userProperties: { 'x-request-timeout': '2s' } } } : {};
      await dev.publishAsync(`${PREFIX}/infer/m1`, body, { qos: 1, ...props });
      const req = await next(got);
      assert.equal(req.topic, `${PREFIX}/infer/m1`);
      assert.deepEqual(req.payload, body);
      if (made.mqtt5) {
        assert.equal(req.responseTopic, REPLIES);
        assert.equal(req.correlationData?.toString(), 'c-1');
        assert.equal(req.userProperties?.['x-request-timeout'], '2s');
      } else {
        assert.equal(req.responseTopic, undefined);
        assert.equal(req.correlationData, undefined);
      }
      assert.equal(req.retained, false);
      if (name.startsWith('embedded')) {
        // Only the embedded broker knows who published, and from where.
        assert.equal(req.connectionApp, APP);
        assert.equal(req.connectionKey, KEY);
        assert.match(req.source ?? '', /127\.0\.0\.1/);
      } else {
        assert.equal(req.connectionApp, undefined);
      }

      await t.reply({ topic: REPLIES, payload: Buffer.from('{"ok":true}'), correlationData: Buffer.from('c-1'), userProperties: { 'x-request-id': 'r-1' } });
      const reply = await next(replies);
      assert.equal(reply.topic, REPLIES);
      assert.equal(reply.payload.toString(), '{"ok":true}');
      if (made.mqtt5) {
        assert.equal(reply.correlation, 'c-1');
        assert.deepEqual({ ...(reply.props as object) }, { 'x-request-id': 'r-1' });
      }

      // After stopIntake nothing new is delivered; replies still go out.
      await t.stopIntake();
      await dev.publishAsync(`${PREFIX}/infer/m1`, body, { qos: 1 });
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(got.length, 0, 'no request after stopIntake');
      await t.reply({ topic: REPLIES, payload: Buffer.from('{"late":true}'), correlationData: undefined, userProperties: undefined });
      assert.equal((await next(replies)).payload.toString(), '{"late":true}');

      await dev.endAsync();
      await t.close();
      assert.equal(t.connected, false);
      await assert.rejects(t.reply({ topic: REPLIES, payload: Buffer.from('x'), correlationData: undefined, userProperties: undefined }));
    });
  });
}
