/**
 * Child processes of a benchmark run: the simulated accelerator, ModelGuard, the reference proxies
 * and the load generator each run in their own process, so the process under test never shares an
 * event loop with the load. Every child is registered here and killed when the benchmark exits,
 * fails or is interrupted.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ROOT = new URL('../../', import.meta.url).pathname;

const live = new Set<ChildProcess>();
/** Children started as leaders of their own process group (their descendants die with them). */
const groupLeaders = new WeakSet<ChildProcess>();
const tempDirs = new Set<string>();

function signal(child: ChildProcess, sig: NodeJS.Signals): void {
  if (groupLeaders.has(child) && child.pid !== undefined) {
    try {
      process.kill(-child.pid, sig);
      return;
    } catch {
      // the group is gone; fall through to the process itself
    }
  }
  child.kill(sig);
}

function killAll(): void {
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null) signal(child, 'SIGKILL');
  }
  live.clear();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

// 'exit' handlers must be synchronous: SIGKILL is the only thing that can be done there.
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => {
    process.stderr.write(`\n${sig}: stopping child processes\n`);
    killAll();
    process.exit(130);
  });
}

/** A temporary directory removed when the benchmark exits. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `mg-bench-${prefix}-`));
  tempDirs.add(dir);
  return dir;
}

/** Keeps a directory (e.g. CPU profiles) after exit. */
export function keepDir(dir: string): void {
  tempDirs.delete(dir);
}

/** The soft and hard limits on open files that children get (read from a shell). */
export function fileLimits(): { soft: number; hard: number } {
  const out = spawnSync('sh', ['-c', 'ulimit -Sn; ulimit -Hn'], { encoding: 'utf8' }).stdout.trim().split('\n');
  const parse = (s: string | undefined): number => (s === undefined || s === 'unlimited' ? 1_048_576 : Number(s));
  return { soft: parse(out[0]), hard: parse(out[1]) };
}

export interface Service {
  readonly child: ChildProcess;
  readonly pid: number;
  /** SIGTERM, then SIGKILL after `graceMs`. Resolves when the process has exited. */
  stop(graceMs?: number): Promise<void>;
}

export interface SpawnOptions {
  /** Printed on stdout when the service is ready; its groups are returned. */
  readonly ready: RegExp;
  readonly cwd?: string;
  readonly timeoutMs?: number;
  /** Extra stdio entry 'ipc' for node children driven by messages. */
  readonly ipc?: boolean;
  /** Raise the soft open-files limit to the hard limit first (exec'd through sh, same pid). */
  readonly raiseFileLimit?: boolean;
  /** Own process group, signalled as a whole (for servers that fork workers, like nginx). */
  readonly processGroup?: boolean;
}

export function spawnTracked(name: string, command: string, args: readonly string[], opts: Omit<SpawnOptions, 'ready'>): ChildProcess {
  const [cmd, argv] = opts.raiseFileLimit ? ['sh', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', name, command, ...args]] : [command, [...args]];
  const child = spawn(cmd, argv, {
    cwd: opts.cwd ?? ROOT,
    stdio: opts.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
    detached: opts.processGroup === true,
  });
  live.add(child);
  if (opts.processGroup) groupLeaders.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** Resolves when the child has exited: SIGTERM (unless `term` is false), then SIGKILL after `graceMs`. */
export function waitForExit(child: ChildProcess, graceMs = 3000, term = true): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => signal(child, 'SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    if (term) signal(child, 'SIGTERM');
  });
}

/** Starts a long-running service and waits until it prints its readiness line. */
export async function startService(name: string, command: string, args: readonly string[], opts: SpawnOptions): Promise<Service & { match: RegExpExecArray }> {
  const child = spawnTracked(name, command, args, opts);
  let out = '';
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
    if (err.length > 20_000) err = err.slice(-10_000);
  });
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: not ready after ${opts.timeoutMs ?? 20_000} ms\n${out}${err}`)), opts.timeoutMs ?? 20_000);
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = opts.ready.exec(out);
      if (m) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        // Keep draining stdout so a chatty child never blocks on a full pipe.
        child.stdout?.resume();
        resolve(m);
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}) before it was ready:\n${out}${err}`));
    });
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
  child.stdout?.on('data', () => undefined);
  if (child.pid === undefined) throw new Error(`${name}: no pid`);
  return { child, pid: child.pid, match, stop: (graceMs) => waitForExit(child, graceMs) };
}

/** The simulated accelerator (`modelguard demo-model --mode simulated`) in its own process. */
export async function startAccelerator(opts: { slots: number; serviceTime: string; models?: string }): Promise<Service & { url: string }> {
  const s = await startService(
    'demo-model',
    process.execPath,
    ['bin/modelguard.js', 'demo-model', '--listen', '127.0.0.1:0', '--mode', 'simulated', '--slots', String(opts.slots), '--service-time', opts.serviceTime, '--models', opts.models ?? 'demo'],
    { ready: /listening on (http:\/\/[\d.]+:\d+)/, raiseFileLimit: true },
  );
  return { ...s, url: s.match[1]! };
}

/** ModelGuard (`modelguard up --config`) in its own process. */
export async function startModelGuard(configDir: string, opts: { nodeArgs?: readonly string[]; root?: string } = {}): Promise<Service & { httpUrl: string; adminUrl: string }> {
  const s = await startService(
    'modelguard',
    process.execPath,
    [...(opts.nodeArgs ?? []), join(opts.root ?? ROOT, 'bin/modelguard.js'), 'up', '--config', configDir, '--http', '127.0.0.1:0', '--grpc', '127.0.0.1:0', '--admin', '127.0.0.1:0'],
    { ready: /inference HTTP\s+(http:\/\/[\d.]+:\d+)[\s\S]*admin\s+(http:\/\/[\d.]+:\d+)/, raiseFileLimit: true },
  );
  return { ...s, httpUrl: s.match[1]!, adminUrl: s.match[2]! };
}

/** Resident set size of a process in bytes (VmRSS from /proc/<pid>/status), or NaN. */
export function rssBytes(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Awaits a condition, polling every `everyMs`; throws after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Runs a benchmark's main function: prints a failure and exits non-zero; children are killed on exit. */
export function runMain(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}

/** The baseline Node reverse proxy (bench/lib/node-proxy.ts) in its own process. */
export async function startNodeProxy(upstream: string, connections: number, nodeArgs: readonly string[] = []): Promise<Service & { url: string }> {
  const s = await startService('node-proxy', process.execPath, [...nodeArgs, '--import', 'tsx', 'bench/lib/node-proxy.ts', upstream, String(connections)], {
    ready: /listening on (http:\/\/[\d.]+:\d+)/,
    raiseFileLimit: true,
  });
  return { ...s, url: s.match[1]! };
}

/** CPU time (user + system) a process has used so far, in ms; NaN when it cannot be read. */
export function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
    return (ticks * 1000) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** CPU ms of a process and its direct children (nginx: master and workers). */
export function treeCpuMs(pid: number): number {
  let total = cpuMs(pid);
  try {
    for (const child of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/)) {
      if (child) total += cpuMs(Number(child));
    }
  } catch {
    // no children file: the process alone
  }
  return total;
}

/**
 * Which code `bin/modelguard.js` under `root` runs: `dist` (a build newer than every file in src/),
 * `sources` (src/ changed after the build, or no build: the bin falls back to tsx). The same test as
 * the bin's own. A benchmark of the compiled build checks it before and after its run: an edit made
 * while it runs turns later starts into source runs.
 */
export function binRuns(root: string = ROOT): 'dist' | 'sources' {
  const mtime = (p: string): number | undefined => {
    try {
      return statSync(p).mtimeMs;
    } catch {
      return undefined;
    }
  };
  const built = mtime(join(root, 'dist/BUILD'));
  if (built === undefined) return 'sources';
  for (const e of readdirSync(join(root, 'src'), { recursive: true, withFileTypes: true })) {
    if ((mtime(join(e.parentPath, e.name)) ?? 0) > built) return 'sources';
  }
  return 'dist';
}
