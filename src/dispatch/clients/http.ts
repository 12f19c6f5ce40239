/** HTTP/1.1 backend client on an undici Pool: keep-alive connections, streamed bodies. */
import { Pool, errors as undiciErrors } from 'undici';
import type { BackendClient, BackendRequest, BackendResponse } from '../client.ts';
import { ConnectionFailure } from '../client.ts';
import type { LinkOptions } from '../link.ts';

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
]);

function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  const cause = (err as { cause?: unknown }).cause;
  return cause === undefined ? undefined : errorCode(cause);
}

export class HttpBackendClient implements BackendClient {
  private readonly pool: Pool;
  private readonly extraHeaders: Readonly<Record<string, string>>;
  private readonly problem: string | undefined;

  constructor(readonly url: string, connections: number, link?: LinkOptions) {
    this.pool = new Pool(url, {
      connections,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      // Deadlines are ours (the caller's signal); undici's own timers stay out of the way.
      headersTimeout: 0,
      bodyTimeout: 0,
      ...(link?.connect === undefined ? {} : { connect: link.connect }),
    });
    this.extraHeaders = link?.headers ?? {};
    this.problem = link?.problem;
  }

  async request(req: BackendRequest): Promise<BackendResponse> {
    if (this.problem !== undefined) throw new ConnectionFailure(this.problem);
    try {
      const res = await this.pool.request({
        method: req.method,
        path: req.path,
        headers: this.withLink(req.headers),
        body: req.body ?? null,
        signal: req.signal,
      });
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(res.headers)) {
        if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
      }
      return { status: res.statusCode, headers, body: res.body };
    } catch (err) {
      if (req.signal.aborted) throw err;
      const code = errorCode(err);
      if (code !== undefined && CONNECTION_CODES.has(code)) {
        throw new ConnectionFailure(`${this.url}: ${code}`, { cause: err });
      }
      if (err instanceof undiciErrors.UndiciError) throw new ConnectionFailure(`${this.url}: ${err.message}`, { cause: err });
      throw err;
    }
  }

  /** The link's credential header replaces whatever the caller had under that name. */
  private withLink(headers: Record<string, string>): Record<string, string> {
    for (const _ in this.extraHeaders) return { ...headers, ...this.extraHeaders };
    return headers;
  }

  async probe(path: string, timeoutMs: number): Promise<boolean> {
    if (this.problem !== undefined) return false;
    try {
      const res = await this.pool.request({ method: 'GET', path, headers: this.extraHeaders, signal: AbortSignal.timeout(timeoutMs) });
      await res.body.dump();
      return res.statusCode >= 200 && res.statusCode < 300;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
