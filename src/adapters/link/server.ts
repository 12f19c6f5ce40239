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
import { MGError, toMGError } from '../../core/errors.ts';
import { NOT_FORWARDED } from '../../core/headers.ts';
import type { Protocol } from '../../core/request.ts';
import { H, READY_PATH, packHeaders, parseApi, parseOp, parsePermission, parseProtocol } from '../../link/wire.ts';
import { brokerServerOptions, peerCertificateNames } from '../../link/tls.ts';
import { readBody, requestId, writeError, writeReply } from '../../net/http.ts';
import { Exchange, type Named } from '../../pipeline/exchange.ts';
import type { Pipeline } from '../../pipeline/pipeline.ts';

/** The most proxy-side time a broker believes (a bad clock or header cannot make work expire in bulk). */
const MAX_WAITED_MS = 60_000;

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? undefined : v;
}

/** Headers for the backend: the client's, as the proxy forwarded them, without the link's own. */
function backendHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined || NOT_FORWARDED.has(k) || k.startsWith('x-modelguard-')) continue;
    out[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

export function createLinkHandler(pipeline: Pipeline): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const certificateNames = peerCertificateNames(req.socket);
    if ((req.url ?? '').split('?')[0] === READY_PATH) return readiness(pipeline, req, res, certificateNames);
    // Time spent at the proxy counts against the group's maxWait, as it would in one process.
    const w = Number(header(req, H.waited));
    const waited = Number.isFinite(w) && w > 0 ? Math.min(w, MAX_WAITED_MS) : 0;
    const ex = new Exchange(pipeline, {
      id: requestId(req),
      protocol: parseProtocol(header(req, H.protocol)),
      source: header(req, H.source) ?? req.socket.remoteAddress,
      receivedAt: performance.now() - waited,
    });
    res.on('close', () => {
      if (!res.writableFinished) ex.hangUp();
      ex.end(res.statusCode);
    });
    const who = { proxy: { authorization: header(req, H.proxyAuth), app: header(req, H.app), group: header(req, H.group), certificateNames } };
    ex.serve(who, () => decode(pipeline, req, ex.record.protocol, waited))
      .then(({ reply }) => {
        // Headers HTTP/1.1 cannot carry (gRPC trailers) travel packed; the endpoint goes back to the proxy.
        const shape = (h: Record<string, string>): Record<string, string> => ({ ...packHeaders(h), [H.endpoint]: reply.endpoint });
        writeReply(res, reply, ex.id, () => {
          ex.record.outcome = 'MG_BACKEND_ERROR';
          res.destroy();
        }, shape);
      })
      .catch((err: unknown) => {
        const mg = ex.failure(err);
        if (mg === undefined) {
          if (!res.headersSent) res.destroy();
          return;
        }
        writeError(res, ex.record.api, mg, ex.id);
        if (!req.complete) req.resume();
      });
  };
}

/** The proxy's readiness probe of its broker: authenticated, never counted as a request. */
function readiness(pipeline: Pipeline, req: IncomingMessage, res: ServerResponse, certificateNames: readonly string[] | undefined): void {
  try {
    pipeline.proxyName(header(req, H.proxyAuth), certificateNames);
  } catch (err) {
    writeError(res, undefined, toMGError(err), requestId(req));
    return;
  }
  const ready = pipeline.ready();
  res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' });
  res.end(ready ? 'ready\n' : 'not ready\n');
}

/** A proxied call as the exchange needs it: what the proxy decoded, in the link's headers. */
function decode(pipeline: Pipeline, req: IncomingMessage, protocol: Protocol, waited: number): Named {
  const api = parseApi(header(req, H.api));
  const method = req.method ?? 'GET';
  const timeout = Number(header(req, H.timeout));
  const cost = Number(header(req, H.cost));
  return {
    api,
    op: parseOp(header(req, H.op)),
    permission: parsePermission(header(req, H.permission)),
    model: header(req, H.model) ?? '',
    ...(method === 'GET' || method === 'HEAD' ? {} : { body: (limit: number) => readBody(req, limit) }),
    // The proxy sends what was left of the client's timeout; from the proxy's receipt it is that plus `waited`.
    timeoutMs: Number.isFinite(timeout) && timeout > 0 ? timeout + waited : undefined,
    costHint: Number.isFinite(cost) && cost > 0 ? cost : undefined,
    check: (model) => {
      // A proxy does not know backends: a gRPC pass-through is checked against them here.
      if (protocol !== 'grpc' || api !== 'passthrough') return;
      const backend = pipeline.snapshot.backends[model.backend];
      if (backend?.protocol !== 'kserve-v2-grpc') {
        throw new MGError('MG_BAD_REQUEST', `gRPC pass-through needs a kserve-v2-grpc backend; model "${model.name}" is served by "${model.backend}" (${backend?.protocol ?? 'unknown'})`);
      }
    },
    target: (_model, body) => ({ method, path: req.url ?? '/', headers: backendHeaders(req), body }),
  };
}

/** The broker listener: plain HTTP, or HTTPS requiring a client certificate when `tls` is given (link/tls.ts). */
export function createLinkServer(pipeline: Pipeline, tls?: SecureContextOptions): http.Server {
  const readMs = pipeline.snapshot.gateway.requestReadTimeoutMs;
  const opts = { keepAliveTimeout: 65_000, requestTimeout: readMs, headersTimeout: readMs };
  if (tls === undefined) return http.createServer(opts, createLinkHandler(pipeline));
  return https.createServer({ ...opts, ...brokerServerOptions(tls) }, createLinkHandler(pipeline));
}
