/**
 * MQTT request-to-reply latency: open-loop Poisson traffic at half the accelerator's capacity,
 * (a) straight to the accelerator over HTTP, (b) through ModelGuard over HTTP, and (c) published
 * through mosquitto to ModelGuard's MQTT ingress, the reply coming back through mosquitto — all in
 * the same run. One number per path: the time from handing a request to the client (HTTP) or
 * publishing it (MQTT) until the whole answer has arrived. The ratio mqtt/direct is the price of
 * governance plus two broker hops.
 *
 *   node --import tsx bench/mqtt.ts [--rate 200] [--seconds 10] [--rounds 2] [--slots 4] [--service-time 10ms] [--warmup 2]
 *
 * Processes: accelerator, mosquitto, ModelGuard, the HTTP load generator and the MQTT load
 * generator each run in their own process.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseDuration } from '../src/core/duration.ts';
import { waitReady } from './lib/admin.ts';
import { configYaml, INFER_BODY, INFER_PATH, JSON_HEADERS } from './lib/config.ts';
import { LoadGenerator } from './lib/load.ts';
import type { OpenResult, Target } from './lib/load-protocol.ts';
import { startMosquitto } from './lib/mosquitto.ts';
import { ROOT, runMain, startAccelerator, startModelGuard, tempDir } from './lib/processes.ts';
import { fixed, machineLine, percentile, say, table } from './lib/stats.ts';

const { values: args } = parseArgs({
  options: {
    rate: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '2' },
    warmup: { type: 'string', default: '2' },
    slots: { type: 'string', default: '4' },
    'service-time': { type: 'string', default: '10ms' },
  },
});

interface MqttRun {
  sent: number;
  latencies: number[];
  byCode: Record<string, number>;
  maxLateMs: number;
}

function mqttLoad(url: string, rate: number, durationMs: number, seed: number): Promise<MqttRun> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', 'bench/lib/mqtt-load-child.ts', url, String(rate), String(durationMs), String(seed)], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 }, (err, stdout) => {
      if (err) reject(new Error(`MQTT load failed: ${err.message}`));
      else resolve(JSON.parse(stdout) as MqttRun);
    });
  });
}

interface PathResult {
  latencies: number[];
  sent: number;
  errors: Record<string, number>;
}

async function main(): Promise<void> {
  const rate = Number(args.rate);
  const seconds = Number(args.seconds);
  const rounds = Math.max(1, Number(args.rounds));
  const slots = Number(args.slots);
  const serviceTime = args['service-time'];
  const serviceMs = parseDuration(serviceTime) ?? NaN;
  const capacity = (slots * 1000) / serviceMs;

  say('ModelGuard MQTT benchmark: request-to-reply latency through mosquitto');
  say(await machineLine());
  say(`accelerator: ${slots} slots x ${serviceTime} -> capacity ${fixed(capacity, 0)} req/s; offered ${rate} req/s (${fixed((rate / capacity) * 100, 0)}% of capacity)`);
  say(`arrivals: open loop, Poisson (seeded), ${seconds} s per path in ${rounds} alternating rounds after ${args.warmup} s of warm-up per path`);
  say('MQTT: MQTT 5 publisher with responseTopic + correlationData, QoS 1 both ways, auth none; mosquitto on loopback');
  say();

  const acc = await startAccelerator({ slots, serviceTime });
  const broker = await startMosquitto();
  const dir = tempDir('config');
  const yaml = configYaml({ acceleratorUrl: acc.url, slots, maxLength: 10_000, maxWait: '30s' }).replace('  auth: none\n', `  auth: none\n  mqtt: { url: "${broker.url}" }\n`);
  writeFileSync(join(dir, 'modelguard.yaml'), yaml);
  const mg = await startModelGuard(dir);
  const load = LoadGenerator.start();
  try {
    await waitReady(mg.adminUrl);
    const target = (url: string): Target => ({ url, path: INFER_PATH, headers: JSON_HEADERS, body: INFER_BODY });
    const http = async (url: string, durationMs: number, seed: number): Promise<PathResult> => {
      const r: OpenResult = await load.run({ op: 'open', target: target(url), rate, durationMs, poisson: true, seed, connections: 64 });
      const errors: Record<string, number> = {};
      for (const [s, n] of Object.entries(r.byStatus)) if (s !== '200') errors[s] = n;
      return { latencies: r.latencies, sent: r.sent, errors };
    };
    const viaMqtt = async (durationMs: number, seed: number): Promise<PathResult> => {
      const r = await mqttLoad(broker.url, rate, durationMs, seed);
      const errors: Record<string, number> = {};
      for (const [c, n] of Object.entries(r.byCode)) if (c !== 'OK' && n > 0) errors[c] = n;
      return { latencies: r.latencies, sent: r.sent, errors };
    };
    const paths: { name: string; run: (ms: number, seed: number) => Promise<PathResult> }[] = [
      { name: 'direct HTTP', run: (ms, seed) => http(acc.url, ms, seed) },
      { name: 'ModelGuard HTTP', run: (ms, seed) => http(mg.httpUrl, ms, seed) },
      { name: 'ModelGuard MQTT', run: viaMqtt },
    ];
    for (const p of paths) await p.run(Number(args.warmup) * 1000, 7);

    const results = new Map<string, PathResult>(paths.map((p) => [p.name, { latencies: [], sent: 0, errors: {} }]));
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? paths : [...paths].reverse();
      for (const p of order) {
        const res = await p.run((seconds * 1000) / rounds, 1000 + r);
        const into = results.get(p.name)!;
        into.latencies.push(...res.latencies);
        into.sent += res.sent;
        for (const [k, v] of Object.entries(res.errors)) into.errors[k] = (into.errors[k] ?? 0) + v;
        say(`  round ${r + 1} ${p.name.padEnd(16)} ${res.latencies.length} answers, p50 ${fixed(percentile(res.latencies, 50))} ms, p99 ${fixed(percentile(res.latencies, 99))} ms`);
      }
    }
    say();
    const d = results.get('direct HTTP')!.latencies;
    say('request-to-reply latency (ms):');
    say(
      table(
        ['path', 'requests', 'p50', 'p90', 'p99', 'max', 'errors', 'p50 / direct', 'p99 / direct'],
        paths.map((p) => {
          const r = results.get(p.name)!;
          const errs = Object.entries(r.errors).map(([k, v]) => `${k}:${v}`).join(' ') || '0';
          const l = r.latencies;
          return [p.name, String(r.sent), fixed(percentile(l, 50)), fixed(percentile(l, 90)), fixed(percentile(l, 99)), fixed(percentile(l, 100)), errs, fixed(percentile(l, 50) / percentile(d, 50), 3), fixed(percentile(l, 99) / percentile(d, 99), 3)];
        }),
      ),
    );
    const m = results.get('ModelGuard MQTT')!.latencies;
    const g = results.get('ModelGuard HTTP')!.latencies;
    say();
    say(`MQTT minus direct HTTP: p50 +${fixed(percentile(m, 50) - percentile(d, 50))} ms, p99 +${fixed(percentile(m, 99) - percentile(d, 99))} ms`);
    say(`MQTT minus ModelGuard HTTP (the broker's two hops and the MQTT codec): p50 +${fixed(percentile(m, 50) - percentile(g, 50))} ms, p99 +${fixed(percentile(m, 99) - percentile(g, 99))} ms`);
  } finally {
    await load.close();
    await mg.stop();
    await broker.stop();
    await acc.stop();
  }
}

runMain(main);
