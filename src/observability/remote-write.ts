/**
 * Prometheus remote write: every `interval`, the process's metrics registry is gathered, encoded as
 * a remote-write 1.0 request (a snappy-compressed `prometheus.WriteRequest`) and POSTed to the
 * configured URL. It is for edge boxes behind NAT, where nothing outside can scrape `/metrics`: the
 * box pushes instead.
 *
 *   tick (every interval) ── gather registry ── encode ── compress ──► pending (≤ maxPendingBatches)
 *   flush: oldest first ──► POST ── 2xx: next batch
 *                                ├─ 4xx but 429: the batch is dropped (it would fail again), logged once
 *                                └─ 5xx, 429, timeout, no connection: stop; retry after a backoff
 *
 * Batches are sent strictly oldest first, since receivers refuse a sample older than one they have
 * for the same series. A batch is encoded at its tick, so a retry sends the values and timestamp of
 * that moment: a receiver that was away gets the history, not the last value several times.
 * Logging follows state changes (first failure, recovery, first rejection), never every attempt,
 * and never the secret or the URL's user info.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { Counter, Gauge, type Registry } from '../core/prom.ts';
import { Agent, errors as undiciErrors, requestUrl } from '../core/undici.ts';
import type { RemoteWriteSnapshot } from '../core/snapshot.ts';
import { snappyCompress } from './remote-write/snappy.ts';
import { encodeWriteRequest, gather } from './remote-write/write-request.ts';
import { readSecret } from '../dispatch/link.ts';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
const USER_AGENT = `modelguard/${VERSION}`;
/** First retry delay (shortened to the interval when that is shorter), doubled per failure up to the cap. */
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 60_000;

/** Why a push failed (the `reason` label of modelguard_remote_write_failed_total). */
export type FailReason = 'rejected' | 'server-error' | 'throttled' | 'timeout' | 'network' | 'setup';

/** One tick's series, encoded and compressed: ready to POST as it is. */
interface Batch {
  readonly body: Buffer;
}

type Outcome = { ok: true } | { ok: false; reason: FailReason; detail: string; retryAfterMs?: number };

/** The URL as it may be logged: without user info, which can hold a password. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return '(invalid URL)';
  }
}

/** `${VAR}` in an external label value is read from the environment (unset: empty, and the label is left out). */
function expand(value: string, missing: (name: string) => void): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
    const v = process.env[name];
    if (v === undefined) missing(name);
    return v ?? '';
  });
}

function agentFor(s: RemoteWriteSnapshot): Agent {
  const t = s.tls;
  return new Agent({
    keepAliveTimeout: Math.max(4000, s.intervalMs * 2),
    connect:
      t === undefined
        ? {}
        : {
            ...(t.ca === undefined ? {} : { ca: readFileSync(t.ca) }),
            ...(t.cert === undefined ? {} : { cert: readFileSync(t.cert) }),
            ...(t.key === undefined ? {} : { key: readFileSync(t.key) }),
            ...(t.serverName === undefined ? {} : { servername: t.serverName }),
            rejectUnauthorized: !t.insecureSkipVerify,
          },
  });
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code ?? (err.cause as { code?: unknown } | undefined)?.code;
    return typeof code === 'string' ? `${code} ${err.message}` : err.message;
  }
  return String(err);
}

export interface RemoteWriterOptions {
  /** Where state changes are reported; default stderr. */
  readonly log?: (line: string) => void;
}

export class RemoteWriter {
  private settings: RemoteWriteSnapshot | undefined;
  private labels: Readonly<Record<string, string>> = {};
  /** The URL without user info, and that user info as a Basic authorization (as curl and Go send it). */
  private target = '';
  private basicAuth: string | undefined;
  private agent: Agent | undefined;
  private readonly pending: Batch[] = [];
  private tickTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private flushAgain = false;
  private collecting = false;
  /** Aborts the push in flight (close, or the endpoint replaced). */
  private abort = new AbortController();
  private failures = 0;
  private nextAttemptAt = 0;
  private failing = false;
  private rejectedLogged = false;
  private closed = false;
  private readonly log: (line: string) => void;
  private readonly sent: Counter;
  private readonly failed: Counter<'reason'>;
  private readonly dropped: Counter<'reason'>;
  private readonly lastSuccess: Gauge;

  constructor(
    private readonly registry: Registry,
    settings: RemoteWriteSnapshot | undefined,
    opts: RemoteWriterOptions = {},
  ) {
    this.log = opts.log ?? ((line) => console.error(`modelguard: remote write: ${line}`));
    this.sent = new Counter({ name: 'modelguard_remote_write_sent_total', help: 'Batches the remote-write endpoint accepted (one batch: every series once)', registry });
    this.failed = new Counter({
      name: 'modelguard_remote_write_failed_total',
      help: 'Remote-write pushes that failed, by reason (rejected, server-error, throttled, timeout, network, setup)',
      labelNames: ['reason'],
      registry,
    });
    this.dropped = new Counter({
      name: 'modelguard_remote_write_dropped_total',
      help: 'Batches given up: queue-full (the oldest unsent batch, beyond maxPendingBatches) or rejected (a 4xx answer)',
      labelNames: ['reason'],
      registry,
    });
    this.lastSuccess = new Gauge({ name: 'modelguard_remote_write_last_success_timestamp_seconds', help: 'Unix time of the last batch the endpoint accepted (0: none yet)', registry });
    const pending = this.pending;
    new Gauge({
      name: 'modelguard_remote_write_pending_batches', help: 'Batches waiting to be sent (more than one: the endpoint is failing)', registry,
      collect() { this.set(pending.length); },
    });
    this.configure(settings);
  }

  /** Applies new settings (a reload); unchanged settings change nothing. Unsent batches are kept for the new endpoint. */
  configure(next: RemoteWriteSnapshot | undefined): void {
    if (this.closed || JSON.stringify(next) === JSON.stringify(this.settings)) return;
    const prev = this.settings;
    this.settings = next;
    this.resetLink();
    if (next === undefined) {
      this.pending.length = 0;
      this.stopTimers();
      if (prev !== undefined) this.log(`off (was ${redactUrl(prev.url)})`);
      return;
    }
    const u = new URL(next.url);
    this.basicAuth = u.username === '' && u.password === '' ? undefined : `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;
    this.target = redactUrl(next.url);
    const labels: Record<string, string> = { job: 'modelguard', instance: hostname() };
    for (const [k, v] of Object.entries(next.externalLabels)) {
      labels[k] = expand(v, (name) => this.log(`external label ${k}: environment variable ${name} is not set (read as "")`));
      if (labels[k] === '') delete labels[k];
    }
    this.labels = labels;
    // A new endpoint or credentials get a prompt first try and a fresh log line.
    this.failures = 0;
    this.nextAttemptAt = 0;
    this.failing = false;
    this.rejectedLogged = false;
    if (prev?.intervalMs !== next.intervalMs) {
      if (this.tickTimer) clearInterval(this.tickTimer);
      this.tickTimer = setInterval(() => void this.tick(), next.intervalMs);
      this.tickTimer.unref();
    }
    this.log(`pushing to ${redactUrl(next.url)} every ${next.intervalMs / 1000}s`);
  }

  /** One interval's work: gather and queue a batch, then send what is queued unless backing off. */
  async tick(): Promise<void> {
    if (this.closed || this.settings === undefined || this.collecting) return;
    this.collecting = true;
    try {
      const series = await gather(this.registry, this.labels);
      const body = snappyCompress(encodeWriteRequest(series, Date.now()));
      if (this.settings === undefined || this.closed) return; // switched off while gathering
      const max = this.settings.maxPendingBatches;
      if (this.pending.length >= max) {
        const n = this.pending.length - max + 1;
        this.pending.splice(0, n);
        this.dropped.inc({ reason: 'queue-full' }, n);
      }
      this.pending.push({ body });
    } catch (err) {
      // A collector that throws must not stop the pushes (nor, from a timer, the process).
      this.log(`could not gather metrics: ${errorText(err)}`);
      return;
    } finally {
      this.collecting = false;
    }
    if (performance.now() >= this.nextAttemptAt) await this.flush();
  }

  /** Sends queued batches oldest first until the queue is empty or a push fails. */
  flush(): Promise<void> {
    if (this.flushing) {
      // Asked while draining (a new batch, or new settings that cut the drain short): drain again after.
      this.flushAgain = true;
      return this.flushing;
    }
    this.flushing = (async () => {
      do {
        this.flushAgain = false;
        await this.drain();
      } while (this.flushAgain && !this.closed && performance.now() >= this.nextAttemptAt);
    })().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stopTimers();
    this.abort.abort();
    await this.flushing;
    this.pending.length = 0;
    const agent = this.agent;
    this.agent = undefined;
    await agent?.destroy();
  }

  private async drain(): Promise<void> {
    while (this.pending.length > 0 && !this.closed && this.settings !== undefined) {
      const settings = this.settings;
      const batch = this.pending[0]!;
      const outcome = await this.push(settings, batch);
      if (settings !== this.settings || this.closed) return; // reconfigured or closed meanwhile: start over
      if (outcome.ok) {
        this.pending.shift();
        this.sent.inc();
        this.lastSuccess.set(Date.now() / 1000);
        if (this.failing) this.log(`${redactUrl(settings.url)} accepts again after ${this.failures} failed attempt(s); ${this.pending.length} batch(es) left to send`);
        this.failing = false;
        this.failures = 0;
        this.nextAttemptAt = 0;
        continue;
      }
      this.failed.inc({ reason: outcome.reason });
      if (outcome.reason === 'rejected') {
        // The same batch would be refused again: drop it, so one bad batch does not stop the rest.
        this.pending.shift();
        this.dropped.inc({ reason: 'rejected' });
        if (!this.rejectedLogged) this.log(`${redactUrl(settings.url)} rejected a batch, which is dropped (not retried): ${outcome.detail}`);
        this.rejectedLogged = true;
        continue;
      }
      this.failures++;
      const backoff = Math.min(BACKOFF_MAX_MS, Math.min(BACKOFF_MIN_MS, settings.intervalMs) * 2 ** (this.failures - 1));
      const wait = Math.max(backoff, Math.min(outcome.retryAfterMs ?? 0, BACKOFF_MAX_MS));
      this.nextAttemptAt = performance.now() + wait;
      if (!this.failing) this.log(`push to ${redactUrl(settings.url)} failed (${outcome.reason}: ${outcome.detail}); retrying with backoff, keeping up to ${settings.maxPendingBatches} batches`);
      this.failing = true;
      if (this.retryTimer) clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => void this.flush(), wait);
      this.retryTimer.unref();
      return;
    }
  }

  private async push(s: RemoteWriteSnapshot, batch: Batch): Promise<Outcome> {
    const headers: Record<string, string> = {
      'content-type': 'application/x-protobuf',
      'content-encoding': 'snappy',
      'x-prometheus-remote-write-version': '0.1.0',
      'user-agent': USER_AGENT,
    };
    if (this.basicAuth !== undefined) headers['authorization'] = this.basicAuth;
    let agent: Agent;
    let secret: string | undefined;
    try {
      if (s.credentials !== undefined) {
        // Read at every push, so a rotated secret file is picked up without a reload.
        secret = readSecret(s.credentials);
        headers[s.credentials.header] = s.credentials.scheme === '' ? secret : `${s.credentials.scheme} ${secret}`;
      }
      agent = this.agent ??= agentFor(s);
    } catch (err) {
      return { ok: false, reason: 'setup', detail: errorText(err) };
    }
    const timeout = AbortSignal.timeout(s.timeoutMs);
    try {
      const res = await requestUrl(agent, this.target, {
        method: 'POST',
        headers,
        body: batch.body,
        signal: AbortSignal.any([this.abort.signal, timeout]),
      });
      if (res.statusCode >= 200 && res.statusCode < 300) {
        await res.body.dump();
        return { ok: true };
      }
      let text = (await res.body.text()).slice(0, 200).replace(/\s+/g, ' ').trim();
      // The answer is logged: a receiver that echoes request headers must not get the secret into the log.
      for (const hidden of [secret, this.basicAuth?.slice('Basic '.length)]) if (hidden !== undefined) text = text.replaceAll(hidden, '<secret>');
      const detail = `HTTP ${res.statusCode}${text === '' ? '' : ` ${text}`}`;
      if (res.statusCode === 429 || res.statusCode >= 500) {
        const after = Number(res.headers['retry-after']);
        return { ok: false, reason: res.statusCode === 429 ? 'throttled' : 'server-error', detail, ...(Number.isFinite(after) && after > 0 ? { retryAfterMs: after * 1000 } : {}) };
      }
      return { ok: false, reason: 'rejected', detail };
    } catch (err) {
      if (timeout.aborted) return { ok: false, reason: 'timeout', detail: `no answer within ${s.timeoutMs / 1000}s` };
      if (err instanceof undiciErrors.RequestAbortedError || this.abort.signal.aborted) return { ok: false, reason: 'network', detail: 'aborted' };
      return { ok: false, reason: 'network', detail: errorText(err) };
    }
  }

  /** A new endpoint, TLS or secret: abort the push in flight and build the connection pool anew. */
  private resetLink(): void {
    this.abort.abort();
    this.abort = new AbortController();
    const agent = this.agent;
    this.agent = undefined;
    agent?.destroy().catch(() => undefined);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private stopTimers(): void {
    if (this.tickTimer) clearInterval(this.tickTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.tickTimer = undefined;
    this.retryTimer = undefined;
  }
}
