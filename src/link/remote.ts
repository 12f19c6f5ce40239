/**
 * A proxy's data plane: admitted calls go to its broker over the authenticated link (wire.ts) on
 * kept-alive connections. The broker answers as the backend did, or with `x-modelguard-error`,
 * which becomes the same MGError here so the proxy's adapter answers in the client's protocol.
 * The client's cancellation closes the link request, which removes queued work at the broker.
 *
 * Waiting happens at the broker, never here: the link opens a connection for every call in flight
 * (no pool queue inside the proxy's HTTP client), up to a bound per group of its group's queue
 * length plus LINK_SLACK (its calls that may be running on the broker's slots). Calls over the bound
 * could only be refused by the broker (their group's queue is full), so they are refused here the
 * same way: 429 MG_QUEUE_FULL with the broker's last Retry-After for the group. The time a call
 * spent here travels with it (`x-modelguard-waited-ms`), so the broker's deadline counts from the
 * proxy's receipt, as in one process.
 */
import { CancelledError } from '../core/cancel.ts';
import { Pool } from '../core/undici.ts';
import { httpCall, type Whole } from '../core/http-call.ts';
import { readBounded } from '../core/body.ts';
import { MGError, type ErrorCode, ERRORS } from '../core/errors.ts';
import type { RequestRecord } from '../core/events.ts';
import type { BackendReply, Identity, InferenceCall } from '../core/request.ts';
import type { AppOperation, Snapshot } from '../core/snapshot.ts';
import type { BrokerStatus } from '../broker/broker.ts';
import type { DataPlane } from '../broker/plane.ts';
import { H, READY_PATH, unpackHeaders } from './wire.ts';

/** Headers of the link's own HTTP/1.1 message, not of the backend's answer. */
const LINK_ONLY = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'date', 'content-length']);

/** Calls of a group beyond its queue length that may be in flight on the link (running on the broker's slots). */
export const LINK_SLACK = 256;
/** Connecting to the broker may take at most this long; then the call fails (MG_NO_BACKEND). */
const CONNECT_TIMEOUT_MS = 3000;

/** Answers up to this size are read whole (one write to the client); larger or unsized ones stream. */
const BUFFER_LIMIT = 4 * 1024 * 1024;
/** Answers up to BUFFER_LIMIT that say their length are read whole; longer or unsized ones (SSE) stream. */
const LINK_WHOLE: Whole = {
  limit: (_status, headers) => {
    const size = Number(headers['content-length']);
    return Number.isFinite(size) && size <= BUFFER_LIMIT ? BUFFER_LIMIT : undefined;
  },
  tooLarge: (limit) => new Error(`the broker's answer ran past its content-length (${limit} bytes at most)`),
};

/** PEM contents (not paths) for mutual TLS to the broker listener. */
export interface LinkClientTls {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  /** CA(s) that sign the broker's certificate; default the system CAs. */
  readonly ca?: string | Buffer;
  /** Name checked against the broker's certificate (and sent as SNI); default the URL host. */
  readonly servername?: string;
}

export interface RemoteBrokerOptions {
  /** Base URL of the broker listener, e.g. http://10.0.0.5:8010, or https:// with brokerTls */
  readonly url: string;
  /** This proxy's token (Gateway.spec.proxies[].tokens); optional when its certificate identifies it. */
  readonly token?: string;
  /** Client certificate for an https:// broker (Gateway.spec.brokerTls). */
  readonly tls?: LinkClientTls;
  /** Connections to the broker at most; default one per call in flight (bounded per group, see LINK_SLACK). */
  readonly connections?: number;
  /** Readiness probe interval, ms. */
  readonly probeIntervalMs?: number;
}

function isCode(v: string | undefined): v is ErrorCode {
  return v !== undefined && Object.hasOwn(ERRORS, v);
}

export class RemoteBroker implements DataPlane {
  /** The broker's exchange renames an alias's answer (pipeline/rename.ts) before it crosses the link. */
  readonly answersAsAsked = true;
  private snapshot: Snapshot;
  private pool: Pool;
  /** Pools replaced by useTls, finishing their calls. */
  private readonly retiring = new Set<Promise<void>>();
  private readonly auth: string | undefined;
  private reachable = false;
  private probeTimer: NodeJS.Timeout | undefined;
  private inflight = 0;
  private served = 0;
  private failures = 0;
  private latencyMs = 0;
  /** Calls in flight on the link per group, and the broker's last Retry-After for the group. */
  private readonly perGroup = new Map<string, { inflight: number; retryAfterMs: number }>();

  constructor(
    snapshot: Snapshot,
    private readonly opts: RemoteBrokerOptions,
  ) {
    this.snapshot = snapshot;
    this.auth = opts.token === undefined ? undefined : `Bearer ${opts.token}`;
    this.pool = this.newPool(opts.tls);
  }

  private newPool(tls: LinkClientTls | undefined): Pool {
    const connect = tls === undefined ? {} : { connect: { cert: tls.cert, key: tls.key, ...(tls.ca === undefined ? {} : { ca: tls.ca }), ...(tls.servername === undefined ? {} : { servername: tls.servername }) } };
    // connections: null opens one more whenever every kept one is busy: nothing queues inside undici.
    const tlsConnect = 'connect' in connect ? connect.connect : {};
    return new Pool(this.opts.url, {
      connections: this.opts.connections ?? null,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      headersTimeout: 0,
      bodyTimeout: 0,
      connect: { ...tlsConnect, timeout: CONNECT_TIMEOUT_MS },
    });
  }

  /**
   * A rotated client certificate: new connections present it; calls in flight finish on the old
   * connections, which then close.
   */
  useTls(tls: LinkClientTls): void {
    const old = this.pool;
    this.pool = this.newPool(tls);
    const done = old.close().catch(() => undefined);
    this.retiring.add(done);
    void done.then(() => this.retiring.delete(done));
  }

  get current(): Snapshot {
    return this.snapshot;
  }

  get url(): string {
    return this.opts.url;
  }

  start(): void {
    const probe = (): void => {
      void this.probe().then((ok) => {
        this.reachable = ok;
      });
    };
    probe();
    this.probeTimer = setInterval(probe, this.opts.probeIntervalMs ?? 2000);
    this.probeTimer.unref();
  }

  /** True when the broker answers its readiness path to this proxy's credential. */
  async probe(): Promise<boolean> {
    try {
      const headers: Record<string, string> = this.auth === undefined ? {} : { [H.proxyAuth]: this.auth };
      const res = await this.pool.request({ method: 'GET', path: READY_PATH, headers, signal: AbortSignal.timeout(1000) });
      await res.body.dump();
      return res.statusCode === 200;
    } catch {
      return false;
    }
  }

  apply(next: Snapshot): void {
    this.snapshot = next;
  }

  submit(call: InferenceCall, identity: Identity, record: RequestRecord): Promise<BackendReply> {
    return this.forward(call, identity, record, 'infer');
  }

  metadata(call: InferenceCall, record: RequestRecord): Promise<BackendReply> {
    return this.forward(call, { app: record.app, group: record.group ?? 'default' }, record, 'metadata');
  }

  private async forward(call: InferenceCall, identity: Identity, record: RequestRecord, kind: 'infer' | 'metadata'): Promise<BackendReply> {
    if (call.signal.aborted) throw new CancelledError();
    const headers: Record<string, string> = { ...call.headers };
    if (this.auth !== undefined) headers[H.proxyAuth] = this.auth;
    else delete headers[H.proxyAuth];
    if (identity.app !== undefined) headers[H.app] = identity.app;
    else headers[H.group] = identity.group;
    headers[H.model] = call.model;
    headers[H.api] = call.api;
    headers[H.op] = call.op;
    headers[H.permission] = permissionOf(call, kind);
    headers[H.protocol] = call.protocol;
    headers['x-request-id'] = call.id;
    if (record.source !== undefined) headers[H.source] = record.source;
    if (call.costHint !== undefined) headers[H.cost] = String(call.costHint);
    if (call.timeoutMs !== undefined) {
      const left = Math.ceil(call.timeoutMs - (performance.now() - call.receivedAt));
      if (left <= 0) throw new MGError('MG_QUEUE_TIMEOUT', 'deadline passed before the call reached the broker', { retryAfterMs: 100 });
      headers[H.timeout] = String(left);
    }
    const g = this.groupState(identity.group);
    const bound = (this.snapshot.groups[identity.group]?.queue.maxLength ?? 0) + LINK_SLACK;
    if (kind === 'infer' && g.inflight >= bound) {
      throw new MGError('MG_QUEUE_FULL', `queue of group "${identity.group}" is full (at the proxy: ${g.inflight} calls in flight to the broker)`, { retryAfterMs: g.retryAfterMs });
    }
    const t0 = performance.now();
    headers[H.waited] = String(Math.max(0, Math.round(t0 - call.receivedAt)));
    this.inflight++;
    g.inflight++;
    let counted = false;
    const finish = (ok: boolean): void => {
      if (counted) return;
      counted = true;
      this.inflight--;
      g.inflight--;
      if (ok) {
        this.served++;
        const ms = performance.now() - t0;
        this.latencyMs = this.latencyMs === 0 ? ms : this.latencyMs * 0.8 + ms * 0.2;
      } else this.failures++;
    };
    try {
      const res = await httpCall(this.pool, { method: call.method, path: call.path, headers, body: call.body ?? null, signal: call.signal }, LINK_WHOLE);
      const code = res.headers[H.error];
      if (typeof code === 'string') {
        const text = (await readBounded(res.body, { limit: 64 * 1024, over: 'truncate' }).catch(() => Buffer.alloc(0))).toString('utf8');
        finish(true);
        const err = remoteError(code, text, res.headers[H.retryAfterMs]);
        if (err.code === 'MG_QUEUE_FULL' && err.retryAfterMs !== undefined) g.retryAfterMs = err.retryAfterMs;
        throw err;
      }
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(res.headers)) {
        if (k.startsWith('x-modelguard-') || LINK_ONLY.has(k)) continue;
        out[k] = v;
      }
      Object.assign(out, unpackHeaders(headerText(res.headers[H.packed])));
      const endpoint = headerText(res.headers[H.endpoint]) ?? this.opts.url;
      const servedBy = headerText(res.headers[H.servedBy]) === 'cloud' ? 'cloud' : 'edge';
      record.endpoint = endpoint;
      if (Buffer.isBuffer(res.body)) {
        finish(true);
        return { status: res.status, headers: out, body: res.body, endpoint, servedBy };
      }
      res.body.once('close', () => finish(true));
      return { status: res.status, headers: out, body: res.body, endpoint, servedBy };
    } catch (err) {
      if (err instanceof MGError) throw err;
      finish(false);
      if (call.signal.aborted) throw new CancelledError();
      throw new MGError('MG_NO_BACKEND', `broker ${this.opts.url} unreachable: ${err instanceof Error ? err.message : String(err)}${this.hint(err)}`, {
        retryAfterMs: this.opts.probeIntervalMs ?? 2000,
        cause: err,
      });
    }
  }

  /** How many calls the link may carry at once: per group, its queue length plus LINK_SLACK. */
  private linkBound(): number {
    let n = 0;
    for (const g of Object.values(this.snapshot.groups)) n += g.queue.maxLength + LINK_SLACK;
    return n;
  }

  private groupState(group: string): { inflight: number; retryAfterMs: number } {
    let g = this.perGroup.get(group);
    if (!g) {
      g = { inflight: 0, retryAfterMs: 1000 };
      this.perGroup.set(group, g);
    }
    return g;
  }

  ready(): boolean {
    return this.reachable;
  }

  /** A broker listener with brokerTls closes plain connections in the TLS handshake: say so. */
  private hint(err: unknown): string {
    if (!this.opts.url.startsWith('http:')) return '';
    const code = (err as { code?: unknown } | null)?.code;
    return code === 'UND_ERR_SOCKET' || code === 'ECONNRESET'
      ? ' (if the broker listener has Gateway.spec.brokerTls, use an https:// broker URL with a client certificate)'
      : '';
  }

  status(): BrokerStatus {
    return {
      version: this.snapshot.version,
      hash: this.snapshot.hash,
      fairness: this.snapshot.gateway.fairness,
      groups: [],
      endpoints: [
        {
          backend: 'broker',
          url: this.opts.url,
          slots: this.opts.connections ?? this.linkBound(),
          inflight: this.inflight,
          healthy: this.reachable,
          served: this.served,
          failures: this.failures,
          latencyMs: this.latencyMs,
        },
      ],
    };
  }

  /** Offload is decided at the broker. */
  offloadStatus(): [] {
    return [];
  }

  async close(): Promise<void> {
    clearInterval(this.probeTimer);
    await Promise.all([this.pool.close(), ...this.retiring]);
  }
}

function headerText(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** The broker's decision, carried back: same code, message and Retry-After. */
function remoteError(code: string, body: string, retryMs: string | string[] | undefined): MGError {
  let message: string | undefined;
  try {
    const doc = JSON.parse(body) as { error?: unknown };
    if (typeof doc.error === 'string') message = doc.error;
    else if (typeof doc.error === 'object' && doc.error !== null && typeof (doc.error as { message?: unknown }).message === 'string') {
      message = (doc.error as { message: string }).message;
    }
  } catch {
    // keep the registry's message
  }
  const ms = Number(headerText(retryMs));
  const opts = Number.isFinite(ms) && ms > 0 ? { retryAfterMs: ms } : {};
  return isCode(code) ? new MGError(code, message, opts) : new MGError('MG_BACKEND_ERROR', `broker answered with unknown code ${code}`);
}

/** What the proxy granted this call as: admin paths need `admin`, metadata `metadata`. */
function permissionOf(call: InferenceCall, kind: 'infer' | 'metadata'): AppOperation {
  return call.permission ?? kind;
}
