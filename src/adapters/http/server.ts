/**
 * HTTP ingress: KServe v2 REST, OpenAI-compatible REST and plain pass-through, decoded into the
 * neutral InferenceCall, run through the pipeline, and answered in the API's own format.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { Cancel, type CancelSignal } from '../../core/cancel.ts';
import { isMGError, MGError, toMGError } from '../../core/errors.ts';
import { newRecord, type RequestRecord } from '../../core/events.ts';
import type { ApiKind, BackendReply, InferenceCall } from '../../core/request.ts';
import { CancelledError } from '../../broker/work.ts';
import type { Pipeline } from '../../pipeline/pipeline.ts';
import { writeError } from './encode.ts';
import { decodeOpenAi } from './openai.ts';
import { binaryHeaderLength, clientTimeoutMs, credentials, forwardHeaders, parseJson, readBody, requestId } from './request.ts';
import { validateKserveInfer } from '../../security/kserve-validate.ts';
import { route, type Route } from './routes.ts';
import { answersNameOther, renameKserve, renameModel, type KserveNameField } from './rename.ts';
import { stringifyExact } from '../../core/exact-json.ts';
import { backendTraceparent, startTrace } from '../../observability/trace-context.ts';

/** Header naming the model whose server a server-wide Triton extension call goes to. */
export const TARGET_HEADER = 'x-modelguard-model';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authenticate', 'proxy-connection']);
const VERSION = '0.1.0';

function json(res: ServerResponse, status: number, doc: unknown, id: string): void {
  const body = JSON.stringify(doc);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-request-id': id });
  res.end(body);
}

/**
 * Writes a backend's answer: its headers (minus hop-by-hop ones, through `shape` for a hop that must
 * encode them), the request id and where it was served; a Buffer in one write, a stream (SSE) chunk
 * by chunk as the backend produces it.
 */
export function writeReply(
  res: ServerResponse,
  reply: BackendReply,
  id: string,
  onError: (err: unknown) => void,
  shape: (headers: Record<string, string>) => Record<string, string> = (h) => h,
): void {
  const own: Record<string, string> = {};
  for (const [k, v] of Object.entries(reply.headers)) if (!HOP_BY_HOP.has(k)) own[k] = v;
  const headers = shape(own);
  headers['x-request-id'] = id;
  headers['x-modelguard-served-by'] = reply.servedBy;
  if (Buffer.isBuffer(reply.body)) {
    headers['content-length'] = String(reply.body.length);
    res.writeHead(reply.status, headers);
    res.end(reply.body);
    return;
  }
  res.writeHead(reply.status, headers);
  reply.body.on('error', onError);
  reply.body.pipe(res);
}

/**
 * route() of recent request lines. Clients call the same few URLs, and decoding and matching one
 * costs more than a lookup (a few µs a request in the overhead profile). Bounded: emptied when full;
 * a refused URL is never kept.
 */
const recentRoutes = new Map<string, Route>();
const RECENT_ROUTES = 256;

function routeOf(method: string, url: string): Route {
  const key = `${method} ${url}`;
  let r = recentRoutes.get(key);
  if (r === undefined) {
    r = route(method, url);
    if (recentRoutes.size >= RECENT_ROUTES) recentRoutes.clear();
    recentRoutes.set(key, r);
  }
  return r;
}

export function createHttpHandler(pipeline: Pipeline): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const started = performance.now();
    const id = requestId(req);
    const record = newRecord(id, 'http', started);
    record.source = req.socket.remoteAddress;
    const tracing = pipeline.snapshot.gateway.tracing;
    if (tracing) {
      const tp = req.headers['traceparent'];
      record.trace = startTrace(typeof tp === 'string' ? tp : undefined, tracing.sampleRate);
    }
    const ac = new Cancel();
    res.on('close', () => {
      if (!res.writableFinished) {
        ac.abort();
        if (record.outcome === 'OK') record.outcome = 'CANCELLED';
      }
      record.status = res.statusCode;
      pipeline.events.publish(record);
    });
    handle(pipeline, req, res, id, record, ac, started).catch((err: unknown) => {
      if (err instanceof CancelledError || ac.aborted) {
        record.outcome = 'CANCELLED';
        if (!res.headersSent) res.destroy();
        return;
      }
      const mg = toMGError(err);
      if (!isMGError(err)) console.error(`modelguard: request ${id} failed:`, err);
      record.outcome = mg.code;
      // A refusal before the route is known (an unknown /v1 path) still answers in the API's format.
      writeError(res, record.api ?? (/^\/v1(\/|$|\?)/.test(req.url ?? '') ? 'openai' : undefined), mg, id);
      // A body we did not read must not poison the keep-alive connection.
      if (!req.complete) req.resume();
    });
  };
}

async function handle(
  pipeline: Pipeline,
  req: IncomingMessage,
  res: ServerResponse,
  id: string,
  record: RequestRecord,
  signal: CancelSignal,
  started: number,
): Promise<void> {
  const method = req.method ?? 'GET';
  const r = routeOf(method, req.url ?? '/');
  if (r.kind === 'live') return json(res, 200, { live: true }, id);
  if (r.kind === 'ready') {
    const ready = pipeline.ready();
    return json(res, ready ? 200 : 503, { ready }, id);
  }
  if (r.kind === 'server-metadata') return json(res, 200, { name: 'modelguard', version: VERSION, extensions: ['binary_tensor_data'] }, id);

  // OpenAI routes answer every refusal, authentication's included, in OpenAI's error shape.
  if (r.kind === 'openai-models' || r.kind === 'openai-model' || r.kind === 'openai') record.api = 'openai';
  const identity = await pipeline.authenticate(credentials(req), record);
  if (r.kind === 'openai-models') {
    const data = pipeline.visibleModels(identity).map((m) => modelCard(m.name));
    return json(res, 200, { object: 'list', data }, id);
  }
  if (r.kind === 'openai-model') {
    // 404 for a model that does not exist, 403 for one this app may not use: as every other route.
    pipeline.authorize(identity, r.id, 'metadata', record);
    return json(res, 200, modelCard(r.id), id);
  }

  const timeoutMs = clientTimeoutMs(req);
  let api: ApiKind;
  let modelName: string;
  let path: string;
  let body: Buffer | undefined;
  let costHint: number | undefined;
  let askedModel: string | undefined;
  let kserveName: { field: KserveNameField; name: string } | undefined;
  const op = r.kind === 'model' || r.kind === 'server-extension' ? r.op : 'infer';
  const permission = r.kind === 'model' || r.kind === 'server-extension' ? r.permission : 'infer';

  if (r.kind === 'openai') {
    api = record.api = 'openai';
    body = await readBody(req, pipeline.snapshot.gateway.maxBodyBytes);
    const decoded = decodeOpenAi(parseJson(body, 'OpenAI request'), r.path);
    const model = pipeline.authorize(identity, decoded.model, 'infer', record);
    if (model.maxBodyBytes !== undefined && body.length > model.maxBodyBytes) {
      throw new MGError('MG_TOO_LARGE', `body is over model "${model.name}"'s limit of ${model.maxBodyBytes} bytes`);
    }
    if (model.backendModel !== decoded.model) body = Buffer.from(stringifyExact({ ...decoded.doc, model: model.backendModel }));
    // An alias, or a cloud model of another name (the offloader renames the request): answers say the name asked for.
    if (answersNameOther(model, decoded.model)) askedModel = decoded.model;
    modelName = model.name;
    path = r.path;
    costHint = decoded.tokens;
  } else if (r.kind === 'server-extension') {
    api = record.api = 'passthrough';
    const target = req.headers[TARGET_HEADER];
    if (typeof target !== 'string' || target === '') {
      throw new MGError('MG_BAD_REQUEST', `${method} ${r.backendPath()} is server-wide: name the model whose server it goes to in the ${TARGET_HEADER} header`);
    }
    const model = pipeline.authorize(identity, target, r.permission, record);
    modelName = model.name;
    path = r.backendPath();
    if (method !== 'GET' && method !== 'HEAD') body = await readBody(req, pipeline.maxBodyBytes(model));
  } else {
    api = record.api = r.api;
    const model = pipeline.authorize(identity, r.model, r.permission, record);
    modelName = model.name;
    path = r.backendPath(model.backendModel);
    if (api === 'kserve-v2' && answersNameOther(model, r.model)) kserveName = { field: op === 'infer' ? 'model_name' : 'name', name: r.model };
    if (method !== 'GET' && method !== 'HEAD') {
      body = await readBody(req, pipeline.maxBodyBytes(model));
      if (api === 'kserve-v2' && op === 'infer') validateKserveInfer(body, binaryHeaderLength(req));
    }
  }

  const call: InferenceCall = {
    id,
    protocol: 'http',
    api,
    op,
    model: modelName,
    method,
    path,
    headers: forwardHeaders(req, id, record.trace === undefined ? undefined : backendTraceparent(record.trace)),
    body,
    timeoutMs,
    signal,
    receivedAt: started,
    costHint,
    permission,
  };
  let reply = await pipeline.run(call, identity, record);
  record.servedBy = reply.servedBy;
  if (signal.aborted) {
    if (!Buffer.isBuffer(reply.body)) reply.body.destroy();
    throw new CancelledError();
  }
  if (kserveName !== undefined && method !== 'HEAD') reply = await renameKserve(reply, kserveName.field, kserveName.name);
  writeReply(res, askedModel === undefined ? reply : renameModel(reply, askedModel), id, () => {
    record.outcome = 'MG_BACKEND_ERROR';
    res.destroy();
  });
}

function modelCard(name: string): Record<string, unknown> {
  return { id: name, object: 'model', created: 0, owned_by: 'modelguard' };
}

export function createHttpServer(pipeline: Pipeline): http.Server {
  // A slow client (slowloris, a stalled body) gets 408 after requestReadTimeout instead of holding
  // a connection; the answer itself may take as long as the backend needs.
  const readMs = pipeline.snapshot.gateway.requestReadTimeoutMs;
  const server = http.createServer({ keepAliveTimeout: 65_000, requestTimeout: readMs, headersTimeout: readMs }, createHttpHandler(pipeline));
  return server;
}
