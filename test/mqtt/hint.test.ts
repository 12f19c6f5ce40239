// The MQTT line `modelguard up` prints, run as a user would (Debian's mosquitto_sub/mosquitto_pub
// through sh) against the embedded broker: with replies on the app's own topics, it gets its answer.
import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { startGateway } from '../../src/compose/gateway.ts';
import { mqttTryLine } from '../../src/cli/mqtt-hint.ts';
import { accelerator, keyFor, snapshotFor } from '../helpers/harness.ts';

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

it('the printed mosquitto_sub/mosquitto_pub line is answered on the app\'s reply topic', { timeout: 30_000 }, async () => {
  const acc = await accelerator({ slots: 1, models: ['iris'] });
  closers.push(() => acc.close());
  const gw = await startGateway(snapshotFor({ endpoints: [{ url: acc.url, slots: 1 }], models: ['iris'], groups: [{ name: 'a' }], gateway: { mqtt: { embedded: true } } }), {
    http: '127.0.0.1:0',
    grpc: '127.0.0.1:0',
    admin: '127.0.0.1:0',
    mqtt: 'mqtt://127.0.0.1:0',
  });
  closers.push(() => gw.close());
  const line = mqttTryLine(gw.mqttUrl ?? '', 'app-a', keyFor('a'));
  assert.match(line, /-t modelguard\/v1\/app-a\/replies\//);
  const out = await new Promise<string>((resolve, reject) => {
    execFile('/bin/sh', ['-c', line], { timeout: 20_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}: ${stderr}`)) : resolve(stdout)));
  });
  const doc = JSON.parse(out.trim()) as Record<string, unknown>;
  assert.equal(doc['error'], undefined, out);
  assert.equal(doc['servedBy'], 'edge');
  assert.ok(Array.isArray(doc['outputs']));
});
