// `modelguard up` with no configuration: the embedded MQTT broker comes up beside HTTP, the printed
// device line names a working login, and a taken port turns MQTT off with a clear message instead
// of stopping the box.
import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { Caller, errorCode } from './helpers.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

async function up(mqtt: string, until: RegExp): Promise<{ out: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['bin/modelguard.js', 'up', '--http', '127.0.0.1:0', '--grpc', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--mqtt', mqtt], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  );
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (until.test(out)) resolve();
    });
    child.once('exit', (c) => reject(new Error(`up exited ${c}: ${out}`)));
  });
  return { out, child };
}

it('up: embedded broker on the given address; the printed device login and request work', { timeout: 60_000 }, async () => {
  const { out } = await up('mqtt://127.0.0.1:0', /mosquitto_sub .*\n/);
  const url = /MQTT +(mqtt:\/\/\S+)/.exec(out)?.[1];
  assert.ok(url && !url.endsWith(':0'), out);
  const line = /(mosquitto_sub .*)\n/.exec(out)?.[1] ?? '';
  assert.ok(line.includes(`-p ${new URL(url).port}`), line);
  const user = /-u (\S+)/.exec(line)?.[1];
  const password = /-P '([^']+)'/.exec(line)?.[1] ?? '';
  const body = JSON.parse(/-m '([^']+)'/.exec(line)?.[1] ?? '{}') as Record<string, unknown>;
  assert.equal(user, 'camera-line-1');
  const dev = await Caller.create(url, 4, { username: user, password });
  closers.push(() => dev.close());
  delete body['replyTo'];
  delete body['id'];
  const r = await dev.request('iris', body);
  assert.equal(errorCode(r), undefined, JSON.stringify(r.doc));
  const label = (r.doc['outputs'] as { name: string; data: number[] }[]).find((o) => o.name === 'label');
  assert.equal(label?.data[0], 0, 'the printed flower is a setosa');
});

it('up: MQTT port taken → says so, keeps serving HTTP without MQTT', { timeout: 60_000 }, async () => {
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
  closers.push(() => new Promise((r) => blocker.close(() => r())));
  const port = (blocker.address() as net.AddressInfo).port;
  const { out, child } = await up(`mqtt://127.0.0.1:${port}`, /curl -s .*\n/);
  assert.match(out, new RegExp(`MQTT +off: mqtt://127\\.0\\.0\\.1:${port} is already in use`));
  assert.doesNotMatch(out, /mosquitto_sub/);
  const httpUrl = /inference HTTP +(http:\/\/\S+)/.exec(out)?.[1];
  const res = await fetch(`${httpUrl}/v2/health/live`);
  assert.equal(res.status, 200);
  assert.equal(child.exitCode, null, 'still running');
});
