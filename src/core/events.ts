/**
 * What the pipeline publishes, and observability subscribes to. Stages never call metrics or
 * loggers directly: they fill a RequestRecord, and the adapter publishes it once when the answer
 * is complete.
 */
import diagnostics from 'node:diagnostics_channel';
import type { OutcomeCode } from './errors.ts';
import type { ApiKind, Protocol } from './request.ts';

export interface TraceContext {
  readonly traceId: string;
  /** The client's span, when it sent a traceparent. */
  readonly parentSpanId: string | undefined;
  /** ModelGuard's span for the whole request. */
  readonly spanId: string;
  /** The backend call's span; the backend sees it as its parent in `traceparent`. */
  readonly backendSpanId: string;
}

/**
 * Why an offload-enabled request was served where it was: `cloud` (offloaded), `edge` (the edge was
 * predicted faster, or a hard example was confident), or the reason it could not go: the model is
 * private, the budget is spent, the breaker is open, no cloud replica is healthy, every cloud slot is
 * busy, or the cloud call failed and the edge served it.
 */
export type OffloadDecision = 'edge' | 'cloud' | 'denied-private' | 'budget' | 'breaker-open' | 'cloud-down' | 'cloud-busy' | 'cloud-failed';

/**
 * Why a request was refused before reaching the accelerator: the queue was at its length limit, the
 * predicted wait was past its deadline at arrival, a fall of the drain rate made queued work miss its
 * deadline (re-predicted), or it waited in the queue past its deadline (the prediction, if any, was wrong).
 */
export type RefusalReason = 'queue-full' | 'predicted-wait' | 'rate-drop' | 'queue-timeout';

/** A request's batch: its size, and the delay batching added (from taking the slot to sending). */
export interface BatchRecord {
  /** Rows (dim 0) in the backend call, all members together. */
  readonly rows: number;
  /** Requests (members) in it. */
  readonly requests: number;
  /** This request's own rows in it. */
  readonly ownRows: number;
  /** How long the batch waited in its slot for more rows, ms. */
  readonly delayMs: number;
  /** The batch's first member: batch-level metrics count it once, from this record. */
  readonly first: boolean;
}

export interface RequestRecord {
  readonly id: string;
  readonly protocol: Protocol;
  api: ApiKind | undefined;
  /** Configured model name, or undefined when the request named none we know (bounded labels). */
  model: string | undefined;
  app: string | undefined;
  group: string | undefined;
  outcome: OutcomeCode;
  /** Protocol status sent (HTTP status, gRPC code). */
  status: number;
  /** Time spent queued, ms (undefined when never queued). */
  queueMs: number | undefined;
  /** Time from dispatch to the backend's complete answer, ms. */
  backendMs: number | undefined;
  endpoint: string | undefined;
  backend: string | undefined;
  servedBy: 'edge' | 'cloud' | undefined;
  /** The offload decision for a model that has offload configured (why it went to the cloud or stayed). */
  offload: OffloadDecision | undefined;
  /** Predicted queue wait at admission, ms, when the drain rate was measured (admission.ts). */
  predictedWaitMs?: number | undefined;
  /** Set by the broker when it refused the request early (MG_QUEUE_FULL): which rule refused it. */
  refusal?: RefusalReason | undefined;
  /** The batch this request was sent in, for a model with batching (broker/batching). */
  batch?: BatchRecord | undefined;
  /** W3C trace context of this request when it is traced (ids in lower-case hex). */
  trace: TraceContext | undefined;
  /** performance.now() when the request entered its queue, and when it was dispatched. */
  queuedAt: number | undefined;
  dispatchedAt: number | undefined;
  /** performance.now() when the answer was complete (set just before the record is published). */
  endedAt: number | undefined;
  /** Client address (the socket's remote address), for the firewall and the audit log. */
  source: string | undefined;
  /** performance.now() at receipt. */
  readonly startedAt: number;
  /** Wall-clock ms since the epoch at receipt (for logs). */
  readonly time: number;
}

/** The admission rule that refused a request, if one did (a queue timeout is a refusal that came late). */
export function refusalReason(rec: Pick<RequestRecord, 'refusal' | 'outcome'>): RefusalReason | undefined {
  if (rec.refusal !== undefined) return rec.refusal;
  if (rec.outcome === 'MG_QUEUE_TIMEOUT') return 'queue-timeout';
  return rec.outcome === 'MG_QUEUE_FULL' ? 'queue-full' : undefined;
}

export function newRecord(id: string, protocol: Protocol, startedAt: number): RequestRecord {
  // Every field, the optional ones too: one object shape for every record (the broker sets
  // predictedWaitMs on nearly every request; added later, it would allocate a property store).
  return {
    id,
    protocol,
    api: undefined,
    model: undefined,
    app: undefined,
    group: undefined,
    outcome: 'OK',
    status: 0,
    queueMs: undefined,
    backendMs: undefined,
    endpoint: undefined,
    backend: undefined,
    servedBy: undefined,
    offload: undefined,
    predictedWaitMs: undefined,
    refusal: undefined,
    batch: undefined,
    trace: undefined,
    queuedAt: undefined,
    dispatchedAt: undefined,
    endedAt: undefined,
    source: undefined,
    startedAt,
    time: Date.now(),
  };
}

/** Global channel for outside tooling (diagnostics_channel 'modelguard:request'). */
export const requestChannel = diagnostics.channel('modelguard:request');

/** Per-instance bus: one gateway's metrics and logs see only its own requests. */
export class RequestEvents {
  private readonly listeners: ((r: RequestRecord) => void)[] = [];

  subscribe(fn: (r: RequestRecord) => void): () => void {
    this.listeners.push(fn);
    return () => {
      const i = this.listeners.indexOf(fn);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  publish(record: RequestRecord): void {
    for (const fn of this.listeners) fn(record);
    if (requestChannel.hasSubscribers) requestChannel.publish(record);
  }
}
