import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileResources, ConfigError } from '../../src/config/index.ts';
import type { ResourceInput } from '../../src/config/schema.ts';

function problems(resources: ResourceInput[]): string[] {
  try {
    compileResources(resources, { version: 1 });
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.issues.map((i) => `${i.message}${i.hint ? ` — hint: ${i.hint}` : ''}`);
  }
  return [];
}

const backend: ResourceInput = { kind: 'Backend', metadata: { name: 'b' }, spec: { endpoints: [{ url: 'http://127.0.0.1:8000' }] } };
const model: ResourceInput = { kind: 'Model', metadata: { name: 'm' }, spec: { backend: 'b' } };

test('an admin listener beyond loopback without adminTokens is an error with a hint', () => {
  const p = problems([{ kind: 'Gateway', metadata: { name: 'g' }, spec: { listeners: { admin: '0.0.0.0:9090' } } }]);
  assert.equal(p.length, 1);
  assert.match(p[0]!, /reachable beyond loopback but no adminTokens.*hint: add spec.adminTokens/);
  assert.deepEqual(problems([{ kind: 'Gateway', metadata: { name: 'g' }, spec: { listeners: { admin: '0.0.0.0:9090' }, adminTokens: [{ sha256: 'a'.repeat(64) }] } }]), []);
  assert.deepEqual(problems([{ kind: 'Gateway', metadata: { name: 'g' }, spec: { listeners: { admin: '[::1]:9090' } } }]), []);
});

test('source rules take IPv4 and IPv6 addresses and CIDRs, and refuse anything else', () => {
  assert.deepEqual(problems([{ kind: 'Gateway', metadata: { name: 'g' }, spec: { sources: { allow: ['10.0.0.0/8', '::1', 'fd00::/8', '192.168.1.7'] } } }]), []);
  for (const bad of ['10.0.0.0/33', 'fd00::/129', '10.0.0', 'example.com', '10.0.0.0/x']) {
    const p = problems([{ kind: 'Gateway', metadata: { name: 'g' }, spec: { sources: { deny: [bad] } } }]);
    assert.equal(p.length, 1, bad);
    assert.match(p[0]!, /expected an IPv4 or IPv6 address or CIDR/);
  }
});

test('a per-model rate limit must name an existing model; operations are a closed set', () => {
  const p = problems([backend, model, { kind: 'App', metadata: { name: 'a' }, spec: { modelRateLimits: [{ model: 'mm', requestsPerSecond: 1 }] } }]);
  assert.ok(p.some((x) => /Model "mm" does not exist.*hint: .*"m"/.test(x)), p.join('\n'));
  const q = problems([{ kind: 'App', metadata: { name: 'a' }, spec: { operations: ['infer', 'delete'] as unknown as ['infer'] } }]);
  assert.equal(q.length, 1);
});
