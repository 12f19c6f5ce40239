/**
 * The broker listener (port 8010): calls forwarded by proxies (src/link/remote.ts). Each request
 * must carry a configured proxy's token, or come over mutual TLS with a proxy's certificate
 * (tls.ts); the app it asserts is then checked against this broker's own configuration (grants,
 * operations, limits), scheduled, and answered as the backend answered.
 * Errors carry `x-modelguard-error` so the proxy can answer its client in the client's protocol.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { SecureContextOptions } from 'node:tls';
import { Cancel } from '../core/cancel.ts';
import { isMGError, MGError, toMGError } from '../core/errors.ts';
import { newRecord } from '../core/events.ts';
import type { InferenceCall } from '../core/request.ts';
import { CancelledError } from '../broker/work.ts';
import type { Pipeline } from '../pipeline/pipeline.ts';
import { writeError } from '../adapters/http/encode.ts';
import { readBody, requestId } from '../adapters/http/request.ts';
import { writeReply } from '../adapters/http/server.ts';
import { H, READY_PATH, packHeaders, parseApi, parseOp, parsePermission, parseProtocol } from './wire.ts';
import { brokerServerOptions, peerCertificateNames } from './tls.ts';

/** The most proxy-side time a broker believes (a bad clock or header cannot make work expire in bulk). */
const MAX_WAITED_MS = 60_000;

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'host', 'content-length']);

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? undefined : v;
}

/** Headers for the backend: the client's, as the proxy forwarded them, without the link's own. */
function backendHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined || HOP_BY_HOP.has(k) || k.startsWith('x-modelguard-')) continue;
    out[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

export function createLinkHandler(pipeline: Pipeline): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const started = performance.now();
    const id = requestId(req);
    const record = newRecord(id, parseProtocol(header(req, H.protocol)), started);
    const ac = new Cancel();
    let answered = false;
    res.on('close', () => {
      if (!res.writableFinished) {
        ac.abort();
        if (record.outcome === 'OK') record.outcome = 'CANCELLED';
      }
      record.status = res.statusCode;
      if (answered) pipeline.events.publish(record);
    });
    const fail = (err: unknown): void => {
      if (err instanceof CancelledError || ac.aborted) {
        record.outcome = 'CANCELLED';
        if (!res.headersSent) res.destroy();
        return;
      }
      const mg = toMGError(err);
      if (!isMGError(err)) console.error(`modelguard: link request ${id} failed:`, err);
      record.outcome = mg.code;
      writeError(res, record.api, mg, id);
      if (!req.complete) req.resume();
    };
    try {
      if ((req.url ?? '').split('?')[0] === READY_PATH) {
        pipeline.proxyName(header(req, H.proxyAuth), peerCertificateNames(req.socket));
        const ready = pipeline.ready();
        res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' });
        res.end(ready ? 'ready\n' : 'not ready\n');
        return;
      }
      answered = true;
      const source = header(req, H.source);
      record.source = source ?? req.socket.remoteAddress;
      const identity = pipeline.authenticateProxied(header(req, H.proxyAuth), header(req, H.app), header(req, H.group), record, peerCertificateNames(req.socket));
      handle(pipeline, req, res, id, record, identity, ac, started).catch(fail);
    } catch (err) {
      fail(err);
    }
  };
}

async function handle(
  pipeline: Pipeline,
  req: IncomingMessage,
  res: ServerResponse,
  id: string,
  record: ReturnType<typeof newRecord>,
  identity: ReturnType<Pipeline['authenticateProxied']>,
  signal: Cancel,
  started: number,
): Promise<void> {
  const api = (record.api = parseApi(header(req, H.api)));
  const op = parseOp(header(req, H.op));
  const model = pipeline.authorize(identity, header(req, H.model) ?? '', parsePermission(header(req, H.permission)), record);
  // A proxy does not know backends: a gRPC pass-through is checked against them here.
  if (record.protocol === 'grpc' && api === 'passthrough') {
    const backend = pipeline.snapshot.backends[model.backend];
    if (backend?.protocol !== 'kserve-v2-grpc') {
      throw new MGError('MG_BAD_REQUEST', `gRPC pass-through needs a kserve-v2-grpc backend; model "${model.name}" is served by "${model.backend}" (${backend?.protocol ?? 'unknown'})`);
    }
  }
  const method = req.method ?? 'GET';
  const body = method === 'GET' || method === 'HEAD' ? undefined : await readBody(req, pipeline.maxBodyBytes(model));
  const timeout = Number(header(req, H.timeout));
  const cost = Number(header(req, H.cost));
  // Time spent at the proxy counts against the group's maxWait, as it would in one process.
  const w = Number(header(req, H.waited));
  const waited = Number.isFinite(w) && w > 0 ? Math.min(w, MAX_WAITED_MS) : 0;
  const call: InferenceCall = {
    id,
    protocol: record.protocol,
    api,
    op,
    model: model.name,
    method,
    path: req.url ?? '/',
    headers: backendHeaders(req),
    body,
    // The proxy sends what was left of the client's timeout; from the proxy's receipt it is that plus `waited`.
    timeoutMs: Number.isFinite(timeout) && timeout > 0 ? timeout + waited : undefined,
    signal,
    receivedAt: started - waited,
    costHint: Number.isFinite(cost) && cost > 0 ? cost : undefined,
  };
  const reply = await pipeline.run(call, identity, record);
  record.servedBy = reply.servedBy;
  if (signal.aborted) {
    if (!Buffer.isBuffer(reply.body)) reply.body.destroy();
    throw new CancelledError();
  }
  // Headers HTTP/1.1 cannot carry (gRPC trailers) travel packed; the endpoint goes back to the proxy.
  const shape = (h: Record<string, string>): Record<string, string> => ({ ...packHeaders(h), [H.endpoint]: reply.endpoint });
  writeReply(
    res,
    reply,
    id,
    () => {
      record.outcome = 'MG_BACKEND_ERROR';
      res.destroy();
    },
    shape,
  );
}

/** The broker listener: plain HTTP, or HTTPS requiring a client certificate when `tls` is given (link/tls.ts). */
export function createLinkServer(pipeline: Pipeline, tls?: SecureContextOptions): http.Server {
  const readMs = pipeline.snapshot.gateway.requestReadTimeoutMs;
  const opts = { keepAliveTimeout: 65_000, requestTimeout: readMs, headersTimeout: readMs };
  if (tls === undefined) return http.createServer(opts, createLinkHandler(pipeline));
  return https.createServer({ ...opts, ...brokerServerOptions(tls) }, createLinkHandler(pipeline));
}
