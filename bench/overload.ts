/**
 * Overload as an operator meets it: open-loop arrivals at 5× the accelerator's capacity for
 * --seconds (default 60), two replicas, one SIGKILLed at a third of the run and restarted a quarter
 * of the run later (on the same port), the configuration rewritten every 3 s (ModelGuard reloads it
 * on the file change). The same run is made twice, beside each other: first with
 * `ServiceGroup.spec.queue.earlyRefusal: false` (the baseline: a request queues until maxWait), then
 * with early refusal on. Each run prints:
 *
 *   - sent and answered (every request must get exactly one answer);
 *   - served per second over the run (200s ÷ seconds) and the ratio early ÷ baseline (target ≥ 0.95),
 *     also per capacity while up (a restart takes seconds on a busy machine, and not the same in both runs);
 *   - refusals (429 and 503) and how long they took: p50 / p90 / p99 (target p90 ≤ 100 ms);
 *   - ModelGuard's resident memory over the run (flat: the last quarter against the second);
 *   - the refusals by reason and predicted vs actual wait, from ModelGuard's own /metrics.
 *
 *   node --import tsx bench/overload.ts [--seconds 60] [--factor 5] [--service-time 20ms]
 *
 * Each replica has 1 slot at --service-time: capacity 2 ÷ service time (100/s at 20 ms). The group:
 * maxLength 1000, maxWait 2s. Accelerators, ModelGuard and the load each run in their own process.
 * On a machine shared with other work, `--service-time 100ms` (capacity 20/s, 100 arrivals/s) keeps
 * ModelGuard from being starved of CPU by the others; docs/scheduling.md has both.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { waitReady } from './lib/admin.ts';
import { configYaml as benchConfig, INFER_BODY, INFER_PATH, JSON_HEADERS } from './lib/config.ts';
import { cpuMs, rssBytes, runMain, spawnTracked, startModelGuard, startService, tempDir, type Service } from './lib/processes.ts';
import { fixed, machineLine, median, mib, percentile, say, table } from './lib/stats.ts';
import type { OverloadAnswers } from './overload-child.ts';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    factor: { type: 'string', default: '5' },
    'service-time': { type: 'string', default: '20ms' },
    'reload-every': { type: 'string', default: '3' },
    seed: { type: 'string', default: '7' },
  },
});

const SECONDS = Number(args.seconds);
const FACTOR = Number(args.factor);
const SERVICE_MS = Number(/^(\d+(?:\.\d+)?)ms$/.exec(args['service-time'])?.[1] ?? NaN);
const RELOAD_MS = Number(args['reload-every']) * 1000;
const CAPACITY = 2 * (1000 / SERVICE_MS);
const RATE = FACTOR * CAPACITY;
const KILL_AT_MS = (SECONDS * 1000) / 3;
const RESTART_AFTER_MS = (SECONDS * 1000) / 4;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function replica(listen: string): Promise<Service & { url: string }> {
  const s = await startService(
    'demo-model',
    process.execPath,
    ['bin/modelguard.js', 'demo-model', '--listen', listen, '--mode', 'simulated', '--slots', '1', '--service-time', args['service-time'], '--models', 'demo'],
    { ready: /listening on (http:\/\/[\d.]+:\d+)/, raiseFileLimit: true },
  );
  return { ...s, url: s.match[1]! };
}

function configYaml(urls: readonly string[], earlyRefusal: boolean, spareWeight: number): string {
  return benchConfig({
    endpoints: urls,
    slots: 1,
    timeout: '10s',
    healthCheck: '{ interval: 500ms, timeout: 300ms }',
    maxLength: 1000,
    maxWait: '2s',
    earlyRefusal,
    // Changed on every reload (a real change, so the broker applies a new snapshot); no traffic uses it.
    extra: `apiVersion: modelguard.io/v1alpha1\nkind: ServiceGroup\nmetadata: { name: spare }\nspec: { weight: ${spareWeight} }\n`,
  });
}

interface RunResult {
  readonly answers: OverloadAnswers;
  /** ms replica 2 was down: from SIGKILL until its restarted process listened. */
  readonly downMs: number;
  readonly rss: number[];
  readonly reloads: number;
  readonly metrics: string;
  /** CPU time ModelGuard used over the run, ms. */
  readonly cpuMs: number;
}

async function run(earlyRefusal: boolean): Promise<RunResult> {
  const a = await replica('127.0.0.1:0');
  let b = await replica('127.0.0.1:0');
  const bListen = b.url.replace(/^http:\/\//, '');
  const dir = tempDir('overload');
  const file = join(dir, 'modelguard.yaml');
  let spare = 1;
  writeFileSync(file, configYaml([a.url, b.url], earlyRefusal, spare));
  const mg = await startModelGuard(dir);
  await waitReady(mg.adminUrl);
  // A short warm-up at capacity (connections, JIT), not counted.
  await fetch(`${mg.httpUrl}${INFER_PATH}`, { method: 'POST', headers: JSON_HEADERS, body: INFER_BODY }).then((r) => r.arrayBuffer());

  const load = spawnTracked('overload-load', process.execPath, ['--import', 'tsx', 'bench/overload-child.ts', mg.httpUrl, String(RATE), String(SECONDS * 1000), '4000', args.seed], { raiseFileLimit: true });
  let out = '';
  load.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  load.stderr?.pipe(process.stderr);
  const loadDone = new Promise<void>((resolve, reject) => load.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`load generator exited ${code}`)))));

  const t0 = Date.now();
  const rss: number[] = [];
  let reloads = 0;
  let killed = false;
  let restarted = false;
  let killedAt = 0;
  let downMs = NaN;
  let restarting: Promise<void> | undefined;
  let nextReload = RELOAD_MS;
  let finished = false;
  void loadDone.then(() => (finished = true), () => (finished = true));
  while (!finished) {
    await sleep(250);
    const t = Date.now() - t0;
    if (rss.length < Math.floor(t / 1000)) rss.push(rssBytes(mg.pid));
    if (!killed && t >= KILL_AT_MS) {
      killed = true;
      killedAt = Date.now();
      b.child.kill('SIGKILL');
    }
    if (killed && !restarted && t >= KILL_AT_MS + RESTART_AFTER_MS) {
      restarted = true;
      // Starting a process takes seconds on a busy machine: the loop goes on meanwhile.
      restarting = replica(bListen).then((r) => {
        b = r;
        downMs = Date.now() - killedAt;
      });
    }
    if (t >= nextReload) {
      nextReload += RELOAD_MS;
      spare = spare === 1 ? 2 : 1;
      writeFileSync(file, configYaml([a.url, `http://${bListen}`], earlyRefusal, spare));
      reloads++;
    }
  }
  await loadDone;
  const cpu = cpuMs(mg.pid);
  await restarting;
  if (Number.isNaN(downMs)) downMs = killed ? Date.now() - killedAt : 0;
  const metrics = await (await fetch(`${mg.adminUrl}/metrics`)).text();
  await Promise.all([mg.stop(), a.stop(), b.stop()]);
  return { answers: JSON.parse(out) as OverloadAnswers, downMs, rss, reloads, metrics, cpuMs: cpu };
}

interface Summary {
  readonly sent: number;
  readonly answered: number;
  readonly byStatus: Map<string, number>;
  readonly servedPerSecond: number;
  /** Served ÷ what the replicas could serve while up (the run plus the 2 s drain, minus replica 2's downtime). */
  readonly utilization: number;
  readonly downMs: number;
  readonly refusals: number;
  readonly refusalMs: { p50: number; p90: number; p99: number };
  readonly rssEarly: number;
  readonly rssLate: number;
  readonly lines: string[];
  /** Per stretch of the run (by send time): served, refused early (429), timed out (503). */
  readonly timeline: string;
}

function metricLines(metrics: string): string[] {
  return metrics
    .split('\n')
    .filter((l) => /^modelguard_refusals_total|^modelguard_admission_(predicted|actual)_wait_seconds_(sum|count)|^modelguard_endpoint_(served|failures)_total/.test(l))
    .map((l) => `  ${l}`);
}

function summarize(r: RunResult): Summary {
  const { answers } = r;
  const byStatus = new Map<string, number>();
  const refusalMs: number[] = [];
  let answered = 0;
  let served = 0;
  for (let i = 0; i < answers.sent; i++) {
    if ((answers.ms[i] ?? -1) < 0) continue;
    answered++;
    const s = answers.status[i] ?? 0;
    const key = s === 0 ? `no answer (${answers.code[i]})` : `${s} ${answers.code[i] ?? ''}`.trim();
    byStatus.set(key, (byStatus.get(key) ?? 0) + 1);
    if (s === 200) served++;
    if (s === 429 || s === 503) refusalMs.push(answers.ms[i] ?? 0);
  }
  const stretches = Math.min(12, SECONDS);
  const cells = Array.from({ length: stretches }, () => ({ ok: 0, early: 0, late: 0, other: 0 }));
  for (let i = 0; i < answers.sent; i++) {
    const c = cells[Math.min(stretches - 1, Math.floor(((answers.at[i] ?? 0) / (SECONDS * 1000)) * stretches))]!;
    const s = answers.status[i];
    if (s === 200) c.ok++;
    else if (s === 429) c.early++;
    else if (s === 503) c.late++;
    else c.other++;
  }
  const timeline = cells.map((c, i) => `${fixed((i * SECONDS) / stretches, 0)}s ${c.ok}/${c.early}/${c.late}${c.other > 0 ? `/${c.other}` : ''}`).join('  ');
  // Memory: the second quarter (after warm-up) against the last quarter.
  const q = Math.max(1, Math.floor(r.rss.length / 4));
  return {
    sent: answers.sent,
    answered,
    byStatus,
    servedPerSecond: served / SECONDS,
    utilization: served / ((1000 / SERVICE_MS) * (2 * (SECONDS + 2) - r.downMs / 1000)),
    downMs: r.downMs,
    refusals: refusalMs.length,
    refusalMs: { p50: percentile(refusalMs, 50), p90: percentile(refusalMs, 90), p99: percentile(refusalMs, 99) },
    rssEarly: median(r.rss.slice(q, 2 * q)),
    rssLate: median(r.rss.slice(-q)),
    lines: metricLines(r.metrics),
    timeline,
  };
}

async function main(): Promise<void> {
  say('ModelGuard overload benchmark: early refusal against queueing until the deadline');
  say(await machineLine());
  say(
    `capacity ${fixed(CAPACITY, 0)}/s (2 replicas × 1 slot × ${args['service-time']}); arrivals ${fixed(RATE, 0)}/s (${FACTOR}×, Poisson) for ${SECONDS} s; ` +
      `replica 2 SIGKILLed at ${fixed(KILL_AT_MS / 1000, 0)} s, restarted ${fixed(RESTART_AFTER_MS / 1000, 0)} s later; config rewritten every ${RELOAD_MS / 1000} s; group maxLength 1000, maxWait 2s`,
  );
  say('The machine may be shared: absolute figures move with its load; the ratio is taken between runs made one after the other.');
  say();
  const results: [string, Summary][] = [];
  for (const [name, early] of [
    ['baseline (earlyRefusal: false)', false],
    ['early refusal', true],
  ] as const) {
    say(`running: ${name} …`);
    const r = await run(early);
    const s = summarize(r);
    results.push([name, s]);
    say(`  ModelGuard CPU: ${fixed(r.cpuMs / 1000, 1)} s over the run (${fixed((r.cpuMs / 1000 / SECONDS) * 100, 0)}% of one core)`);
    say(`  reloads: ${r.reloads}; answers by status: ${[...s.byStatus].map(([k, v]) => `${k}: ${v}`).join(', ')}`);
    for (const l of s.lines) say(l);
    say(`  by send time, served/429/503[/other]: ${s.timeline}`);
  }
  say();
  const base = results[0]![1];
  say(
    table(
      ['run', 'sent', 'answered', 'served/s', 'vs baseline', 'replica 2 down s', 'utilization', 'vs baseline', 'refusals', 'refusal p50 ms', 'p90 ms', 'p99 ms', 'RSS 2nd quarter', 'RSS last quarter'],
      results.map(([name, s]) => [
        name,
        String(s.sent),
        String(s.answered),
        fixed(s.servedPerSecond, 1),
        fixed(s.servedPerSecond / base.servedPerSecond, 3),
        fixed(s.downMs / 1000, 1),
        fixed(s.utilization, 3),
        fixed(s.utilization / base.utilization, 3),
        String(s.refusals),
        fixed(s.refusalMs.p50, 0),
        fixed(s.refusalMs.p90, 0),
        fixed(s.refusalMs.p99, 0),
        mib(s.rssEarly),
        mib(s.rssLate),
      ]),
    ),
  );
  const early = results[1]![1];
  say();
  say(`N sent = N answered: ${results.every(([, s]) => s.sent === s.answered) ? 'yes' : 'NO'}`);
  say(`refusal p90 with early refusal: ${fixed(early.refusalMs.p90, 0)} ms (target ≤ 100 ms)`);
  say(`served throughput, early ÷ baseline: ${fixed(early.servedPerSecond / base.servedPerSecond, 3)} (target ≥ 0.95); per capacity while up: ${fixed(early.utilization / base.utilization, 3)}`);
  say(`memory, last quarter ÷ second quarter: ${fixed(early.rssLate / early.rssEarly, 3)} (early refusal), ${fixed(base.rssLate / base.rssEarly, 3)} (baseline)`);
}

runMain(main);
