/**
 * The metric names stay in step with their documentation and with the Grafana dashboard: every
 * metric is documented in docs/observability.md, the dashboard queries only metrics that exist, and
 * the Prometheus example is valid YAML that scrapes /metrics.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, describe, it } from 'node:test';
import { parse } from 'yaml';
import { Broker } from '../../src/broker/broker.ts';
import { RequestEvents } from '../../src/core/events.ts';
import { Metrics } from '../../src/observability/metrics.ts';
import { snapshotFor } from '../helpers/harness.ts';

const doc = (path: string): Promise<string> => readFile(new URL(`../../docs/${path}`, import.meta.url), 'utf8');

describe('metric documentation and dashboards', () => {
  const broker = new Broker(snapshotFor({ endpoints: [{ url: 'http://127.0.0.1:9', slots: 1 }], groups: [{ name: 'g' }] }));
  const metrics = new Metrics(broker, new RequestEvents());
  after(async () => {
    metrics.close();
    await broker.close();
  });
  const names = (): string[] => metrics.registry.registered().map((m) => m.name);

  it('documents every metric, with its labels, in docs/observability.md', async () => {
    const text = await doc('observability.md');
    for (const { name, labelNames } of metrics.registry.registered()) {
      const row = text.split('\n').find((l) => l.startsWith(`| \`${name}\` |`));
      assert.ok(row, `${name} has no row in docs/observability.md`);
      for (const label of labelNames) assert.ok(row.includes(`\`${label}\``), `${name}: label ${label} not in its row`);
    }
  });

  it('has a Grafana dashboard that queries only metrics that exist', async () => {
    const dashboard = JSON.parse(await doc('grafana/modelguard.json')) as { panels: { targets?: { expr: string }[] }[] };
    const known = new Set(names());
    const used = new Set<string>();
    for (const p of dashboard.panels) {
      for (const t of p.targets ?? []) for (const m of t.expr.matchAll(/\b(?:modelguard|broker)_[a-z_]+/g)) used.add(m[0].replace(/_(bucket|sum|count)$/, ''));
    }
    assert.ok(used.size >= 15, `the dashboard uses ${used.size} metrics`);
    assert.deepEqual([...used].filter((m) => !known.has(m)), []);
  });

  it('has a Prometheus example that scrapes the admin listener', async () => {
    const config = parse(await doc('grafana/prometheus.yml')) as { scrape_configs: { metrics_path: string; static_configs: { targets: string[] }[] }[] };
    const job = config.scrape_configs[0]!;
    assert.equal(job.metrics_path, '/metrics');
    assert.deepEqual(job.static_configs[0]!.targets, ['127.0.0.1:9460']);
  });
});
