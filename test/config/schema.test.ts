import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AppSchema, BackendSchema, DEFAULTS, GatewaySchema, ModelSchema, ServiceGroupSchema, parseSize } from '../../src/config/index.ts';
import { KIND_SCHEMAS } from '../../src/config/schema.ts';
import { duration, hostPort, httpUrl } from '../../src/config/primitives.ts';
import { fields } from '../../src/config/walk.ts';

describe('value syntax', () => {
  it('sizes are integer bytes or whole Ki/Mi/Gi', () => {
    const cases: [string | number, number | undefined][] = [
      [1048576, 1048576],
      ['1024', 1024],
      ['512Ki', 512 * 1024],
      ['8Mi', 8 * 1024 ** 2],
      ['1Gi', 1024 ** 3],
      [0, undefined],
      [1.5, undefined],
      ['100KB', undefined],
      ['8M', undefined],
      ['1.5Mi', undefined],
      ['8 Mi', undefined],
      ['-1', undefined],
    ];
    for (const [input, bytes] of cases) assert.equal(parseSize(input), bytes, `parseSize(${JSON.stringify(input)})`);
  });

  it('durations need a unit and must be positive', () => {
    const schema = duration();
    for (const ok of ['250ms', '2s', '1.5s', '1m', '1h']) assert.ok(schema.safeParse(ok).success, ok);
    for (const bad of [30, '30', '0s', '2 s', '2S', '1min', '', null]) assert.ok(!schema.safeParse(bad).success, String(bad));
    assert.match(schema.safeParse('1min').error?.issues[0]?.message ?? '', /hint: write "1m"/);
  });

  it('listener addresses are host:port with IPv6 in brackets and ports 0..65535', () => {
    const schema = hostPort();
    for (const ok of ['0.0.0.0:8080', '127.0.0.1:0', '[::1]:9090', '[::]:65535', 'edge-box.local:80']) assert.ok(schema.safeParse(ok).success, ok);
    for (const bad of ['8080', ':8080', '::1:9090', '0.0.0.0:65536', '999.1.1.1:80', 'host', '[nope]:80']) assert.ok(!schema.safeParse(bad).success, bad);
  });

  it('backend URLs are http(s) base URLs', () => {
    const schema = httpUrl();
    for (const ok of ['http://127.0.0.1:8000', 'https://api.example.com/v1/']) assert.ok(schema.safeParse(ok).success, ok);
    for (const bad of ['127.0.0.1:8000', 'grpc://x:1', 'http://x:1/?a=1', 'not a url']) assert.ok(!schema.safeParse(bad).success, bad);
  });
});

describe('schemas', () => {
  it('apply DEFAULTS to an all-default resource', () => {
    const backend = BackendSchema.parse({ kind: 'Backend', metadata: { name: 'b' }, spec: { endpoints: [{ url: 'http://h:1' }] } });
    assert.equal(backend.apiVersion, 'modelguard.io/v1alpha1');
    assert.equal(backend.spec.protocol, DEFAULTS.backend.protocol);
    assert.equal(backend.spec.timeout, DEFAULTS.backend.timeout);
    assert.equal(backend.spec.endpoints[0]?.slots, DEFAULTS.backend.slots);
    assert.deepEqual(backend.spec.healthCheck, { ...DEFAULTS.backend.healthCheck });
    const group = ServiceGroupSchema.parse({ kind: 'ServiceGroup', metadata: { name: 'g' } });
    assert.deepEqual(group.spec, { ...DEFAULTS.serviceGroup, queue: { ...DEFAULTS.serviceGroup.queue } });
    const gateway = GatewaySchema.parse({ kind: 'Gateway', metadata: { name: 'gw' }, spec: { mqtt: {} } });
    // grpc and admin stay unset: their defaults depend on the HTTP host and the role (compile, roles).
    assert.deepEqual(gateway.spec.listeners, { http: DEFAULTS.gateway.listeners.http, broker: DEFAULTS.gateway.listeners.broker });
    assert.deepEqual(gateway.spec.mqtt, { ...DEFAULTS.gateway.mqtt });
    assert.equal(gateway.spec.maxBodySize, DEFAULTS.gateway.maxBodySize);
  });

  it('derive backendModel and burst defaults, and lower-case key digests', () => {
    const model = ModelSchema.parse({ kind: 'Model', metadata: { name: 'resnet50' }, spec: { backend: 'b' } });
    assert.equal(model.spec.backendModel, 'resnet50');
    const app = AppSchema.parse({ kind: 'App', metadata: { name: 'a' }, spec: { apiKeys: [{ sha256: 'AB'.repeat(32) }], rateLimit: { requestsPerSecond: 0.2 } } });
    assert.equal(app.spec.apiKeys[0]?.sha256, 'ab'.repeat(32));
    assert.deepEqual(app.spec.rateLimit, { requestsPerSecond: 0.2, burst: 1 });
    assert.equal(app.spec.serviceGroup, 'default');
  });

  it('accept a missing apiVersion but reject another one', () => {
    const doc = { kind: 'ServiceGroup', metadata: { name: 'g' } };
    assert.ok(ServiceGroupSchema.safeParse(doc).success);
    assert.ok(ServiceGroupSchema.safeParse({ ...doc, apiVersion: 'modelguard.io/v1alpha1' }).success);
    assert.ok(!ServiceGroupSchema.safeParse({ ...doc, apiVersion: 'v1' }).success);
  });

  it('reject unknown keys at every level', () => {
    const base = { kind: 'Gateway', metadata: { name: 'gw' } };
    assert.ok(!GatewaySchema.safeParse({ ...base, extra: 1 }).success);
    assert.ok(!GatewaySchema.safeParse({ ...base, metadata: { name: 'gw', namespace: 'x' } }).success);
    assert.ok(!GatewaySchema.safeParse({ ...base, spec: { listeners: { https: '0.0.0.0:443' } } }).success);
  });

  it('reject clashing listeners and an embedded broker on a non-mqtt URL', () => {
    const gw = (spec: object) => GatewaySchema.safeParse({ kind: 'Gateway', metadata: { name: 'gw' }, spec });
    assert.match(gw({ listeners: { http: '0.0.0.0:9000', grpc: '127.0.0.1:9000' } }).error?.issues[0]?.message ?? '', /clashes with listeners\.http/);
    assert.ok(gw({ listeners: { http: '127.0.0.1:9000', grpc: '127.0.0.2:9000' } }).success);
    assert.ok(gw({ listeners: { http: '127.0.0.1:0', grpc: '127.0.0.1:0' } }).success);
    assert.ok(!gw({ mqtt: { url: 'mqtts://127.0.0.1:8883', embedded: true } }).success);
  });
});

describe('every field is described and documented', () => {
  const all = Object.entries(KIND_SCHEMAS).flatMap(([kind, schema]) => fields(schema).map((f) => ({ kind, ...f })));

  it('has a description that says its default (or that it is required)', () => {
    assert.ok(all.length > 60);
    for (const f of all) assert.match(f.description ?? '', /default|required|optional/, `${f.kind} ${f.path}`);
  });

  it('appears in docs/configuration.md', async () => {
    const docs = await readFile(fileURLToPath(new URL('../../docs/configuration.md', import.meta.url)), 'utf8');
    const missing = all.filter((f) => !docs.includes(`\`${f.path}\``)).map((f) => `${f.kind} ${f.path}`);
    assert.deepEqual(missing, []);
  });
});
