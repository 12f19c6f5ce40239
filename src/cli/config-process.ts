/**
 * `up --config` and a standalone broker or proxy (`--config`) compile their files in a short-lived
 * child process. The configuration compiler (the YAML parser, zod and the schemas) is needed only
 * while files are read; loaded in the long-running process it stays there for good (ES modules are
 * never unloaded, and the schemas live in module scope): about 6 MiB of V8 heap, 12 MiB resident in
 * all. A worker thread, used before, left about 3.5 MiB behind (the pages of the `node` executable
 * its start and the compile touched, and its malloc arena): a standalone proxy settled at 61.4–62.1
 * MiB, against 57.9–58.4 with a child process. docs/build.md, "Footprint".
 *
 * The same file is the child's entry: run with MODELGUARD_CONFIG_REQUEST set, it loads the compiler,
 * answers once over the IPC channel and exits. The snapshot is plain data, sent with V8's
 * serializer (`serialization: 'advanced'`, as a worker's postMessage would).
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Snapshot } from '../core/snapshot.ts';
import { ConfigError, type ConfigIssue } from '../config/issues.ts';
import { deepFreeze } from '../config/seal.ts';
import { WatchedFiles } from '../config/file-watch.ts';

const REQUEST_ENV = 'MODELGUARD_CONFIG_REQUEST';

interface Request {
  readonly path: string;
  readonly version?: number;
}

type Answer = { readonly snapshot: Snapshot } | { readonly issues: readonly ConfigIssue[] } | { readonly error: { readonly message: string; readonly code?: string } };

/** Loads and compiles the configuration at `path` in a child process; throws ConfigError as loadConfig does. */
export async function loadSnapshot(path: string, options: { version?: number } = {}): Promise<Snapshot> {
  const request: Request = { path, ...(options.version === undefined ? {} : { version: options.version }) };
  // From the TypeScript sources, the child runs through tsx's loader (resolved from here, so the
  // working directory does not matter); compiled, it needs none. No other node flag is passed on
  // (a --cpu-prof of the parent is not the child's business).
  const execArgv = import.meta.url.endsWith('.ts') ? ['--import', import.meta.resolve('tsx')] : [];
  const child = fork(fileURLToPath(import.meta.url), [], {
    execArgv,
    serialization: 'advanced',
    env: { ...process.env, [REQUEST_ENV]: JSON.stringify(request) },
    // Its stderr is the parent's (a crash says why); it prints nothing else.
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  let answer: Answer;
  try {
    answer = await new Promise<Answer>((resolve, reject) => {
      child.once('message', (m) => resolve(m as Answer));
      child.once('error', reject);
      child.once('exit', (code, signal) => reject(new Error(`the configuration process exited (${signal ?? code}) without an answer`)));
    });
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill();
  }
  if ('snapshot' in answer) return deepFreeze(answer.snapshot);
  if ('issues' in answer) throw new ConfigError(answer.issues);
  throw Object.assign(new Error(answer.error.message), answer.error.code === undefined ? {} : { code: answer.error.code });
}

/** A YAML file or a directory of them, compiled in a child process at each load, re-read on change and on SIGHUP. */
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

const asked = process.env[REQUEST_ENV];
if (asked !== undefined && process.send !== undefined) {
  const send = process.send.bind(process);
  // The parent went away (killed, or gave up): nobody waits for the answer.
  process.once('disconnect', () => process.exit(0));
  void answer(JSON.parse(asked) as Request).then((a) => send(a, () => process.exit(0)));
}
