/**
 * The live view: what the dashboard, `modelguard top` and `GET /api/v1/live` show, built once a
 * second from the recent window (src/observability/window.ts) and the broker's status. Types only,
 * so the browser code can import them too. Rates and percentiles cover the last `windowSeconds`
 * complete seconds; `history` arrays hold one point per second, oldest first, at most
 * `historySeconds` long.
 */

export interface PercentilesView {
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly count: number;
}

export interface GroupView {
  readonly name: string;
  readonly priority: number;
  readonly weight: number;
  /** weight ÷ the weights of the live groups at this priority. */
  readonly configuredShare: number;
  /** Share of the accelerator (all groups) over the window, in `shareUnit`; null when idle. */
  readonly usedShare: number | null;
  readonly queued: number;
  readonly maxLength: number;
  readonly inflight: number;
  /** Answered with the backend's answer, per second. */
  readonly perSecond: number;
  /** Refused or failed (MG_* outcomes), per second. */
  readonly rejectedPerSecond: number;
  /** Dispatched since start. */
  readonly dispatched: number;
  /** Time spent queued, ms. */
  readonly wait: PercentilesView | null;
  readonly history: {
    readonly perSecond: readonly number[];
    readonly queued: readonly number[];
    /** null for a second in which the accelerator was idle. */
    readonly share: readonly (number | null)[];
  };
}

export interface EndpointView {
  readonly backend: string;
  readonly url: string;
  readonly slots: number;
  readonly inflight: number;
  readonly healthy: boolean;
  readonly served: number;
  readonly failures: number;
  /** Smoothed backend latency, ms. */
  readonly latencyMs: number;
  /** Requests in flight, sampled once a second. */
  readonly busy: readonly number[];
}

export interface AppView {
  readonly name: string;
  /** Configured group; empty for traffic that named no app. */
  readonly group: string;
  /** Since start. */
  readonly requests: number;
  readonly perSecond: number;
  /** MG_* outcomes since start, by code. */
  readonly rejections: Readonly<Record<string, number>>;
}

export interface ModelView {
  readonly name: string;
  readonly backend: string;
  readonly perSecond: number;
  /** End-to-end time in ModelGuard (receipt to answer), ms. */
  readonly latency: PercentilesView | null;
  /** Backend time (dispatch to full answer), ms. */
  readonly backendTime: PercentilesView | null;
  /** Batching (models with Model.spec.batching that sent a batch): recent batch size and added delay. */
  readonly batch?: BatchView;
}

export interface BatchView {
  readonly maxBatchSize: number;
  /** Rows per backend call, recent (about the last 10 calls). */
  readonly size: number;
  /** Delay batching added per call, ms, recent. */
  readonly delayMs: number;
  readonly batches: number;
  readonly rows: number;
}

export interface ErrorView {
  /** Epoch ms when the answer was sent. */
  readonly at: number;
  readonly id: string;
  readonly app: string | null;
  readonly group: string | null;
  readonly model: string | null;
  readonly outcome: string;
  readonly status: number;
}

export interface LiveView {
  /** Epoch ms of this view. */
  readonly at: number;
  /** Epoch ms the gateway started. */
  readonly startedAt: number;
  readonly config: { readonly name: string; readonly version: number; readonly hash: string; readonly fairness: string; readonly auth: string };
  /** What `usedShare` measures: accelerator time (fairness compute) or dispatches (fairness requests). */
  readonly shareUnit: 'accelerator time' | 'requests';
  readonly windowSeconds: number;
  readonly historySeconds: number;
  readonly totals: { readonly perSecond: number; readonly requests: number; readonly rejected: number };
  readonly groups: readonly GroupView[];
  readonly endpoints: readonly EndpointView[];
  readonly apps: readonly AppView[];
  readonly models: readonly ModelView[];
  /** The most recent MG_* outcomes, newest first. */
  readonly errors: readonly ErrorView[];
  /** Per offload-enabled model: where it overflows and how the link is doing. */
  readonly offload: readonly OffloadView[];
  /** Admission refusals since start, per group, by reason (groups that refused nothing are left out). */
  readonly refusals?: readonly RefusalView[];
}

export interface RefusalView {
  readonly group: string;
  /** queue-full, predicted-wait, rate-drop (early) and queue-timeout (late): count since start. */
  readonly byReason: Readonly<Record<string, number>>;
}

export interface OffloadView {
  readonly model: string;
  /** The cloud Backend. */
  readonly backend: string;
  readonly when: string;
  /** closed (offloading), half-open (one trial), open (edge only). */
  readonly breaker: string;
  readonly breakerOpened: number;
  /** Predicted cloud time and measured edge service time, ms. */
  readonly cloudMs: number;
  readonly edgeServiceMs: number;
  /** Requests sent to the cloud and answered by it, since start. */
  readonly sent: number;
  readonly answered: number;
  /** What the daily budget still allows (undefined without one). */
  readonly leftToday: number | null;
}
