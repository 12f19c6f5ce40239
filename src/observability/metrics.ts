/**
 * Prometheus metrics. Counters and histograms follow the request events; gauges are read from the
 * broker at scrape time, so the data path does no metrics work of its own. Every label value comes
 * from configuration (group, app, model, backend, endpoint URL) or a fixed enum (outcome, protocol),
 * never from raw client input.
 *
 * The request path costs a few map lookups: request counters are summed at scrape time from a tally
 * per label combination (tally.ts), and the histograms take label values positionally
 * (core/prom.ts, which also writes the text format).
 */
import { Counter, Gauge, Histogram, Registry } from '../core/prom.ts';
import { refusalReason, type RequestRecord, type RequestEvents } from '../core/events.ts';
import type { DataPlane } from '../broker/plane.ts';
import { RequestTally } from './tally.ts';

/** Batch sizes in rows. */
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128];
/** Buckets that resolve milliseconds up to a minute. */
const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class Metrics {
  readonly registry = new Registry();
  private readonly unsubscribe: () => void;

  constructor(broker: DataPlane, events: RequestEvents) {
    const registry = this.registry;
    const tally = new RequestTally();
    // The original ModelGuard's four names, kept for dashboards that already use them.
    new Counter({
      name: 'broker_received_request_total', help: 'Requests received, by service group', labelNames: ['group'], registry,
      collect() { this.reset(); for (const [group, n] of tally.sum((t) => t.group, (t) => t.count)) this.inc({ group }, n); },
    });
    new Counter({
      name: 'broker_backend_handled_request_total', help: 'Requests answered by a backend, by group', labelNames: ['group'], registry,
      collect() { this.reset(); for (const [group, n] of tally.sum((t) => t.group, (t) => t.handled)) this.inc({ group }, n); },
    });
    const queueWait = new Histogram({ name: 'broker_processing_duration_seconds', help: 'Time requests waited in the queue', labelNames: ['group'], buckets: BUCKETS, registry });
    const backendTime = new Histogram({ name: 'broker_backend_processing_duration_seconds', help: 'Backend time per request (dispatch to full answer)', labelNames: ['group', 'model'], buckets: BUCKETS, registry });

    new Counter({
      name: 'modelguard_requests_total', help: 'Requests answered, by group, app, model, protocol and outcome code', labelNames: ['group', 'app', 'model', 'protocol', 'outcome'], registry,
      collect() { this.reset(); for (const t of tally.rows()) this.inc({ group: t.group, app: t.app, model: t.model, protocol: t.protocol, outcome: t.outcome }, t.count); },
    });
    new Counter({
      name: 'modelguard_rejections_total', help: 'Requests refused or failed, by group and reason code', labelNames: ['group', 'reason'], registry,
      collect() {
        this.reset();
        for (const t of tally.rows()) if (t.outcome !== 'OK') this.inc({ group: t.group, reason: t.outcome }, t.count);
      },
    });
    const latency = new Histogram({ name: 'modelguard_request_duration_seconds', help: 'End-to-end time in ModelGuard, by group, model and protocol', labelNames: ['group', 'model', 'protocol'], buckets: BUCKETS, registry });
    new Counter({
      name: 'modelguard_rate_limited_total', help: 'Requests refused by an app rate limit (MG_RATE_LIMITED), by app', labelNames: ['app'], registry,
      collect() {
        this.reset();
        for (const t of tally.rows()) if (t.outcome === 'MG_RATE_LIMITED') this.inc({ app: t.app }, t.count);
      },
    });
    // Predictive admission (broker/admission.ts): what it predicted for admitted work beside what happened, and every refusal by its rule.
    const predictedWait = new Histogram({ name: 'modelguard_admission_predicted_wait_seconds', help: 'Queue wait predicted at admission for admitted requests (measured drain rate; cold estimates predict nothing), by group', labelNames: ['group'], buckets: BUCKETS, registry });
    const actualWait = new Histogram({ name: 'modelguard_admission_actual_wait_seconds', help: 'Queue wait those same requests had (compare with modelguard_admission_predicted_wait_seconds), by group', labelNames: ['group'], buckets: BUCKETS, registry });
    const refusals = new Counter({
      name: 'modelguard_refusals_total', help: 'Requests refused by admission, by group and reason: queue-full (maxLength), predicted-wait (at arrival), rate-drop (queued work re-predicted), queue-timeout (waited past the deadline)', labelNames: ['group', 'reason'], registry,
    });
    const offloaded = new Counter({ name: 'modelguard_offloaded_total', help: 'Requests answered by an offload (cloud) backend, by group, model and backend', labelNames: ['group', 'model', 'backend'], registry });
    const offloadDecisions = new Counter({
      name: 'modelguard_offload_decisions_total', help: 'Offload decisions of finished requests of offload-enabled models, by group, model and decision (edge, cloud, denied-private, budget, breaker-open, cloud-down, cloud-busy, cloud-failed)', labelNames: ['group', 'model', 'decision'], registry,
    });
    // Batching (Model.spec.batching): one observation per backend call (from its first member's record), rows per member.
    const batchSize = new Histogram({ name: 'modelguard_batch_size', help: 'Rows (dim 0) per batched backend call, by model', labelNames: ['model'], buckets: BATCH_BUCKETS, registry });
    const batchDelay = new Histogram({ name: 'modelguard_batch_delay_seconds', help: 'Delay batching added to a batched backend call (its slot held waiting for more rows, at most maxDelay), by model', labelNames: ['model'], buckets: BUCKETS, registry });
    const batchedRows = new Counter({ name: 'modelguard_batched_rows_total', help: 'Rows served through batching models (rate() is rows per second), by group and model', labelNames: ['group', 'model'], registry });
    const offload = (): ReturnType<DataPlane['offloadStatus']> => broker.offloadStatus();
    const BREAKER = { closed: 0, 'half-open': 1, open: 2 } as const;
    new Gauge({
      name: 'modelguard_offload_breaker_state', help: 'Cloud link breaker per model: 0 closed (offloading), 1 half-open (one trial), 2 open (edge only)', labelNames: ['model', 'backend'], registry,
      collect() { this.reset(); for (const o of offload()) this.set({ model: o.model, backend: o.backend }, BREAKER[o.breaker]); },
    });
    new Counter({
      name: 'modelguard_offload_breaker_opened_total', help: 'Times the cloud link breaker opened, per model', labelNames: ['model', 'backend'], registry,
      collect() { this.reset(); for (const o of offload()) this.inc({ model: o.model, backend: o.backend }, o.breakerOpened); },
    });
    new Gauge({
      name: 'modelguard_offload_predicted_seconds', help: 'What saturated offload compares: predicted cloud time (round trip + cloud service) and measured edge service time, per model', labelNames: ['model', 'side'], registry,
      collect() {
        this.reset();
        for (const o of offload()) {
          this.set({ model: o.model, side: 'cloud' }, o.cloudMs / 1000);
          this.set({ model: o.model, side: 'edge' }, o.edgeServiceMs / 1000);
        }
      },
    });
    new Gauge({
      name: 'modelguard_offload_budget_remaining', help: 'Requests the daily offload budget still allows today, per model (models with requestsPerDay only)', labelNames: ['model'], registry,
      collect() { this.reset(); for (const o of offload()) if (o.leftToday !== undefined) this.set({ model: o.model }, o.leftToday); },
    });

    const status = (): ReturnType<DataPlane['status']> => broker.status();
    new Gauge({
      name: 'modelguard_queue_depth', help: 'Requests queued, by group', labelNames: ['group'], registry,
      collect() { for (const g of status().groups) this.set({ group: g.name }, g.queued); },
    });
    new Gauge({
      name: 'modelguard_group_inflight', help: 'Requests dispatched and not yet answered, by group', labelNames: ['group'], registry,
      collect() { for (const g of status().groups) this.set({ group: g.name }, g.inflight); },
    });
    new Counter({
      name: 'modelguard_dispatched_total', help: 'Requests dispatched to a backend, by group', labelNames: ['group'], registry,
      collect() { this.reset(); for (const g of status().groups) this.inc({ group: g.name }, g.dispatched); },
    });
    new Counter({
      name: 'modelguard_group_accelerator_seconds_total', help: 'Accelerator time consumed, by group (dispatch to answer)', labelNames: ['group'], registry,
      collect() { this.reset(); for (const g of status().groups) this.inc({ group: g.name }, g.acceleratorMs / 1000); },
    });
    new Gauge({
      name: 'modelguard_group_configured_share', help: 'Share of the accelerator a group is configured to get among its priority level (weight / level total)', labelNames: ['group'], registry,
      collect() { for (const g of status().groups) this.set({ group: g.name }, g.configuredShare); },
    });
    new Gauge({
      name: 'modelguard_endpoint_inflight', help: 'Requests in flight per endpoint', labelNames: ['backend', 'endpoint'], registry,
      collect() { for (const e of status().endpoints) this.set({ backend: e.backend, endpoint: e.url }, e.inflight); },
    });
    new Gauge({
      name: 'modelguard_endpoint_slots', help: 'Configured slots per endpoint', labelNames: ['backend', 'endpoint'], registry,
      collect() { for (const e of status().endpoints) this.set({ backend: e.backend, endpoint: e.url }, e.slots); },
    });
    new Gauge({
      name: 'modelguard_endpoint_healthy', help: '1 when the endpoint is healthy, 0 when ejected', labelNames: ['backend', 'endpoint'], registry,
      collect() { for (const e of status().endpoints) this.set({ backend: e.backend, endpoint: e.url }, e.healthy ? 1 : 0); },
    });
    new Gauge({
      name: 'modelguard_config_version', help: 'Version of the configuration snapshot in use', registry,
      collect() { this.set(status().version); },
    });
    new Gauge({
      name: 'modelguard_config_info', help: 'Always 1; labels: hash of the configuration in use and its fairness mode', labelNames: ['hash', 'fairness'], registry,
      collect() { const s = status(); this.reset(); this.set({ hash: s.hash.slice(0, 12), fairness: s.fairness }, 1); },
    });
    new Gauge({
      name: 'modelguard_queue_capacity', help: 'Configured queue length (queue.maxLength), by group', labelNames: ['group'], registry,
      collect() { for (const g of status().groups) this.set({ group: g.name }, g.maxLength); },
    });
    new Gauge({
      name: 'modelguard_group_drain_rate', help: 'Dispatches per second over the last 2 s, by group (the rate Retry-After is computed from)', labelNames: ['group'], registry,
      collect() { for (const g of status().groups) this.set({ group: g.name }, g.drainPerSecond); },
    });
    new Gauge({
      name: 'modelguard_endpoint_utilization', help: 'Busy slots ÷ slots per endpoint (above 1 with dispatchAhead)', labelNames: ['backend', 'endpoint'], registry,
      collect() { for (const e of status().endpoints) this.set({ backend: e.backend, endpoint: e.url }, e.slots > 0 ? e.inflight / e.slots : 0); },
    });
    new Counter({
      name: 'modelguard_endpoint_served_total', help: 'Backend calls answered, per endpoint', labelNames: ['backend', 'endpoint'], registry,
      collect() { this.reset(); for (const e of status().endpoints) this.inc({ backend: e.backend, endpoint: e.url }, e.served); },
    });
    new Counter({
      name: 'modelguard_endpoint_failures_total', help: 'Backend calls and probes that failed, per endpoint', labelNames: ['backend', 'endpoint'], registry,
      collect() { this.reset(); for (const e of status().endpoints) this.inc({ backend: e.backend, endpoint: e.url }, e.failures); },
    });
    new Gauge({
      name: 'modelguard_endpoint_latency_seconds', help: 'Smoothed backend latency per endpoint (what replica choice uses)', labelNames: ['backend', 'endpoint'], registry,
      collect() { for (const e of status().endpoints) this.set({ backend: e.backend, endpoint: e.url }, e.latencyMs / 1000); },
    });

    this.unsubscribe = events.subscribe((rec: RequestRecord) => {
      const group = rec.group ?? 'none';
      const model = rec.model ?? 'unknown';
      tally.add(group, rec.app ?? 'none', model, rec.protocol, rec.outcome, rec.backendMs !== undefined);
      if (rec.servedBy === 'cloud') offloaded.inc({ group, model, backend: rec.backend ?? 'unknown' });
      if (rec.offload !== undefined) offloadDecisions.inc({ group, model, decision: rec.offload });
      if (rec.queueMs !== undefined) queueWait.observe(rec.queueMs / 1000, group);
      if (rec.predictedWaitMs !== undefined && rec.refusal === undefined && rec.servedBy !== 'cloud') {
        predictedWait.observe(rec.predictedWaitMs / 1000, group);
        actualWait.observe((rec.queueMs ?? 0) / 1000, group);
      }
      const refusal = refusalReason(rec);
      if (refusal !== undefined) refusals.inc({ group, reason: refusal });
      if (rec.backendMs !== undefined) backendTime.observe(rec.backendMs / 1000, group, model);
      if (rec.batch !== undefined) {
        if (rec.batch.first) {
          batchSize.observe(rec.batch.rows, model);
          batchDelay.observe(rec.batch.delayMs / 1000, model);
        }
        if (rec.outcome === 'OK') batchedRows.inc({ group, model }, rec.batch.ownRows);
      }
      latency.observe(((rec.endedAt ?? performance.now()) - rec.startedAt) / 1000, group, model, rec.protocol);
    });
  }

  close(): void {
    this.unsubscribe();
  }
}
