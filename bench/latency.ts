/**
 * Added latency of the governed path: the same open-loop traffic at half the accelerator's
 * capacity, sent (a) straight to the accelerator and (b) through ModelGuard, in the same run.
 * The difference of the percentiles is what ModelGuard adds: HTTP parsing twice, admission,
 * scheduling, and the extra hop. For scale, (c) a plain Node reverse proxy (bench/lib/node-proxy.ts)
 * carries the same traffic: the part of the added latency that any extra Node hop costs here.
 *
 *   node --import tsx bench/latency.ts [--rate 200] [--seconds 10] [--rounds 2] [--slots 4]
 *        [--warmup 3] [--service-time 10ms] [--dispatch-ahead 0] [--connections 64] [--uniform] [--no-proxy]
 *
 * Processes: accelerator, ModelGuard and the load generator each run in their own process.
 */
import { parseArgs } from 'node:util';
import { parseDuration } from '../src/core/duration.ts';
import { waitReady } from './lib/admin.ts';
import { INFER_BODY, INFER_PATH, JSON_HEADERS, writeConfig } from './lib/config.ts';
import { LoadGenerator } from './lib/load.ts';
import type { OpenResult, Target } from './lib/load-protocol.ts';
import { cpuMs, runMain, startAccelerator, startModelGuard, startNodeProxy } from './lib/processes.ts';
import { fixed, machineLine, percentile, say, table } from './lib/stats.ts';

const TARGET_P50_MS = 1;
const TARGET_P99_MS = 3;

const { values: args } = parseArgs({
  options: {
    rate: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '2' },
    warmup: { type: 'string', default: '3' },
    slots: { type: 'string', default: '4' },
    'service-time': { type: 'string', default: '10ms' },
    'dispatch-ahead': { type: 'string', default: '0' },
    connections: { type: 'string', default: '64' },
    uniform: { type: 'boolean', default: false },
    'no-proxy': { type: 'boolean', default: false },
  },
});

interface PathResult {
  latencies: number[];
  /** CPU ms used by each process while this path was measured. */
  cpu: Record<string, number>;
  sent: number;
  errors: Record<string, number>;
  maxLateMs: number;
}

function merge(into: PathResult, r: OpenResult): void {
  for (const l of r.latencies) into.latencies.push(l);
  into.sent += r.sent;
  for (const [status, n] of Object.entries(r.byStatus)) if (status !== '200') into.errors[status] = (into.errors[status] ?? 0) + n;
  into.maxLateMs = Math.max(into.maxLateMs, r.maxLateMs);
}

async function main(): Promise<void> {
  const rate = Number(args.rate);
  const seconds = Number(args.seconds);
  const rounds = Math.max(1, Number(args.rounds));
  const slots = Number(args.slots);
  const serviceTime = args['service-time'];
  const serviceMs = parseDuration(serviceTime);
  const capacity = serviceMs !== undefined && serviceMs > 0 ? (slots * 1000) / serviceMs : NaN;
  const connections = Number(args.connections);
  const poisson = !args.uniform;

  say('ModelGuard latency benchmark: added latency of the governed path');
  say(await machineLine());
  say(`accelerator: ${slots} slots x ${serviceTime} -> capacity ${fixed(capacity, 0)} req/s; offered ${rate} req/s (${fixed((rate / capacity) * 100, 0)}% of capacity)`);
  say(`arrivals: open loop, ${poisson ? 'Poisson (seeded, same sequence on both paths)' : 'evenly spaced'}, ${seconds} s per path in ${rounds} alternating rounds after a warm-up per path (${args.warmup} s closed loop at ${2 * slots} outstanding, then 1 s open loop)`);
  say(`ModelGuard: one Backend with ${slots} slots, dispatchAhead ${args['dispatch-ahead']}; the Node proxy's upstream pool has the same ${slots + Number(args['dispatch-ahead'])} connections`);
  say('load generator, accelerator, proxy and ModelGuard each run in their own process');
  say();

  const acc = await startAccelerator({ slots, serviceTime });
  const mg = await startModelGuard(
    writeConfig({ acceleratorUrl: acc.url, slots, dispatchAhead: Number(args['dispatch-ahead']), maxLength: 10_000, maxWait: '30s' }),
  );
  const proxy = args['no-proxy'] ? undefined : await startNodeProxy(acc.url, slots + Number(args['dispatch-ahead']));
  const load = LoadGenerator.start();
  try {
    await waitReady(mg.adminUrl);
    const target = (url: string): Target => ({ url, path: INFER_PATH, headers: JSON_HEADERS, body: INFER_BODY });
    const paths: { name: string; target: Target }[] = [
      { name: 'direct', target: target(acc.url) },
      ...(proxy ? [{ name: 'node-proxy', target: target(proxy.url) }] : []),
      { name: 'governed', target: target(mg.httpUrl) },
    ];
    const open = (target: Target, durationMs: number, seed: number): Promise<OpenResult> =>
      load.run({ op: 'open', target, rate, durationMs, poisson, seed, connections });

    // Warm-up: a closed loop at twice the slots (so V8 optimises the hot paths, queueing included),
    // then a second of the real arrival process.
    for (const p of paths) {
      await load.run({ op: 'closed', target: p.target, concurrency: 2 * slots, warmupMs: 0, durationMs: Number(args.warmup) * 1000 });
      await open(p.target, 1000, 7);
    }
    const procs = [
      { name: 'load generator', pid: load.pid ?? -1 },
      { name: 'accelerator', pid: acc.pid },
      ...(proxy ? [{ name: 'node-proxy', pid: proxy.pid }] : []),
      { name: 'ModelGuard', pid: mg.pid },
    ];

    const results = new Map<string, PathResult>(paths.map((p) => [p.name, { latencies: [], cpu: {}, sent: 0, errors: {}, maxLateMs: 0 }]));
    for (let r = 0; r < rounds; r++) {
      // Alternate the order (ABBA...) so slow drift of the machine falls on both paths alike.
      const order = r % 2 === 0 ? paths : [...paths].reverse();
      for (const p of order) {
        const before = procs.map((q) => cpuMs(q.pid));
        const res = await open(p.target, (seconds * 1000) / rounds, 1000 + r);
        const into = results.get(p.name)!;
        procs.forEach((q, i) => (into.cpu[q.name] = (into.cpu[q.name] ?? 0) + cpuMs(q.pid) - before[i]!));
        merge(into, res);
        say(`  round ${r + 1} ${p.name.padEnd(10)} ${res.latencies.length} answers, p50 ${fixed(percentile(res.latencies, 50))} ms, p99 ${fixed(percentile(res.latencies, 99))} ms`);
      }
    }
    say();

    const rows = paths.map((p) => {
      const r = results.get(p.name)!;
      const errs = Object.entries(r.errors).map(([k, v]) => `${k}:${v}`).join(' ') || '0';
      return [p.name, String(r.sent), fixed(percentile(r.latencies, 50)), fixed(percentile(r.latencies, 90)), fixed(percentile(r.latencies, 99)), fixed(percentile(r.latencies, 100)), errs, fixed(r.maxLateMs, 1)];
    });
    say('latency of one request as the client sees it (ms), from hand-off to its client until the whole answer is read:');
    say(table(['path', 'requests', 'p50', 'p90', 'p99', 'max', 'non-200', 'gen late max'], rows));
    say('("gen late max": worst lateness of the load generator against its arrival schedule, a measure of client-side noise)');
    say();
    say('CPU time per request (ms) of each process while each path was measured (/proc/<pid>/stat, 10 ms ticks):');
    say(
      table(
        ['path', ...procs.map((q) => q.name)],
        paths.map((p) => {
          const r = results.get(p.name)!;
          return [p.name, ...procs.map((q) => fixed((r.cpu[q.name] ?? NaN) / r.sent, 3))];
        }),
      ),
    );
    say();

    const d = results.get('direct')!.latencies;
    const g = results.get('governed')!.latencies;
    const added50 = percentile(g, 50) - percentile(d, 50);
    const added90 = percentile(g, 90) - percentile(d, 90);
    const added99 = percentile(g, 99) - percentile(d, 99);
    say('added latency = governed - direct, per percentile (ms):');
    say(`  p50 ${fixed(added50)} ms   (ratio governed/direct ${fixed(percentile(g, 50) / percentile(d, 50), 3)})   target <= ${TARGET_P50_MS} ms: ${added50 <= TARGET_P50_MS ? 'MET' : 'NOT MET'}`);
    say(`  p90 ${fixed(added90)} ms   (ratio governed/direct ${fixed(percentile(g, 90) / percentile(d, 90), 3)})`);
    say(`  p99 ${fixed(added99)} ms   (ratio governed/direct ${fixed(percentile(g, 99) / percentile(d, 99), 3)})   target <= ${TARGET_P99_MS} ms: ${added99 <= TARGET_P99_MS ? 'MET' : 'NOT MET'}`);
    const n = results.get('node-proxy')?.latencies;
    if (n) {
      say();
      say('for scale, a plain Node reverse proxy on the same path (no queue, no validation), minus direct (ms):');
      say(`  p50 ${fixed(percentile(n, 50) - percentile(d, 50))} ms   p90 ${fixed(percentile(n, 90) - percentile(d, 90))} ms   p99 ${fixed(percentile(n, 99) - percentile(d, 99))} ms`);
      say(`  ModelGuard beyond the plain proxy: p50 ${fixed(percentile(g, 50) - percentile(n, 50))} ms   p99 ${fixed(percentile(g, 99) - percentile(n, 99))} ms`);
    }
  } finally {
    await load.close();
    await proxy?.stop();
    await mg.stop();
    await acc.stop();
  }
}

runMain(main);
