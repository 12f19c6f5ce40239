// A KServe v2 model server for the isolation tests, in its own process: the demo's simulated
// accelerator (src/demo/accelerator.ts, used as it is) with N slots and a FIFO line, serving
//   demo    a model that holds a slot for SERVICE_MS, and answers 400 to inputs that are not
//           one FP32 tensor named "input" of shape [1, 4] (as Triton checks inputs against the model)
//   broken  a model that always answers 500 (a bad model file), without using the accelerator
// A request that holds a slot runs to the end even when its client leaves, as on a real accelerator.
// GET /_stats reports the most requests the server had at once (holding a slot or waiting in its
// line): above the slot count means work waited inside the model server, out of ModelGuard's reach.
// argv: slots serviceMs. Prints "listening on <url>".
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Accelerator } from '../../src/demo/accelerator.ts';

const slots = Number(process.argv[2] ?? 2);
const serviceMs = Number(process.argv[3] ?? 20);
const accel = new Accelerator(slots);
let outstanding = 0;
let peak = 0;
let served = 0;
let finishedForGoneClients = 0;
let brokenCalls = 0;

function json(res: ServerResponse, status: number, doc: unknown): void {
  if (res.destroyed) return;
  const body = JSON.stringify(doc);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', () => resolve(''));
  });
}

function validInputs(text: string): boolean {
  try {
    const doc = JSON.parse(text) as { inputs?: { name?: unknown; shape?: unknown; datatype?: unknown }[] };
    const i = doc.inputs?.[0];
    return doc.inputs?.length === 1 && i?.name === 'input' && i.datatype === 'FP32' && JSON.stringify(i.shape) === '[1,4]';
  } catch {
    return false;
  }
}

const server = createServer({ noDelay: true }, (req, res) => {
  const url = req.url ?? '/';
  if (url === '/_stats') return json(res, 200, { peak, outstanding, served, finishedForGoneClients, brokenCalls, slots });
  if (url === '/_reset') {
    peak = outstanding;
    served = 0;
    finishedForGoneClients = 0;
    brokenCalls = 0;
    return json(res, 200, {});
  }
  if (url === '/v2/health/ready' || url === '/v2/health/live') return json(res, 200, { ready: true });
  const m = /^\/v2\/models\/([^/]+)(\/ready|\/infer)?$/.exec(url);
  if (!m || (m[1] !== 'demo' && m[1] !== 'broken')) return json(res, 404, { error: `no route ${url}` });
  const model = m[1] as string;
  if (m[2] === '/ready') return json(res, 200, { name: model, ready: true });
  if (m[2] === undefined) return json(res, 200, { name: model, versions: ['1'], platform: 'test', inputs: [], outputs: [] });
  void readBody(req).then((text) => {
    if (model === 'broken') brokenCalls++;
    if (model === 'broken') return json(res, 500, { error: 'model "broken" failed to execute: invalid model file' });
    if (!validInputs(text)) return json(res, 400, { error: 'unexpected inference input: expected "input" FP32 [1,4]' });
    outstanding++;
    if (outstanding > peak) peak = outstanding;
    accel.acquire(model, (slot) => {
      setTimeout(() => {
        accel.release(slot, 'served');
        outstanding--;
        served++;
        if (res.destroyed) finishedForGoneClients++;
        json(res, 200, { model_name: model, outputs: [{ name: 'output', shape: [1, 3], datatype: 'FP32', data: [0.1, 0.2, 0.7] }] });
      }, serviceMs);
    });
  });
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening on http://127.0.0.1:${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
