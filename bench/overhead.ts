/**
 * What ModelGuard adds to a request, measured the way gateway benchmarks are published: a C load
 * generator (`wrk`, one thread) against a zero-cost upstream (a node:http server answering a fixed
 * KServe v2 response, its own process), through each path in the same run:
 *
 *   direct        wrk → upstream
 *   node proxy    wrk → node:http + undici Pool → upstream       (bench/lib/node-proxy.ts)
 *   nginx         wrk → nginx, 1 worker, upstream keep-alive → upstream
 *   haproxy       wrk → haproxy, 1 thread, http-reuse always → upstream
 *   ModelGuard    wrk → `modelguard up --config` (API key, one group, one backend) → upstream
 *
 * Two measurements per path and round: maximum throughput (`--connections` 32 on one wrk thread),
 * and latency at one request at a time (1 connection), from which "added" = path − direct. Every
 * path is warmed up first (JIT), then `--rounds` rounds in alternating order (forward, then
 * reversed), so a noisy machine's drift falls on all of them.
 *
 *   npm run build && node --import tsx bench/overhead.ts [--rounds 3] [--seconds 5] [--serial-seconds 5]
 *        [--warmup 30] [--connections 32] [--slots 64] [--no-auth] [--access-log] [--profile] [--baseline DIR] [--paired 5]
 *
 * --baseline DIR adds "ModelGuard (baseline)": the same configuration run from another checkout
 * (for example `git worktree add /tmp/before <commit>`, then `npm run build` there), so a change's
 * cost per request is compared before and after in one run.
 * --profile runs ModelGuard under `node --cpu-prof` and prints where its time went.
 *
 * Then, because one path at a time on a shared machine swings by tens of percent from one run to
 * the next: ModelGuard and the node proxy (and ModelGuard and its baseline) loaded *at the same
 * time*, one wrk each at half the connections, `--paired` runs of `--seconds`: the ratio of their
 * CPU per request in each run. Whatever the machine does falls on both at once.
 */
import { parseArgs } from 'node:util';
import { sha256Hex } from '../src/security/identity.ts';
import { waitReady } from './lib/admin.ts';
import { INFER_BODY, INFER_PATH, writeConfig } from './lib/config.ts';
import { formatSummary, profileIn, summarizeFile } from './lib/cpu-profile.ts';
import { findNginx, startNginx } from './lib/nginx.ts';
import { binRuns, cpuMs, keepDir, ROOT, runMain, startModelGuard, startNodeProxy, tempDir, treeCpuMs, type Service } from './lib/processes.ts';
import { fixed, machineLine, median, say, table } from './lib/stats.ts';
import { executable, runWrk, startHaproxy, startUpstream, wrkScript, type WrkResult } from './overhead-lib.ts';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
    'serial-seconds': { type: 'string', default: '5' },
    /** The longest warm-up per path, s (it ends sooner once the throughput is steady). */
    warmup: { type: 'string', default: '30' },
    connections: { type: 'string', default: '32' },
    slots: { type: 'string', default: '64' },
    'no-auth': { type: 'boolean', default: false },
    /** ModelGuard writes its access log (to a pipe the benchmark drains); off by default, like nginx's here. */
    'access-log': { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    /** Another checkout (a git worktree of an earlier commit, with node_modules) run beside this one: before/after in the same run. */
    baseline: { type: 'string' },
    /** Runs with two paths loaded at once (0: none). */
    paired: { type: 'string', default: '5' },
  },
});

const KEY = 'mg_bench_overhead_key';
const TARGET_RPS_VS_NODE = 0.8;
const TARGET_ADDED_P99_VS_NODE_MS = 0.15;

interface Subject {
  readonly name: string;
  readonly url: string;
  /** Process whose CPU is counted (none for direct). */
  readonly cpu: (() => number) | undefined;
  readonly rps: number[];
  readonly cpuPerReq: number[];
  readonly p50: number[];
  readonly p99: number[];
  errors: number;
}

function mgConfig(upstream: string, slots: number, auth: boolean, accessLog: boolean): string {
  return writeConfig({ acceleratorUrl: upstream, slots, maxLength: 10000, maxWait: '10s', accessLog, ...(auth ? { apiKeySha256: sha256Hex(KEY) } : {}) });
}

/** dist/ is what the bin runs when it is current; say which one is measured. */
function mgRuntime(root: string = ROOT): string {
  return binRuns(root) === 'dist' ? 'compiled dist/' : 'TypeScript sources through tsx (dist/ missing or older than src/: `npm run build` for the compiled build)';
}

async function main(): Promise<void> {
  const wrk = executable('/usr/bin/wrk') ?? executable('/usr/local/bin/wrk');
  if (!wrk) throw new Error('wrk not found (Debian: apt-get install -y wrk)');
  const rounds = Math.max(1, Number(args.rounds));
  const seconds = Number(args.seconds);
  const serialSeconds = Number(args['serial-seconds']);
  const connections = Number(args.connections);
  const auth = !args['no-auth'];

  say('ModelGuard overhead: wrk (C, 1 thread) against a zero-cost upstream, every path in the same run');
  say(await machineLine());
  say(`throughput: ${connections} connections, ${seconds} s per path and round; latency: 1 connection (one request at a time), ${serialSeconds} s`);
  say(`warm-up per path until steady (2 s runs, 8 s at least, ${args.warmup} s at most), then ${rounds} rounds in alternating order; ModelGuard: ${mgRuntime()}${args.baseline === undefined ? '' : ` (baseline: ${mgRuntime(args.baseline)})`}, ${auth ? 'API key' : 'auth none'}, access log ${args['access-log'] ? 'on' : 'off'} (nginx's is off too), backend slots ${args.slots}`);
  say('note: a shared 2-core machine (other work runs on it, and wrk, the upstream and the proxy share the cores): compare the ratios within this run');
  say();

  const services: Service[] = [];
  const upstream = await startUpstream();
  services.push(upstream);
  const subjects: Subject[] = [];
  const paired: { a: Subject; b: Subject; ratios: number[] }[] = [];
  const add = (name: string, url: string, cpu: (() => number) | undefined): void => void subjects.push({ name, url, cpu, rps: [], cpuPerReq: [], p50: [], p99: [], errors: 0 });
  add('direct', upstream.url, undefined);
  const nodeProxy = await startNodeProxy(upstream.url, connections);
  services.push(nodeProxy);
  add('node proxy', nodeProxy.url, () => cpuMs(nodeProxy.pid));
  const nginxBin = findNginx();
  if (nginxBin) {
    const nginx = await startNginx(nginxBin, upstream.url, { workers: 1, keepalive: connections });
    services.push(nginx);
    add('nginx', nginx.url, () => treeCpuMs(nginx.pid));
  } else say('nginx: not installed, skipped');
  const haproxyBin = executable('/usr/sbin/haproxy');
  if (haproxyBin) {
    const haproxy = await startHaproxy(haproxyBin, upstream.url);
    services.push(haproxy);
    add('haproxy', haproxy.url, () => treeCpuMs(haproxy.pid));
  } else say('haproxy: not installed, skipped');
  const profileDir = args.profile ? tempDir('overhead-cpuprofile') : undefined;
  const mg = await startModelGuard(mgConfig(upstream.url, Number(args.slots), auth, args['access-log']), { nodeArgs: profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [] });
  services.push(mg);
  await waitReady(mg.adminUrl);
  add('ModelGuard', mg.httpUrl, () => cpuMs(mg.pid));
  if (args.baseline !== undefined) {
    const before = await startModelGuard(mgConfig(upstream.url, Number(args.slots), auth, args['access-log']), { root: args.baseline });
    services.push(before);
    await waitReady(before.adminUrl);
    add('ModelGuard (baseline)', before.httpUrl, () => cpuMs(before.pid));
  }

  try {
    const script = wrkScript(INFER_BODY, { 'content-type': 'application/json', authorization: `Bearer ${KEY}` });
    const at = (s: Subject): string => `${s.url}${INFER_PATH}`;
    const warmups: string[] = [];
    // Warm-up until the throughput stops rising: 2 s runs, at least 8 s, until two in a row are within
    // 5% (at most --warmup seconds). A Node process needs several seconds of load before V8 has
    // optimised its request path; 3-4 s left ModelGuard at half its speed (0.5x the node proxy).
    for (const s of subjects) {
      const limit = Number(args.warmup);
      let last = 0;
      let spent = 0;
      for (;;) {
        const w = await runWrk(wrk, at(s), { connections, seconds: 2, script });
        spent += 2;
        if (w.requests === 0 || w.errors > w.requests / 100) throw new Error(`${s.name}: ${w.errors} errors of ${w.requests} in the warm-up (is it answering 200?)`);
        const steady = last > 0 && Math.abs(w.rps - last) / last < 0.05;
        last = w.rps;
        if ((steady && spent >= 8) || spent >= limit) break;
      }
      warmups.push(`${s.name} ${spent} s`);
    }
    say(`warm-up: ${warmups.join(', ')}`);
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? subjects : [...subjects].reverse();
      for (const s of order) {
        const c0 = s.cpu?.() ?? NaN;
        const max: WrkResult = await runWrk(wrk, at(s), { connections, seconds, script });
        const c1 = s.cpu?.() ?? NaN;
        const one: WrkResult = await runWrk(wrk, at(s), { connections: 1, seconds: serialSeconds, script });
        s.rps.push(max.rps);
        s.cpuPerReq.push((c1 - c0) / max.requests);
        s.p50.push(one.p50);
        s.p99.push(one.p99);
        s.errors += max.errors + one.errors;
      }
      process.stderr.write(`round ${r + 1}/${rounds}: ${order.map((s) => `${s.name} ${Math.round(s.rps.at(-1) ?? 0)}/s`).join(', ')}\n`);
    }
    const mgPath = subjects.find((s) => s.name === 'ModelGuard') as Subject;
    for (const other of subjects.filter((s) => s.name === 'node proxy' || s.name === 'ModelGuard (baseline)')) {
      paired.push({ a: mgPath, b: other, ratios: await pairedRatios(wrk, mgPath, other, at, { connections: Math.max(1, connections / 2), seconds, script, runs: Number(args.paired) }) });
    }
  } finally {
    for (const s of services.reverse()) await s.stop();
  }

  const byName = (n: string): Subject | undefined => subjects.find((s) => s.name === n);
  const direct = byName('direct') as Subject;
  const node = byName('node proxy') as Subject;
  const nginx = byName('nginx');
  const perRound = (s: Subject, base: Subject | undefined): number => (base ? median(s.rps.map((v, i) => v / (base.rps[i] ?? NaN))) : NaN);
  say(
    table(
      ['path', 'req/s (median)', 'rounds', '× node proxy', '× nginx', 'CPU ms/req', 'p50 ms @1', 'p99 ms @1', 'added p50', 'added p99', 'errors'],
      subjects.map((s) => [
        s.name,
        fixed(median(s.rps), 0),
        s.rps.map((v) => Math.round(v)).join(' / '),
        fixed(perRound(s, node), 3),
        nginx ? fixed(perRound(s, nginx), 3) : '—',
        s.cpu ? fixed(median(s.cpuPerReq), 3) : '—',
        fixed(median(s.p50), 3),
        fixed(median(s.p99), 3),
        s === direct ? '—' : fixed(median(s.p50) - median(direct.p50), 3),
        s === direct ? '—' : fixed(median(s.p99) - median(direct.p99), 3),
        String(s.errors),
      ]),
    ),
  );
  say();
  const m = byName('ModelGuard') as Subject;
  const ratio = perRound(m, node);
  const addedP99Gap = median(m.p99) - median(node.p99);
  say('"added" = the path at one request at a time minus direct (medians over rounds); × = median of the per-round ratios.');
  say(`ModelGuard / node proxy throughput: ${fixed(ratio, 3)} (target ≥ ${TARGET_RPS_VS_NODE}: ${ratio >= TARGET_RPS_VS_NODE ? 'met' : 'NOT met'})`);
  say(
    `ModelGuard added p50 / p99 beyond the node proxy's: ${fixed(median(m.p50) - median(node.p50), 3)} / ${fixed(addedP99Gap, 3)} ms (target p99 ≤ ${TARGET_ADDED_P99_VS_NODE_MS}: ${addedP99Gap <= TARGET_ADDED_P99_VS_NODE_MS ? 'met' : 'NOT met'})`,
  );
  for (const p of paired) {
    if (p.ratios.length === 0) continue;
    say(
      `${p.a.name} and ${p.b.name} loaded at the same time (${p.ratios.length} runs): CPU per request ${p.a.name} ÷ ${p.b.name} ${fixed(median(p.ratios), 2)} (${fixed(Math.min(...p.ratios), 2)}–${fixed(Math.max(...p.ratios), 2)})`,
    );
  }
  if (profileDir) {
    const file = profileIn(profileDir);
    if (file) {
      keepDir(profileDir);
      say();
      say(`ModelGuard CPU profile (${file}):`);
      say(formatSummary(summarizeFile(file), 25));
    }
  }
}

/**
 * Two paths under load at once, one wrk each: per run, a's CPU per request over b's. A warm-up run
 * first (both processes are warm from the rounds; this settles the pair's sharing of the cores).
 */
async function pairedRatios(
  wrk: string,
  a: Subject,
  b: Subject,
  at: (s: Subject) => string,
  o: { connections: number; seconds: number; script: string; runs: number },
): Promise<number[]> {
  if (!a.cpu || !b.cpu || o.runs <= 0) return [];
  const both = (): Promise<[WrkResult, WrkResult]> =>
    Promise.all([runWrk(wrk, at(a), { connections: o.connections, seconds: o.seconds, script: o.script }), runWrk(wrk, at(b), { connections: o.connections, seconds: o.seconds, script: o.script })]);
  await both();
  const ratios: number[] = [];
  for (let i = 0; i < o.runs; i++) {
    const a0 = a.cpu();
    const b0 = b.cpu();
    const [wa, wb] = await both();
    const perA = (a.cpu() - a0) / wa.requests;
    const perB = (b.cpu() - b0) / wb.requests;
    if (wa.requests > 0 && wb.requests > 0) ratios.push(perA / perB);
  }
  return ratios;
}

runMain(main);
