/**
 * What one remote-write push costs the box: CPU to gather the registry, encode the WriteRequest and
 * snappy-compress it, and the bytes it sends. Baseline in the same run: one scrape of the same
 * registry (`registry.metrics()`, what `GET /metrics` does), and the text gzip-compressed, which is
 * what a scrape over a compressing connection would carry. In process, no I/O: the push's network
 * time is the endpoint's and the link's, not ModelGuard's.
 *
 *   node --import tsx bench/remote-write.ts [--groups 8] [--models 4] [--repeats 200]
 *
 * The registry is a gateway's (src/observability/metrics.ts) fed with one request record per group,
 * app, model and protocol: every label combination the configuration allows has a series, the
 * worst case for a given configuration.
 */
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { Broker } from '../src/broker/broker.ts';
import { newRecord, RequestEvents } from '../src/core/events.ts';
import { Metrics } from '../src/observability/metrics.ts';
import { snappyCompress } from '../src/observability/remote-write/snappy.ts';
import { encodeWriteRequest, gather } from '../src/observability/remote-write/write-request.ts';
import { snapshotFor } from '../test/helpers/harness.ts';
import { fixed, median, say, table } from './lib/stats.ts';

const { values: args } = parseArgs({
  options: {
    groups: { type: 'string', default: '8' },
    models: { type: 'string', default: '4' },
    repeats: { type: 'string', default: '200' },
  },
});
const groups = Number(args.groups);
const models = Number(args.models);
const repeats = Number(args.repeats);

const modelNames = Array.from({ length: models }, (_, i) => `model-${i}`);
const groupNames = Array.from({ length: groups }, (_, i) => `group-${i}`);
const broker = new Broker(snapshotFor({ endpoints: [{ url: 'http://127.0.0.1:9', slots: 2 }, { url: 'http://127.0.0.1:10', slots: 2 }], models: modelNames, groups: groupNames.map((name) => ({ name })) }));
const events = new RequestEvents();
const metrics = new Metrics(broker, events);
let n = 0;
for (const group of groupNames) {
  for (const model of modelNames) {
    for (const protocol of ['http', 'grpc', 'mqtt'] as const) {
      for (const outcome of ['OK', 'MG_RATE_LIMITED'] as const) {
        const r = newRecord(`r${n++}`, protocol, performance.now() - 5);
        Object.assign(r, { group, app: `app-${group}`, model, outcome, status: outcome === 'OK' ? 200 : 429, queueMs: 1, backendMs: 3 });
        events.publish(r);
      }
    }
  }
}
const labels = { job: 'modelguard', instance: 'edge-box-1', node: 'edge-box-1' };

async function time(fn: () => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < 20; i++) await fn(); // warm-up
  const ms: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t = performance.now();
    await fn();
    ms.push(performance.now() - t);
  }
  return ms;
}

const series = await gather(metrics.registry, labels);
const proto = encodeWriteRequest(series, Date.now());
const body = snappyCompress(proto);
const text = await metrics.registry.metrics();
const push = await time(async () => snappyCompress(encodeWriteRequest(await gather(metrics.registry, labels), Date.now())));
const scrape = await time(() => metrics.registry.metrics());
const gatherOnly = await time(() => gather(metrics.registry, labels));

say(`remote write: ${groups} groups × ${models} models × 3 protocols → ${series.length} series; median of ${repeats} runs`);
say(
  table(
    ['', 'CPU ms (median)', 'bytes', 'vs scrape'],
    [
      ['scrape: registry.metrics() (baseline)', fixed(median(scrape), 2), `${text.length} text, ${gzipSync(text).length} gzip`, '1.00'],
      ['push: gather only', fixed(median(gatherOnly), 2), '', fixed(median(gatherOnly) / median(scrape), 2)],
      ['push: gather + encode + snappy', fixed(median(push), 2), `${proto.length} protobuf, ${body.length} snappy`, fixed(median(push) / median(scrape), 2)],
    ],
  ),
);
say(`snappy ratio ${fixed(proto.length / body.length, 1)}; at a 15 s interval the push uses ${fixed((median(push) / 15_000) * 100, 3)}% of a core and ${fixed((body.length * 8) / 15 / 1000, 1)} kbit/s`);
metrics.close();
await broker.close();
