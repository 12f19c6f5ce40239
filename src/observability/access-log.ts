/**
 * The access log: one JSON line per finished request, built from the request record and written in
 * batches by line-writer.ts.
 *
 *   {"level":"info","time":"2025-06-01T10:00:00.000Z","id":"q1w2e3-1f","app":"camera-line-1",
 *    "group":"gold","model":"iris","protocol":"http","api":"kserve-v2","outcome":"OK","status":200,
 *    "queueMs":0.41,"backendMs":3.2,"durationMs":4.1,"backend":"demo-model",
 *    "endpoint":"http://127.0.0.1:9001","servedBy":"edge"}
 *
 * Levels follow the outcome: `info` for answers (and requests the client cancelled), `warn` for
 * refusals the client can act on (4xx: credentials, grants, limits, full queues), `error` for
 * failures on the serving side (5xx: queue timeouts, no backend, backend errors). Sampling thins
 * `info` lines only, evenly (every 1/sampleRate-th), so every refusal and failure is written.
 *
 * Secrets: a line is built only from the allow-list in `accessLine`, never by copying the record,
 * and the record holds no headers, keys or bodies; so a field added to the record later cannot reach
 * the log. A test checks that no key of the allow-list looks like a credential.
 */
import { ERRORS } from '../core/errors.ts';
import type { RequestEvents, RequestRecord } from '../core/events.ts';
import type { AccessLogLevel, AccessLogSnapshot } from '../core/snapshot.ts';
import { LineWriter } from './line-writer.ts';

/** Severity order of the levels: a line is written when its level reaches the configured one. */
const SEVERITY: Readonly<Record<AccessLogLevel, number>> = { info: 0, warn: 1, error: 2 };

const round = (ms: number | undefined): number | null => (ms === undefined ? null : Math.round(ms * 1000) / 1000);

export function levelOf(outcome: RequestRecord['outcome']): AccessLogLevel {
  if (outcome === 'OK' || outcome === 'CANCELLED') return 'info';
  return ERRORS[outcome].http < 500 ? 'warn' : 'error';
}

let isoSecond = NaN;
let isoPrefix = '';
/** ISO 8601 of an epoch ms (UTC). The text up to the second is made once a second; Date is slow. */
export function isoTime(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== isoSecond) {
    isoSecond = second;
    isoPrefix = new Date(second * 1000).toISOString().slice(0, 20); // 2025-06-01T10:00:00.
  }
  return `${isoPrefix}${String(Math.floor(ms - second * 1000)).padStart(3, '0')}Z`;
}

/** The fields of one line, in the order they are written (after `level`). */
export function accessLine(r: RequestRecord, now: number): Record<string, string | number | null> {
  return {
    time: isoTime(r.time),
    id: r.id,
    app: r.app ?? null,
    group: r.group ?? null,
    model: r.model ?? null,
    protocol: r.protocol,
    api: r.api ?? null,
    outcome: r.outcome,
    status: r.status,
    queueMs: round(r.queueMs),
    backendMs: round(r.backendMs),
    durationMs: round(now - r.startedAt),
    backend: r.backend ?? null,
    endpoint: r.endpoint ?? null,
    servedBy: r.servedBy ?? null,
    offload: r.offload ?? null,
  };
}

/** One line of the log: `level` first, then the fields in order, and a line feed. */
export function formatLine(level: AccessLogLevel, fields: Readonly<Record<string, string | number | null>>): string {
  return `{"level":"${level}",${JSON.stringify(fields).slice(1)}\n`;
}

export interface AccessLogOptions {
  /** Where lines go instead of the configured destination (tests, embedding): one write per line, unbuffered. */
  readonly stream?: { write(line: string): unknown };
}

/** Follows the request events and writes the access log; `configure` applies a reloaded setting. */
export class AccessLog {
  private settings: AccessLogSnapshot | undefined;
  private writer: LineWriter | undefined;
  private unsubscribe: (() => void) | undefined;
  /** Sampling credit: an info line is written each time it reaches 1 (the first request's is). */
  private credit = 0;

  constructor(
    private readonly events: RequestEvents,
    settings: AccessLogSnapshot | undefined,
    private readonly opts: AccessLogOptions = {},
  ) {
    this.open(settings);
  }

  /** Applies new settings; the same settings keep the open destination. */
  async configure(next: AccessLogSnapshot | undefined): Promise<void> {
    const same = (a: AccessLogSnapshot | undefined, b: AccessLogSnapshot | undefined): boolean => JSON.stringify(a) === JSON.stringify(b);
    if (same(next, this.settings)) return;
    await this.close();
    this.open(next);
  }

  private open(settings: AccessLogSnapshot | undefined): void {
    this.settings = settings;
    // Off: nobody subscribes, and the data path publishes to one listener fewer.
    if (!settings?.enabled) return;
    this.credit = 1 - settings.sampleRate;
    const out = this.opts.stream ?? (this.writer = new LineWriter(settings.destination));
    const lowest = SEVERITY[settings.level];
    const rate = settings.sampleRate;
    this.unsubscribe = this.events.subscribe((r) => {
      const level = levelOf(r.outcome);
      if (SEVERITY[level] < lowest) return;
      const sampled = level === 'info' && rate < 1;
      if (sampled) {
        this.credit += rate;
        // The epsilon absorbs float rounding, so 1/rate is an exact period (0.1 → every 10th).
        if (this.credit < 1 - 1e-9) return;
        this.credit -= 1;
      }
      const line = accessLine(r, r.endedAt ?? performance.now());
      if (sampled) line['sampleRate'] = rate;
      out.write(formatLine(level, line));
    });
  }

  /** Stops following events and writes out what is buffered. */
  async close(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    const writer = this.writer;
    this.writer = undefined;
    await writer?.close();
  }
}
