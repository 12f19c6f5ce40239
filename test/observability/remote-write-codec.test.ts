// The remote-write encoders against independent decoders: the snappy block encoder against
// snappyjs, the WriteRequest encoder against protobufjs with Prometheus's schema.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Counter, Histogram, Registry } from '../../src/core/prom.ts';
import { maxCompressedLength, snappyCompress } from '../../src/observability/remote-write/snappy.ts';
import { encodeWriteRequest, gather, type Series } from '../../src/observability/remote-write/write-request.ts';
import { decodeBody } from './remote-write-receiver.ts';

const snappyjs = createRequire(import.meta.url)('snappyjs') as { uncompress(data: Uint8Array): Uint8Array };

/** A deterministic mix of repetitive and random stretches (seeded, so a failure reproduces). */
function mixed(seed: number, parts: number): Buffer {
  let x = seed;
  const next = (): number => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const chunks: Buffer[] = [];
  for (let i = 0; i < parts; i++) {
    const len = Math.floor(next() * 400);
    chunks.push(next() < 0.5 ? Buffer.from(Array.from({ length: len }, () => Math.floor(next() * 256))) : Buffer.alloc(len, Math.floor(next() * 3)));
  }
  return Buffer.concat(chunks);
}

describe('snappy block encoder', () => {
  it('round-trips through snappyjs for empty, tiny, random, repetitive and multi-block input', () => {
    let text = '';
    for (let i = 0; i < 5000; i++) text += `modelguard_requests_total{group="g${i % 7}",app="app-${i % 13}",outcome="OK"} ${i}\n`;
    const inputs: Buffer[] = [Buffer.alloc(0), Buffer.from('x'), Buffer.from('abcd'.repeat(40)), randomBytes(70_000), Buffer.alloc(200_000, 9), Buffer.from(text)];
    for (let seed = 1; seed <= 200; seed++) inputs.push(mixed(seed, 1 + (seed % 40)));
    for (const input of inputs) {
      const z = snappyCompress(input);
      assert.ok(z.length <= maxCompressedLength(input.length), `bound exceeded for ${input.length} bytes`);
      assert.ok(Buffer.from(snappyjs.uncompress(z)).equals(input), `round trip of ${input.length} bytes`);
    }
  });

  it('compresses metric text several times over (copies, not only literals)', () => {
    let text = '';
    for (let i = 0; i < 2000; i++) text += `broker_processing_duration_seconds_bucket{group="g${i % 5}",le="${i % 16}"} ${i}\n`;
    const input = Buffer.from(text);
    assert.ok(input.length / snappyCompress(input).length > 4, 'ratio above 4');
  });
});

describe('WriteRequest encoder', () => {
  it('decodes with protobufjs to the same labels, values and timestamp', () => {
    const series: Series[] = [
      { labels: [['__name__', 'a_total'], ['group', 'gold'], ['node', 'edge-ü-東京']], value: 7 },
      { labels: [['__name__', 'b'], ['le', '+Inf']], value: Number.POSITIVE_INFINITY },
      { labels: [['__name__', 'c'], ['x', '']], value: -0.125 },
      { labels: [['__name__', 'd'], ['long', 'v'.repeat(300)]], value: 1e300 },
    ];
    const ts = 1_790_000_000_123; // beyond 32 bits
    const decoded = decodeBody(snappyCompress(encodeWriteRequest(series, ts)));
    assert.equal(decoded.length, series.length);
    decoded.forEach((d, i) => {
      assert.deepEqual(d.order, series[i]!.labels.map(([k]) => k));
      assert.deepEqual(d.labels, Object.fromEntries(series[i]!.labels));
      assert.deepEqual(d.samples, [{ value: series[i]!.value, timestamp: ts }]);
    });
  });

  it('gathers a registry as /metrics shows it: sorted labels, external labels that do not override, histogram series', async () => {
    const registry = new Registry();
    const c = new Counter({ name: 'x_total', help: 'h', labelNames: ['job', 'group'], registry });
    c.inc({ job: 'own', group: 'g' }, 3);
    const h = new Histogram({ name: 'lat_seconds', help: 'h', labelNames: ['group'], buckets: [0.1, 1], registry });
    h.observe(0.05, 'g');
    h.observe(0.5, 'g');
    h.observe(5, 'g');
    const series = await gather(registry, { job: 'modelguard', instance: 'box-1' });
    const by = (name: string, extra: Record<string, string> = {}): Series | undefined =>
      series.find((s) => s.labels.some(([k, v]) => k === '__name__' && v === name) && Object.entries(extra).every(([k, v]) => s.labels.some(([a, b]) => a === k && b === v)));
    const counter = by('x_total')!;
    assert.deepEqual(counter.labels, [['__name__', 'x_total'], ['group', 'g'], ['instance', 'box-1'], ['job', 'own']]);
    assert.equal(counter.value, 3);
    assert.deepEqual(['0.1', '1', '+Inf'].map((le) => by('lat_seconds_bucket', { le })?.value), [1, 2, 3]);
    assert.equal(by('lat_seconds_count')?.value, 3);
    assert.equal(by('lat_seconds_sum')?.value, 5.55);
    // Every series a scrape shows is pushed, under the same name.
    const text = await registry.metrics();
    const scraped = new Set(text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => l.split(/[{ ]/)[0]!));
    const pushed = new Set(series.map((s) => s.labels.find(([k]) => k === '__name__')![1]));
    assert.deepEqual([...pushed].sort(), [...scraped].sort());
  });
});
