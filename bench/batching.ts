/**
 * Cross-application batching at the broker, against the same model server unbatched in the same run.
 *
 *   node --import tsx bench/batching.ts [--seconds 5] [--light-seconds 10] [--max-batch 8] [--max-delay 5ms]
 *
 * The simulated accelerator (its own process) holds a slot 20 + 1×(R−1) ms for a request of R rows,
 * 2 slots; the real ONNX demo model (Iris) runs in a second model server process. ModelGuard runs
 * in its own process (`modelguard up --config`) with two Models on the simulated server: `demo`
 * (never merged: the baseline) and `batched` (Model.spec.batching), and `iris` / `iris-batched` on the
 * ONNX one. Groups a and b, weights 3:1. Printed:
 *
 *   1. Overload (each group keeps 24 one-row requests outstanding, --seconds per run, the first second
 *      left out): rows answered per second, batched ÷ unbatched (target ≥ 3); the rows' a:b split
 *      (target 3 within 10%); slot time charged a:b; mean rows per backend call; callers that got
 *      anything but exactly their own rows and id (target 0); requests not answered 200 (target 0).
 *   2. Light load (10 requests/s, unbatched and batched interleaved, --light-seconds): p50 and p90,
 *      and what batching added to p50 (target ≤ maxDelay), beside the delay the broker recorded.
 *   3. ONNX: 24 concurrent requests of 1–4 rows through `iris-batched`, each compared byte for byte
 *      with the same request alone through `iris`, JSON and binary data (target: all identical).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Pool, request } from 'undici';
import { IRIS_FEATURES } from '../src/demo/iris-data.ts';
import { sha256Hex } from '../src/security/identity.ts';
import { ask, rowLoop, type RowAnswer } from '../test/broker/batching-helpers.ts';
import { keyFor } from '../test/helpers/harness.ts';
import { waitReady } from './lib/admin.ts';
import { runMain, startModelGuard, startService, tempDir } from './lib/processes.ts';
import { fixed, machineLine, percentile, say, table } from './lib/stats.ts';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    'light-seconds': { type: 'string', default: '10' },
    'max-batch': { type: 'string', default: '8' },
    'max-delay': { type: 'string', default: '5ms' },
  },
});
const SECONDS = Number(args.seconds);
const LIGHT_SECONDS = Number(args['light-seconds']);
const MAX_BATCH = Number(args['max-batch']);
const MAX_DELAY = args['max-delay'];
const MAX_DELAY_MS = Number(/^(\d+(?:\.\d+)?)ms$/.exec(MAX_DELAY)?.[1] ?? NaN);
const CONCURRENCY = 24;

function config(simulated: string, onnx: string): string {
  const doc = (kind: string, name: string, spec: object): string => JSON.stringify({ apiVersion: 'modelguard.io/v1alpha1', kind, metadata: { name }, spec });
  const batching = { maxBatchSize: MAX_BATCH, maxDelay: MAX_DELAY };
  return [
    doc('Gateway', 'default', { auth: 'apiKey', accessLog: { enabled: false } }),
    doc('Backend', 'accel', { endpoints: [{ url: simulated, slots: 2 }], timeout: '30s' }),
    doc('Backend', 'onnx', { endpoints: [{ url: onnx, slots: 1 }], timeout: '30s' }),
    doc('Model', 'demo', { backend: 'accel' }),
    doc('Model', 'batched', { backend: 'accel', backendModel: 'demo', batching }),
    doc('Model', 'iris', { backend: 'onnx' }),
    doc('Model', 'iris-batched', { backend: 'onnx', backendModel: 'iris', batching: { maxBatchSize: 32, maxDelay: '20ms' } }),
    ...(['a', 'b'] as const).flatMap((g) => [
      doc('ServiceGroup', g, { weight: g === 'a' ? 3 : 1, queue: { maxLength: 10_000, maxWait: '30s' } }),
      doc('App', `app-${g}`, { serviceGroup: g, apiKeys: [{ sha256: sha256Hex(keyFor(g)) }] }),
    ]),
  ].join('\n---\n');
}

async function metrics(adminUrl: string): Promise<string> {
  const res = await request(`${adminUrl}/metrics`);
  return res.body.text();
}

/** Sum of a metric's samples whose labels match `labels` (a substring of the label set). */
function sample(text: string, name: string, labels = ''): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (labels !== '' && !line.includes(labels)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

interface Overload {
  rowsPerSecond: number;
  a: number;
  b: number;
  slotA: number;
  slotB: number;
  meanRows: number;
  notOwn: number;
  notAnswered: number;
  sent: number;
}

async function overload(p: Pool, adminUrl: string, model: string): Promise<Overload> {
  const t0 = performance.now();
  const stop = new Promise((r) => setTimeout(r, SECONDS * 1000 + 300));
  let before = '';
  let after = '';
  const [ra, rb] = await Promise.all([
    rowLoop(p, model, 'a', CONCURRENCY, stop),
    rowLoop(p, model, 'b', CONCURRENCY, stop),
    (async () => {
      await new Promise((r) => setTimeout(r, 1000));
      before = await metrics(adminUrl);
      await new Promise((r) => setTimeout(r, (SECONDS - 1) * 1000));
      after = await metrics(adminUrl);
    })(),
  ]);
  const inWindow = (x: RowAnswer): boolean => x.status === 200 && x.at - t0 > 1000 && x.at - t0 <= SECONDS * 1000;
  const a = ra.filter(inWindow).reduce((n, x) => n + x.rows, 0);
  const b = rb.filter(inWindow).reduce((n, x) => n + x.rows, 0);
  const delta = (name: string, labels: string): number => sample(after, name, labels) - sample(before, name, labels);
  const calls = delta('modelguard_batch_size_count', `model="${model}"`);
  const all = [...ra, ...rb];
  return {
    rowsPerSecond: (a + b) / (SECONDS - 1),
    a,
    b,
    slotA: delta('modelguard_group_accelerator_seconds_total', 'group="a"'),
    slotB: delta('modelguard_group_accelerator_seconds_total', 'group="b"'),
    meanRows: calls > 0 ? delta('modelguard_batch_size_sum', `model="${model}"`) / calls : 1,
    notOwn: all.filter((x) => x.status === 200 && !x.own).length,
    notAnswered: all.filter((x) => x.status !== 200).length,
    sent: all.length,
  };
}

async function lightLoad(p: Pool): Promise<{ plain: number[]; batched: number[]; bad: number }> {
  const plain: number[] = [];
  const batched: number[] = [];
  let bad = 0;
  const pending: Promise<void>[] = [];
  for (let i = 0; i < LIGHT_SECONDS * 10; i++) {
    const model = i % 2 === 0 ? 'demo' : 'batched';
    pending.push(
      ask(p, model, 'a', 1).then((x) => {
        if (x.status !== 200 || !x.own) bad++;
        (model === 'demo' ? plain : batched).push(x.ms);
      }),
    );
    await new Promise((r) => setTimeout(r, 100));
  }
  await Promise.all(pending);
  return { plain, batched, bad };
}

async function onnxIdentity(p: Pool): Promise<{ compared: number; identical: number }> {
  const reqs = Array.from({ length: 24 }, (_, i) => {
    const rows = IRIS_FEATURES.slice((i * 6) % 140, ((i * 6) % 140) + 1 + (i % 4));
    const json = JSON.stringify({ id: `q${i}`, inputs: [{ name: 'input', shape: [rows.length, 4], datatype: 'FP32', data: rows.flat() }] });
    const header = JSON.stringify({ id: `b${i}`, inputs: [{ name: 'input', shape: [rows.length, 4], datatype: 'FP32', parameters: { binary_data_size: rows.length * 16 } }], parameters: { binary_data_output: true } });
    return { json, header, bytes: Buffer.from(new Float32Array(rows.flat()).buffer) };
  });
  const send = async (model: string, r: (typeof reqs)[number], binary: boolean, group: string): Promise<string> => {
    const res = await p.request({
      method: 'POST',
      path: `/v2/models/${model}/infer`,
      headers: {
        authorization: `Bearer ${keyFor(group)}`,
        ...(binary ? { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(Buffer.byteLength(r.header)) } : { 'content-type': 'application/json' }),
      },
      body: binary ? Buffer.concat([Buffer.from(r.header), r.bytes]) : r.json,
    });
    const body = Buffer.from(await res.body.arrayBuffer());
    return `${res.statusCode} ${String(res.headers['inference-header-content-length'] ?? '')} ${body.toString('base64')}`;
  };
  let compared = 0;
  let identical = 0;
  for (const binary of [false, true]) {
    const batched = await Promise.all(reqs.map((r, i) => send('iris-batched', r, binary, i % 2 === 0 ? 'a' : 'b')));
    for (const [i, r] of reqs.entries()) {
      const alone = await send('iris', r, binary, 'a');
      compared++;
      if (alone === batched[i] && alone.startsWith('200 ')) identical++;
    }
  }
  return { compared, identical };
}

async function main(): Promise<void> {
  say(await machineLine());
  const simulated = await startService('demo-model', process.execPath, ['bin/modelguard.js', 'demo-model', '--listen', '127.0.0.1:0', '--mode', 'simulated', '--slots', '2', '--models', 'demo=20ms+1ms/row'], {
    ready: /listening on (http:\/\/[\d.]+:\d+)/,
  });
  const onnx = await startService('demo-model-onnx', process.execPath, ['bin/modelguard.js', 'demo-model', '--listen', '127.0.0.1:0', '--mode', 'onnx', '--slots', '1', '--service-time', '10ms'], {
    ready: /listening on (http:\/\/[\d.]+:\d+)/,
    timeoutMs: 60_000,
  });
  const dir = tempDir('batching');
  writeFileSync(join(dir, 'modelguard.yaml'), config(simulated.match[1]!, onnx.match[1]!));
  const mg = await startModelGuard(dir);
  await waitReady(mg.adminUrl);
  const p = new Pool(mg.httpUrl, { connections: 2 * CONCURRENCY + 8, pipelining: 1 });
  try {
    say(`\n1. overload: groups a:b weighted 3:1, ${CONCURRENCY} one-row requests outstanding each, ${SECONDS} s per run (first second left out); 20 ms + 1 ms/row, 2 slots; maxBatchSize ${MAX_BATCH}, maxDelay ${MAX_DELAY}`);
    const plain = await overload(p, mg.adminUrl, 'demo');
    const batched = await overload(p, mg.adminUrl, 'batched');
    const row = (name: string, r: Overload): string[] => [
      name,
      fixed(r.rowsPerSecond, 0),
      fixed(r.rowsPerSecond / plain.rowsPerSecond, 2),
      `${r.a}:${r.b} = ${fixed(r.a / r.b, 2)}`,
      fixed(r.slotA / r.slotB, 2),
      fixed(r.meanRows, 2),
      String(r.notOwn),
      `${r.notAnswered} of ${r.sent}`,
    ];
    say(table(['run', 'rows/s', '÷ unbatched', 'rows a:b', 'slot time a:b', 'rows per call', 'not own rows', 'not answered 200'], [row('unbatched (demo)', plain), row('batched', batched)]));

    say(`\n2. light load: 10 requests/s for ${LIGHT_SECONDS} s, unbatched and batched interleaved`);
    const before = await metrics(mg.adminUrl);
    const light = await lightLoad(p);
    const after = await metrics(mg.adminUrl);
    const delayCalls = sample(after, 'modelguard_batch_delay_seconds_count', 'model="batched"') - sample(before, 'modelguard_batch_delay_seconds_count', 'model="batched"');
    const delaySum = sample(after, 'modelguard_batch_delay_seconds_sum', 'model="batched"') - sample(before, 'modelguard_batch_delay_seconds_sum', 'model="batched"');
    const added = percentile(light.batched, 50) - percentile(light.plain, 50);
    say(table(['run', 'requests', 'p50 ms', 'p90 ms'], [
      ['unbatched (demo)', String(light.plain.length), fixed(percentile(light.plain, 50), 1), fixed(percentile(light.plain, 90), 1)],
      ['batched', String(light.batched.length), fixed(percentile(light.batched, 50), 1), fixed(percentile(light.batched, 90), 1)],
    ]));
    say(`added to p50: ${fixed(added, 1)} ms (maxDelay ${MAX_DELAY_MS} ms; the broker recorded a mean hold of ${fixed((delaySum / Math.max(1, delayCalls)) * 1000, 2)} ms over ${delayCalls} calls); wrong or failed answers: ${light.bad}`);

    say('\n3. ONNX (Iris): 24 concurrent requests of 1–4 rows through iris-batched vs each alone through iris, JSON then binary data');
    const m0 = await metrics(mg.adminUrl);
    const id = await onnxIdentity(p);
    const m1 = await metrics(mg.adminUrl);
    const calls = sample(m1, 'modelguard_batch_size_count', 'model="iris-batched"') - sample(m0, 'modelguard_batch_size_count', 'model="iris-batched"');
    say(`bit-identical: ${id.identical} of ${id.compared}; the ${id.compared} batched requests went in ${calls} backend calls`);

    say('\nsummary (targets from issue 18)');
    say(table(['measure', 'measured', 'target'], [
      ['rows/s batched ÷ unbatched (overload)', fixed(batched.rowsPerSecond / plain.rowsPerSecond, 2), '≥ 3'],
      ['rows a:b (batched, overload)', fixed(batched.a / batched.b, 2), '3 ± 10%'],
      ['callers without exactly their own rows', String(plain.notOwn + batched.notOwn), '0'],
      ['requests not answered 200', String(plain.notAnswered + batched.notAnswered), '0'],
      ['added to p50 at 10 req/s, ms', fixed(added, 1), `≤ ${MAX_DELAY_MS}`],
      ['ONNX answers bit-identical', `${id.identical}/${id.compared}`, 'all'],
    ]));
  } finally {
    await p.close();
    await mg.stop();
    await simulated.stop();
    await onnx.stop();
  }
}

runMain(main);
