/**
 * `up --config` and a standalone broker or proxy (`--config`) compile their files in a short-lived
 * worker thread. The configuration compiler (the
 * YAML parser, zod and the schemas) is needed only while files are read; loaded in the long-running
 * process it stays there for good (ES modules are never unloaded, and the schemas live in module
 * scope): about 6 MiB of V8 heap, 12 MiB resident in all. In a worker it goes away with the worker's
 * isolate once the snapshot (plain data) is posted back. docs/build.md, "Footprint".
 *
 * The same file is the worker's entry: run as a worker, it loads the compiler and answers once.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import type { Snapshot } from '../core/snapshot.ts';
import { ConfigError, type ConfigIssue } from '../config/issues.ts';
import { deepFreeze } from '../config/seal.ts';
import { WatchedFiles } from '../config/file-watch.ts';

interface Request {
  readonly path: string;
  readonly version?: number;
}

type Answer = { readonly snapshot: Snapshot } | { readonly issues: readonly ConfigIssue[] } | { readonly error: { readonly message: string; readonly code?: string } };

/** Loads and compiles the configuration at `path` in a worker thread; throws ConfigError as loadConfig does. */
export async function loadSnapshot(path: string, options: { version?: number } = {}): Promise<Snapshot> {
  const workerData: Request = { path, ...(options.version === undefined ? {} : { version: options.version }) };
  // From the TypeScript sources, the worker registers tsx's loader before it loads this file: the
  // parent registered it in code (bin/modelguard.js), which a worker does not inherit.
  const worker = import.meta.url.endsWith('.ts')
    ? new Worker(`import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((t) => { t.register(); return import(${JSON.stringify(import.meta.url)}); });`, { eval: true, workerData })
    : new Worker(new URL(import.meta.url), { workerData });
  let answer: Answer;
  try {
    answer = await new Promise<Answer>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`the configuration worker exited (${code}) without an answer`)));
    });
  } finally {
    void worker.terminate();
  }
  if ('snapshot' in answer) return deepFreeze(answer.snapshot);
  if ('issues' in answer) throw new ConfigError(answer.issues);
  throw Object.assign(new Error(answer.error.message), answer.error.code === undefined ? {} : { code: answer.error.code });
}

/** A YAML file or a directory of them, compiled in a worker thread at each load, re-read on change and on SIGHUP. */
export function snapshotFiles(path: string): WatchedFiles<Snapshot> {
  return new WatchedFiles(path, (p) => loadSnapshot(p));
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

if (!isMainThread && parentPort && (workerData as Request | undefined)?.path !== undefined) {
  const port = parentPort;
  void answer(workerData as Request).then((a) => port.postMessage(a));
}
