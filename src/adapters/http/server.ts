/**
 * HTTP ingress: KServe v2 REST, OpenAI-compatible REST and plain pass-through, decoded into the
 * neutral InferenceCall, run through the pipeline, and answered in the API's own format.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { MGError } from '../../core/errors.ts';
import { stringifyExact } from '../../core/exact-json.ts';
import { json, readBody, requestId, writeError, writeReply } from '../../net/http.ts';
import { Exchange, type Named } from '../../pipeline/exchange.ts';
import type { Pipeline } from '../../pipeline/pipeline.ts';
import { decodeOpenAi } from './openai.ts';
import { binaryHeaderLength, clientTimeoutMs, credentials, forwardHeaders, parseJson } from './request.ts';
import { route, type Route } from './routes.ts';

/** Header naming the model whose server a server-wide Triton extension call goes to. */
export const TARGET_HEADER = 'x-modelguard-model';

const VERSION = '0.1.0';



/**
 * route() of recent request URLs, with the method each came with. Clients call the same few URLs,
 * and decoding and matching one costs more than a lookup (a few µs a request in the overhead
 * profile); keyed by the URL alone, no key is built per request. Bounded: emptied when full; a
 * refused URL is never kept.
 */
const recentRoutes = new Map<string, { readonly method: string; readonly route: Route }>();
const RECENT_ROUTES = 256;

function routeOf(method: string, url: string): Route {
  const known = recentRoutes.get(url);
  if (known !== undefined && known.method === method) return known.route;
  const r = route(method, url);
  if (recentRoutes.size >= RECENT_ROUTES) recentRoutes.clear();
  recentRoutes.set(url, { method, route: r });
  return r;
}

export function createHttpHandler(pipeline: Pipeline): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const tp = req.headers['traceparent'];
    const ex = new Exchange(pipeline, { id: requestId(req), protocol: 'http', source: req.socket.remoteAddress, trace: { parent: typeof tp === 'string' ? tp : undefined } });
    res.on('close', () => {
      if (!res.writableFinished) ex.hangUp();
      ex.end(res.statusCode);
    });
    answer(pipeline, ex, req, res).catch((err: unknown) => {
      const mg = ex.failure(err);
      if (mg === undefined) {
        if (!res.headersSent) res.destroy();
        return;
      }
      // A refusal before the route is known (an unknown /v1 path) still answers in the API's format.
      writeError(res, ex.record.api ?? (/^\/v1(\/|$|\?)/.test(req.url ?? '') ? 'openai' : undefined), mg, ex.id);
      // A body we did not read must not poison the keep-alive connection.
      if (!req.complete) req.resume();
    });
  };
}

/** Routes answered by ModelGuard itself, then calls: decoded for the exchange, the reply written as it came. */
async function answer(pipeline: Pipeline, ex: Exchange, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const method = req.method ?? 'GET';
  const r = routeOf(method, req.url ?? '/');
  const id = ex.id;
  if (r.kind === 'live') return json(res, 200, { live: true }, id);
  if (r.kind === 'ready') {
    const ready = pipeline.ready();
    return json(res, ready ? 200 : 503, { ready }, id);
  }
  if (r.kind === 'server-metadata') return json(res, 200, { name: 'modelguard', version: VERSION, extensions: ['binary_tensor_data'] }, id);

  // OpenAI routes answer every refusal, authentication's included, in OpenAI's error shape.
  if (r.kind === 'openai-models' || r.kind === 'openai-model' || r.kind === 'openai') ex.record.api = 'openai';
  const who = { credentials: credentials(req) };
  if (r.kind === 'openai-models') {
    const identity = await ex.authenticate(who);
    return json(res, 200, { object: 'list', data: pipeline.visibleModels(identity).map((m) => modelCard(m.name)) }, id);
  }
  if (r.kind === 'openai-model') {
    // 404 for a model that does not exist, 403 for one this app may not use: as every other route.
    ex.authorize(await ex.authenticate(who), r.id, 'metadata');
    return json(res, 200, modelCard(r.id), id);
  }
  const { reply } = await ex.serve(who, () => decode(pipeline, req, r));
  writeReply(res, reply, id, () => {
    ex.record.outcome = 'MG_BACKEND_ERROR';
    res.destroy();
  });
}

type CallRoute = Extract<Route, { kind: 'openai' | 'server-extension' | 'model' }>;

/** A call as the exchange needs it (at once, but for OpenAI, whose model is named inside the body). */
function decode(pipeline: Pipeline, req: IncomingMessage, r: CallRoute): Named | Promise<Named> {
  const method = req.method ?? 'GET';
  const timeoutMs = clientTimeoutMs(req);
  const body = method === 'GET' || method === 'HEAD' ? undefined : (limit: number): Promise<Buffer> => readBody(req, limit);
  if (r.kind === 'openai') return decodeOpenAiCall(pipeline, req, r.path, timeoutMs);
  if (r.kind === 'server-extension') {
    const target = req.headers[TARGET_HEADER];
    if (typeof target !== 'string' || target === '') {
      throw new MGError('MG_BAD_REQUEST', `${method} ${r.backendPath()} is server-wide: name the model whose server it goes to in the ${TARGET_HEADER} header`);
    }
    const path = r.backendPath();
    return { api: 'passthrough', op: r.op, permission: r.permission, model: target, body, kserveInfer: undefined, timeoutMs, costHint: undefined, target: (_m, b) => ({ method, path, headers: forwardHeaders(req), body: b }) };
  }
  const kserveInfer = body !== undefined && r.api === 'kserve-v2' && r.op === 'infer' ? { headerLength: binaryHeaderLength(req) } : undefined;
  return { api: r.api, op: r.op, permission: r.permission, model: r.model, body, kserveInfer, timeoutMs, costHint: undefined, target: (m, b) => ({ method, path: r.backendPath(m.backendModel), headers: forwardHeaders(req), body: b }) };
}

/** OpenAI names the model inside the body: read under the gateway's limit (the model's is checked next). */
async function decodeOpenAiCall(pipeline: Pipeline, req: IncomingMessage, path: string, timeoutMs: number | undefined): Promise<Named> {
  const method = req.method ?? 'POST';
  const body = await readBody(req, pipeline.snapshot.gateway.maxBodyBytes);
  const decoded = decodeOpenAi(parseJson(body, 'OpenAI request'), path);
  return {
    api: 'openai',
    op: 'infer',
    permission: 'infer',
    model: decoded.model,
    body,
    kserveInfer: undefined,
    timeoutMs,
    costHint: decoded.tokens,
    target: (model, b) => ({
      method,
      path,
      headers: forwardHeaders(req),
      body: model.backendModel === decoded.model ? b : Buffer.from(stringifyExact({ ...decoded.doc, model: model.backendModel })),
    }),
  };
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
