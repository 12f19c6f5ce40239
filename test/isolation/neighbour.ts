// The misbehaving neighbour, in its own process so that its load does not slow the test process
// that measures the modest app. argv: kind httpUrl grpcTarget key rate durationMs
//   flood   half HTTP with X-Request-Timeout: 50ms, half gRPC with grpc-timeout 50 ms
//   bad     inputs the model server rejects (400)
//   broken  calls to the model that always fails (500)
//   hangup  hangs up 5 ms after each request
// Prints one JSON line: outcome counts ("200", "503 MG_QUEUE_TIMEOUT", "grpc 4 MG_QUEUE_TIMEOUT", "hung up").
import { Metadata } from '@grpc/grpc-js';
import { Pool } from 'undici';
import { call, inferenceClient, trailer, type Failure } from '../grpc/helpers.ts';
import { INFER_BODY } from '../helpers/harness.ts';
import { httpCall, openLoop, tally, type Outcome } from './helpers.ts';

const [kind, httpUrl, grpcTarget, key, rateText, durationText] = process.argv.slice(2) as [string, string, string, string, string, string];
const rate = Number(rateText);
const duration = Number(durationText);
const pool = new Pool(httpUrl, { connections: 1024 });
const grpc = inferenceClient(grpcTarget);
const BAD_BODY = JSON.stringify({ inputs: [{ name: 'pixels', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] });
const GRPC_REQUEST = { model_name: 'demo', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } }] };

async function viaGrpc(deadlineMs: number): Promise<Outcome> {
  const t0 = performance.now();
  const md = new Metadata();
  md.set('authorization', `Bearer ${key}`);
  try {
    await call(grpc, 'ModelInfer', GRPC_REQUEST, md, { deadline: Date.now() + deadlineMs });
    return { status: 200, code: undefined, ms: performance.now() - t0 };
  } catch (err) {
    const f = err as Failure;
    return { status: f.code, code: `grpc ${trailer(f.trailers, 'x-modelguard-error') ?? 'client-deadline'}`, ms: performance.now() - t0 };
  }
}

let n = 0;
const one = (): Promise<Outcome> => {
  switch (kind) {
    case 'flood':
      return n++ % 2 === 0 ? httpCall(pool, '/v2/models/demo/infer', key, INFER_BODY, { 'x-request-timeout': '50ms' }) : viaGrpc(50);
    case 'bad':
      return httpCall(pool, '/v2/models/demo/infer', key, BAD_BODY);
    case 'broken':
      return httpCall(pool, '/v2/models/broken/infer', key, INFER_BODY);
    default:
      return httpCall(pool, '/v2/models/demo/infer', key, INFER_BODY, {}, 5);
  }
};

process.stderr.write('sending\n');
const outcomes = await openLoop(rate, duration, one);
const fastRefusals = outcomes.filter((o) => o.code === 'MG_BACKEND_ERROR' && o.ms < 10).length;
process.stdout.write(`${JSON.stringify({ tally: tally(outcomes), fastRefusals })}\n`);
grpc.close();
await pool.close();
