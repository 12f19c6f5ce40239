/** Errors in each HTTP API's own format, with the stable code in X-ModelGuard-Error. */
import type { ServerResponse } from 'node:http';
import type { MGError } from '../../core/errors.ts';
import type { ApiKind } from '../../core/request.ts';

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
