/**
 * KServe v2 / Open Inference Protocol REST routes (`/v2/...`). Errors answer `{ "error": "..." }`
 * with 400 (bad request), 404 (unknown model, version or route), 405 (wrong method) or 500.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { stringifyExact } from '../core/exact-json.ts';
import { joinFrame } from '../core/kserve-frame.ts';
import { splitRest, WireError } from '../grpc/kserve.ts';
import { dataToRaw, datatypeOf, isRecord, rawToData, splitRawBytes } from '../grpc/tensors.ts';
import { serveOnAccelerator, type ServerContext } from './context.ts';
import { badRequest, HttpError, notFound, readBody, sendJson } from './http.ts';
import { requestRows, type DemoModel } from './models.ts';
import { parseInferRequest, type BinaryWishes, type Element, type InferRequest, type OutputTensor } from './tensors.ts';

function sendError(res: ServerResponse, err: unknown): void {
  const status = err instanceof HttpError ? err.status : 500;
  sendJson(res, status, { error: err instanceof Error ? err.message : String(err) });
}

function methodIs(req: IncomingMessage, method: 'GET' | 'POST'): void {
  const actual = req.method === 'HEAD' ? 'GET' : req.method;
  if (actual !== method) throw new HttpError(405, `${req.method ?? '?'} not allowed here; use ${method}`);
}

export function findModel(ctx: ServerContext, name: string, version: string | undefined): DemoModel {
  const model = ctx.models.get(name);
  if (!model) throw notFound(`unknown model "${name}"`);
  if (version !== undefined && !model.versions.includes(version)) throw notFound(`model "${name}" has no version "${version}"`);
  return model;
}

export function metadata(model: DemoModel): Record<string, unknown> {
  return { name: model.name, versions: model.versions, platform: model.platform, inputs: model.inputs, outputs: model.outputs };
}

/** `parts` is the path after `/v2`, split on `/` and URL-decoded. */
export async function handleKserve(ctx: ServerContext, req: IncomingMessage, res: ServerResponse, parts: readonly string[], requestId: string | undefined): Promise<void> {
  try {
    await route(ctx, req, res, parts, requestId);
  } catch (err) {
    sendError(res, err);
  }
}

async function route(ctx: ServerContext, req: IncomingMessage, res: ServerResponse, parts: readonly string[], requestId: string | undefined): Promise<void> {
  const [head, name, ...rest] = parts;
  if (head === undefined) {
    methodIs(req, 'GET');
    sendJson(res, 200, { name: ctx.serverName, version: ctx.serverVersion, extensions: ['binary_tensor_data', 'classification'] });
    return;
  }
  if (head === 'health' && (name === 'live' || name === 'ready') && rest.length === 0) {
    methodIs(req, 'GET');
    // The models are loaded before the server listens, so a listening server is ready.
    sendJson(res, 200, name === 'live' ? { live: true } : { ready: true });
    return;
  }
  if (head !== 'models' || name === undefined || name === '') throw notFound(`no route ${req.url ?? ''}`);

  // models/{m}[/versions/{v}][/ready|/infer]
  let version: string | undefined;
  let tail = rest;
  if (tail[0] === 'versions') {
    version = tail[1];
    if (version === undefined || version === '') throw notFound(`no route ${req.url ?? ''}`);
    tail = tail.slice(2);
  }
  const model = findModel(ctx, name, version);
  const action = tail[0];
  if (tail.length > 1) throw notFound(`no route ${req.url ?? ''}`);
  if (action === undefined) {
    methodIs(req, 'GET');
    sendJson(res, 200, metadata(model));
  } else if (action === 'ready') {
    methodIs(req, 'GET');
    sendJson(res, 200, { name: model.name, ready: true });
  } else if (action === 'infer') {
    methodIs(req, 'POST');
    await infer(ctx, req, res, model, requestId);
  } else {
    throw notFound(`no route ${req.url ?? ''}`);
  }
}

/**
 * An infer body, JSON or with the binary-data extension (a JSON header of `headerLength` bytes,
 * then the binary tensors): the request, and which outputs to answer as binary data.
 */
export function parseRestInfer(body: Buffer, headerLength: string | undefined): { request: InferRequest; binary: BinaryWishes; classify: ReadonlyMap<string, number> } {
  if (body.length === 0) throw badRequest('request body is empty; expected JSON');
  let split: ReturnType<typeof splitRest>;
  try {
    split = splitRest(body, headerLength, 'inputs', 'request body');
  } catch (err) {
    if (err instanceof WireError) throw badRequest(err.message);
    throw err;
  }
  const { doc, binaries } = split;
  const inputs = Array.isArray(doc['inputs']) ? (doc['inputs'] as unknown[]) : undefined;
  const raws: (Uint8Array | undefined)[] = [];
  if (inputs) {
    doc['inputs'] = inputs.map((t, i) => {
      const bin = binaries[i];
      raws.push(bin);
      if (bin === undefined || !isRecord(t)) return t;
      const where = `inputs[${i}]`;
      try {
        const datatype = datatypeOf(t['datatype'], where);
        const shape = Array.isArray(t['shape']) ? (t['shape'] as number[]) : [];
        const count = shape.reduce((a, b) => a * b, 1);
        // BYTES that are not UTF-8 still reach the model (as Latin-1 text); the identity model answers their bytes.
        const data: Element[] = datatype === 'BYTES' ? splitRawBytes(bin, count, where).map((b) => Buffer.from(b).toString('latin1')) : rawToData(bin, datatype, count, where);
        return { ...t, data };
      } catch (err) {
        if (err instanceof WireError) throw badRequest(err.message);
        throw err;
      }
    });
  }
  const parsed = parseInferRequest(doc);
  const request: InferRequest = { ...parsed, inputs: parsed.inputs.map((t, i) => (raws[i] === undefined ? t : { ...t, raw: raws[i] })) };
  const params = isRecord(doc['parameters']) ? doc['parameters'] : {};
  const per = new Map<string, boolean>();
  const classify = new Map<string, number>();
  if (Array.isArray(doc['outputs'])) {
    for (const o of doc['outputs'] as unknown[]) {
      if (!isRecord(o) || typeof o['name'] !== 'string' || !isRecord(o['parameters'])) continue;
      const p = o['parameters'];
      if (typeof p['binary_data'] === 'boolean') per.set(o['name'], p['binary_data']);
      const k = p['classification'];
      if (k !== undefined) {
        if (typeof k !== 'number' || !Number.isInteger(k) || k < 1) throw badRequest(`outputs "${o['name']}": classification must be a positive integer`);
        classify.set(o['name'], k);
      }
    }
  }
  return { request, binary: { all: params['binary_data_output'] === true, per }, classify };
}

/**
 * Triton's classification extension: an output asked for with `classification: k` is answered as
 * BYTES [batch, k] (or [k] for a rank-1 output) of "<value>:<index>", the k highest values of each
 * row, highest first (ties: lower index first).
 */
export function classifyOutputs(outputs: readonly OutputTensor[], classify: ReadonlyMap<string, number>): OutputTensor[] {
  return outputs.map((o) => {
    const k = classify.get(o.name);
    if (k === undefined) return o;
    if (o.datatype === 'BYTES' || o.datatype === 'BOOL') throw badRequest(`output "${o.name}" is ${o.datatype}: classification needs numbers`);
    const values = o.data.map((v) => Number(v));
    const rows = o.shape.length >= 2 ? (o.shape[0] ?? 1) : 1;
    const width = rows === 0 ? 0 : values.length / rows;
    const data: string[] = [];
    for (let r = 0; r < rows; r++) {
      const idx = Array.from({ length: width }, (_, i) => i).sort((a, b) => (values[r * width + b] ?? 0) - (values[r * width + a] ?? 0) || a - b);
      for (const i of idx.slice(0, k)) data.push(`${o.data[r * width + i] ?? ''}:${i}`);
    }
    const count = Math.min(k, width);
    return { name: o.name, datatype: 'BYTES', shape: o.shape.length >= 2 ? [rows, count] : [count], data };
  });
}

/** An infer answer: JSON, or framed with the outputs asked for as binary data. A JSON output holding NaN or ±Infinity is a 400 naming it. */
export function encodeRestAnswer(head: Record<string, unknown>, outputs: readonly OutputTensor[], binary: BinaryWishes): { body: Buffer; headers: Record<string, string> } {
  const bins: Uint8Array[] = [];
  const list = outputs.map((o) => {
    const meta = { name: o.name, datatype: o.datatype, shape: o.shape };
    if (binary.per.get(o.name) ?? binary.all) {
      const bytes = o.raw ?? dataToRaw(o.data, o.datatype, `output "${o.name}"`);
      bins.push(bytes);
      return { ...meta, parameters: { binary_data_size: bytes.byteLength } };
    }
    let data: readonly Element[] = o.data;
    try {
      if (o.raw !== undefined) data = rawToData(o.raw, o.datatype, o.data.length, `output "${o.name}"`);
    } catch (err) {
      // BYTES that are not UTF-8: JSON cannot carry them either.
      if (err instanceof WireError) throw badRequest(`${err.message}; ask for it as binary data`);
      throw err;
    }
    const odd = data.find((v) => typeof v === 'number' && !Number.isFinite(v));
    if (odd !== undefined) throw badRequest(`output "${o.name}" holds ${String(odd)}, which JSON cannot carry; ask for it as binary data`);
    return { ...meta, data };
  });
  const text = stringifyExact({ ...head, outputs: list });
  if (bins.length === 0) return { body: Buffer.from(text), headers: { 'content-type': 'application/json' } };
  const { body, headerLength } = joinFrame(text, bins);
  return { body, headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(headerLength) } };
}

async function infer(ctx: ServerContext, req: IncomingMessage, res: ServerResponse, model: DemoModel, requestId: string | undefined): Promise<void> {
  const h = req.headers['inference-header-content-length'];
  const { request, binary, classify } = parseRestInfer(await readBody(req), typeof h === 'string' ? h : undefined);
  const work = model.prepare(request);
  const id = request.id ?? requestId ?? ctx.nextId();
  serveOnAccelerator(
    ctx,
    model,
    res,
    work,
    (outputs) => {
      if (res.headersSent || res.destroyed) return;
      try {
        const answer = encodeRestAnswer({ model_name: model.name, model_version: model.versions[0], id }, classifyOutputs(outputs, classify), binary);
        res.writeHead(200, { ...answer.headers, 'content-length': answer.body.length });
        res.end(answer.body);
      } catch (err) {
        sendError(res, err);
      }
    },
    (err) => sendError(res, err),
    requestRows(request),
  );
}
