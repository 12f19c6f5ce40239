/**
 * The configuration field, the planner, the matches it classifies, the counter parser, and
 * `modelguard qos plan`, whose output is applied for real in a network namespace made here.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileResources, ConfigError } from '../../src/config/index.ts';
import type { ResourceInput } from '../../src/config/schema.ts';
import { deleteFilterCommands, filterCommands, installCommands, removeCommands } from '../../src/qos/plan.ts';
import { parseRate } from '../../src/core/rate.ts';
import { configuredPorts, qosMatches } from '../../src/qos/targets.ts';
import { hasNetAdmin, parseClassCounters } from '../../src/qos/tc.ts';
import { listenerPort } from '../../src/qos/index.ts';
import { Namespaces } from './netns.ts';

const API = 'modelguard.io/v1alpha1';

function resources(gateway: Record<string, unknown>, urls: string[] = ['http://10.0.0.9:8000']): ResourceInput[] {
  return [
    { apiVersion: API, kind: 'Gateway', metadata: { name: 'default' }, spec: gateway },
    { apiVersion: API, kind: 'Backend', metadata: { name: 'cloud' }, spec: { endpoints: urls.map((url) => ({ url })) } },
    { apiVersion: API, kind: 'Model', metadata: { name: 'demo' }, spec: { backend: 'cloud' } },
  ] as ResourceInput[];
}

function issues(gateway: Record<string, unknown>): string[] {
  try {
    compileResources(resources(gateway), { version: 1 });
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map((i) => `${i.message} — ${i.hint ?? ''}`);
    throw err;
  }
  return [];
}

describe('Gateway.spec.trafficQoS', () => {
  it('compiles to bits per second with the 95% default', () => {
    const s = compileResources(resources({ trafficQoS: { interface: 'wwan0', uplinkRate: '2.5Mbit' } }), { version: 1 }).snapshot;
    assert.deepEqual(s.gateway.trafficQoS, { interface: 'wwan0', uplinkBitsPerSecond: 2_500_000, shapePercent: 95 });
  });

  it('is left out of the snapshot when absent, so older configurations keep their hash', () => {
    const s = compileResources(resources({}), { version: 1 }).snapshot;
    assert.equal('trafficQoS' in s.gateway, false);
  });

  it('refuses bytes per second, tiny rates, long interface names and unknown keys, with hints', () => {
    assert.match(issues({ trafficQoS: { interface: 'eth0', uplinkRate: '10MB' } }).join('\n'), /expected a rate in bits per second, got "10MB" — for example "10Mbit"/);
    assert.match(issues({ trafficQoS: { interface: 'eth0', uplinkRate: '4kbit' } }).join('\n'), /4kbit is below 8kbit/);
    assert.match(issues({ trafficQoS: { interface: 'a-very-long-interface-name', uplinkRate: '10Mbit' } }).join('\n'), /expected a network interface name/);
    assert.match(issues({ trafficQoS: { interface: 'eth0', uplinkRate: '10Mbit', rate: 1 } }).join('\n'), /rate/);
    assert.match(issues({ trafficQoS: { interface: 'eth0', uplinkRate: '10Mbit', shapePercent: 30 } }).join('\n'), /shapePercent/);
  });

  it('parses rates as tc writes them', () => {
    assert.equal(parseRate('10Mbit'), 10_000_000);
    assert.equal(parseRate('512kbit'), 512_000);
    assert.equal(parseRate('1Gbit'), 1_000_000_000);
    assert.equal(parseRate('10mbps'), undefined);
  });
});

describe('which packets are inference traffic', () => {
  it('remote backends and answers of non-loopback listeners; loopback backends never cross the uplink', async () => {
    const s = compileResources(
      resources({ listeners: { http: '0.0.0.0:8080', grpc: '127.0.0.1:8081', admin: '127.0.0.1:9091' } }, ['http://10.0.0.9:8000', 'http://127.0.0.1:8001', 'https://cloud.example:8443', 'http://[fd00::7]:9000']),
      { version: 1 },
    ).snapshot;
    const matches = await qosMatches(s, configuredPorts(s), async (host) => (host === 'cloud.example' ? [{ address: '192.0.2.10', family: 4 }] : []));
    assert.deepEqual(
      matches.map((m) => (m.kind === 'source-port' ? `sport ${m.port}` : `${m.address}:${m.port}`)),
      ['sport 8080', 'sport 8010', '10.0.0.9:8000', '192.0.2.10:8443', 'fd00::7:9000'],
    );
  });

  it('an external MQTT broker is a destination; an embedded one answers from its port', async () => {
    const ext = compileResources(resources({ listeners: { http: '127.0.0.1:8080', grpc: '127.0.0.1:8081', broker: '127.0.0.1:8010' }, mqtt: { url: 'mqtt://10.0.0.5:1883' } }, ['http://127.0.0.1:1']), { version: 1 }).snapshot;
    assert.deepEqual(await qosMatches(ext, configuredPorts(ext)), [{ kind: 'destination', address: '10.0.0.5', family: 4, port: 1883, why: 'MQTT broker' }]);
    const emb = compileResources(resources({ listeners: { http: '127.0.0.1:8080', grpc: '127.0.0.1:8081', broker: '127.0.0.1:8010' }, mqtt: { url: 'mqtt://0.0.0.0:1884', embedded: true } }, ['http://127.0.0.1:1']), { version: 1 }).snapshot;
    assert.deepEqual(await qosMatches(emb, configuredPorts(emb)), [{ kind: 'source-port', port: 1884, why: 'answers of the mqtt listener' }]);
  });
});

describe('bound listener ports', () => {
  it('takes the port from the bound URL and loopback-ness from the configured address', () => {
    assert.equal(listenerPort('0.0.0.0:0', 'http://127.0.0.1:43063'), 43063, 'a wildcard listener is reported as 127.0.0.1');
    assert.equal(listenerPort('[::]:8081', '[::1]:8081'), 8081);
    assert.equal(listenerPort('10.0.0.1:8080', 'http://10.0.0.1:8080'), 8080);
    assert.equal(listenerPort('127.0.0.1:8080', 'http://127.0.0.1:8080'), undefined);
    assert.equal(listenerPort('[::1]:8080', 'http://[::1]:8080'), undefined);
    assert.equal(listenerPort('mqtt://0.0.0.0:1883', 'mqtt://127.0.0.1:1883'), 1883);
    assert.equal(listenerPort('mqtt://localhost:1883', 'mqtt://127.0.0.1:1883'), undefined);
    assert.equal(listenerPort('0.0.0.0:8080', undefined), undefined);
  });
});

describe('the plan', () => {
  const input = {
    device: 'eth0',
    shapedBitsPerSecond: 9_500_000,
    mtu: 1500,
    leaf: 'pfifo' as const,
    matches: [
      { kind: 'destination' as const, address: '10.0.0.9', family: 4 as const, port: 8000, why: 'backend cloud' },
      { kind: 'destination' as const, address: 'fd00::7', family: 6 as const, port: 9000, why: 'backend cloud' },
    ],
  };

  it('is an HTB root shaped below the uplink, inference ahead of default, both borrowing up to the full rate', () => {
    assert.deepEqual(
      installCommands(input).map((c) => c.join(' ')),
      [
        'qdisc add dev eth0 root handle 4d47: htb default 20',
        'class add dev eth0 parent 4d47: classid 4d47:1 htb rate 9500kbit ceil 9500kbit quantum 118750',
        'class add dev eth0 parent 4d47:1 classid 4d47:10 htb rate 7125kbit ceil 9500kbit prio 0 quantum 89062',
        'class add dev eth0 parent 4d47:1 classid 4d47:20 htb rate 2375kbit ceil 9500kbit prio 1 quantum 29687',
        'qdisc add dev eth0 parent 4d47:10 handle 4d48: pfifo limit 79',
        'qdisc add dev eth0 parent 4d47:20 handle 4d49: tbf rate 1000000kbit burst 3036 limit 118750',
        'filter add dev eth0 parent 4d47: protocol ip pref 10 u32 match ip protocol 6 0xff match ip dst 10.0.0.9/32 match ip dport 8000 0xffff flowid 4d47:10',
        'filter add dev eth0 parent 4d47: protocol ipv6 pref 11 u32 match ip6 protocol 6 0xff match ip6 dst fd00::7/128 match ip6 dport 9000 0xffff flowid 4d47:10',
      ],
    );
    assert.deepEqual(installCommands({ ...input, leaf: 'fq_codel' })[4], ['qdisc', 'add', 'dev', 'eth0', 'parent', '4d47:10', 'handle', '4d48:', 'fq_codel']);
  });

  it('moves filters by generation and removes only its own root', () => {
    assert.match(filterCommands('eth0', input.matches, 20).map((c) => c.join(' ')).join('\n'), /pref 20 .*\n.*pref 21 /);
    assert.deepEqual(deleteFilterCommands('eth0', input.matches, 10).map((c) => c.join(' ')), ['filter del dev eth0 parent 4d47: protocol ip pref 10', 'filter del dev eth0 parent 4d47: protocol ipv6 pref 11']);
    assert.deepEqual(removeCommands('eth0').map((c) => c.join(' ')), ['qdisc del dev eth0 root handle 4d47:']);
  });
});

describe('kernel readings', () => {
  it('parses class counters from tc -s class show', () => {
    const text = [
      'class htb 4d47:10 parent 4d47:1 leaf 4d48: prio 0 rate 7125Kbit ceil 9500Kbit burst 1599b cburst 1598b ',
      ' Sent 123456 bytes 321 pkt (dropped 2, overlimits 40 requeues 0) ',
      ' backlog 3028b 2p requeues 0',
      '',
      'class htb 4d47:1 root rate 9500Kbit ceil 9500Kbit burst 1598b cburst 1598b ',
      ' Sent 999999 bytes 999 pkt (dropped 0, overlimits 0 requeues 0) ',
      ' backlog 0b 0p requeues 0',
      '',
      'class htb 4d47:20 parent 4d47:1 leaf 4d49: prio 1 rate 2375Kbit ceil 9500Kbit burst 1599b cburst 1598b ',
      ' Sent 876543 bytes 600 pkt (dropped 17, overlimits 900 requeues 0) ',
      ' backlog 118Kb 79p requeues 0',
    ].join('\n');
    assert.deepEqual(parseClassCounters(text), [
      { name: 'inference', groups: '', classid: '4d47:10', bytes: 123456, packets: 321, drops: 2, overlimits: 40, backlogBytes: 3028 },
      { name: 'default', groups: '', classid: '4d47:20', bytes: 876543, packets: 600, drops: 17, overlimits: 900, backlogBytes: 118000 },
    ]);
  });

  it('reads CAP_NET_ADMIN from the effective capability set', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mg-caps-'));
    try {
      writeFileSync(join(dir, 'with'), 'Name:\tnode\nCapEff:\t0000000000001000\n');
      writeFileSync(join(dir, 'without'), 'Name:\tnode\nCapEff:\t0000000000000400\n');
      assert.equal(hasNetAdmin(join(dir, 'with')), true);
      assert.equal(hasNetAdmin(join(dir, 'without')), false);
      assert.equal(hasNetAdmin(join(dir, 'missing')), false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('modelguard qos plan', () => {
  const ns = new Namespaces();
  const dir = mkdtempSync(join(tmpdir(), 'mg-qosplan-'));
  after(() => {
    ns.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints commands an administrator can apply as they are, and the removal', { timeout: 60_000 }, () => {
    const file = join(dir, 'qos.yaml');
    writeFileSync(
      file,
      [
        `apiVersion: ${API}\nkind: Gateway\nmetadata: { name: default }\nspec:\n  trafficQoS: { interface: mgqp0, uplinkRate: 20Mbit, shapePercent: 90 }`,
        `apiVersion: ${API}\nkind: Backend\nmetadata: { name: cloud }\nspec:\n  endpoints: [{ url: "http://10.66.0.2:8000" }]`,
        `apiVersion: ${API}\nkind: Model\nmetadata: { name: demo }\nspec: { backend: cloud }`,
      ].join('\n---\n'),
    );
    const out = execFileSync(process.execPath, [join(import.meta.dirname, '..', '..', 'bin', 'modelguard.js'), 'qos', 'plan', '--config', file, '--leaf', 'pfifo'], { encoding: 'utf8' });
    assert.match(out, /^# traffic QoS for mgqp0: shaped to 18 Mbit\/s \(90% of 20 Mbit\/s\), pfifo under inference/m);
    assert.match(out, /#\s+inference: to 10\.66\.0\.2 port 8000 \(backend cloud\)/);
    const commands = out.split('\n').filter((l) => l.startsWith('tc ')).map((l) => l.slice(3));
    assert.ok(commands.length >= 7);
    const box = ns.create('plan');
    ns.exec(box, ['ip', 'link', 'add', 'mgqp0', 'type', 'veth', 'peer', 'name', 'mgqp1']);
    ns.exec(box, ['tc', '-batch', '-'], `${commands.join('\n')}\n`);
    assert.match(ns.exec(box, ['tc', 'class', 'show', 'dev', 'mgqp0']), /class htb 4d47:1 root rate 18Mbit ceil 18Mbit/);
    const removal = /^# remove it:\s+tc (.*)$/m.exec(out)?.[1] ?? '';
    ns.exec(box, ['tc', ...removal.split(' ')]);
    assert.doesNotMatch(ns.exec(box, ['tc', 'qdisc', 'show', 'dev', 'mgqp0']), /htb/);
  });

  it('with two priority levels, lists them and their port blocks, and tc takes the commands as they are', { timeout: 60_000 }, () => {
    const file = join(dir, 'levels.yaml');
    writeFileSync(
      file,
      [
        `apiVersion: ${API}\nkind: Gateway\nmetadata: { name: default }\nspec:\n  trafficQoS: { interface: mgqp0, uplinkRate: 10Mbit }`,
        `apiVersion: ${API}\nkind: Backend\nmetadata: { name: cloud }\nspec:\n  endpoints: [{ url: "http://10.66.0.2:8000" }]`,
        `apiVersion: ${API}\nkind: Model\nmetadata: { name: demo }\nspec: { backend: cloud }`,
        `apiVersion: ${API}\nkind: ServiceGroup\nmetadata: { name: safety }\nspec: { priority: 10 }`,
      ].join('\n---\n'),
    );
    const out = execFileSync(process.execPath, [join(import.meta.dirname, '..', '..', 'bin', 'modelguard.js'), 'qos', 'plan', '--config', file, '--leaf', 'pfifo'], { encoding: 'utf8' });
    assert.match(out, /^# class 4d47:11 priority 10 \(groups safety\): calls to the backends above from local ports 49152-49663 \(sport 49152 mask 0xfe00\), HTB prio 0$/m);
    assert.match(out, /^# class 4d47:12 priority 0 \(groups default\): .* from local ports 49664-50175 /m);
    const commands = out.split('\n').filter((l) => l.startsWith('tc ')).map((l) => l.slice(3));
    const box = ns.create('levels');
    ns.exec(box, ['ip', 'link', 'add', 'mgqp0', 'type', 'veth', 'peer', 'name', 'mgqp1']);
    ns.exec(box, ['tc', '-batch', '-'], `${commands.join('\n')}\n`);
    const classes = ns.exec(box, ['tc', 'class', 'show', 'dev', 'mgqp0']);
    assert.match(classes, /class htb 4d47:11 parent 4d47:1 leaf 4d4a: prio 0 /);
    assert.match(classes, /class htb 4d47:12 parent 4d47:1 leaf 4d4b: prio 1 /);
    assert.match(classes, /class htb 4d47:20 parent 4d47:1 leaf 4d49: prio 2 /);
    assert.match(ns.exec(box, ['tc', 'filter', 'show', 'dev', 'mgqp0']), /\*flowid 4d47:11[^]*?match 0a420002\/ffffffff at 16\s+match c0001f40\/fe00ffff at 20/);
  });

  it('says so when the configuration has no trafficQoS', () => {
    const file = join(dir, 'none.yaml');
    writeFileSync(file, `apiVersion: ${API}\nkind: Gateway\nmetadata: { name: default }\nspec: {}\n`);
    assert.throws(
      () => execFileSync(process.execPath, [join(import.meta.dirname, '..', '..', 'bin', 'modelguard.js'), 'qos', 'plan', '--config', file], { encoding: 'utf8', stdio: 'pipe' }),
      (err: { status: number; stderr: string }) => err.status === 1 && /has no Gateway\.spec\.trafficQoS/.test(err.stderr),
    );
  });
});
