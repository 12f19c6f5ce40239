/** Reading an HTTP request: identity headers, deadline, and a body bounded by the configured limit. */
import type { IncomingMessage } from 'node:http';
import { parseDuration } from '../../core/duration.ts';
import { MGError } from '../../core/errors.ts';
import { HTTP_LABELS, parseCredentials } from '../../security/credentials.ts';
import type { Credentials, KeyMemo } from '../../security/identity.ts';

/** Headers never forwarded to a backend: hop-by-hop, and anything that asserts identity or routing. */
const STRIP = new Set([
  'host',
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'content-length',
  'authorization',
  'x-api-key',
  'x-service-group',
  'x-request-timeout',
  'expect',
]);

/** One value of a header that must appear at most once; a repeated identity header is refused. */
function single(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  if (Array.isArray(v)) throw new MGError('MG_BAD_REQUEST', `header ${name} given more than once`);
  return v;
}

/** Headers that carry identity or routing: each may appear once, in any case. */
const IDENTITY_HEADERS = new Set(['authorization', 'x-api-key', 'x-service-group']);

export function credentials(req: IncomingMessage): Credentials {
  // Node keeps only the first of repeated Authorization headers and joins others; a proxy in
  // front may pick another one. Refuse any repetition, whatever its case.
  let seen = '';
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (!IDENTITY_HEADERS.has(name)) continue;
    if (seen.includes(`|${name}|`)) throw new MGError('MG_BAD_REQUEST', `header ${name} given more than once`);
    seen += `|${name}|`;
  }
  const creds = parseCredentials({ authorization: single(req, 'authorization'), apiKey: single(req, 'x-api-key'), group: single(req, 'x-service-group') }, HTTP_LABELS);
  if (creds.key === undefined) return creds;
  let memo = memos.get(req.socket);
  if (memo === undefined) memos.set(req.socket, (memo = {}));
  // A literal, not `{ ...creds, memo }`: the spread took about 1 µs here (V8's generic copy).
  return { key: creds.key, group: creds.group, memo };
}

/** Per keep-alive connection, the last key recognised on it (security/identity.ts KeyMemo). */
const memos = new WeakMap<object, KeyMemo>();

export function clientTimeoutMs(req: IncomingMessage): number | undefined {
  const v = single(req, 'x-request-timeout');
  if (v === undefined) return undefined;
  const ms = parseDuration(v);
  if (ms === undefined || ms <= 0) throw new MGError('MG_BAD_REQUEST', `X-Request-Timeout "${v}" is not a duration like 500ms or 2s`);
  return ms;
}

/**
 * The client's headers for the backend, names lower-cased and repeats joined. The exchange adds
 * `x-request-id` and, when ModelGuard traces the request, its `traceparent` (Exchange.serve).
 */
export function forwardHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (STRIP.has(name) || name.startsWith('x-modelguard-')) continue;
    const value = raw[i + 1] as string;
    out[name] = out[name] === undefined ? value : `${out[name]}, ${value}`;
  }
  return out;
}

/** KServe binary-data extension: the length of the JSON header before raw tensor bytes. */
export function binaryHeaderLength(req: IncomingMessage): number | undefined {
  const v = single(req, 'inference-header-content-length');
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v.trim())) throw new MGError('MG_BAD_REQUEST', 'Inference-Header-Content-Length must be a number of bytes');
  return n;
}

export function parseJson(body: Buffer, what: string): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new MGError('MG_BAD_REQUEST', `${what}: body is not valid JSON`);
  }
}

