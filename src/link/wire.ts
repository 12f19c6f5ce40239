/**
 * The proxy → broker hop. A proxy forwards the neutral InferenceCall as one HTTP/1.1 request on the
 * broker listener: the backend path and body as they are, the call's fields in `x-modelguard-*`
 * headers, and its own credential. The broker trusts the asserted app (and the client's address)
 * only after it has recognised that credential; a client can never set these headers itself,
 * because every adapter strips `x-modelguard-*` from what it forwards.
 */
import type { ApiKind, Operation, Protocol } from '../core/request.ts';
import type { AppOperation } from '../core/snapshot.ts';

export const H = {
  /** `Bearer <proxy token>` */
  proxyAuth: 'x-modelguard-proxy-authorization',
  app: 'x-modelguard-app',
  /** Group of unauthenticated traffic under `auth: none` (no app). */
  group: 'x-modelguard-group',
  model: 'x-modelguard-model',
  api: 'x-modelguard-api',
  op: 'x-modelguard-op',
  permission: 'x-modelguard-permission',
  protocol: 'x-modelguard-protocol',
  cost: 'x-modelguard-cost',
  /** Remaining client deadline in ms when the proxy sent the call. */
  timeout: 'x-modelguard-timeout-ms',
  /** Time the call had already spent at the proxy, ms: the broker's queue deadline counts from the proxy's receipt. */
  waited: 'x-modelguard-waited-ms',
  /** The client's address as the proxy saw it (for app source rules and the audit log). */
  source: 'x-modelguard-source',
  // answers
  error: 'x-modelguard-error',
  retryAfterMs: 'x-modelguard-retry-after-ms',
  endpoint: 'x-modelguard-endpoint',
  servedBy: 'x-modelguard-served-by',
  /** Reply headers whose names HTTP/1.1 cannot carry (gRPC trailers as `trailer:name`), base64 JSON. */
  packed: 'x-modelguard-packed-headers',
} as const;

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Splits reply headers into those HTTP/1.1 carries as they are and the rest, packed into one. */
export function packHeaders(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  let packed: Record<string, string> | undefined;
  for (const [k, v] of Object.entries(headers)) {
    if (TOKEN.test(k) && !/[\r\n]/.test(v)) out[k] = v;
    else (packed ??= {})[k] = v;
  }
  if (packed) out[H.packed] = Buffer.from(JSON.stringify(packed)).toString('base64');
  return out;
}

/** The packed headers of a reply, restored. */
export function unpackHeaders(value: string | undefined): Record<string, string> {
  if (value === undefined) return {};
  try {
    const doc = JSON.parse(Buffer.from(value, 'base64').toString('utf8')) as unknown;
    if (typeof doc !== 'object' || doc === null) return {};
    return Object.fromEntries(Object.entries(doc).filter((e): e is [string, string] => typeof e[1] === 'string'));
  } catch {
    return {};
  }
}

/** Readiness of the broker, for the proxies' probes (needs the proxy credential like any call). */
export const READY_PATH = '/_modelguard/ready';

const APIS: readonly ApiKind[] = ['kserve-v2', 'openai', 'passthrough'];
const OPS: readonly Operation[] = ['infer', 'metadata'];
const PERMISSIONS: readonly AppOperation[] = ['infer', 'metadata', 'admin'];
const PROTOCOLS: readonly Protocol[] = ['http', 'grpc', 'mqtt'];

function oneOf<T extends string>(values: readonly T[], v: string | undefined, fallback: T): T {
  return v !== undefined && (values as readonly string[]).includes(v) ? (v as T) : fallback;
}

export const parseApi = (v: string | undefined): ApiKind => oneOf(APIS, v, 'passthrough');
export const parseOp = (v: string | undefined): Operation => oneOf(OPS, v, 'infer');
export const parsePermission = (v: string | undefined): AppOperation => oneOf(PERMISSIONS, v, 'infer');
export const parseProtocol = (v: string | undefined): Protocol => oneOf(PROTOCOLS, v, 'http');
