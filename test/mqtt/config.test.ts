// MQTT settings: external-broker options are refused on the embedded broker with a hint, a bad
// topic prefix is named, and a configuration file error points at its line.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/index.ts';
import { GatewaySchema } from '../../src/config/schema.ts';

const gw = (mqtt: object) => GatewaySchema.safeParse({ kind: 'Gateway', metadata: { name: 'gw' }, spec: { mqtt } });

describe('Gateway.spec.mqtt', () => {
  it('fills defaults: QoS 1, prefix modelguard/v1, no shared group', () => {
    const r = gw({ url: 'mqtts://broker.local:8883' });
    assert.ok(r.success);
    assert.equal(r.data.spec.mqtt?.qos, 1);
    assert.equal(r.data.spec.mqtt?.topicPrefix, 'modelguard/v1');
    assert.equal(r.data.spec.mqtt?.sharedGroup, undefined);
  });

  it('refuses external-broker settings on the embedded broker, and a lone tls.cert', () => {
    const e = gw({ embedded: true, sharedGroup: 'a' });
    assert.ok(!e.success);
    assert.match(e.error.issues[0]?.message ?? '', /sharedGroup applies to an external broker.*set embedded: false/s);
    assert.ok(!gw({ embedded: true, username: 'u' }).success);
    assert.match(gw({ tls: { cert: '/c.pem' } }).error?.issues[0]?.message ?? '', /tls.cert and tls.key go together/);
    assert.ok(gw({ tls: { ca: '/ca.pem', cert: '/c.pem', key: '/k.pem' }, username: 'mg', passwordFile: '/pw' }).success);
  });

  it('refuses wildcards and $ in the topic prefix, and QoS 3', () => {
    for (const p of ['a/#', 'a/+/b', '$SYS', '/a', 'a/', '']) assert.ok(!gw({ topicPrefix: p }).success, p);
    assert.ok(gw({ topicPrefix: 'plant-7/vision' }).success);
    assert.ok(!gw({ qos: 3 }).success);
  });

  it('a bad field in a file is reported with file and line', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'mg-mqtt-cfg-')), 'gw.yaml');
    writeFileSync(file, ['kind: Gateway', 'metadata: { name: gw }', 'spec:', '  mqtt:', '    embedded: true', '    sharedGroup: edge', ''].join('\n'));
    const err = await loadConfig(file).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof ConfigError);
    assert.match(err.format(), /gw\.yaml:\d+.*sharedGroup/s);
  });
});
