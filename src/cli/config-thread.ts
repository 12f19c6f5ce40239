/**
 * `up --config` and a standalone broker or proxy (`--config`) compile their files outside their own
 * heap. The configuration compiler (the YAML parser, zod and the schemas) is needed only while files
 * are read; loaded in the long-running process it stays there for good (ES modules are never
 * unloaded, and the schemas live in module scope): about 6 MiB of V8 heap, 12 MiB resident in all.
 *
 * Two ways, chosen per role from measurements (docs/build.md, "Footprint"):
 * - a short-lived worker thread (`up`, a broker): its isolate goes away once the snapshot (plain
 *   data) is posted back; the process keeps about 3 MiB of what the thread's start touched;
 * - a short-lived child process (a proxy, which runs once per app on a box): nothing stays (a
 *   standalone proxy settled at 57.7–58.4 MiB against 61.3 with the thread, both measured with
 *   node's eager source maps), for a process start per load. For `up` and a broker it did worse
 *   (`up` 69.0 against 62.0 MiB), for reasons not found.
 *
 * The same file is the worker's and the child's entry: it loads the compiler, answers once and ends.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import type { Snapshot } from '../core/snapshot.ts';
import { ConfigError, type ConfigIssue } from '../config/issues.ts';
import { deepFreeze } from '../config/seal.ts';
import { WatchedFiles } from '../config/file-watch.ts';

interface Request {
  readonly path: string;
  readonly version?: number;
}

/** Where the compiler runs: a worker thread, or a child process. */
export type Isolation = 'thread' | 'process';

const REQUEST_ENV = 'MODELGUARD_CONFIG_REQUEST';

type Answer = { readonly snapshot: Snapshot } | { readonly issues: readonly ConfigIssue[] } | { readonly error: { readonly message: string; readonly code?: string } };

/** Loads and compiles the configuration at `path` in a worker thread or a child process; throws ConfigError as loadConfig does. */
export async function loadSnapshot(path: string, options: { version?: number; isolation?: Isolation } = {}): Promise<Snapshot> {
  const request: Request = { path, ...(options.version === undefined ? {} : { version: options.version }) };
  const answer = options.isolation === 'process' ? await inChild(request) : await inWorker(request);
  if ('snapshot' in answer) return deepFreeze(answer.snapshot);
  if ('issues' in answer) throw new ConfigError(answer.issues);
  throw Object.assign(new Error(answer.error.message), answer.error.code === undefined ? {} : { code: answer.error.code });
}

async function inWorker(workerData: Request): Promise<Answer> {
  // From the TypeScript sources, the worker registers tsx's loader before it loads this file: the
  // parent registered it in code (bin/modelguard.js), which a worker does not inherit.
  const worker = import.meta.url.endsWith('.ts')
    ? new Worker(`import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((t) => { t.register(); return import(${JSON.stringify(import.meta.url)}); });`, { eval: true, workerData })
    : new Worker(new URL(import.meta.url), { workerData });
  try {
    return await new Promise<Answer>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`the configuration worker exited (${code}) without an answer`)));
    });
  } finally {
    void worker.terminate();
  }
}

async function inChild(request: Request): Promise<Answer> {
  // From the sources the child runs through tsx, resolved from here (not from the working
  // directory); compiled it needs no flag. The parent's own node flags are not passed on.
  const child = fork(fileURLToPath(import.meta.url), [], {
    execArgv: import.meta.url.endsWith('.ts') ? ['--import', import.meta.resolve('tsx')] : [],
    serialization: 'advanced',
    env: { ...process.env, [REQUEST_ENV]: JSON.stringify(request) },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  try {
    return await new Promise<Answer>((resolve, reject) => {
      child.once('message', (m) => resolve(m as Answer));
      child.once('error', reject);
      child.once('exit', (code, signal) => reject(new Error(`the configuration process exited (${signal ?? code}) without an answer`)));
    });
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill();
  }
}

/** A YAML file or a directory of them, compiled at each load (`isolation`), re-read on change and on SIGHUP. */
export function snapshotFiles(path: string, isolation: Isolation = 'thread'): WatchedFiles<Snapshot> {
  return new WatchedFiles(path, (p) => loadSnapshot(p, { isolation }));
}

async function answer(request: Request): Promise<Answer> {
  try {
    const { loadConfig } = await import('../config/load.ts');
    return { snapshot: (await loadConfig(request.path, request.version === undefined ? {} : { version: request.version })).snapshot };
  } catch (err) {
    if (err instanceof ConfigError) return { issues: err.issues };
    const e = err as NodeJS.ErrnoException;
    return { error: { message: e instanceof Error ? e.message : String(err), ...(typeof e.code === 'string' ? { code: e.code } : {}) } };
  }
}

const asked = process.env[REQUEST_ENV];
if (isMainThread && asked !== undefined && process.send !== undefined) {
  const send = process.send.bind(process);
  // The parent went away (killed, or gave up): nobody waits for the answer.
  process.once('disconnect', () => process.exit(0));
  void answer(JSON.parse(asked) as Request).then((a) => send(a, () => process.exit(0)));
}

if (!isMainThread && parentPort && (workerData as Request | undefined)?.path !== undefined) {
  const port = parentPort;
  void answer(workerData as Request).then((a) => port.postMessage(a));
}
