/**
 * Which files a ModelGuard process loaded: a preload (`node --import`, through NODE_OPTIONS) that
 * records every module and writes the list when the process exits, with V8's heap statistics then
 * (`v8.getHeapStatistics()`: its peak of malloc'ed memory shows a large background compile). ES modules are seen by a loader
 * hook (off the main thread in Node 20; it posts each URL back), CommonJS files by the require cache
 * (a package that requires its own files never passes the ESM hooks). The preload is plain
 * JavaScript written to a temp dir, so the traced process needs no TypeScript loader of its own.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PRELOAD = `
import { register, createRequire } from 'node:module';
import { MessageChannel } from 'node:worker_threads';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
const out = process.env.MODELGUARD_LOAD_TRACE;
if (out) {
  const seen = new Set();
  const { port1, port2 } = new MessageChannel();
  port1.on('message', (url) => { if (typeof url === 'string' && url.startsWith('file:')) seen.add(fileURLToPath(url)); });
  port1.unref();
  register('./hooks.mjs', { parentURL: import.meta.url, data: { port: port2 }, transferList: [port2] });
  const cache = createRequire(import.meta.url).cache;
  process.on('exit', () => {
    for (const file of Object.keys(cache)) seen.add(file);
    writeFileSync(out, JSON.stringify([...seen]));
    writeFileSync(out + '.heap', JSON.stringify(v8.getHeapStatistics()));
  });
}
`;

const HOOKS = `
let port;
export function initialize(data) { port = data.port; }
export async function load(url, context, next) { port?.postMessage(url); return next(url, context); }
`;

export interface LoadTrace {
  /** Environment for the child: NODE_OPTIONS with the preload, and where to write the list. */
  env(name: string): Record<string, string>;
  /** The files the child named `name` loaded (after it exited). */
  files(name: string): string[];
  /** The npm packages among them (scoped names whole). */
  packages(name: string): Set<string>;
  /** `v8.getHeapStatistics()` of the child named `name` as it exited. */
  heap(name: string): { readonly peak_malloced_memory: number; readonly malloced_memory: number };
}

export function loadTrace(): LoadTrace {
  const dir = mkdtempSync(join(tmpdir(), 'mg-load-trace-'));
  writeFileSync(join(dir, 'preload.mjs'), PRELOAD);
  writeFileSync(join(dir, 'hooks.mjs'), HOOKS);
  const out = (name: string): string => join(dir, `${name}.json`);
  const files = (name: string): string[] => JSON.parse(readFileSync(out(name), 'utf8')) as string[];
  return {
    env: (name) => ({ NODE_OPTIONS: `${process.env['NODE_OPTIONS'] ?? ''} --import=${join(dir, 'preload.mjs')}`.trim(), MODELGUARD_LOAD_TRACE: out(name) }),
    files,
    heap: (name) => JSON.parse(readFileSync(`${out(name)}.heap`, 'utf8')) as ReturnType<LoadTrace['heap']>,
    packages: (name) => {
      const found = new Set<string>();
      for (const f of files(name)) {
        for (const m of f.matchAll(/node_modules\/((?:@[^/]+\/)?[^/]+)\//g)) found.add(m[1] as string);
      }
      return found;
    },
  };
}
