/** Errors in each HTTP API's own format, with the stable code in X-ModelGuard-Error. */
import type { ServerResponse } from 'node:http';
import type { MGError } from '../../core/errors.ts';
import type { ApiKind } from '../../core/request.ts';

export function errorBody(api: ApiKind | undefined, err: MGError): string {
  if (api === 'openai') {
    return JSON.stringify({ error: { message: err.message, type: 'modelguard_error', code: err.code } });
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
