/**
 * `modelguard broker --config` (the DaemonSet's role) with trafficQoS, inside a network namespace
 * made here: it installs QoS with a filter for the answers of its broker listener (the port it really
 * bound) and for its remote backend, and SIGTERM leaves the interface as it found it.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Child } from './child.ts';
import { Namespaces, tcState } from './netns.ts';

describe('modelguard broker with trafficQoS (network namespace)', () => {
  const ns = new Namespaces();
  const dir = mkdtempSync(join(tmpdir(), 'mg-qos-broker-'));
  const children: Child[] = [];
  after(async () => {
    await Promise.all(children.map((c) => c.stop('SIGKILL', 1000)));
    ns.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('installs on start with its bound broker port, and removes on SIGTERM', { timeout: 60_000 }, async () => {
    const node = ns.create('node');
    const peer = ns.create('peer');
    ns.link({ ns: node, dev: 'mgqb0', addr: '10.55.0.1/24' }, { ns: peer, dev: 'mgqb1', addr: '10.55.0.2/24' });
    const pristine = tcState(ns, node, 'mgqb0');
    const file = join(dir, 'broker.yaml');
    writeFileSync(
      file,
      `apiVersion: modelguard.io/v1alpha1
kind: Gateway
metadata: { name: default }
spec:
  listeners: { broker: "0.0.0.0:0", admin: "127.0.0.1:0" }
  trafficQoS: { interface: mgqb0, uplinkRate: 4Mbit }
---
apiVersion: modelguard.io/v1alpha1
kind: Backend
metadata: { name: cloud }
spec:
  endpoints: [{ url: "http://10.55.0.2:8000" }]
---
apiVersion: modelguard.io/v1alpha1
kind: Model
metadata: { name: demo }
spec: { backend: cloud }
`,
    );
    const broker = new Child('broker', ['ip', 'netns', 'exec', node, process.execPath, join(import.meta.dirname, '..', '..', 'bin', 'modelguard.js'), 'broker', '--config', file]);
    children.push(broker);
    const port = /:(\d+)\s/.exec(await broker.waitFor(/broker listener http:\/\/[^ ]+:\d+/, 30_000))?.[1];
    await broker.waitFor(/traffic QoS: mgqb0 shaped to 3\.8 Mbit\/s .*to 10\.55\.0\.2:8000/, 10_000);
    const hexPort = Number(port).toString(16).padStart(4, '0');
    const filters = ns.exec(node, ['tc', 'filter', 'show', 'dev', 'mgqb0']);
    assert.match(filters, new RegExp(`match ${hexPort}0000/ffff0000 at 20`), `answers from the broker listener's port ${String(port)}`);
    assert.match(filters, /match 0a370002\/ffffffff at 16/, 'the remote backend');
    assert.equal(await broker.stop('SIGTERM', 15_000), 0, broker.tail());
    assert.deepEqual(tcState(ns, node, 'mgqb0'), pristine);
  });
});
