/**
 * deploy/overlays/traffic-qos renders offline with kubectl and changes only what traffic QoS needs:
 * the broker DaemonSet keeps the host network and gains CAP_NET_ADMIN (as uid 0, everything else
 * dropped); every other object is the base's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';

interface Doc {
  kind: string;
  metadata: { name: string };
  spec?: Record<string, unknown>;
}

const DEPLOY = join(import.meta.dirname, '..', '..', 'deploy');
const render = (dir: string): Doc[] =>
  parseAllDocuments(execFileSync('kubectl', ['kustomize', join(DEPLOY, dir)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })).map((d) => d.toJS() as Doc);

test('the traffic-qos overlay gives the broker NET_ADMIN in the host network and changes nothing else', () => {
  const base = render('base');
  const qos = render('overlays/traffic-qos');
  assert.equal(qos.length, base.length);
  for (const doc of qos) {
    const same = base.find((b) => b.kind === doc.kind && b.metadata.name === doc.metadata.name);
    assert.ok(same, `${doc.kind}/${doc.metadata.name} exists in the base`);
    if (!(doc.kind === 'DaemonSet' && doc.metadata.name === 'modelguard-broker')) assert.deepEqual(doc, same, `${doc.kind}/${doc.metadata.name} unchanged`);
  }
  const ds = qos.find((d) => d.kind === 'DaemonSet' && d.metadata.name === 'modelguard-broker') as unknown as {
    spec: { template: { spec: { hostNetwork: boolean; securityContext: Record<string, unknown>; containers: { name: string; args: string[]; securityContext: { allowPrivilegeEscalation: boolean; readOnlyRootFilesystem: boolean; capabilities: { drop: string[]; add: string[] } } }[] } } };
  };
  new DaemonSet(ds as never).validate();
  const pod = ds.spec.template.spec;
  assert.equal(pod.hostNetwork, true, 'the node interface is only visible in the host network namespace');
  assert.deepEqual({ runAsUser: pod.securityContext['runAsUser'], runAsNonRoot: pod.securityContext['runAsNonRoot'] }, { runAsUser: 0, runAsNonRoot: false });
  const broker = pod.containers.find((c) => c.name === 'broker');
  assert.ok(broker);
  assert.deepEqual(broker.securityContext.capabilities, { drop: ['ALL'], add: ['NET_ADMIN'] });
  assert.equal(broker.securityContext.allowPrivilegeEscalation, false);
  assert.equal(broker.securityContext.readOnlyRootFilesystem, true);
  const baseBroker = (base.find((d) => d.kind === 'DaemonSet' && d.metadata.name === 'modelguard-broker') as unknown as typeof ds).spec.template.spec.containers[0];
  assert.deepEqual(broker.args, baseBroker?.args, 'same command line as the base broker');
});
