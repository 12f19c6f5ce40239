/**
 * Maximum throughput of the governed path against an accelerator that costs nothing (service time
 * 0, many slots), so what is measured is the proxy's own cost per request. Closed loop: a fixed
 * number of requests outstanding, each answered request replaced at once. In the same run:
 *   (a) direct to the accelerator            — the ceiling of this machine and load generator
 *   (b) a plain Node reverse proxy           — node:http + undici Pool (bench/lib/node-proxy.ts)
 *   (c) nginx as a reverse proxy             — when `nginx` is installed
 *   (d) ModelGuard (`modelguard up`)         — auth none, one group, one backend
 * Each runs in its own process; so does the load generator.
 *
 *   node --import tsx bench/throughput.ts [--concurrency 64] [--seconds 5] [--warmup 3] [--rounds 2]
 *        [--slots 64] [--nginx-workers 1] [--nginx PATH] [--profile]
 *
 * --profile runs ModelGuard and the plain Node proxy under `node --cpu-prof` and prints where their
 * CPU time went, per request, side by side.
 */
import { parseArgs } from 'node:util';
import { waitReady } from './lib/admin.ts';
import { INFER_BODY, INFER_PATH, JSON_HEADERS, writeConfig } from './lib/config.ts';
import { compareFrames, compareOrigins, formatSummary, profileIn, summarizeFile } from './lib/cpu-profile.ts';
import { LoadGenerator } from './lib/load.ts';
import type { Target } from './lib/load-protocol.ts';
import { findNginx, startNginx } from './lib/nginx.ts';
import { keepDir, runMain, startAccelerator, startModelGuard, startNodeProxy, tempDir, treeCpuMs, type Service } from './lib/processes.ts';
import { fixed, machineLine, mean, median, say, table } from './lib/stats.ts';

const TARGET_VS_NODE_PROXY = 0.9;
/** Start of every measurement that is not counted: connections open, caches refill. */
const RAMP_MS = 500;

const { values: args } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '64' },
    seconds: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '2' },
    slots: { type: 'string', default: '64' },
    'nginx-workers': { type: 'string', default: '1' },
    /** Path of the nginx binary (default: looked up on PATH and in the sbin directories). */
    nginx: { type: 'string' },
    profile: { type: 'boolean', default: false },
  },
});

interface Subject {
  readonly name: string;
  readonly url: string;
  /** The process under test (none for direct). */
  readonly pid: number | undefined;
  readonly rps: number[];
  readonly p50: number[];
  readonly p99: number[];
  /** CPU ms per answered request, per round: [process under test, accelerator, load generator]. */
  readonly cpu: number[][];
  readonly errors: Record<string, number>;
  /** Every answer this subject gave, warm-up included (to normalise its CPU profile). */
  answered: number;
}

async function main(): Promise<void> {
  const concurrency = Number(args.concurrency);
  const slots = Number(args.slots);
  const seconds = Number(args.seconds);
  const rounds = Math.max(1, Number(args.rounds));
  const nginxWorkers = Number(args['nginx-workers']);

  say('ModelGuard throughput benchmark: closed loop against a zero-cost accelerator');
  say(await machineLine());
  say(`accelerator: ${slots} slots, service time 0; load: ${concurrency} requests outstanding on ${concurrency} keep-alive connections`);
  say(`schedule: ${args.warmup} s warm-up per path first (JIT), then ${rounds} round(s) in alternating order, each ${RAMP_MS / 1000} s ramp + ${seconds} s measured`);
  say(`proxies: upstream pools of ${concurrency} connections; ModelGuard Backend slots ${slots}, dispatchAhead 0; nginx ${nginxWorkers} worker(s)`);
  say();

  const services: Service[] = [];
  const load = LoadGenerator.start();
  try {
    const acc = await startAccelerator({ slots, serviceTime: '0' });
    services.push(acc);
    const profileDirs = args.profile ? { mg: tempDir('cpuprofile-modelguard'), proxy: tempDir('cpuprofile-node-proxy') } : undefined;
    const profArgs = (dir: string | undefined): string[] => (dir ? ['--cpu-prof', '--cpu-prof-dir', dir] : []);
    const proxy = await startNodeProxy(acc.url, concurrency, profArgs(profileDirs?.proxy));
    services.push(proxy);
    const nginxBinary = findNginx(args.nginx);
    let nginx: (Service & { url: string }) | undefined;
    if (!nginxBinary) say('nginx: not installed, skipped');
    else {
      try {
        nginx = await startNginx(nginxBinary, acc.url, { workers: nginxWorkers, keepalive: concurrency });
        services.push(nginx);
      } catch (err) {
        say(`nginx: ${nginxBinary} did not start (${err instanceof Error ? err.message.split('\n')[0] : String(err)}), skipped`);
      }
    }
    const mg = await startModelGuard(writeConfig({ acceleratorUrl: acc.url, slots, maxLength: 10_000, maxWait: '30s' }), { nodeArgs: profArgs(profileDirs?.mg) });
    services.push(mg);
    await waitReady(mg.adminUrl);

    const subject = (name: string, url: string, pid: number | undefined): Subject => ({ name, url, pid, rps: [], p50: [], p99: [], cpu: [], errors: {}, answered: 0 });
    const subjects: Subject[] = [
      subject('direct', acc.url, undefined),
      subject('node-proxy', proxy.url, proxy.pid),
      ...(nginx ? [subject('nginx', nginx.url, nginx.pid)] : []),
      subject('ModelGuard', mg.httpUrl, mg.pid),
    ];
    const target = (s: Subject): Target => ({ url: s.url, path: INFER_PATH, headers: JSON_HEADERS, body: INFER_BODY });

    // Warm-up: until V8 has optimised the hot paths, a Node process here runs at half speed or less.
    for (const s of subjects) {
      const res = await load.run({ op: 'closed', target: target(s), concurrency, warmupMs: 0, durationMs: Number(args.warmup) * 1000 });
      s.answered += res.answered;
    }

    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? subjects : [...subjects].reverse();
      for (const s of order) {
        const pids = [s.pid, acc.pid, load.pid];
        const before = pids.map((p) => (p === undefined ? NaN : treeCpuMs(p)));
        const res = await load.run({ op: 'closed', target: target(s), concurrency, warmupMs: RAMP_MS, durationMs: seconds * 1000 });
        s.answered += res.answered;
        s.cpu.push(pids.map((p, i) => (p === undefined ? NaN : (treeCpuMs(p) - before[i]!) / res.answered)));
        const ok = res.byStatus['200'] ?? 0;
        for (const [k, v] of Object.entries(res.byStatus)) if (k !== '200') s.errors[k] = (s.errors[k] ?? 0) + v;
        s.rps.push((ok / res.elapsedMs) * 1000);
        s.p50.push(res.p50Ms);
        s.p99.push(res.p99Ms);
        say(`  round ${r + 1} ${s.name.padEnd(10)} ${fixed((ok / res.elapsedMs) * 1000, 0).padStart(7)} req/s   p50 ${fixed(res.p50Ms)} ms   p99 ${fixed(res.p99Ms)} ms`);
      }
    }
    say();

    const rps = (name: string): number => mean(subjects.find((s) => s.name === name)?.rps ?? []);
    say('answered requests per second (200 OK only), mean over rounds; latency is per request under this load:');
    say(
      table(
        ['path', 'req/s', ...Array.from({ length: rounds }, (_, i) => `round ${i + 1}`), 'x direct', 'p50 ms', 'p99 ms', 'non-200'],
        subjects.map((s) => [
          s.name,
          fixed(mean(s.rps), 0),
          ...s.rps.map((v) => fixed(v, 0)),
          fixed(mean(s.rps) / rps('direct'), 3),
          fixed(mean(s.p50)),
          fixed(mean(s.p99)),
          Object.entries(s.errors).map(([k, v]) => `${k}:${v}`).join(' ') || '0',
        ]),
      ),
    );
    say();
    say('CPU ms per answered request, from /proc/<pid>/stat (10 ms ticks); the 2 cores are shared by the three processes:');
    say(
      table(
        ['path', 'process under test', 'accelerator', 'load generator'],
        subjects.map((s) => [s.name, ...[0, 1, 2].map((i) => (i === 0 && s.pid === undefined ? '-' : fixed(mean(s.cpu.map((c) => c[i]!)), 3)))]),
      ),
    );
    say();

    // Ratios within one round compare paths measured under the same machine noise; their median is
    // the headline, the ratio of the means is shown beside it.
    const by = (name: string): Subject => subjects.find((s) => s.name === name)!;
    const perRound = (a: string, b: string): number[] => by(a).rps.map((v, i) => v / by(b).rps[i]!);
    const ratioLine = (a: string, b: string): string => {
      const rs = perRound(a, b);
      return `${fixed(median(rs), 3)}  (per round: ${rs.map((r) => fixed(r, 3)).join(', ')}; ratio of means ${fixed(rps(a) / rps(b), 3)})`;
    };
    const vsProxy = median(perRound('ModelGuard', 'node-proxy'));
    say(`ModelGuard / plain Node proxy = ${ratioLine('ModelGuard', 'node-proxy')}`);
    say(`  target >= ${TARGET_VS_NODE_PROXY}: ${vsProxy >= TARGET_VS_NODE_PROXY ? 'MET' : 'NOT MET'}`);
    const cpu = (name: string): number => mean(by(name).cpu.map((c) => c[0]!));
    say(`  CPU per request, plain Node proxy / ModelGuard = ${fixed(cpu('node-proxy') / cpu('ModelGuard'), 3)} (the throughput ratio to expect when the proxy's own core is the limit)`);
    if (nginx) say(`ModelGuard / nginx            = ${ratioLine('ModelGuard', 'nginx')}`);
    else say('ModelGuard / nginx            = n/a (nginx: not installed, skipped)');
    if (nginx) say(`nginx / plain Node proxy      = ${ratioLine('nginx', 'node-proxy')}`);
    say(`ModelGuard / direct           = ${ratioLine('ModelGuard', 'direct')}`);
    say(`plain Node proxy / direct     = ${ratioLine('node-proxy', 'direct')}`);

    if (profileDirs) {
      // The profiles are written when the processes exit normally.
      await mg.stop(15_000);
      await proxy.stop(15_000);
      const mgFile = profileIn(profileDirs.mg);
      const proxyFile = profileIn(profileDirs.proxy);
      say();
      if (!mgFile || !proxyFile) {
        say(`profile: a .cpuprofile is missing in ${profileDirs.mg} or ${profileDirs.proxy}`);
      } else {
        keepDir(profileDirs.mg);
        keepDir(profileDirs.proxy);
        const mgSummary = summarizeFile(mgFile);
        const mgSubject = subjects.find((s) => s.name === 'ModelGuard')!;
        const proxySubject = subjects.find((s) => s.name === 'node-proxy')!;
        say('CPU profiles (node --cpu-prof, whole process lifetime; idle time left out; open the files in Chrome DevTools):');
        say(`  ModelGuard  ${mgFile}`);
        say(`  node-proxy  ${proxyFile}`);
        say();
        const mgRun = { name: 'ModelGuard', summary: mgSummary, requests: mgSubject.answered };
        const proxyRun = { name: 'node-proxy', summary: summarizeFile(proxyFile), requests: proxySubject.answered };
        say(compareOrigins([mgRun, proxyRun]));
        say('(busy time is wall time the event loop was not idle, so it includes time the process waited for a core)');
        say();
        say('where ModelGuard spends more than the plain proxy, per request:');
        say(compareFrames(mgRun, proxyRun, 20));
        say();
        say('ModelGuard in detail:');
        say(formatSummary(mgSummary, 20));
      }
    }
  } finally {
    await load.close();
    for (const s of services.reverse()) await s.stop();
  }
}

runMain(main);
