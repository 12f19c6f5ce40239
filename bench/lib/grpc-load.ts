/**
 * gRPC load generator child for bench/grpc.ts: a closed loop of ModelInfer calls (raw bytes, one
 * pre-encoded request, answers not decoded) on one HTTP/2 channel, as a standard client would.
 *
 *   node --import tsx bench/lib/grpc-load.ts TARGET MODEL CONCURRENCY WARMUP_MS DURATION_MS
 *
 * Prints one JSON line: { answered, errors, elapsedMs, p50Ms, p99Ms } for the measured part.
 */
import { Client, credentials, Metadata } from '@grpc/grpc-js';
import { methodPath, wire } from '../../src/grpc/wire.ts';
import { percentile } from './stats.ts';

const [target = '', model = 'demo', concurrencyText = '32', warmupText = '500', durationText = '3000'] = process.argv.slice(2);
const concurrency = Number(concurrencyText);
const warmupMs = Number(warmupText);
const durationMs = Number(durationText);

const request = wire.ModelInferRequest.encode({ model_name: model, inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } }] });
const client = new Client(target, credentials.createInsecure());
const id = (b: Buffer): Buffer => b;
const path = methodPath('ModelInfer');

function once(): Promise<boolean> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(path, id, id, request, new Metadata(), {}, (err) => resolve(err === null));
  });
}

const start = performance.now();
const measureFrom = start + warmupMs;
const end = measureFrom + durationMs;
const latencies: number[] = [];
let errors = 0;
async function worker(): Promise<void> {
  for (;;) {
    const t0 = performance.now();
    if (t0 >= end) return;
    const ok = await once();
    const t1 = performance.now();
    if (t0 < measureFrom) continue;
    if (ok) latencies.push(t1 - t0);
    else errors++;
  }
}
await Promise.all(Array.from({ length: concurrency }, worker));
const elapsedMs = performance.now() - measureFrom;
client.close();
process.stdout.write(`${JSON.stringify({ answered: latencies.length, errors, elapsedMs, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99) })}\n`);
