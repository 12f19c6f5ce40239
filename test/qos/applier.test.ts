/**
 * The applier against the real kernel, in a network namespace made here: it installs the planned
 * HTB tree, moves filters when a backend moves, changes rates, refuses a root qdisc that is not its
 * own, says so without CAP_NET_ADMIN, and on stop leaves the device exactly as it found it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compileResources } from '../../src/config/index.ts';
import type { ResourceInput } from '../../src/config/schema.ts';
import type { Snapshot } from '../../src/core/snapshot.ts';
import { TrafficQos } from '../../src/qos/applier.ts';
import { TcCli } from '../../src/qos/tc.ts';
import { Namespaces, tcState } from './netns.ts';

const API = 'modelguard.io/v1alpha1';

function snapshot(opts: { backend: string; qos?: { interface: string; uplinkRate: string; shapePercent?: number }; version?: number }): Snapshot {
  const resources: ResourceInput[] = [
    { apiVersion: API, kind: 'Gateway', metadata: { name: 'default' }, spec: { auth: 'none', ...(opts.qos ? { trafficQoS: opts.qos } : {}) } },
    { apiVersion: API, kind: 'Backend', metadata: { name: 'cloud' }, spec: { endpoints: [{ url: opts.backend, slots: 1 }] } },
    { apiVersion: API, kind: 'Model', metadata: { name: 'demo' }, spec: { backend: 'cloud' } },
  ];
  return compileResources(resources, { version: opts.version ?? 1 }).snapshot;
}

describe('traffic QoS applier (network namespace)', () => {
  const ns = new Namespaces();
  let box: string;
  let peer: string;
  const dev = 'mgq0';
  let tc: TcCli;
  const lines: string[] = [];
  const log = (l: string): void => void lines.push(l);

  before(() => {
    box = ns.create('box');
    peer = ns.create('peer');
    ns.link({ ns: box, dev, addr: '10.77.0.1/24' }, { ns: peer, dev: 'mgq1', addr: '10.77.0.2/24' });
    tc = new TcCli({ command: ['ip', 'netns', 'exec', box, 'tc'] });
  });
  after(() => ns.cleanup());

  it('installs, moves filters, changes rates, and stops leaving the device as it found it', async () => {
    const pristine = tcState(ns, box, dev);
    const qos = new TrafficQos({ ports: { http: 8080 }, tc, canAdmin: () => true, log });
    const q = { interface: dev, uplinkRate: '10Mbit' };
    await qos.apply(snapshot({ backend: 'http://10.77.0.2:8000', qos: q }));
    const st = qos.status();
    assert.equal(st.state, 'active', lines.join('\n'));
    assert.equal(st.shapedBitsPerSecond, 9_500_000);
    assert.equal(st.leaf, 'pfifo', 'this kernel has no fq_codel: the applier falls back to pfifo');
    const classes = ns.exec(box, ['tc', 'class', 'show', 'dev', dev]);
    assert.match(classes, /class htb 4d47:1 root rate 9500Kbit ceil 9500Kbit/);
    assert.match(classes, /class htb 4d47:10 parent 4d47:1 leaf 4d48: prio 0 rate 7125Kbit ceil 9500Kbit/);
    assert.match(classes, /class htb 4d47:20 parent 4d47:1 leaf 4d49: prio 1 rate 2375Kbit ceil 9500Kbit/);
    assert.match(ns.exec(box, ['tc', 'qdisc', 'show', 'dev', dev]), /qdisc tbf 4d49: parent 4d47:20 rate 1Gbit burst 30\d\db/, 'the default class cuts GSO packets');
    let filters = ns.exec(box, ['tc', 'filter', 'show', 'dev', dev]);
    assert.match(filters, /match 0a4d0002\/ffffffff at 16/, 'destination 10.77.0.2');
    assert.match(filters, /match 00001f40\/0000ffff at 20/, 'destination port 8000');
    assert.match(filters, /match 1f900000\/ffff0000 at 20/, 'source port 8080 (answers of the HTTP listener)');

    // Traffic to the backend lands in the inference class; other traffic in the default class.
    ns.exec(box, ['/usr/bin/python3', '-c', `
import socket
for port in (8000, 9999):
    s = socket.socket(); s.settimeout(0.5)
    try: s.connect(('10.77.0.2', port))
    except OSError: pass
    s.close()
`]);
    const counters = await qos.counters();
    const inference = counters.find((c) => c.name === 'inference');
    const other = counters.find((c) => c.name === 'default');
    assert.ok(inference !== undefined && inference.packets >= 1, JSON.stringify(counters));
    assert.ok(other !== undefined && other.packets >= 1, JSON.stringify(counters));

    // The backend moves: the new address is matched and the old one is not, with no gap between.
    await qos.apply(snapshot({ backend: 'http://10.77.0.3:8001', qos: q, version: 2 }));
    filters = ns.exec(box, ['tc', 'filter', 'show', 'dev', dev]);
    assert.match(filters, /match 0a4d0003\/ffffffff at 16/);
    assert.doesNotMatch(filters, /0a4d0002/);
    assert.match(filters, /pref 20 /);
    assert.doesNotMatch(filters, /pref 10 /);

    // A new rate changes the classes in place.
    await qos.apply(snapshot({ backend: 'http://10.77.0.3:8001', qos: { ...q, uplinkRate: '20Mbit', shapePercent: 90 }, version: 3 }));
    assert.match(ns.exec(box, ['tc', 'class', 'show', 'dev', dev]), /class htb 4d47:1 root rate 18Mbit ceil 18Mbit/);

    await qos.stop();
    assert.equal(qos.status().state, 'inactive');
    assert.deepEqual(tcState(ns, box, dev), pristine);
  });

  it('a reload without trafficQoS removes it', async () => {
    const pristine = tcState(ns, box, dev);
    const qos = new TrafficQos({ ports: {}, tc, canAdmin: () => true, log });
    await qos.apply(snapshot({ backend: 'http://10.77.0.2:8000', qos: { interface: dev, uplinkRate: '10Mbit' } }));
    assert.equal(qos.status().state, 'active');
    await qos.apply(snapshot({ backend: 'http://10.77.0.2:8000', version: 2 }));
    assert.equal(qos.status().state, 'off');
    assert.deepEqual(tcState(ns, box, dev), pristine);
  });

  it('refuses a root qdisc it did not install, and leaves it alone', async () => {
    ns.exec(box, ['tc', 'qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', 'htb', 'default', '1']);
    try {
      const foreign = tcState(ns, box, dev);
      lines.length = 0;
      const qos = new TrafficQos({ ports: {}, tc, canAdmin: () => true, log });
      await qos.apply(snapshot({ backend: 'http://10.77.0.2:8000', qos: { interface: dev, uplinkRate: '10Mbit' } }));
      const st = qos.status();
      assert.equal(st.state, 'inactive');
      assert.match(st.reason ?? '', /already has a root qdisc \(htb 1:\) that ModelGuard did not install/);
      assert.ok(lines.some((l) => l.includes('did not install')));
      await qos.stop();
      assert.deepEqual(tcState(ns, box, dev), foreign);
    } finally {
      ns.exec(box, ['tc', 'qdisc', 'del', 'dev', dev, 'root']);
    }
  });

  it('replaces a ModelGuard qdisc left behind by a crashed run', async () => {
    const pristine = tcState(ns, box, dev);
    ns.exec(box, ['tc', 'qdisc', 'add', 'dev', dev, 'root', 'handle', '4d47:', 'htb']);
    lines.length = 0;
    const qos = new TrafficQos({ ports: {}, tc, canAdmin: () => true, log });
    await qos.apply(snapshot({ backend: 'http://10.77.0.2:8000', qos: { interface: dev, uplinkRate: '10Mbit' } }));
    assert.equal(qos.status().state, 'active');
    assert.ok(lines.some((l) => l.includes('left by an earlier run')), lines.join('\n'));
    await qos.stop();
    assert.deepEqual(tcState(ns, box, dev), pristine);
  });

  it('without CAP_NET_ADMIN installs nothing and says how to get the commands', async () => {
    const pristine = tcState(ns, box, dev);
    lines.length = 0;
    const qos = new TrafficQos({ ports: {}, tc, canAdmin: () => false, log });
    await qos.apply(snapshot({ backend: 'http://10.77.0.2:8000', qos: { interface: dev, uplinkRate: '10Mbit' } }));
    assert.equal(qos.status().state, 'inactive');
    assert.match(lines.join('\n'), /traffic QoS is off: this process lacks CAP_NET_ADMIN.*modelguard qos plan --config PATH/);
    assert.deepEqual(tcState(ns, box, dev), pristine);
  });

  it('an unknown interface is reported, not thrown', async () => {
    const qos = new TrafficQos({ ports: {}, tc, canAdmin: () => true, log });
    await qos.apply(snapshot({ backend: 'http://10.77.0.2:8000', qos: { interface: 'nosuchdev0', uplinkRate: '10Mbit' } }));
    assert.equal(qos.status().state, 'inactive');
    assert.match(qos.status().reason ?? '', /cannot read the qdiscs of nosuchdev0/);
  });
});
