/**
 * What a ModelGuard process costs before it serves anything: time from process start until it is
 * ready (`/readyz` 200: its one backend probed healthy), and resident memory once idle. Each role
 * runs in its own process against a zero-cost upstream in this one, compiled (`dist/`, through
 * bin/modelguard.js as the image runs it) and from the sources (tsx, as a fresh clone without a build
 * does), in rotating order, several times: `up`, a standalone broker and proxy (`--config`), and a broker
 * and proxy managed by a controller (`--controller`, as the Kubernetes sidecar runs). Baseline in the
 * same run: a bare Node process that listens on one port (Node's own start and memory, which no Node
 * program goes below).
 *
 * RSS is read twice: `--idle` seconds after ready, and `--settle` seconds after ready. In between,
 * V8's memory reducer (it runs about 8 s after the last major GC of a quiet process) shrinks the
 * young generation that start-up grew (16 MiB semi-spaces back to 1 MiB): the settled figure is what
 * an idle sidecar holds for most of its life.
 *
 * The compiled runs are made as started by hand (`dist`), with glibc's trim threshold pinned at its
 * default (`dist+trim`: MALLOC_TRIM_THRESHOLD_=131072 in the environment, which only the process's
 * starter can set), and with one malloc arena for all threads (`dist+arena`: MALLOC_ARENA_MAX=1).
 * Without them, glibc raises the threshold when a large block is freed (V8 compiling undici's HTTP
 * parser, WebAssembly, frees a 2 MiB compiler zone a second or so after the first request) and then
 * keeps up to ~10 MiB of freed memory in a worker thread's malloc arena for good: the settled RSS of
 * one process varies by that much from one start to the next. docs/build.md, "Footprint".
 *
 *   npm run build && node --import tsx bench/overhead-footprint.ts [--runs 5] [--idle 3] [--settle 20]
 *        [--modes dist,dist+trim,dist+arena,sources]
 *
 * It refuses to start when dist/ is older than src/, and fails at the end when src/ changed while it
 * ran (the bin would have run the sources for the later "dist" rows): do not edit src/ meanwhile.
 *
 * Figures: median over runs; "× node" is the ratio to the bare Node baseline's median.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { sha256Hex } from '../src/security/identity.ts';
import { writeConfig } from './lib/config.ts';
import { binRuns, cpuMs, ROOT, rssBytes, runMain, waitForExit } from './lib/processes.ts';
import { fixed, machineLine, median, say, table } from './lib/stats.ts';

const { values: args } = parseArgs({
  options: { runs: { type: 'string', default: '5' }, idle: { type: 'string', default: '3' }, settle: { type: 'string', default: '20' }, modes: { type: 'string' } },
});
const RUNS = Number(args.runs);
const IDLE_MS = Number(args.idle) * 1000;
const SETTLE_MS = Math.max(IDLE_MS, Number(args.settle) * 1000);
const TOKEN = 'footprint-proxy-token';
const ANSWER = JSON.stringify({ model_name: 'demo', outputs: [{ name: 'output', shape: [1, 1], datatype: 'FP32', data: [1] }] });

const TARGETS = { upReadyMs: 600, upRssMiB: 70, proxyRssMiB: 60 };

function config(upstream: string): string {
  return writeConfig({ acceleratorUrl: upstream, slots: 4, proxyTokenSha256: sha256Hex(TOKEN) });
}

interface Started {
  readonly child: ChildProcess;
  /** ms from spawn to the readiness line on stdout. */
  readonly upMs: number;
  readonly match: RegExpExecArray;
}

/** Starts a process; `env` adds to this process's environment (an undefined value removes the variable). */
function start(argv: readonly string[], ready: RegExp, env: Record<string, string | undefined> = {}): Promise<Started> {
  const t0 = performance.now();
  const merged: Record<string, string | undefined> = { ...process.env, ...env };
  for (const [k, v] of Object.entries(merged)) if (v === undefined) delete merged[k];
  const child = spawn(process.execPath, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: merged });
  let out = '';
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = ready.exec(out);
      if (m) {
        child.stdout.removeAllListeners('data');
        child.stdout.resume();
        resolve({ child, upMs: performance.now() - t0, match: m });
      }
    });
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => reject(new Error(`${argv.join(' ')} exited ${code}:\n${out}`)));
  });
}

/** Polls /readyz every 2 ms; returns ms since `t0`-relative `upMs` was measured. */
async function readyAfter(admin: string, startedMs: number, t0: number): Promise<number> {
  for (;;) {
    const r = await request(`${admin}/readyz`).catch(() => undefined);
    if (r) {
      await r.body.dump();
      if (r.statusCode === 200) return startedMs + (performance.now() - t0);
    }
    await new Promise((res) => setTimeout(res, 2));
  }
}

interface Sample {
  readyMs: number;
  /** CPU (user + system) the process used until ready: steadier than wall time on a busy machine. */
  cpuMs: number;
  /** RSS `--idle` seconds after ready. */
  rssMiB: number;
  /** RSS `--settle` seconds after ready (after V8's memory reducer). */
  settledMiB: number;
}

/** Ready figures of processes that are up; their RSS is read after the idle and the settle delays (all at once). */
async function idleSamples(ps: readonly { child: ChildProcess; readyMs: number; cpuMs: number }[]): Promise<Sample[]> {
  const rss = (c: ChildProcess): number => rssBytes(c.pid as number) / 2 ** 20;
  await new Promise((r) => setTimeout(r, IDLE_MS));
  const early = ps.map((p) => rss(p.child));
  await new Promise((r) => setTimeout(r, SETTLE_MS - IDLE_MS));
  return ps.map((p, i) => ({ readyMs: p.readyMs, cpuMs: p.cpuMs, rssMiB: early[i] as number, settledMiB: rss(p.child) }));
}

/** glibc's own default trim threshold, pinned, and one malloc arena for all threads: see the header. */
const TRIM = { MALLOC_TRIM_THRESHOLD_: '131072' };
const ARENA = { MALLOC_ARENA_MAX: '1' };
const GLIBC_DEFAULTS = { MALLOC_TRIM_THRESHOLD_: undefined, MALLOC_ARENA_MAX: undefined };
const ALL_MODES = ['dist', 'dist+trim', 'dist+arena', 'sources'] as const;
type Mode = (typeof ALL_MODES)[number];
const DIST = ['bin/modelguard.js'];
/** How each mode runs the CLI (its arguments before the command), and the environment of its processes. */
const MG: Record<Mode, readonly string[]> = { dist: DIST, 'dist+trim': DIST, 'dist+arena': DIST, sources: ['--import', 'tsx', 'src/cli/main.ts'] };
const ENV: Record<Mode, Record<string, string | undefined>> = {
  dist: GLIBC_DEFAULTS,
  'dist+trim': { ...GLIBC_DEFAULTS, ...TRIM },
  'dist+arena': { ...GLIBC_DEFAULTS, ...ARENA },
  sources: GLIBC_DEFAULTS,
};
const MODES: readonly Mode[] = args.modes === undefined ? ALL_MODES : args.modes.split(',').map((m) => {
  if (!(ALL_MODES as readonly string[]).includes(m)) throw new Error(`--modes: unknown mode ${m} (one of ${ALL_MODES.join(', ')})`);
  return m as Mode;
});

async function measureUp(mode: Mode, dir: string): Promise<Sample> {
  const s = await start([...MG[mode], 'up', '--config', dir, '--http', '127.0.0.1:0', '--grpc', '127.0.0.1:0', '--admin', '127.0.0.1:0'], /admin\s+(http:\/\/\S+)/, ENV[mode]);
  try {
    const readyMs = await readyAfter(s.match[1] as string, s.upMs, performance.now());
    const [sample] = await idleSamples([{ child: s.child, readyMs, cpuMs: cpuMs(s.child.pid as number) }]);
    return sample as Sample;
  } finally {
    await waitForExit(s.child);
  }
}

/** A broker, then a proxy sending to it, each with `source` (its configuration flags and name); both idle together. */
async function measurePair(mode: Mode, source: { broker: readonly string[]; proxy: readonly string[] }): Promise<{ broker: Sample; proxy: Sample }> {
  const b = await start([...MG[mode], 'broker', ...source.broker, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'], /broker listener (http:\/\/\S+)[\s\S]*admin\s+(http:\/\/\S+)/, ENV[mode]);
  try {
    const brokerReady = await readyAfter(b.match[2] as string, b.upMs, performance.now());
    const brokerCpu = cpuMs(b.child.pid as number);
    const p = await start(
      [...MG[mode], 'proxy', ...source.proxy, '--broker', b.match[1] as string, '--listen', '127.0.0.1:0', '--grpc', '127.0.0.1:0', '--admin', '127.0.0.1:0'],
      /admin\s+(http:\/\/\S+)/,
      { ...ENV[mode], MODELGUARD_PROXY_TOKEN: TOKEN },
    );
    try {
      const proxyReady = await readyAfter(p.match[1] as string, p.upMs, performance.now());
      const [broker, proxy] = await idleSamples([
        { child: b.child, readyMs: brokerReady, cpuMs: brokerCpu },
        { child: p.child, readyMs: proxyReady, cpuMs: cpuMs(p.child.pid as number) },
      ]);
      return { broker: broker as Sample, proxy: proxy as Sample };
    } finally {
      await waitForExit(p.child);
    }
  } finally {
    await waitForExit(b.child);
  }
}

/** Standalone: both read the files (`--config`). */
function measureSplit(mode: Mode, dir: string): Promise<{ broker: Sample; proxy: Sample }> {
  return measurePair(mode, { broker: ['--config', dir], proxy: ['--config', dir] });
}

/** A controller over the same files, and a broker and a proxy it manages (`--controller`): no configuration files on the nodes. */
async function measureManaged(mode: Mode, dir: string): Promise<{ broker: Sample; proxy: Sample }> {
  const c = await start([...MG[mode], 'controller', '--config', dir, '--admin', '127.0.0.1:0'], /controller +(http:\/\/\S+)/, ENV[mode]);
  try {
    const ctl = c.match[1] as string;
    return await measurePair(mode, { broker: ['--controller', ctl, '--name', 'node-1'], proxy: ['--controller', ctl, '--name', 'proxy-1'] });
  } finally {
    await waitForExit(c.child);
  }
}

const BARE = `require('node:http').createServer().listen(0, '127.0.0.1', function () { console.log('listening ' + this.address().port); });`;

async function measureBare(): Promise<Sample> {
  const s = await start(['-e', BARE], /listening (\d+)/);
  try {
    const [sample] = await idleSamples([{ child: s.child, readyMs: s.upMs, cpuMs: cpuMs(s.child.pid as number) }]);
    return sample as Sample;
  } finally {
    await waitForExit(s.child);
  }
}

async function main(): Promise<void> {
  if (binRuns() !== 'dist') throw new Error('dist/ is missing or older than src/ (the bin would run the sources): run `npm run build` first');
  const upstream = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(ANSWER));
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const dir = config(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`);

  say('ModelGuard footprint: start to ready, and idle RSS, per role');
  say(await machineLine());
  say(`${RUNS} runs, rotating order (dist+trim: MALLOC_TRIM_THRESHOLD_=${TRIM.MALLOC_TRIM_THRESHOLD_}; dist+arena: MALLOC_ARENA_MAX=${ARENA.MALLOC_ARENA_MAX}); RSS read ${IDLE_MS / 1000} s and ${SETTLE_MS / 1000} s (settled) after ready; one kserve-v2-http backend (zero-cost upstream in the bench process)`);
  say('note: a shared machine; read the ratios and medians, not single figures');
  say();

  const rows: Record<string, Sample[]> = {};
  const add = (k: string, s: Sample): void => void (rows[k] ??= []).push(s);
  for (let i = 0; i < RUNS; i++) {
    const modes = MODES;
    const order = [...modes.slice(i % modes.length), ...modes.slice(0, i % modes.length)];
    add('bare node (listen on one port)', await measureBare());
    for (const mode of order) {
      add(`up --config, ${mode}`, await measureUp(mode, dir));
      const split = await measureSplit(mode, dir);
      add(`broker --config, ${mode}`, split.broker);
      add(`proxy --config, ${mode}`, split.proxy);
      const managed = await measureManaged(mode, dir);
      add(`broker --controller, ${mode}`, managed.broker);
      add(`proxy --controller, ${mode}`, managed.proxy);
    }
    process.stderr.write(`run ${i + 1}/${RUNS} done\n`);
  }
  const bare = rows['bare node (listen on one port)'] as Sample[];
  const bareReady = median(bare.map((s) => s.readyMs));
  const bareSettled = median(bare.map((s) => s.settledMiB));
  const bareCpu = median(bare.map((s) => s.cpuMs));
  say(
    table(
      ['process', 'ready ms (median)', 'min–max', '× node', 'CPU ms to ready', '× node', `RSS MiB @${IDLE_MS / 1000} s`, 'min–max', `settled RSS MiB @${SETTLE_MS / 1000} s`, 'min–max', '× node'],
      Object.entries(rows).map(([name, ss]) => {
        const r = ss.map((s) => s.readyMs);
        const c = median(ss.map((s) => s.cpuMs));
        const m = ss.map((s) => s.rssMiB);
        const st = ss.map((s) => s.settledMiB);
        return [
          name,
          fixed(median(r), 0),
          `${fixed(Math.min(...r), 0)}–${fixed(Math.max(...r), 0)}`,
          fixed(median(r) / bareReady),
          fixed(c, 0),
          fixed(c / bareCpu),
          fixed(median(m), 1),
          `${fixed(Math.min(...m), 1)}–${fixed(Math.max(...m), 1)}`,
          fixed(median(st), 1),
          `${fixed(Math.min(...st), 1)}–${fixed(Math.max(...st), 1)}`,
          fixed(median(st) / bareSettled),
        ];
      }),
    ),
  );
  say();
  const med = (k: string, f: (s: Sample) => number): number => median((rows[k] ?? []).map(f));
  const upReady = med(`up --config, ${MODES[0] ?? 'dist'}`, (s) => s.readyMs);
  const verdict = (v: number, limit: number, digits: number): string => `${fixed(v, digits)} ${v <= limit ? 'met' : 'NOT met'}`;
  say(`targets (compiled; idle RSS = settled, @${SETTLE_MS / 1000} s):`);
  say(`  up ready ≤ ${TARGETS.upReadyMs} ms: ${verdict(upReady, TARGETS.upReadyMs, 0)}`);
  for (const mode of MODES.filter((m) => m !== 'sources')) {
    const up = `up --config, ${mode}`;
    say(`  ${mode}: up idle RSS ≤ ${TARGETS.upRssMiB} MiB: ${verdict(med(up, (s) => s.settledMiB), TARGETS.upRssMiB, 1)} (@${IDLE_MS / 1000} s: ${fixed(med(up, (s) => s.rssMiB), 1)})`);
    for (const role of ['proxy --controller', 'proxy --config']) {
      const k = `${role}, ${mode}`;
      say(`  ${mode}: ${role} idle RSS ≤ ${TARGETS.proxyRssMiB} MiB: ${verdict(med(k, (s) => s.settledMiB), TARGETS.proxyRssMiB, 1)} (@${IDLE_MS / 1000} s: ${fixed(med(k, (s) => s.rssMiB), 1)})`);
    }
  }
  upstream.close();
  // An edit of src/ during the run makes the bin run the sources from then on: the dist rows would lie.
  if (binRuns() !== 'dist') throw new Error('src/ changed during the run, so later "dist" starts ran the sources: run it again without editing');
}

runMain(main);
