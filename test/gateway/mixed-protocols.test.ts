/**
 * One path for every protocol: group A's devices over MQTT and group B's app over gRPC share one
 * accelerator by their weights (3:1) under overload, exactly as two HTTP groups would.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Client } from '@grpc/grpc-js';
import { startGateway, type Gateway } from '../../src/compose/gateway.ts';
import { acceleratorProcess, delay, keyFor, snapshotFor } from '../helpers/harness.ts';
import { auth, call, fp32Request, inferenceClient } from '../grpc/helpers.ts';
import { Caller } from '../mqtt/helpers.ts';

let model: { url: string; close: () => Promise<void> };
let gw: Gateway;
let grpc: Client;
let devices: Caller[] = [];

before(async () => {
  model = await acceleratorProcess(['--slots', '2', '--service-time', '10ms']);
  gw = await startGateway(
    snapshotFor({
      endpoints: [{ url: model.url, slots: 2 }],
      groups: [
        { name: 'cameras', weight: 3, maxLength: 1000 },
        { name: 'apps', weight: 1, maxLength: 1000 },
      ],
      gateway: { mqtt: { embedded: true }, fairness: 'requests' },
    }),
    { http: '127.0.0.1:0', grpc: '127.0.0.1:0', admin: '127.0.0.1:0', mqtt: 'mqtt://127.0.0.1:0' },
  );
  grpc = inferenceClient(gw.grpcUrl);
  devices = await Promise.all(Array.from({ length: 4 }, () => Caller.create(gw.mqttUrl!, 4, { username: 'app-cameras', password: keyFor('cameras') })));
});

after(async () => {
  await Promise.all(devices.map((d) => d.close()));
  grpc.close();
  await gw.close();
  await model.close();
});

test('MQTT group A and gRPC group B, weights 3:1, overload: dispatched 3:1 within 5%', { timeout: 60_000 }, async () => {
  let running = true;
  const failures: string[] = [];
  const body = { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] };
  const mqttWorkers = devices.flatMap((d) =>
    Array.from({ length: 6 }, async () => {
      while (running) {
        const r = await d.request('demo', body, { timeoutMs: 30_000 });
        if (r.doc['error'] !== undefined) failures.push(`mqtt ${JSON.stringify(r.doc['error'])}`);
      }
    }),
  );
  const grpcWorkers = Array.from({ length: 24 }, async () => {
    while (running) {
      await call(grpc, 'ModelInfer', fp32Request('demo', [1, 2, 3, 4]), auth(keyFor('apps'))).catch((e: unknown) => failures.push(`grpc ${String(e)}`));
    }
  });
  const dispatched = (): Record<string, number> => Object.fromEntries(gw.broker.status().groups.map((g) => [g.name, g.dispatched]));
  const queued = (g: string): number => gw.broker.status().groups.find((x) => x.name === g)!.queued;
  await delay(1000); // both queues fill
  assert.ok(queued('cameras') > 4 && queued('apps') > 4, `both groups backlogged (cameras ${queued('cameras')}, apps ${queued('apps')})`);
  const d0 = dispatched();
  await delay(4000);
  const d1 = dispatched();
  assert.ok(queued('cameras') > 0 && queued('apps') > 0, 'still backlogged at the end of the window');
  running = false;
  await Promise.all([...mqttWorkers, ...grpcWorkers]);
  const a = d1['cameras']! - d0['cameras']!;
  const b = d1['apps']! - d0['apps']!;
  assert.ok(a + b > 200, `enough work in the window (${a + b})`);
  const ratio = a / b;
  assert.ok(Math.abs(ratio - 3) / 3 <= 0.05, `cameras (MQTT) : apps (gRPC) = ${a}:${b} = ${ratio.toFixed(3)}, expected 3 within 5%`);
  assert.deepEqual(failures, []);
  // Both protocols are in the same request metrics, by group.
  const text = await gw.metrics.registry.metrics();
  assert.match(text, /group="cameras"[^\n]*protocol="mqtt"|protocol="mqtt"[^\n]*group="cameras"/);
  assert.match(text, /group="apps"[^\n]*protocol="grpc"|protocol="grpc"[^\n]*group="apps"/);
});
