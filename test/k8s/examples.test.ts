import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Pod } from 'kubernetes-models/v1/Pod';
import { compileResources } from '../../src/config/index.ts';
import type { ResourceInput } from '../../src/config/index.ts';
import { allCrds } from '../../src/k8s/crds.ts';
import { toResourceDoc } from '../../src/k8s/resources.ts';
import type { ResourceProblem } from '../../src/k8s/resources.ts';
import { decide } from '../../src/k8s/inject.ts';
import type { Kind } from '../../src/config/schema.ts';
import { validate } from './openapi.ts';
import { applyPatch } from './json-patch.ts';
import type { PatchOp } from './json-patch.ts';
import type { Json } from './helpers.ts';

const DIR = join(import.meta.dirname, '..', '..', 'deploy', 'examples');
const load = (name: string): Json[] => parseAllDocuments(readFileSync(join(DIR, name), 'utf8')).map((d) => { const v: unknown = d.toJS(); return v; }) as Json[];
const schemas = new Map<string, Json>((allCrds() as Json[]).map((c): [string, Json] => [String(c.spec.names.kind), c.spec.versions[0].schema.openAPIV3Schema]));

test('the example resources pass their CRD schemas and compile once the Secret exists', () => {
  const crs = load('resources.yaml');
  for (const cr of crs) assert.deepEqual(validate(schemas.get(cr.kind), cr), [], `${cr.kind} ${cr.metadata.name}`);
  const problems: ResourceProblem[] = [];
  const docs = crs.map((cr) => toResourceDoc(cr.kind as Kind, cr, (name, key) => (name === 'camera-line-1-key' && key === 'key' ? 'mg_example_key' : undefined), problems));
  assert.deepEqual(problems, []);
  const loaded = compileResources(docs as unknown as ResourceInput[], { version: 1 });
  assert.ok(loaded.resources.some((r) => r.kind === 'App' && r.metadata.name === 'camera-line-1'));
});

test('the example application, once injected, is still a valid Pod (the injected containers pass the Pod schema)', () => {
  const [deployment] = load('camera-app.yaml');
  new Deployment(deployment as never).validate();
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { ...deployment.spec.template.metadata, generateName: 'camera-line-1-', namespace: 'factory' }, spec: deployment.spec.template.spec };
  const d = decide(pod, 'factory', { image: 'modelguard:0.1.0', controllerUrl: 'http://modelguard-controller.modelguard-system.svc:9090', namespace: 'modelguard-system' }, (n) => n === 'camera-line-1');
  assert.equal(d.kind, 'patch');
  const injected = applyPatch(pod, (d as { patch: readonly PatchOp[] }).patch) as Json;
  new Pod(injected as never).validate();
  assert.deepEqual(injected.spec.containers.map((c: Json) => String(c.name)), ['detector', 'modelguard-proxy']);
  // The validation is real: a broken injection would fail it.
  const broken = structuredClone(injected);
  broken.spec.containers[1].readinessProbe.httpGet.port = { port: 15090 };
  assert.throws(() => new Pod(broken as never).validate());
});
