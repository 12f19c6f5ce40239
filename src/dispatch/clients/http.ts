/** HTTP/1.1 backend client on an undici Pool: keep-alive connections, streamed bodies. */
import { Pool } from '../../core/undici.ts';
import { httpCall } from '../../core/http-call.ts';
import type { BackendClient, BackendRequest, BackendResponse, ConnectionPhase } from '../client.ts';
import { ConnectionFailure, RequestRejected } from '../client.ts';
import { forwardable } from '../../core/headers.ts';
import type { LinkOptions } from '../link.ts';
import { boundConnector, type PortBlock } from './bound-connect.ts';

/** Error codes by where the connection failed (see ConnectionPhase). */
const PHASES: ReadonlyMap<string, ConnectionPhase> = new Map([
  ['ECONNREFUSED', 'connect'],
  ['ENOTFOUND', 'connect'],
  ['EAI_AGAIN', 'connect'],
  ['EHOSTUNREACH', 'connect'],
  ['ENETUNREACH', 'connect'],
  ['UND_ERR_CONNECT_TIMEOUT', 'connect'],
  ['ECONNRESET', 'reset'],
  ['EPIPE', 'reset'],
  ['UND_ERR_SOCKET', 'reset'],
  ['UND_ERR_CLOSED', 'local'],
  ['UND_ERR_DESTROYED', 'local'],
]);

/** undici's own refusals of a request for what it carries (headers, body length): the request's fault. */
const REQUEST_CODES = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', 'UND_ERR_NOT_SUPPORTED', 'ERR_INVALID_HTTP_TOKEN', 'ERR_INVALID_CHAR', 'ERR_INVALID_ARG_TYPE', 'ERR_INVALID_ARG_VALUE']);

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

  /** `ports`: connections leave from this block of local ports (traffic QoS per priority level). */
  constructor(readonly url: string, connections: number, link?: LinkOptions, ports?: PortBlock) {
    this.pool = new Pool(url, {
      connections,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      // Deadlines are ours (the caller's signal); undici's own timers stay out of the way.
      headersTimeout: 0,
      bodyTimeout: 0,
      ...(ports !== undefined ? { connect: boundConnector({ ports, tls: link?.connect }) } : link?.connect === undefined ? {} : { connect: link.connect }),
    });
    this.extraHeaders = link?.headers ?? {};
    this.problem = link?.problem;
  }

  request(req: BackendRequest): Promise<BackendResponse> {
    if (this.problem !== undefined) return Promise.reject(new ConnectionFailure(this.problem));
    // httpCall's own promise, its failures translated where they happen: no promise layer of ours per call.
    return httpCall(this.pool, { method: req.method, path: req.path, headers: this.withLink(forwardable(req.headers)), body: req.body ?? null, signal: req.signal }, req.whole, (err) =>
      this.failure(err, req),
    );
  }

  /** What a failed call is: where the connection failed, the request's own fault, or the error as it came. */
  private failure(err: unknown, req: BackendRequest): unknown {
    if (req.signal.aborted) return err;
    const code = errorCode(err);
    const phase = code === undefined ? undefined : PHASES.get(code);
    if (phase !== undefined) return new ConnectionFailure(`${this.url}: ${code}`, { cause: err, phase });
    if (code !== undefined && REQUEST_CODES.has(code)) {
      return new RequestRejected(`the request cannot be sent as it is: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    return err;
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
