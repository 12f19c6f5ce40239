/**
 * OpenTelemetry spans from request records, exported as OTLP/HTTP JSON in batches. Three spans per
 * traced request: `modelguard.request` (server), `modelguard.queue` (time waiting for a slot) and
 * `modelguard.backend` (client; the backend received its id as the parent in `traceparent`). Built
 * after the answer from what the record holds, so tracing adds no work to the data path itself.
 */
import { randomBytes } from 'node:crypto';
import { Agent, requestUrl } from '../core/undici.ts';
import type { RequestEvents, RequestRecord } from '../core/events.ts';
import type { GatewaySnapshot } from '../core/snapshot.ts';

const FLUSH_MS = 1000;
const MAX_BATCH = 512;
/** Spans kept while the collector is unreachable; beyond it the oldest are dropped and counted. */
const MAX_BUFFER = 8192;

type Attr = { key: string; value: { stringValue: string } | { intValue: string } };

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: Attr[];
  status: { code: number; message?: string };
}

function nanos(perfMs: number): string {
  return (BigInt(Math.round((performance.timeOrigin + perfMs) * 1000)) * 1000n).toString();
}

function str(key: string, v: string | undefined): Attr[] {
  return v === undefined ? [] : [{ key, value: { stringValue: v } }];
}

export function spansOf(r: RequestRecord, endPerf: number): OtlpSpan[] {
  const t = r.trace;
  if (!t) return [];
  const failed = r.outcome !== 'OK' && r.outcome !== 'CANCELLED';
  const status = failed ? { code: 2, message: r.outcome } : { code: 1 };
  const common = [...str('modelguard.app', r.app), ...str('modelguard.group', r.group), ...str('modelguard.model', r.model)];
  const spans: OtlpSpan[] = [
    {
      traceId: t.traceId,
      spanId: t.spanId,
      ...(t.parentSpanId ? { parentSpanId: t.parentSpanId } : {}),
      name: 'modelguard.request',
      kind: 2,
      startTimeUnixNano: nanos(r.startedAt),
      endTimeUnixNano: nanos(endPerf),
      attributes: [
        ...common,
        ...str('modelguard.outcome', r.outcome),
        ...str('modelguard.protocol', r.protocol),
        // OpenTelemetry's semantic conventions: the gRPC status code for gRPC calls.
        { key: r.protocol === 'grpc' ? 'rpc.grpc.status_code' : 'http.response.status_code', value: { intValue: String(r.status) } },
        ...str('modelguard.served_by', r.servedBy),
      ],
      status,
    },
  ];
  if (r.queuedAt !== undefined) {
    spans.push({
      traceId: t.traceId,
      spanId: randomBytes(8).toString('hex'),
      parentSpanId: t.spanId,
      name: 'modelguard.queue',
      kind: 1,
      startTimeUnixNano: nanos(r.queuedAt),
      endTimeUnixNano: nanos(r.dispatchedAt ?? endPerf),
      attributes: [...common, { key: 'modelguard.queue_ms', value: { intValue: String(Math.round(r.queueMs ?? 0)) } }],
      status: r.dispatchedAt === undefined && failed ? status : { code: 1 },
    });
  }
  if (r.dispatchedAt !== undefined) {
    spans.push({
      traceId: t.traceId,
      spanId: t.backendSpanId,
      parentSpanId: t.spanId,
      name: 'modelguard.backend',
      kind: 3,
      startTimeUnixNano: nanos(r.dispatchedAt),
      endTimeUnixNano: nanos(r.dispatchedAt + (r.backendMs ?? endPerf - r.dispatchedAt)),
      attributes: [...common, ...str('server.address', r.endpoint), ...str('modelguard.backend', r.backend)],
      status,
    });
  }
  return spans;
}

export class Tracer {
  private buffer: OtlpSpan[] = [];
  private readonly timer: NodeJS.Timeout;
  private readonly unsubscribe: () => void;
  private flushing: Promise<void> | undefined;
  /** Connections to the collector (made at the first export). */
  private agent: Agent | undefined;
  /** Spans the collector accepted, and spans dropped (collector down or buffer full). */
  exported = 0;
  dropped = 0;

  constructor(
    events: RequestEvents,
    private readonly config: () => GatewaySnapshot['tracing'],
  ) {
    this.unsubscribe = events.subscribe((r) => {
      if (!r.trace) return;
      this.buffer.push(...spansOf(r, r.endedAt ?? performance.now()));
      if (this.buffer.length > MAX_BUFFER) this.dropped += this.buffer.splice(0, this.buffer.length - MAX_BUFFER).length;
      if (this.buffer.length >= MAX_BATCH) void this.flush();
    });
    this.timer = setInterval(() => void this.flush(), FLUSH_MS);
    this.timer.unref();
  }

  /** Posts what is buffered; a failed post keeps the spans for the next try. */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    const cfg = this.config();
    if (!cfg || this.buffer.length === 0) return Promise.resolve();
    const batch = this.buffer.splice(0, MAX_BATCH);
    const body = JSON.stringify({
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: cfg.serviceName } }] },
          scopeSpans: [{ scope: { name: 'modelguard' }, spans: batch }],
        },
      ],
    });
    this.flushing = requestUrl((this.agent ??= new Agent()), cfg.endpoint, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(5000) })
      .then(async (res) => {
        await res.body.dump();
        if (res.statusCode >= 200 && res.statusCode < 300) this.exported += batch.length;
        else this.buffer.unshift(...batch);
      })
      .catch(() => {
        this.buffer.unshift(...batch);
      })
      .finally(() => {
        this.flushing = undefined;
      });
    return this.flushing;
  }

  async close(): Promise<void> {
    this.unsubscribe();
    clearInterval(this.timer);
    await this.flush();
    await this.agent?.close();
  }
}
