import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { compileResources } from '../../src/config/index.ts';
import type { ResourceInput } from '../../src/config/index.ts';
import { allCrds } from '../../src/k8s/crds.ts';
import { validate } from './openapi.ts';
import type { Json } from './helpers.ts';

const FIXTURES = join(import.meta.dirname, '..', 'config', 'fixtures');
const schemas = new Map<string, Json>((allCrds() as Json[]).map((c): [string, Json] => [String(c.spec.names.kind), c.spec.versions[0].schema.openAPIV3Schema]));

function docsIn(dir: string): Json[] {
  const docs: Json[] = [];
  // As the loader reads a directory: *.yaml and *.yml, no dotfiles, empty documents skipped.
  for (const f of readdirSync(dir).filter((n) => /\.ya?ml$/.test(n) && !n.startsWith('.'))) {
    for (const d of parseAllDocuments(readFileSync(join(dir, f), 'utf8'))) {
      const v: unknown = d.toJS();
      if (v !== null && v !== undefined) docs.push(v);
    }
  }
  return docs;
}

test('every resource the file loader accepts (the valid fixtures) is accepted by its CRD schema as written', () => {
  const docs = docsIn(join(FIXTURES, 'valid'));
  assert.ok(docs.length >= 8);
  compileResources(docs as ResourceInput[], { version: 1 }); // they are valid for the loader
  for (const d of docs) {
    const errors = validate(schemas.get(d.kind), { ...d, apiVersion: 'modelguard.io/v1alpha1' });
    assert.deepEqual(errors, [], `${d.kind} ${d.metadata.name}`);
  }
});

test('values the loader rejects are rejected by the CRD schema too, before they reach the controller', () => {
  const cases: [string, Json][] = [
    ['Backend', { endpoints: [{ url: 'http://x:1' }], timeout: '30' }],
    ['Backend', { endpoints: [{ url: 'x:1' }] }],
    ['Backend', { endpoints: [{ url: 'http://x:1', slots: 0 }] }],
    ['Backend', { protocol: 'kserve', endpoints: [{ url: 'http://x:1' }] }],
    ['Model', { backend: 'Triton_1' }],
    ['Model', { backend: 'b', maxBodySize: '100KB' }],
    ['ServiceGroup', { weight: 0 }],
    ['ServiceGroup', { queue: { maxWait: '2 s' } }],
    ['App', { apiKeys: [{ sha256: 'my-secret-key' }] }],
    ['App', { apiKeys: [{ sha256: 'a'.repeat(64), secretRef: { name: 'k', key: 'key' } }] }],
    ['App', { apiKeys: [{ secretRef: { name: 'k' } }] }],
    ['Gateway', { listeners: { http: ':8080' } }],
    ['Gateway', { mqtt: { url: 'http://broker:1883' } }],
    ['Gateway', { auth: 'token' }],
  ];
  for (const [kind, spec] of cases) {
    const errors = validate(schemas.get(kind), { apiVersion: 'modelguard.io/v1alpha1', kind, metadata: { name: 'x' }, spec });
    assert.ok(errors.length > 0, `${kind} ${JSON.stringify(spec)} should be rejected`);
  }
  // Positive controls for the Kubernetes-only form.
  assert.deepEqual(validate(schemas.get('App'), { spec: { apiKeys: [{ secretRef: { name: 'k', key: 'key' } }] } }), []);
  assert.deepEqual(validate(schemas.get('Model'), { spec: { backend: 'b', maxBodySize: 1048576 } }), []);
});
