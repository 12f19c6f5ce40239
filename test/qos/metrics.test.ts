/**
 * QoS metrics and the dashboard panel, over a recording tc (no kernel needed): the counters the
 * kernel reports reach /metrics under documented names, and the panel reads them back.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileResources } from '../../src/config/index.ts';
import { Registry } from '../../src/core/prom.ts';
import type { ResourceInput } from '../../src/config/schema.ts';
import type { TcCommand, TcRunner } from '../../src/qos/contract.ts';
import { TrafficQos } from '../../src/qos/applier.ts';
import { registerQosMetrics } from '../../src/qos/metrics.ts';
import { parseQosMetrics, renderQos } from '../../src/dashboard/client/qos.ts';

const API = 'modelguard.io/v1alpha1';

class RecordingTc implements TcRunner {
  readonly batches: string[][] = [];
  root = '[{"kind":"noqueue","handle":"0:","root":true,"refcnt":2,"options":{}}]';
  bytes = 1000;
  async batch(commands: readonly TcCommand[]): Promise<void> {
    this.batches.push(commands.map((c) => c.join(' ')));
    if (commands.some((c) => c.includes('fq_codel'))) throw new Error('Error: Specified qdisc kind is unknown.');
    if (commands.some((c) => c[0] === 'qdisc' && c[1] === 'add' && c.includes('root'))) this.root = '[{"kind":"htb","handle":"4d47:","root":true}]';
  }
  async run(args: readonly string[]): Promise<string> {
    if (args.includes('qdisc')) return this.root;
    return [
      'class htb 4d47:10 parent 4d47:1 leaf 4d48: prio 0 rate 7125Kbit ceil 9500Kbit burst 1599b cburst 1598b',
      ` Sent ${this.bytes} bytes 10 pkt (dropped 0, overlimits 0 requeues 0)`,
      ' backlog 0b 0p requeues 0',
      '',
      'class htb 4d47:20 parent 4d47:1 leaf 4d49: prio 1 rate 2375Kbit ceil 9500Kbit burst 1599b cburst 1598b',
      ' Sent 5000000 bytes 4000 pkt (dropped 12, overlimits 300 requeues 0)',
      ' backlog 60000b 40p requeues 0',
    ].join('\n');
  }
}

function snapshot(qos: boolean): ReturnType<typeof compileResources>['snapshot'] {
  const r: ResourceInput[] = [
    { apiVersion: API, kind: 'Gateway', metadata: { name: 'default' }, spec: qos ? { trafficQoS: { interface: 'eth9', uplinkRate: '10Mbit' } } : {} },
    { apiVersion: API, kind: 'Backend', metadata: { name: 'b' }, spec: { endpoints: [{ url: 'http://10.0.0.9:8000' }] } },
  ];
  return compileResources(r, { version: 1 }).snapshot;
}

describe('traffic QoS metrics and dashboard panel', () => {
  it('exports the kernel counters per class, and the panel shows them with a rate', async () => {
    const tc = new RecordingTc();
    const qos = new TrafficQos({ ports: {}, tc, canAdmin: () => true, log: () => undefined, countersMaxAgeMs: 0 });
    const registry = new Registry();
    registerQosMetrics(registry, qos);
    assert.equal(parseQosMetrics(await registry.metrics()), undefined, 'no QoS series while it is not configured');

    await qos.apply(snapshot(true));
    assert.equal(qos.status().leaf, 'pfifo', 'falls back to pfifo when fq_codel is refused');
    const text = await registry.metrics();
    assert.match(text, /modelguard_qos_class_bytes_total\{interface="eth9",class="inference"\} 1000/);
    assert.match(text, /modelguard_qos_class_drops_total\{interface="eth9",class="default"\} 12/);
    assert.match(text, /modelguard_qos_class_backlog_bytes\{interface="eth9",class="default"\} 60000/);
    assert.match(text, /modelguard_qos_active\{interface="eth9"\} 1/);
    assert.match(text, /modelguard_qos_shaped_rate_bits\{interface="eth9"\} 9500000/);

    const first = parseQosMetrics(text);
    tc.bytes = 1000 + 250_000; // 2 Mbit in one second
    const second = parseQosMetrics(await registry.metrics());
    assert.ok(first && second);
    const html = renderQos(second, first, 1);
    assert.match(html, /<b>eth9<\/b> shaped to 9.50 Mbit\/s/);
    assert.match(html, /<tr data-qos-class="inference"><td>inference<\/td><td>2 Mbit\/s<\/td><td>251,000<\/td>/);
    assert.match(html, /<tr data-qos-class="default">.*<td>12<\/td><td>60,000<\/td><\/tr>/);

    await qos.stop();
    const off = parseQosMetrics(await registry.metrics());
    assert.equal(off?.active, false, 'configured but removed: active 0');
    assert.match(renderQos(off, undefined, 0), /configured but not installed/);
  });

  it("labels a priority level's class with its priority and groups; the panel shows both", async () => {
    const tc = new RecordingTc();
    tc.run = async (args: readonly string[]): Promise<string> =>
      args.includes('qdisc')
        ? tc.root
        : [
            'class htb 4d47:11 parent 4d47:1 leaf 4d4a: prio 0 rate 3799Kbit ceil 9500Kbit burst 1599b cburst 1598b',
            ' Sent 67705 bytes 328 pkt (dropped 0, overlimits 0 requeues 0)',
            ' backlog 0b 0p requeues 0',
            '',
            'class htb 4d47:12 parent 4d47:1 leaf 4d4b: prio 1 rate 1899Kbit ceil 9500Kbit burst 1599b cburst 1598b',
            ' Sent 7200336 bytes 4785 pkt (dropped 624, overlimits 2514 requeues 0)',
            ' backlog 66616b 36p requeues 0',
          ].join('\n');
    const qos = new TrafficQos({ ports: {}, tc, canAdmin: () => true, log: () => undefined, countersMaxAgeMs: 0 });
    const registry = new Registry();
    registerQosMetrics(registry, qos);
    const r: ResourceInput[] = [
      { apiVersion: API, kind: 'Gateway', metadata: { name: 'default' }, spec: { trafficQoS: { interface: 'eth9', uplinkRate: '10Mbit' } } },
      { apiVersion: API, kind: 'Backend', metadata: { name: 'b' }, spec: { endpoints: [{ url: 'http://10.0.0.9:8000' }] } },
      { apiVersion: API, kind: 'ServiceGroup', metadata: { name: 'safety' }, spec: { priority: 10 } },
      { apiVersion: API, kind: 'ServiceGroup', metadata: { name: 'bulk' }, spec: { priority: 0 } },
    ];
    await qos.apply(compileResources(r, { version: 1 }).snapshot);
    assert.equal(qos.status().levels.length, 2);
    const text = await registry.metrics();
    assert.match(text, /modelguard_qos_class_bytes_total\{interface="eth9",class="priority 10",groups="safety"\} 67705/);
    assert.match(text, /modelguard_qos_class_drops_total\{interface="eth9",class="priority 0",groups="bulk,default"\} 624/);
    const reading = parseQosMetrics(text);
    assert.ok(reading);
    const html = renderQos(reading, undefined, 0);
    assert.match(html, /<tr data-qos-class="priority 10"><td>priority 10 \(safety\)<\/td>/);
    assert.match(html, /<tr data-qos-class="priority 0"><td>priority 0 \(bulk, default\)<\/td>.*<td>624<\/td><td>66,616<\/td><\/tr>/);
    await qos.stop();
  });

  it('every QoS metric is documented in docs/observability.md and docs/traffic-qos.md', async () => {
    const registry = new Registry();
    registerQosMetrics(registry, new TrafficQos({ ports: {}, tc: new RecordingTc(), canAdmin: () => true, log: () => undefined }));
    const docs = ['observability.md', 'traffic-qos.md'].map((f) => readFileSync(join(import.meta.dirname, '..', '..', 'docs', f), 'utf8'));
    for (const m of registry.registered()) {
      for (const [i, d] of docs.entries()) assert.ok(d.includes(`\`${m.name}\``), `${m.name} is missing from ${i === 0 ? 'observability.md' : 'traffic-qos.md'}`);
    }
  });
});
