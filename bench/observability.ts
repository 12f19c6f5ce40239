/**
 * What observability costs on the data path: the same closed-loop load through two ModelGuard
 * processes with the same configuration, against a zero-cost accelerator (so the gateway's own
 * per-request work is all that is measured, the worst case for any overhead):
 *   observed  metrics + access log (every request, to a file) + the live window, with a dashboard
 *             client on /api/v1/events and /metrics scraped every second
 *   sampled   the same with the access log at sampleRate 0.1 (every refusal and failure, and one
 *             answered request in ten): what docs/observability.md advises at high rates
 *   bare      every observer unsubscribed after start (no metrics, no log, no live window)
 * The number: observed req/s ÷ bare req/s (target ≥ 0.9), the median over rounds of the ratio
 * within each round. Each round runs both back to back, in alternating order, so a burst of other
 * work on the machine spoils one round's pair rather than one side; the ratio of the means over all
 * rounds and the CPU time per request are printed beside it.
 *
 *   node --import tsx bench/observability.ts [--concurrency 64] [--seconds 4] [--warmup 3] [--rounds 5]
 *
 * Processes: accelerator, the two ModelGuards and the load generator each run in their own
 * process (this file, with --serve, is the ModelGuard entry point for both).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { loadConfig } from '../src/config/index.ts';
import { startGateway } from '../src/compose/gateway.ts';
import { sha256Hex } from '../src/security/identity.ts';
import { waitReady } from './lib/admin.ts';
import { INFER_BODY, INFER_PATH } from './lib/config.ts';
import { LoadGenerator } from './lib/load.ts';
import type { Target } from './lib/load-protocol.ts';
import { runMain, startAccelerator, startService, tempDir, treeCpuMs, type Service } from './lib/processes.ts';
import { fixed, machineLine, mean, median, say, table } from './lib/stats.ts';

const TARGET_RATIO = 0.9;
const RAMP_MS = 500;
const KEY = 'bench-observability-key';

const { values: args } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '64' },
    seconds: { type: 'string', default: '4' },
    warmup: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '5' },
    slots: { type: 'string', default: '64' },
    serve: { type: 'string' },
    config: { type: 'string' },
  },
});

function configYaml(acceleratorUrl: string, slots: number, accessLog: string | undefined, sampleRate = 1): string {
  const doc = (kind: string, name: string, spec: string): string => `apiVersion: modelguard.io/v1alpha1\nkind: ${kind}\nmetadata: { name: ${name} }\nspec:\n${spec}`;
  return [
    doc('Gateway', 'default', `  auth: apiKey\n${accessLog ? `  accessLog: { destination: "${accessLog}", sampleRate: ${sampleRate} }\n` : ''}`),
    doc('Backend', 'accel', `  endpoints: [{ url: "${acceleratorUrl}", slots: ${slots} }]\n`),
    doc('Model', 'demo', '  backend: accel\n'),
    doc('ServiceGroup', 'gold', '  weight: 3\n  queue: { maxLength: 10000, maxWait: 30s }\n'),
    doc('App', 'camera', `  serviceGroup: gold\n  apiKeys: [{ sha256: "${sha256Hex(KEY)}" }]\n`),
  ].join('---\n');
}

/** The ModelGuard process: `--serve observed|bare --config DIR`. */
async function serve(mode: string, dir: string): Promise<void> {
  const gw = await startGateway((await loadConfig(dir)).snapshot, { http: '127.0.0.1:0', grpc: '127.0.0.1:0', admin: '127.0.0.1:0' });
  if (mode === 'bare') {
    gw.metrics.close();
    gw.live.close();
    await gw.accessLog.close();
  }
  process.stdout.write(`ModelGuard (${mode})\n  inference HTTP  ${gw.httpUrl}\n  admin           ${gw.adminUrl}\n`);
  process.once('SIGTERM', () => void gw.close().then(() => process.exit(0)));
}

async function startGatewayProcess(mode: Subject['name'], dir: string): Promise<Service & { httpUrl: string; adminUrl: string }> {
  const s = await startService(`modelguard-${mode}`, process.execPath, ['--import', 'tsx', 'bench/observability.ts', '--serve', mode, '--config', dir], {
    ready: /inference HTTP\s+(http:\/\/[\d.]+:\d+)[\s\S]*admin\s+(http:\/\/[\d.]+:\d+)/,
    raiseFileLimit: true,
  });
  return { ...s, httpUrl: s.match[1]!, adminUrl: s.match[2]! };
}

/** A dashboard: follows the event stream and counts the views it gets. */
function dashboardClient(adminUrl: string): { views: () => number; close: () => void } {
  let views = 0;
  const ac = new AbortController();
  void (async () => {
    const res = await request(`${adminUrl}/api/v1/events`, { signal: ac.signal });
    for await (const chunk of res.body) views += (String(chunk).match(/^data: /gm) ?? []).length;
  })().catch(() => undefined);
  return { views: () => views, close: () => ac.abort() };
}

/** Prometheus, scraping every second. */
function scraper(adminUrl: string): { scrapes: () => number; close: () => void } {
  let scrapes = 0;
  const timer = setInterval(() => {
    void request(`${adminUrl}/metrics`).then(async (res) => {
      await res.body.text();
      if (res.statusCode === 200) scrapes++;
    }, () => undefined);
  }, 1000);
  return { scrapes: () => scrapes, close: () => clearInterval(timer) };
}

interface Subject {
  readonly name: 'observed' | 'sampled' | 'bare';
  readonly url: string;
  readonly pid: number;
  readonly rps: number[];
  readonly p99: number[];
  readonly cpu: number[];
  answered: number;
}

async function main(): Promise<void> {
  const concurrency = Number(args.concurrency);
  const seconds = Number(args.seconds);
  const rounds = Math.max(1, Number(args.rounds));
  const slots = Number(args.slots);
  say('ModelGuard observability overhead: the same load with metrics, access log and a live dashboard, and without');
  say(await machineLine());
  say(`accelerator: ${slots} slots, service time 0; load: ${concurrency} requests outstanding, closed loop, one app with an API key`);
  say(`schedule: ${args.warmup} s warm-up each, then ${rounds} rounds in alternating order, each ${RAMP_MS / 1000} s ramp + ${seconds} s measured`);
  say();

  const services: Service[] = [];
  const load = LoadGenerator.start();
  try {
    const acc = await startAccelerator({ slots, serviceTime: '0' });
    services.push(acc);
    const logDir = tempDir('access-log');
    const logFile = join(logDir, 'access.log');
    const dirs = { observed: tempDir('config-observed'), sampled: tempDir('config-sampled'), bare: tempDir('config-bare') };
    writeFileSync(join(dirs.observed, 'modelguard.yaml'), configYaml(acc.url, slots, logFile));
    writeFileSync(join(dirs.sampled, 'modelguard.yaml'), configYaml(acc.url, slots, join(logDir, 'sampled.log'), 0.1));
    writeFileSync(join(dirs.bare, 'modelguard.yaml'), configYaml(acc.url, slots, undefined));
    const observed = await startGatewayProcess('observed', dirs.observed);
    const sampled = await startGatewayProcess('sampled', dirs.sampled);
    const bare = await startGatewayProcess('bare', dirs.bare);
    services.push(observed, sampled, bare);
    for (const s of [observed, sampled, bare]) await waitReady(s.adminUrl);
    const dashboards = [dashboardClient(observed.adminUrl), dashboardClient(sampled.adminUrl)];
    const scrapers = [scraper(observed.adminUrl), scraper(sampled.adminUrl)];
    const dashboard = dashboards[0]!;
    const prometheus = scrapers[0]!;

    const subject = (name: Subject['name'], s: { httpUrl: string; pid: number }): Subject => ({ name, url: s.httpUrl, pid: s.pid, rps: [], p99: [], cpu: [], answered: 0 });
    const subjects: Subject[] = [subject('observed', observed), subject('sampled', sampled), subject('bare', bare)];
    const target = (s: Subject): Target => ({ url: s.url, path: INFER_PATH, headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` }, body: INFER_BODY });
    for (const s of subjects) s.answered += (await load.run({ op: 'closed', target: target(s), concurrency, warmupMs: 0, durationMs: Number(args.warmup) * 1000 })).answered;
    const viewsBefore = dashboard.views();
    const t0 = performance.now();
    for (let r = 0; r < rounds; r++) {
      for (const s of r % 2 === 0 ? subjects : [...subjects].reverse()) {
        const cpu0 = treeCpuMs(s.pid);
        const res = await load.run({ op: 'closed', target: target(s), concurrency, warmupMs: RAMP_MS, durationMs: seconds * 1000 });
        s.answered += res.answered;
        s.cpu.push((treeCpuMs(s.pid) - cpu0) / res.answered);
        const ok = res.byStatus['200'] ?? 0;
        if (ok !== res.completed) throw new Error(`${s.name}: not every request was answered 200: ${JSON.stringify(res.byStatus)}`);
        s.rps.push((ok / res.elapsedMs) * 1000);
        s.p99.push(res.p99Ms);
        say(`  round ${r + 1} ${s.name.padEnd(9)} ${fixed((ok / res.elapsedMs) * 1000, 0).padStart(7)} req/s   p99 ${fixed(res.p99Ms)} ms`);
      }
    }
    const viewsPerSecond = ((dashboard.views() - viewsBefore) / (performance.now() - t0)) * 1000;
    for (const c of [...dashboards, ...scrapers]) c.close();
    await observed.stop(10_000); // flushes the access log
    const lines = readFileSync(logFile, 'utf8').split('\n').filter((l) => l !== '').length;
    const [obs, smp, bar] = subjects as [Subject, Subject, Subject];

    say();
    say(
      table(
        ['ModelGuard', 'req/s', ...Array.from({ length: rounds }, (_, i) => `round ${i + 1}`), 'p99 ms', 'CPU ms/request'],
        subjects.map((s) => [s.name, fixed(mean(s.rps), 0), ...s.rps.map((v) => fixed(v, 0)), fixed(mean(s.p99)), fixed(mean(s.cpu), 3)]),
      ),
    );
    say();
    say(`observed: ${lines} access-log lines for ${obs.answered} requests answered; ${fixed(viewsPerSecond, 2)} dashboard views/s received; ${prometheus.scrapes()} scrapes of /metrics`);
    for (const s of [obs, smp]) {
      const ratios = s.rps.map((v, i) => v / bar.rps[i]!);
      const ratio = median(ratios);
      say(`${s.name} / bare: per round ${ratios.map((r) => fixed(r, 3)).join(', ')}`);
      say(`${s.name} / bare throughput = ${fixed(ratio, 3)} (median of rounds; ratio of means ${fixed(mean(s.rps) / mean(bar.rps), 3)})   target >= ${TARGET_RATIO}: ${ratio >= TARGET_RATIO ? 'MET' : 'NOT MET'}`);
      say(`${s.name} / bare CPU per request = ${fixed(median(s.cpu.map((c, i) => c / bar.cpu[i]!)), 3)} (median of rounds)`);
    }
  } finally {
    await load.close();
    for (const s of services.reverse()) await s.stop();
  }
}

if (args.serve !== undefined) {
  if (args.config === undefined) throw new Error('--serve needs --config DIR');
  await serve(args.serve, args.config);
} else {
  runMain(main);
}
