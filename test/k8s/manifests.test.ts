import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1/CustomResourceDefinition';
import { MutatingWebhookConfiguration } from 'kubernetes-models/admissionregistration.k8s.io/v1/MutatingWebhookConfiguration';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { KINDS } from '../../src/config/schema.ts';
import { KIND_NAMES, allCrds, renderCrdFiles, structural, valueTypeOf } from '../../src/k8s/crds.ts';
import { duration, size, dnsName, hostPort, httpUrl, mqttUrl, cidr, sha256Hex } from '../../src/config/primitives.ts';
import { PROXY_CONTAINER } from '../../src/k8s/inject.ts';
import type { Json } from './helpers.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const BASE = join(ROOT, 'deploy', 'base');

/** Every kind the base renders, with the kubernetes-models class that validates it. */
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'apiextensions.k8s.io/v1/CustomResourceDefinition': CustomResourceDefinition,
  'admissionregistration.k8s.io/v1/MutatingWebhookConfiguration': MutatingWebhookConfiguration,
  'apps/v1/DaemonSet': DaemonSet,
  'apps/v1/Deployment': Deployment,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
  'rbac.authorization.k8s.io/v1/Role': Role,
  'rbac.authorization.k8s.io/v1/RoleBinding': RoleBinding,
  'v1/Namespace': Namespace,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
};

function kustomize(): Json[] {
  let out: string;
  try {
    out = execFileSync('kubectl', ['kustomize', BASE], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT') assert.fail('kubectl is not on PATH: install it (Debian: apt-get install kubernetes-client; .ci/run does) to render deploy/base');
    assert.fail(`kubectl kustomize deploy/base failed: ${err.stderr ?? err.message}`);
  }
  return parseAllDocuments(out).map((d) => { const v: unknown = d.toJS(); return v; }) as Json[];
}

const rendered = kustomize();
const find = (kind: string, name: string): Json => {
  const found = rendered.find((d) => d.kind === kind && d.metadata.name === name);
  assert.ok(found, `${kind} ${name} rendered`);
  return found;
};

test('the committed CRDs are exactly what scripts/gen-crds.ts generates from the schemas (no drift)', () => {
  for (const [name, text] of renderCrdFiles((v) => stringify(v, { lineWidth: 0 }))) {
    assert.equal(readFileSync(join(BASE, 'crds', name), 'utf8'), text, `deploy/base/crds/${name} is stale: run node --import tsx scripts/gen-crds.ts`);
  }
});

test('kubectl kustomize renders the base, and every object validates against the Kubernetes schemas', () => {
  const kinds = rendered.map((d) => `${d.kind}/${d.metadata.name}`);
  for (const kind of KINDS) assert.ok(kinds.includes(`CustomResourceDefinition/${KIND_NAMES[kind].plural}.modelguard.io`), kind);
  for (const k of ['Deployment/modelguard-controller', 'DaemonSet/modelguard-broker', 'MutatingWebhookConfiguration/modelguard-injector', 'Service/modelguard-webhook', 'Service/modelguard-controller', 'Role/modelguard-controller', 'ClusterRole/modelguard-controller']) {
    assert.ok(kinds.includes(k), k);
  }
  for (const doc of rendered) {
    const Model = MODELS[`${doc.apiVersion}/${doc.kind}`];
    assert.ok(Model !== undefined, `no validator for ${doc.apiVersion} ${doc.kind}`);
    new Model(doc as never).validate();
    assert.equal(doc.metadata.labels?.['app.kubernetes.io/part-of'], 'modelguard', `${doc.kind} ${doc.metadata.name} is labelled`);
  }
});

test('the validation is real: a broken manifest fails it', () => {
  const ds = structuredClone(find('DaemonSet', 'modelguard-broker'));
  ds.spec.template.spec.containers[0].ports[0].containerPort = 'eighty';
  assert.throws(() => new DaemonSet(ds as never).validate(), /containerPort/);
  const crd = structuredClone(allCrds()[0]!) as Json;
  crd.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.timeout.exclusiveMinimum = 3;
  assert.throws(() => new CustomResourceDefinition(crd as never).validate(), /exclusiveMinimum/);
});

test('CRDs: structural schemas with status subresource, printer columns and Secret references for keys', () => {
  for (const crd of allCrds() as Json[]) {
    const v = crd.spec.versions[0];
    assert.deepEqual(v.subresources, { status: {} });
    assert.ok(v.additionalPrinterColumns.some((c: Json) => c.name === 'Accepted'));
    const walk = (node: Json, at: string): void => {
      assert.equal(node.$ref, undefined, at);
      assert.equal(node.default, undefined, at);
      assert.ok(node.type !== undefined || node['x-kubernetes-int-or-string'] === true, `${at} has a type`);
      if (node.additionalProperties === false) assert.fail(`${at}: additionalProperties false is not structural`);
      for (const [k, p] of Object.entries(node.properties ?? {})) walk(p, `${at}.${k}`);
      if (node.items !== undefined) walk(node.items, `${at}[]`);
    };
    walk(v.schema.openAPIV3Schema, crd.spec.names.kind);
  }
  // Every printer column points at a field the schema has.
  for (const crd of allCrds() as Json[]) {
    const v = crd.spec.versions[0];
    for (const col of v.additionalPrinterColumns as Json[]) {
      const path = String(col.jsonPath).replace(/\[[^\]]*\]/g, '').split('.').filter((p: string) => p !== '');
      let node = v.schema.openAPIV3Schema;
      for (const part of path) {
        node = node.type === 'array' ? node.items.properties?.[part] : node.properties?.[part];
        if (part === 'creationTimestamp') break; // ObjectMeta, validated by the API server
        assert.ok(node !== undefined, `${crd.spec.names.kind} column ${col.name}: ${col.jsonPath} is not in the schema`);
      }
    }
  }
  const app = (allCrds() as Json[]).find((c) => c.spec.names.kind === 'App').spec.versions[0].schema.openAPIV3Schema.properties.spec;
  assert.deepEqual(Object.keys(app.properties.apiKeys.items.properties).sort(), ['secretRef', 'sha256']);
  const backend = (allCrds() as Json[]).find((c) => c.spec.names.kind === 'Backend').spec.versions[0].schema.openAPIV3Schema;
  assert.deepEqual(backend.required, ['spec']);
  assert.equal(backend.properties.spec.properties.timeout.pattern, '^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$');
  assert.deepEqual(backend.properties.spec.required, ['endpoints']);
});

test('value types are recognised by probing, and a new unknown custom type stops generation', () => {
  assert.equal(valueTypeOf(duration()), 'duration');
  assert.equal(valueTypeOf(size()), 'size');
  assert.equal(valueTypeOf(dnsName()), 'name');
  assert.equal(valueTypeOf(hostPort()), 'hostPort');
  assert.equal(valueTypeOf(httpUrl()), 'httpUrl');
  assert.equal(valueTypeOf(mqttUrl()), 'mqttUrl');
  assert.equal(valueTypeOf(cidr()), 'cidr');
  assert.equal(valueTypeOf(sha256Hex()), 'sha256');
  assert.throws(() => structural({ description: 'no type' }), /no type/);
  assert.deepEqual(structural({ type: 'number', exclusiveMinimum: 0 }), { type: 'number', minimum: 0, exclusiveMinimum: true });
});

test('the broker runs on edge nodes only, tolerates their taints, and listens where proxies look for it', () => {
  const ds = find('DaemonSet', 'modelguard-broker');
  const pod = ds.spec.template.spec;
  assert.deepEqual(pod.nodeSelector, { 'node-role.kubernetes.io/edge': '' });
  assert.ok(pod.tolerations.some((t: Json) => t.key === 'node-role.kubernetes.io/edge' && t.operator === 'Exists' && t.effect === 'NoSchedule'));
  assert.equal(pod.hostNetwork, true);
  const c = pod.containers[0];
  assert.ok(c.args.includes('--listen=0.0.0.0:8010'));
  assert.equal(c.ports[0].hostPort, 8010);
  assert.equal(c.image, 'modelguard:0.1.0');
});

test('the webhook configuration points at the Service, port and path the controller serves, never at system namespaces', () => {
  const hooks = find('MutatingWebhookConfiguration', 'modelguard-injector').webhooks;
  const svc = find('Service', 'modelguard-webhook');
  const deploy = find('Deployment', 'modelguard-controller');
  const container = deploy.spec.template.spec.containers[0];
  const target = container.ports.find((p: Json) => p.name === svc.spec.ports[0].targetPort);
  assert.equal(target.containerPort, 9443);
  for (const h of hooks) {
    assert.equal(h.clientConfig.service.name, 'modelguard-webhook');
    assert.equal(h.clientConfig.service.namespace, 'modelguard-system');
    assert.equal(h.clientConfig.service.path, '/inject');
    assert.equal(h.clientConfig.service.port, svc.spec.ports[0].port);
    assert.equal(h.sideEffects, 'None');
    const excluded = h.namespaceSelector.matchExpressions.find((e: Json) => e.key === 'kubernetes.io/metadata.name');
    assert.deepEqual(excluded.values, ['kube-system', 'kube-public', 'kube-node-lease', 'modelguard-system']);
  }
  assert.deepEqual(hooks[0].objectSelector, { matchLabels: { 'modelguard.io/inject': 'enabled' } });
  assert.deepEqual(hooks[1].namespaceSelector.matchLabels, { 'modelguard.io/inject': 'enabled' });
  assert.equal(container.image, 'modelguard:0.1.0');
  assert.ok(container.env.some((e: Json) => e.name === 'POD_NAME' && e.valueFrom.fieldRef.fieldPath === 'metadata.name'), 'POD_NAME, to find its own image');
  assert.equal(deploy.spec.replicas, 2);
  assert.ok(PROXY_CONTAINER.length > 0);
});

test('the Dockerfile builds from what the repository has, runs the compiled build, and the production install has every package src/ imports', async () => {
  const { existsSync, readdirSync } = await import('node:fs');
  const docker = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  assert.match(docker, /^FROM node:20-slim/m);
  assert.match(docker, /npm ci --omit=dev/);
  assert.match(docker, /ENTRYPOINT \["node", "\/app\/bin\/modelguard\.js"\]/);
  for (const m of docker.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
    for (const src of m[1]!.split(/\s+/)) assert.ok(existsSync(join(ROOT, src)), `COPY ${src}: no such file in the repository`);
  }
  // `npm ci --omit=dev` leaves devDependencies out: nothing the CLI loads may be one.
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
  const imported = new Set<string>();
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.ts$/.test(e.name)) {
        const text = readFileSync(p, 'utf8');
        // Static imports, and import() of a package (loaded when a role uses it: it must be installed too).
        for (const m of [...text.matchAll(/^import (?!type ).*from '([^.'][^']*)'/gm), ...text.matchAll(/(?<!typeof )import\('([^.'][^']*)'\)/g)]) {
          const spec = m[1]!;
          if (spec.startsWith('node:')) continue;
          imported.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
        }
      }
    }
  };
  walk(join(ROOT, 'src'));
  assert.ok(imported.has('@kubernetes/client-node') && imported.has('node-forge'));
  assert.ok(imported.has('jose') && imported.has('onnxruntime-node'), 'packages loaded with import() are seen');
  // esbuild is the one exception: the dashboard bundles its script with it only when the sources
  // run; the image serves the bundle that `npm run build` made (docs/build.md).
  for (const name of imported) if (name !== 'esbuild') assert.ok(pkg.dependencies[name] !== undefined, `${name} is imported by src/ but is not in dependencies`);
  // The image runs the compiled build: no TypeScript tooling among the production dependencies.
  for (const tool of ['tsx', 'esbuild', 'typescript']) assert.equal(pkg.dependencies[tool], undefined, `${tool} must be a devDependency`);
  assert.match(docker, /RUN npm run build/);
  const final = docker.slice(docker.lastIndexOf('\nFROM '));
  assert.match(final, /^COPY --from=build \/app\/dist \.\/dist$/m);
  assert.doesNotMatch(final, /^COPY src /m, 'the image carries dist/, not the sources');
});
