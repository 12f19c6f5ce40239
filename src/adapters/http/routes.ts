/**
 * The HTTP surface: which path is which API, which methods it takes, and how a model name in it
 * is rewritten for the backend. Paths are decoded segment by segment and dot segments are refused,
 * so an encoded `..` cannot walk out of a model's prefix.
 */
import { MGError } from '../../core/errors.ts';
import { modelPathTail } from '../../core/kserve.ts';
import type { ApiKind, Operation } from '../../core/request.ts';
import type { AppOperation } from '../../core/snapshot.ts';
import { matchExtension } from './extensions.ts';

export type Route =
  | { kind: 'live' }
  | { kind: 'ready' }
  | { kind: 'server-metadata' }
  | { kind: 'openai-models' }
  /** `GET /v1/models/{id}`: one model's card, if this caller may see it. */
  | { kind: 'openai-model'; id: string }
  /** A server-wide Triton extension (`/v2/logging`, …): the model whose server it goes to is in X-ModelGuard-Model. */
  | { kind: 'server-extension'; op: Operation; permission: AppOperation; backendPath: () => string }
  /** A call to a model named in the path; `rest` is what follows the model (and version) segments. */
  | { kind: 'model'; api: ApiKind; op: Operation; permission: AppOperation; model: string; backendPath: (backendModel: string) => string }
  /** A call whose model is named in the JSON body (OpenAI). */
  | { kind: 'openai'; path: string };

const OPENAI_CALLS = new Set(['/v1/chat/completions', '/v1/completions', '/v1/embeddings']);

function methodNotAllowed(allowed: string): MGError {
  return new MGError('MG_BAD_REQUEST', `method not allowed here; use ${allowed}`, { httpStatus: 405, headers: { allow: allowed } });
}

function need(method: string, allowed: 'GET' | 'POST'): void {
  if (method === allowed || (allowed === 'GET' && method === 'HEAD')) return;
  throw methodNotAllowed(allowed);
}

function segments(pathname: string): string[] {
  const parts = pathname.split('/').slice(1);
  return parts.map((p) => {
    let d: string;
    try {
      d = decodeURIComponent(p);
    } catch {
      throw new MGError('MG_BAD_REQUEST', 'malformed percent-encoding in path');
    }
    if (d === '.' || d === '..' || d.includes('/') || d.includes('\0')) throw new MGError('MG_BAD_REQUEST', 'path segment not allowed');
    return d;
  });
}

/** Backend paths that change the server rather than use a model (KServe repository, Triton's admin extensions). */
const ADMIN_PREFIXES = [['v2', 'repository'], ['v2', 'logging'], ['v2', 'trace'], ['v2', 'systemsharedmemory'], ['v2', 'cudasharedmemory']];

/** What a pass-through call needs to be allowed: admin for the paths above, else infer. */
function passthroughPermission(rest: readonly string[]): AppOperation {
  // Compared on decoded, lower-cased segments: `/V2/%72epository` is the repository too.
  const lower = rest.map((s) => s.toLowerCase());
  return ADMIN_PREFIXES.some((p) => p.every((s, i) => lower[i] === s)) || lower.some((s) => s === 'load' || s === 'unload') ? 'admin' : 'infer';
}

/** `f` with its last answer kept: a route's backend path is asked for its model on every call. */
function lastOf(f: (m: string) => string): (m: string) => string {
  let lastModel: string | undefined;
  let lastPath = '';
  return (m) => {
    if (m !== lastModel) {
      lastPath = f(m);
      lastModel = m;
    }
    return lastPath;
  };
}

export function route(method: string, rawUrl: string): Route {
  const q = rawUrl.indexOf('?');
  const pathname = q < 0 ? rawUrl : rawUrl.slice(0, q);
  const query = q < 0 ? '' : rawUrl.slice(q);
  const seg = segments(pathname);
  const [a, b, c] = seg;

  if (a === 'v2') {
    if (seg.length === 1 || (seg.length === 2 && b === '')) return need(method, 'GET'), { kind: 'server-metadata' };
    if (b === 'health' && seg.length === 3) {
      need(method, 'GET');
      if (c === 'live') return { kind: 'live' };
      if (c === 'ready') return { kind: 'ready' };
    }
    // Triton's extensions first: `/v2/models/stats` is statistics, not the metadata of a model "stats".
    const ext = matchExtension(seg.slice(1), query);
    if (ext) {
      const allowed = ext.ext.methods;
      if (!allowed.includes(method === 'HEAD' ? 'GET' : (method as 'GET'))) throw methodNotAllowed(allowed.join(', '));
      const { op, permission } = ext.ext;
      if (ext.model === undefined) return { kind: 'server-extension', op, permission, backendPath: () => ext.backendPath('') };
      return { kind: 'model', api: 'passthrough', op, permission, model: ext.model, backendPath: ext.backendPath };
    }
    if (b === 'models' && c) {
      // /v2/models/{m}[/versions/{v}][/ready|/infer]
      const { version, tail } = modelPathTail(seg, 3);
      const prefix = (m: string): string => `/v2/models/${encodeURIComponent(m)}${version ? `/versions/${encodeURIComponent(version)}` : ''}`;
      // Routes are kept for the URLs clients repeat (server.ts): each keeps the path of its last backend model.
      if (tail.length === 0) {
        need(method, 'GET');
        return { kind: 'model', api: 'kserve-v2', op: 'metadata', permission: 'metadata', model: c, backendPath: lastOf((m) => prefix(m) + query) };
      }
      if (tail.length === 1 && tail[0] === 'ready') {
        need(method, 'GET');
        return { kind: 'model', api: 'kserve-v2', op: 'metadata', permission: 'metadata', model: c, backendPath: lastOf((m) => `${prefix(m)}/ready${query}`) };
      }
      if (tail.length === 1 && tail[0] === 'infer') {
        need(method, 'POST');
        return { kind: 'model', api: 'kserve-v2', op: 'infer', permission: 'infer', model: c, backendPath: lastOf((m) => `${prefix(m)}/infer${query}`) };
      }
    }
  }
  if (a === 'v1') {
    if (pathname === '/v1/models') return need(method, 'GET'), { kind: 'openai-models' };
    // Model ids may hold a slash (`org/model`): everything after /v1/models/ is the id.
    if (b === 'models' && c !== undefined && c !== '') return need(method, 'GET'), { kind: 'openai-model', id: seg.slice(2).join('/') };
    if (OPENAI_CALLS.has(pathname)) return need(method, 'POST'), { kind: 'openai', path: pathname + query };
  }
  if (a === 'models' && b) {
    // Pass-through: /models/{name}/rest → /rest on the model's backend, any method.
    const rest = '/' + pathname.split('/').slice(3).join('/');
    return { kind: 'model', api: 'passthrough', op: 'infer', permission: passthroughPermission(seg.slice(2)), model: b, backendPath: () => rest + query };
  }
  throw new MGError('MG_BAD_REQUEST', `no such endpoint: ${method} ${pathname}`, { httpStatus: 404 });
}
