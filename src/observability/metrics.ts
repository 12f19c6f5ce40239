/**
 * Prometheus metrics. Counters and histograms follow the request events; gauges are read from the
 * broker at scrape time, so the data path does no metrics work of its own. Every label value comes
 * from configuration (group, app, model, backend, endpoint URL) or a fixed enum (outcome, protocol),
 * never from raw client input.
 */
import client from 'prom-client';
import type { RequestRecord, RequestEvents } from '../core/events.ts';
import type { Broker } from '../broker/broker.ts';

/** Buckets that resolve milliseconds up to a minute. */
const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class Metrics {
  readonly registry = new client.Registry();
  private readonly unsubscribe: () => void;

  constructor(broker: Broker, events: RequestEvents) {
    const r = [this.registry];
    // The original ModelGuard's four names, kept for dashboards that already use them.
    const received = new client.Counter({ name: 'broker_received_request_total', help: 'Requests received, by service group', labelNames: ['group'], registers: r });
    const handled = new client.Counter({ name: 'broker_backend_handled_request_total', help: 'Requests answered by a backend, by group', labelNames: ['group'], registers: r });
    const queueWait = new client.Histogram({ name: 'broker_processing_duration_seconds', help: 'Time requests waited in the queue', labelNames: ['group'], buckets: BUCKETS, registers: r });
    const backendTime = new client.Histogram({ name: 'broker_backend_processing_duration_seconds', help: 'Backend time per request (dispatch to full answer)', labelNames: ['group', 'model'], buckets: BUCKETS, registers: r });

    const requests = new client.Counter({ name: 'modelguard_requests_total', help: 'Requests answered, by group, app, model, protocol and outcome code', labelNames: ['group', 'app', 'model', 'protocol', 'outcome'], registers: r });
    const rejections = new client.Counter({ name: 'modelguard_rejections_total', help: 'Requests refused or failed, by group and reason code', labelNames: ['group', 'reason'], registers: r });
    const latency = new client.Histogram({ name: 'modelguard_request_duration_seconds', help: 'End-to-end time in ModelGuard, by group, model and protocol', labelNames: ['group', 'model', 'protocol'], buckets: BUCKETS, registers: r });

    const status = (): ReturnType<Broker['status']> => broker.status();
    new client.Gauge({
      name: 'modelguard_queue_depth', help: 'Requests queued, by group', labelNames: ['group'], registers: r,
      collect() { for (const g of status().groups) this.set({ group: g.name }, g.queued); },
    });
    new client.Gauge({
      name: 'modelguard_group_inflight', help: 'Requests dispatched and not yet answered, by group', labelNames: ['group'], registers: r,
      collect() { for (const g of status().groups) this.set({ group: g.name }, g.inflight); },
    });
    new client.Counter({
      name: 'modelguard_dispatched_total', help: 'Requests dispatched to a backend, by group', labelNames: ['group'], registers: r,
      collect() { this.reset(); for (const g of status().groups) this.inc({ group: g.name }, g.dispatched); },
    });
    new client.Counter({
      name: 'modelguard_group_accelerator_seconds_total', help: 'Accelerator time consumed, by group (dispatch to answer)', labelNames: ['group'], registers: r,
      collect() { this.reset(); for (const g of status().groups) this.inc({ group: g.name }, g.acceleratorMs / 1000); },
    });
    new client.Gauge({
      name: 'modelguard_group_configured_share', help: 'Share of the accelerator a group is configured to get among its priority level (weight / level total)', labelNames: ['group'], registers: r,
      collect() { for (const g of status().groups) this.set({ group: g.name }, g.configuredShare); },
    });
    new client.Gauge({
      name: 'modelguard_endpoint_inflight', help: 'Requests in flight per endpoint', labelNames: ['backend', 'endpoint'], registers: r,
      collect() { for (const e of status().endpoints) this.set({ backend: e.backend, endpoint: e.url }, e.inflight); },
    });
    new client.Gauge({
      name: 'modelguard_endpoint_slots', help: 'Configured slots per endpoint', labelNames: ['backend', 'endpoint'], registers: r,
      collect() { for (const e of status().endpoints) this.set({ backend: e.backend, endpoint: e.url }, e.slots); },
    });
    new client.Gauge({
      name: 'modelguard_endpoint_healthy', help: '1 when the endpoint is healthy, 0 when ejected', labelNames: ['backend', 'endpoint'], registers: r,
      collect() { for (const e of status().endpoints) this.set({ backend: e.backend, endpoint: e.url }, e.healthy ? 1 : 0); },
    });
    new client.Gauge({
      name: 'modelguard_config_version', help: 'Version of the configuration snapshot in use', registers: r,
      collect() { this.set(status().version); },
    });

    this.unsubscribe = events.subscribe((rec: RequestRecord) => {
      const group = rec.group ?? 'none';
      const model = rec.model ?? 'unknown';
      received.inc({ group });
      requests.inc({ group, app: rec.app ?? 'none', model, protocol: rec.protocol, outcome: rec.outcome });
      if (rec.outcome !== 'OK') rejections.inc({ group, reason: rec.outcome });
      if (rec.queueMs !== undefined) queueWait.observe({ group }, rec.queueMs / 1000);
      if (rec.backendMs !== undefined) {
        handled.inc({ group });
        backendTime.observe({ group, model }, rec.backendMs / 1000);
      }
      latency.observe({ group, model, protocol: rec.protocol }, (performance.now() - rec.startedAt) / 1000);
    });
  }

  close(): void {
    this.unsubscribe();
  }
}
