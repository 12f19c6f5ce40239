/**
 * HTTP/1.1 plumbing shared by the listeners that speak it (the HTTP ingress and the broker link):
 * request ids, the bounded body read, answers written as the backend gave them, and errors in each
 * API's own format with the stable code in X-ModelGuard-Error.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBounded } from '../core/body.ts';
import { HOP_BY_HOP } from '../core/headers.ts';
import { MGError } from '../core/errors.ts';
import type { ApiKind, BackendReply } from '../core/request.ts';

/** OpenAI's error `type` for a status (its SDKs pick the error class from the status; `type` is for people). */
function openAiType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

export function errorBody(api: ApiKind | undefined, err: MGError): string {
  if (api === 'openai') {
    // OpenAI's shape: { error: { message, type, param, code } }; `code` is the stable MG_* code.
    return JSON.stringify({ error: { message: err.message, type: openAiType(err.httpStatus), param: null, code: err.code } });
  }
  if (api === 'kserve-v2') return JSON.stringify({ error: err.message, code: err.code });
  return JSON.stringify({ error: err.message, code: err.code });
}

export function writeError(res: ServerResponse, api: ApiKind | undefined, err: MGError, requestId: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = errorBody(api, err);
  const headers: Record<string, string | number> = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-modelguard-error': err.code,
    'x-request-id': requestId,
    ...err.headers,
  };
  const retry = err.spec.retryable ? err.retryAfterSeconds : undefined;
  if (retry !== undefined && err.retryAfterMs !== undefined) {
    headers['retry-after'] = retry;
    headers['x-modelguard-retry-after-ms'] = Math.ceil(err.retryAfterMs);
  }
  res.writeHead(err.httpStatus, headers);
  res.end(body);
}

export function json(res: ServerResponse, status: number, doc: unknown, id: string): void {
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
  const given = reply.headers;
  for (const k in given) if (!HOP_BY_HOP.has(k)) own[k] = given[k] as string;
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

/** Reads the whole body, refusing it (413) as soon as it passes `limit` bytes. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    return Promise.reject(new MGError('MG_TOO_LARGE', `body of ${declared} bytes is over the limit of ${limit}`));
  }
  return readBounded(req, { limit, over: bodyTooLarge, aborted: clientAborted });
}
const bodyTooLarge = (limit: number): MGError => new MGError('MG_TOO_LARGE', `body is over the limit of ${limit} bytes`);
const clientAborted = (): MGError => new MGError('MG_BAD_REQUEST', 'client aborted the request body');

const REQUEST_ID = /^[\w.:-]{1,128}$/;
let counter = 0;
const prefix = Math.random().toString(36).slice(2, 8);

export function requestId(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  if (typeof given === 'string' && REQUEST_ID.test(given)) return given;
  return `${prefix}-${(counter++).toString(36)}`;
}
