/**
 * Per-priority classes without a kernel: the configuration fields and the levels they compile to,
 * the planner's classes, filters and reload steps, and dispatch's side — a call's priority picks its
 * level's pool on a remote endpoint, whose real connections leave from the level's port block
 * (against a server on 127.0.0.1, which sees the client's port).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { Readable } from 'node:stream';
import { Cancel } from '../../src/core/cancel.ts';
import { compileResources, ConfigError } from '../../src/config/index.ts';
import type { ResourceInput } from '../../src/config/schema.ts';
import type { InferenceCall } from '../../src/core/request.ts';
import type { BackendClient, BackendRequest } from '../../src/dispatch/client.ts';
import type { PortBlock } from '../../src/dispatch/clients/bound-connect.ts';
import { HttpBackendClient } from '../../src/dispatch/clients/http.ts';
import { EndpointSet } from '../../src/dispatch/endpoint-set.ts';
import { levelOf, parsePortRange } from '../../src/core/levels.ts';
import { qosLevels } from '../../src/qos/levels.ts';
import { deleteFilterCommands, filterCommands, installCommands, levelChangeCommands, qosClasses } from '../../src/qos/plan.ts';
import { qosMatches } from '../../src/qos/targets.ts';

const API = 'modelguard.io/v1alpha1';

function resources(qos: Record<string, unknown>, priorities: number[], urls = ['http://10.0.0.9:8000'], protocol = 'kserve-v2-http'): ResourceInput[] {
  return [
    { apiVersion: API, kind: 'Gateway', metadata: { name: 'default' }, spec: { trafficQoS: { interface: 'eth0', uplinkRate: '10Mbit', ...qos } } },
    { apiVersion: API, kind: 'Backend', metadata: { name: 'cloud' }, spec: { protocol, endpoints: urls.map((url) => ({ url })) } },
    { apiVersion: API, kind: 'Model', metadata: { name: 'demo' }, spec: { backend: 'cloud' } },
    ...priorities.map((p, i): ResourceInput => ({ apiVersion: API, kind: 'ServiceGroup', metadata: { name: `g${i}` }, spec: { priority: p } })),
  ] as ResourceInput[];
}
const compile = (qos: Record<string, unknown>, priorities: number[], urls?: string[], protocol?: string) => compileResources(resources(qos, priorities, urls, protocol), { version: 1 }).snapshot;

function issues(qos: Record<string, unknown>): string {
  try {
    compile(qos, [10]);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map((i) => `${i.message} — ${i.hint ?? ''}`).join('\n');
    throw err;
  }
  return '';
}

describe('priority levels in the configuration', () => {
  it('one level per distinct group priority, highest first, in the gateway and in every backend', () => {
    const s = compile({}, [10, 5, 5]);
    const levels = s.gateway.trafficQoS?.priorityLevels;
    assert.deepEqual(levels, {
      firstPort: 49152,
      portsPerLevel: 512,
      levels: [
        { priorities: [10], groups: ['g0'] },
        { priorities: [5], groups: ['g1', 'g2'] },
        { priorities: [0], groups: ['default'] },
      ],
    });
    assert.deepEqual(s.backends['cloud']?.priorityLevels, levels);
    assert.equal(levelOf(levels, 10), 0);
    assert.equal(levelOf(levels, 7), 1, 'a priority no group has any more goes to the level at or below it');
    assert.equal(levelOf(levels, -3), 2);
  });

  it('absent with a single level, with priorityClasses: false, and without trafficQoS', () => {
    assert.equal(compile({}, []).gateway.trafficQoS?.priorityLevels, undefined, 'only the default group');
    assert.equal(compile({ priorityClasses: false }, [10]).gateway.trafficQoS?.priorityLevels, undefined);
    assert.equal('priorityLevels' in (compile({ priorityClasses: false }, [10]).backends['cloud'] ?? {}), false, 'backends keep their hash');
  });

  it('beyond seven levels the lowest priorities share the last', () => {
    const levels = compile({}, [1, 2, 3, 4, 5, 6, 7, 8]).gateway.trafficQoS?.priorityLevels;
    assert.equal(levels?.levels.length, 7);
    assert.deepEqual(levels?.levels[6]?.priorities, [2, 1, 0]);
    assert.equal(qosLevels(levels)[6]?.name, 'priority 2 and below');
  });

  it('sourcePorts must be an aligned power-of-two range, with a hint', () => {
    assert.deepEqual(parsePortRange('40960-45055'), { first: 40960, size: 4096 });
    assert.equal(compile({ sourcePorts: '40960-45055' }, [10]).gateway.trafficQoS?.priorityLevels?.portsPerLevel, 512);
    assert.match(issues({ sourcePorts: '40000-44095' }), /multiple of the range's size 4096, so that one mask matches each block — for example "49152-53247"/);
    assert.match(issues({ sourcePorts: '49152-50000' }), /power of two/);
    assert.match(issues({ sourcePorts: '49152' }), /expected "first-last"/);
    assert.match(issues({ sourcePorts: '512-767' }), /1024-65535/);
  });

  it('HTTP backends are levelled destinations; gRPC ones are not (one channel)', async () => {
    const http = await qosMatches(compile({}, [10]), {});
    assert.deepEqual(http, [{ kind: 'destination', address: '10.0.0.9', family: 4, port: 8000, why: 'backend cloud', levelled: true }]);
    const grpc = await qosMatches(compile({}, [10], ['http://10.0.0.9:8001'], 'kserve-v2-grpc'), {});
    assert.equal(grpc[0]?.kind === 'destination' && grpc[0].levelled, undefined);
  });
});

describe('the per-priority plan', () => {
  const levels = qosLevels(compile({}, [10, 0]).gateway.trafficQoS?.priorityLevels);
  const three = qosLevels(compile({}, [10, 5, 0]).gateway.trafficQoS?.priorityLevels);
  const matches = [{ kind: 'destination' as const, address: '10.0.0.9', family: 4 as const, port: 8000, why: 'backend cloud', levelled: true as const }];

  it('a class per level between inference and default, higher levels first, guaranteed rates that add up', () => {
    const classes = qosClasses(three);
    assert.deepEqual(classes.map((c) => [c.name, c.minor.toString(16), c.prio, c.leafHandle]), [
      ['inference', '10', 0, '4d48:'],
      ['priority 10', '11', 0, '4d4a:'],
      ['priority 5', '12', 1, '4d4b:'],
      ['priority 0', '13', 2, '4d4c:'],
      ['default', '20', 3, '4d49:'],
    ]);
    assert.ok(Math.abs(classes.reduce((a, c) => a + c.share, 0) - 1) < 1e-9);
    assert.ok((classes[1]?.share ?? 0) > (classes[2]?.share ?? 0) && (classes[2]?.share ?? 0) > (classes[3]?.share ?? 0));
  });

  it("level filters match the destination and the level's port block, ahead of the inference filters", () => {
    const cmds = installCommands({ device: 'eth0', shapedBitsPerSecond: 9_500_000, mtu: 1500, leaf: 'pfifo', matches, levels }).map((c) => c.join(' '));
    assert.deepEqual(cmds.filter((c) => c.startsWith('filter')), [
      'filter add dev eth0 parent 4d47: protocol ip pref 5 u32 match ip protocol 6 0xff match ip dst 10.0.0.9/32 match ip dport 8000 0xffff match ip sport 49152 0xfe00 flowid 4d47:11',
      'filter add dev eth0 parent 4d47: protocol ip pref 5 u32 match ip protocol 6 0xff match ip dst 10.0.0.9/32 match ip dport 8000 0xffff match ip sport 49664 0xfe00 flowid 4d47:12',
      'filter add dev eth0 parent 4d47: protocol ip pref 10 u32 match ip protocol 6 0xff match ip dst 10.0.0.9/32 match ip dport 8000 0xffff flowid 4d47:10',
    ]);
    assert.ok(cmds.includes('qdisc add dev eth0 parent 4d47:12 handle 4d4b: tbf rate 1000000kbit burst 3036 limit 118750'), 'levels cut GSO packets like the default class');
    assert.deepEqual(deleteFilterCommands('eth0', matches, 20, levels).map((c) => c.join(' ')), [
      'filter del dev eth0 parent 4d47: protocol ip pref 15',
      'filter del dev eth0 parent 4d47: protocol ip pref 20',
    ]);
    assert.match(filterCommands('eth0', matches, 20, levels).map((c) => c.join(' ')).join('\n'), /pref 15 .*flowid 4d47:11\n.*pref 15 .*flowid 4d47:12\n.*pref 20 .*flowid 4d47:10/);
  });

  it('a reload adds new classes before the filters swap and deletes old ones after', () => {
    const p = { device: 'eth0', shapedBitsPerSecond: 9_500_000, mtu: 1500 };
    const up = levelChangeCommands(p, 'pfifo', levels, three);
    assert.ok(up.before.some((c) => c.join(' ').startsWith('class add dev eth0 parent 4d47:1 classid 4d47:13 htb rate')));
    assert.ok(up.before.some((c) => c.join(' ') === 'qdisc add dev eth0 parent 4d47:13 handle 4d4c: tbf rate 1000000kbit burst 3036 limit 118750'));
    assert.ok(up.before.some((c) => /^class change dev eth0 parent 4d47:1 classid 4d47:20 htb .* prio 3 /.test(c.join(' '))));
    assert.deepEqual(up.after, []);
    const off = levelChangeCommands(p, 'pfifo', three, []);
    assert.deepEqual(off.after.map((c) => c.join(' ')), ['class del dev eth0 classid 4d47:11', 'class del dev eth0 classid 4d47:12', 'class del dev eth0 classid 4d47:13']);
    assert.ok(off.before.some((c) => /classid 4d47:10 htb rate 7125kbit .* prio 0 /.test(c.join(' '))), 'inference gets its whole share back');
  });
});

function call(): InferenceCall {
  return {
    id: 'x', protocol: 'http', api: 'passthrough', op: 'infer', model: 'demo', method: 'POST', path: '/x', headers: {}, body: Buffer.from('{}'),
    timeoutMs: undefined, signal: new Cancel(), receivedAt: performance.now(), costHint: undefined,
  };
}

describe('dispatch with per-priority pools', () => {
  const servers: (Server | NetServer)[] = [];
  after(() => servers.forEach((s) => s.close()));

  /** An aligned block of `size` ports in the ephemeral range, every one held by a listener here. */
  const heldBlock = async (size: number): Promise<{ first: number; size: number }> => {
    for (let attempt = 0; attempt < 50; attempt++) {
      const first = 55296 + size * Math.floor(Math.random() * 512);
      const held: NetServer[] = [];
      try {
        for (let p = first; p < first + size; p++) {
          const h = createNetServer();
          held.push(h);
          await new Promise<void>((r, j) => h.once('error', j).listen(p, '0.0.0.0', r));
        }
        servers.push(...held);
        return { first, size };
      } catch {
        held.forEach((h) => h.close()); // someone on this machine uses one of them: another block
      }
    }
    throw new Error('no free block of ports to hold');
  };

  it("a remote endpoint gets a pool per level, and a call's priority picks it; a loopback endpoint does not", async () => {
    const b = compile({}, [10, 0], ['http://10.0.0.9:8000', 'http://127.0.0.1:8001'], 'http').backends['cloud'];
    assert.ok(b !== undefined);
    const made: { url: string; ports: PortBlock | undefined }[] = [];
    const seen: { url: string; level: number | undefined; pool: string }[] = [];
    const set = new EndpointSet(b, {
      onHealthChange: () => undefined,
      client: (url, _n, ports): BackendClient => {
        made.push({ url, ports });
        const pool = ports === undefined ? 'usual' : String(ports.first);
        return {
          request: async (req: BackendRequest) => {
            seen.push({ url, level: req.level, pool });
            return { status: 200, headers: {}, body: Readable.from([Buffer.from('ok')]) };
          },
          probe: async () => true,
          close: async () => undefined,
        };
      },
    });
    assert.deepEqual(made, [
      { url: 'http://10.0.0.9:8000', ports: undefined },
      { url: 'http://10.0.0.9:8000', ports: { first: 49152, size: 512, mask: 0xfe00 } },
      { url: 'http://10.0.0.9:8000', ports: { first: 49664, size: 512, mask: 0xfe00 } },
      { url: 'http://127.0.0.1:8001', ports: undefined },
    ]);
    const [remote, local] = set.endpoints;
    for (const [ep, priority] of [[remote, 10], [remote, 0], [remote, undefined], [local, 10]] as const) {
      const sent = set.send(call(), performance.now() + 1000, ep, undefined, priority);
      await sent.answer;
      await sent.done;
    }
    assert.deepEqual(seen.map((s) => s.pool), ['49152', '49664', 'usual', 'usual']);

    // A reload with a third level adds its pool to the kept endpoint, connections and all.
    const b3 = compile({}, [10, 5, 0], ['http://10.0.0.9:8000', 'http://127.0.0.1:8001'], 'http').backends['cloud'];
    assert.ok(b3 !== undefined);
    set.reconfigure(b3);
    assert.equal(set.endpoints[0], remote, 'the endpoint (its health, its connections) is kept');
    assert.equal(made.at(-1)?.ports?.first, 50176);
    const sent = set.send(call(), performance.now() + 1000, remote, undefined, 0);
    await sent.answer;
    assert.equal(seen.at(-1)?.pool, '50176', 'priority 0 is the third level now');
    // priorityClasses off: new clients without pools.
    set.reconfigure(compile({ priorityClasses: false }, [10, 5, 0], ['http://10.0.0.9:8000'], 'http').backends['cloud'] as typeof b);
    assert.notEqual(set.endpoints[0], remote);
    assert.equal(made.at(-1)?.ports, undefined);
    await set.close();
  });

  it("an HTTP client's connections leave from its block; when the block is full, from an ephemeral port, said once", async () => {
    const ports: number[] = [];
    const server = createServer((req, res) => {
      ports.push(req.socket.remotePort ?? 0);
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    // A block of 256 from 55040 (inside the ephemeral range, where no service listens).
    const block = { first: 55040, size: 256 };
    const client = new HttpBackendClient(url, 4, undefined, block);
    const send = async (c: HttpBackendClient): Promise<void> => {
      const res = await c.request({ method: 'POST', path: '/', headers: {}, body: Buffer.from('x'), signal: new Cancel() });
      for await (const _ of res.body) void _;
    };
    await Promise.all([send(client), send(client), send(client), send(client)]);
    assert.equal(ports.length, 4);
    assert.ok(ports.every((p) => p >= block.first && p < block.first + block.size), `client ports ${ports.join(' ')}`);
    await client.close();

    // Every port of a small block held by listeners: the connection still goes, from elsewhere.
    const tiny = await heldBlock(8);
    const warnings: string[] = [];
    const { boundConnector } = await import('../../src/dispatch/clients/bound-connect.ts');
    const { Pool } = await import('undici');
    const pool = new Pool(url, { connections: 1, connect: boundConnector({ ports: tiny, warn: (l) => warnings.push(l) }) });
    const res = await pool.request({ method: 'GET', path: '/' });
    await res.body.dump();
    assert.equal(res.statusCode, 200);
    assert.ok((ports.at(-1) ?? 0) < tiny.first || (ports.at(-1) ?? 0) >= tiny.first + tiny.size);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? '', new RegExp(`no free local port in ${tiny.first}-${tiny.first + 7} after 8 tries`));
    await pool.close();
  });

  it('keeps TLS as the link says (CA, server name) on the bound connections', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mg-levels-tls-'));
    try {
      const ssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
      ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '2', '-subj', '/CN=cloud.test', '-addext', 'subjectAltName=DNS:cloud.test');
      ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'other.key', '-out', 'other.pem', '-days', '2', '-subj', '/CN=other');
      const ports: number[] = [];
      const server = createTlsServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (req, res) => {
        ports.push(req.socket.remotePort ?? 0);
        res.end('ok');
      });
      servers.push(server);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const url = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
      const block = { first: 55552, size: 256 };
      const link = (ca: string) => ({ connect: { ca: readFileSync(join(dir, ca)), servername: 'cloud.test', rejectUnauthorized: true }, headers: {}, problem: undefined });
      const good = new HttpBackendClient(url, 2, link('cert.pem'), block);
      const res = await good.request({ method: 'GET', path: '/', headers: {}, body: undefined, signal: new Cancel() });
      for await (const _ of res.body) void _;
      assert.equal(res.status, 200);
      assert.ok((ports[0] ?? 0) >= block.first && (ports[0] ?? 0) < block.first + block.size, `client port ${ports[0]}`);
      await good.close();
      const wrongCa = new HttpBackendClient(url, 2, link('other.pem'), block);
      await assert.rejects(wrongCa.request({ method: 'GET', path: '/', headers: {}, body: undefined, signal: new Cancel() }), /certificate|self.signed|UNABLE_TO_VERIFY|DEPTH_ZERO/i);
      await wrongCa.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
