/**
 * The command line's answers to a newcomer's mistakes: every flag that could not take effect is
 * refused with what it needs (no silent flags); `keys create` validates names and prints snippets
 * that `validate` accepts and that work; a reload that changes a start-only setting says so, in the
 * log and in /api/v1/status. Real processes, port 0.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startModelServer } from '../../src/demo/index.ts';
import { mg, modelguard } from '../newcomer/helpers.ts';

const STARTER = 'examples/starter';
const ANY = ['--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'];
const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

function setup(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mg-cli-'));
  cpSync(STARTER, dir, { recursive: true });
  return dir;
}

// Independent processes that refuse at once: run a few at a time.
describe('no silent flags', { concurrency: 4 }, () => {
  const tokenFile = join(mkdtempSync(join(tmpdir(), 'mg-tok-')), 'token');
  writeFileSync(tokenFile, 'a-node-token\n');
  const cases: { what: string; args: string[]; env?: Record<string, string>; says: RegExp }[] = [
    { what: 'broker --mqtt without Gateway.spec.mqtt', args: ['broker', '--config', STARTER, ...ANY, '--mqtt', 'mqtt://127.0.0.1:1883'], says: /--mqtt mqtt:\/\/127\.0\.0\.1:1883 needs Gateway\.spec\.mqtt .*Add to the Gateway `mqtt: \{ url: "mqtt:\/\/127\.0\.0\.1:1883", embedded: true \}`/ },
    { what: 'up --config --mqtt without Gateway.spec.mqtt', args: ['up', '--config', STARTER, '--http', '127.0.0.1:0', '--grpc', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--mqtt', 'mqtt://127.0.0.1:0'], says: /--mqtt mqtt:\/\/127\.0\.0\.1:0 needs Gateway\.spec\.mqtt/ },
    { what: 'controller --webhook without --kubernetes', args: ['controller', '--config', STARTER, '--admin', '127.0.0.1:0', '--webhook', '0.0.0.0:9443'], says: /--webhook would do nothing here: .*Kubernetes mode only; add --kubernetes/ },
    { what: 'controller --namespace without --kubernetes', args: ['controller', '--config', STARTER, '--admin', '127.0.0.1:0', '--namespace', 'edge'], says: /--namespace would do nothing here: .*add --kubernetes/ },
    { what: 'broker --node-token-file without --controller', args: ['broker', '--config', STARTER, ...ANY, '--node-token-file', tokenFile], says: /--node-token-file would do nothing here: it is the token for the controller/ },
    {
      what: 'proxy --node-token-file without --controller',
      args: ['proxy', '--config', STARTER, '--broker', 'http://127.0.0.1:8010', ...ANY, '--grpc', '127.0.0.1:0', '--node-token-file', tokenFile],
      env: { MODELGUARD_PROXY_TOKEN: 'x' },
      says: /--node-token-file would do nothing here/,
    },
    { what: 'status --role with --admin', args: ['status', '--role', 'broker', '--admin', 'http://127.0.0.1:1'], says: /--role would do nothing here: .*--admin gives the URL/ },
    { what: 'top --role with --admin', args: ['top', '--role', 'proxy', '--admin', 'http://127.0.0.1:1', '-n', '1'], says: /--role would do nothing here/ },
    { what: 'keys create --group with --kind', args: ['keys', 'create', '--kind', 'node', '--group', 'gold'], says: /--group is the service group of an App; it goes with --app/ },
    { what: 'keys create --name with --app', args: ['keys', 'create', '--app', 'cam', '--name', 'p'], says: /--name names a proxy credential; it goes with --kind proxy/ },
    { what: 'keys create --name with --kind node', args: ['keys', 'create', '--kind', 'node', '--name', 'p'], says: /--name names a proxy credential; it goes with --kind proxy/ },
    { what: 'demo-load --key without --config', args: ['demo-load', '--key', 'cam=k'], says: /--key APP=KEY goes with --config PATH/ },
  ];
  for (const c of cases) {
    it(`${c.what}: refused, saying what it needs`, { timeout: 60_000 }, async () => {
      const r = await mg(c.args, c.env);
      assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stderr, c.says);
      assert.doesNotMatch(r.stdout, /is up/, 'nothing started');
    });
  }
});

describe('keys create', { concurrency: 3 }, () => {
  it('--app refuses a name the configuration would refuse, saying what is valid', async () => {
    const r = await mg(['keys', 'create', '--app', 'Camera_1']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--app "Camera_1": expected a name of lower-case letters, digits and "-" .*for example "camera-1"/);
    assert.equal(r.stdout, '', 'no snippet, no key');
  });

  it('--app: the file it writes validates, with the sha256 of the key it shows', { timeout: 60_000 }, async () => {
    const dir = setup();
    const r = await mg(['keys', 'create', '--app', 'camera-line-1', '--group', 'gold']);
    assert.equal(r.code, 0, r.stderr);
    const key = /key \(shown once, store it now\): (\S+)/.exec(r.stderr)?.[1] ?? '';
    assert.ok(key.length > 40);
    assert.ok(!r.stdout.includes(key), 'the key stays out of the snippet');
    assert.ok(r.stdout.includes(`sha256: "${sha(key)}"`));
    writeFileSync(join(dir, 'apps.yaml'), r.stdout);
    const v = await mg(['validate', '--config', dir]);
    assert.equal(v.code, 0, v.stderr);
  });

  for (const [kind, field] of [
    ['node', /^ {2}nodeTokens: \[\{ sha256: "([0-9a-f]{64})" \}\]/m],
    ['proxy', /^ {2}proxies:.*\n {4}- name: edge-proxy\n {6}tokens: \[\{ sha256: "([0-9a-f]{64})" \}\]/m],
    ['admin', /^ {2}adminTokens: \[\{ sha256: "([0-9a-f]{64})" \}\]/m],
  ] as const) {
    it(`--kind ${kind}: a token and the Gateway snippet for it, which validates`, { timeout: 60_000 }, async () => {
      const r = await mg(['keys', 'create', '--kind', kind, ...(kind === 'proxy' ? ['--name', 'edge-proxy'] : [])]);
      assert.equal(r.code, 0, r.stderr);
      const token = /token \(shown once, store it now\): (\S+)/.exec(r.stderr)?.[1] ?? '';
      assert.equal(field.exec(r.stdout)?.[1], sha(token), r.stdout);
      const dir = mkdtempSync(join(tmpdir(), 'mg-keys-'));
      writeFileSync(join(dir, 'gateway.yaml'), r.stdout);
      const v = await mg(['validate', '--config', dir]);
      assert.equal(v.code, 0, v.stderr);
    });
  }

  it('--kind admin: the token opens the admin API it configures, and status reads it', { timeout: 90_000 }, async () => {
    const dir = setup();
    const r = await mg(['keys', 'create', '--kind', 'admin']);
    const token = /token \(shown once, store it now\): (\S+)/.exec(r.stderr)?.[1] ?? '';
    const lines = r.stdout.slice(r.stdout.indexOf('\nspec:\n') + 7);
    writeFileSync(join(dir, 'gateway.yaml'), `${readFileSync(join(dir, 'gateway.yaml'), 'utf8')}${lines}`);
    const up = modelguard(['up', '--config', dir, '--http', '127.0.0.1:0', '--grpc', '127.0.0.1:0', '--admin', '127.0.0.1:0']);
    try {
      const admin = (await up.waitFor(/admin +(http:\/\/\S+)/))[1] as string;
      assert.equal((await fetch(`${admin}/api/v1/status`)).status, 401);
      assert.equal((await fetch(`${admin}/api/v1/status`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
      const s = await mg(['status', '--admin', admin, '--token', token]);
      assert.equal(s.code, 0, s.stderr);
      assert.match(s.stdout, /^gold +0 +3 /m);
    } finally {
      await up.stop();
    }
  });
});

describe('a reload that needs a restart says so', () => {
  it('up --config: adding Gateway.spec.mqtt logs it and lists it in /api/v1/status restartRequired', { timeout: 90_000 }, async () => {
    const dir = setup();
    const up = modelguard(['up', '--config', dir, '--http', '127.0.0.1:0', '--grpc', '127.0.0.1:0', '--admin', '127.0.0.1:0']);
    try {
      const admin = (await up.waitFor(/admin +(http:\/\/\S+)/))[1] as string;
      const before = (await (await fetch(`${admin}/api/v1/status`)).json()) as { restartRequired: string[] };
      assert.deepEqual(before.restartRequired, []);
      writeFileSync(join(dir, 'gateway.yaml'), `${readFileSync(join(dir, 'gateway.yaml'), 'utf8')}  mqtt: { url: "mqtt://127.0.0.1:0", embedded: true }\n`);
      up.child.kill('SIGHUP');
      await up.waitFor(/configuration version 2 changes Gateway\.spec\.mqtt, read only at start: restart `modelguard up` to apply it/);
      const after = (await (await fetch(`${admin}/api/v1/status`)).json()) as { version: number; restartRequired: string[] };
      assert.equal(after.version, 2, 'the rest of the configuration is applied');
      assert.deepEqual(after.restartRequired, ['Gateway.spec.mqtt']);
      const s = await mg(['status', '--admin', admin]);
      assert.match(s.stdout, /RESTART REQUIRED: the configuration changed Gateway\.spec\.mqtt/);
    } finally {
      await up.stop();
    }
  });
});

describe('demo-load --config', () => {
  it("drives a configuration's apps with the keys given, and prints each group's share and the split", { timeout: 120_000 }, async () => {
    const acc = await startModelServer({ mode: 'simulated', slots: 2, models: [{ name: 'iris', serviceTime: 20 }] });
    const dir = setup();
    writeFileSync(join(dir, 'backends.yaml'), readFileSync(join(dir, 'backends.yaml'), 'utf8').replace('http://127.0.0.1:8000', acc.url));
    const app = (name: string, group: string, key: string): string =>
      `apiVersion: modelguard.io/v1alpha1\nkind: App\nmetadata: { name: ${name} }\nspec:\n  serviceGroup: ${group}\n  apiKeys: [{ sha256: "${sha(key)}" }]\n`;
    writeFileSync(join(dir, 'apps.yaml'), `${app('camera-line-1', 'gold', 'k-gold')}---\n${app('batch-analytics', 'bronze', 'k-bronze')}`);
    const up = modelguard(['up', '--config', dir, '--http', '127.0.0.1:0', '--grpc', '127.0.0.1:0', '--admin', '127.0.0.1:0']);
    try {
      const http = (await up.waitFor(/inference HTTP +(http:\/\/\S+)/))[1] as string;
      const admin = (await up.waitFor(/admin +(http:\/\/\S+)/))[1] as string;
      const r = await mg(['demo-load', '--config', dir, '--key', 'camera-line-1=k-gold', '--key', 'batch-analytics=k-bronze', '--url', http, '--admin', admin, '--seconds', '4']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^ +\d+s +camera-line-1 \(gold\) \d+ +batch-analytics \(bronze\) \d+$/m, 'progress');
      const row = (g: string): number => Number(new RegExp(`^${g} +\\S+ +(\\d+) +0 +[\\d.]+% +(\\d+)%$`, 'm').exec(r.stdout)?.[1]);
      assert.ok(row('gold') > 0 && row('bronze') > 0, r.stdout);
      assert.match(r.stdout, /^gold .* 75%$/m);
      assert.match(r.stdout, /^bronze .* 25%$/m);
      const ratio = Number(/served split gold:bronze = ([\d.]+):1 \(configured 3:1/.exec(r.stdout)?.[1]);
      // Compute fairness on a busy test machine: the weights show, within a wide margin.
      assert.ok(ratio > 2 && ratio < 4.5, r.stdout);
      const wrong = await mg(['demo-load', '--config', dir, '--key', 'camera-line-1=not-the-key', '--url', http, '--admin', admin, '--seconds', '2']);
      assert.equal(wrong.code, 1);
      assert.match(wrong.stderr, /camera-line-1: MG_UNAUTHENTICATED .*check its key/);
    } finally {
      await up.stop();
      await acc.close();
    }
  });
});

describe('listen failures name the listener, the address and what moves it', () => {
  it("broker: the embedded MQTT broker's port held → --mqtt and Gateway.spec.mqtt.url named, exit 1", { timeout: 60_000 }, async () => {
    const held = createServer();
    await new Promise<void>((r) => held.listen(0, '127.0.0.1', r));
    try {
      const port = (held.address() as AddressInfo).port;
      const dir = mkdtempSync(join(tmpdir(), 'mg-mqtt-'));
      writeFileSync(
        join(dir, 'gateway.yaml'),
        `apiVersion: modelguard.io/v1alpha1\nkind: Gateway\nmetadata: { name: default }\nspec:\n  listeners: { http: "127.0.0.1:0", broker: "127.0.0.1:0" }\n  mqtt: { url: "mqtt://127.0.0.1:${port}", embedded: true }\n`,
      );
      const r = await mg(['broker', '--config', dir, '--admin', '127.0.0.1:0']);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, new RegExp(`^modelguard: the embedded MQTT broker cannot listen on mqtt://127\\.0\\.0\\.1:${port}: the address is already in use: .* \\(EADDRINUSE\\)\\. Move it with --mqtt mqtt://HOST:PORT or Gateway\\.spec\\.mqtt\\.url$`, 'm'));
    } finally {
      await new Promise((r) => held.close(r));
    }
  });
});

describe('a controller whose own listener is moved by a reload', () => {
  it('logs that it needs a restart, and lists it in /api/v1/status restartRequired', { timeout: 90_000 }, async () => {
    const dir = setup();
    const gw = (admin: string): string => `apiVersion: modelguard.io/v1alpha1\nkind: Gateway\nmetadata: { name: default }\nspec:\n  listeners: { admin: "${admin}" }\n`;
    writeFileSync(join(dir, 'gateway.yaml'), gw('127.0.0.1:0'));
    const ctl = modelguard(['controller', '--config', dir]);
    try {
      const url = (await ctl.waitFor(/controller +(http:\/\/\S+)/))[1] as string;
      writeFileSync(join(dir, 'gateway.yaml'), gw('127.0.0.2:0'));
      ctl.child.kill('SIGHUP');
      await ctl.waitFor(/configuration version 2 moves Gateway\.spec\.listeners\.admin to 127\.0\.0\.2:0, read only at start: restart `modelguard controller`/);
      const s = (await (await fetch(`${url}/api/v1/status`)).json()) as { role: string; version: number; restartRequired: string[] };
      assert.deepEqual([s.role, s.version, s.restartRequired], ['controller', 2, ['Gateway.spec.listeners.admin']]);
    } finally {
      await ctl.stop();
    }
  });
});
