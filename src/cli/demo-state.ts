/**
 * What `modelguard up` (demo) tells `modelguard demo-load`: where it listens and the demo apps'
 * keys, in a file only this user can read (the keys are printed on the same terminal anyway), so
 * `demo-load` needs no flags. Removed when the demo stops.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

export interface DemoState {
  readonly httpUrl: string;
  readonly adminUrl: string;
  readonly model: string;
  readonly apps: readonly { readonly name: string; readonly group: string; readonly key: string }[];
  readonly pid: number;
}

/** MODELGUARD_DEMO_FILE, else $XDG_RUNTIME_DIR/modelguard/demo.json, else ~/.cache/modelguard/demo.json. */
export function demoStatePath(): string {
  const env = process.env['MODELGUARD_DEMO_FILE'];
  if (env) return env;
  return join(process.env['XDG_RUNTIME_DIR'] || join(homedir(), '.cache'), 'modelguard', 'demo.json');
}

export function writeDemoState(state: DemoState): string {
  const path = demoStatePath();
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  rmSync(path, { force: true }); // never write through a file someone else left there
  writeFileSync(path, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  return path;
}

export function removeDemoState(pid: number): void {
  const path = demoStatePath();
  try {
    if ((JSON.parse(readFileSync(path, 'utf8')) as DemoState).pid === pid) rmSync(path, { force: true });
  } catch {
    // already gone, or another demo's
  }
}

export function readDemoState(): DemoState {
  const path = demoStatePath();
  let state: DemoState;
  try {
    state = JSON.parse(readFileSync(path, 'utf8')) as DemoState;
  } catch {
    throw new Error(`no running demo found (${path}): start it with \`npx modelguard up\` in another terminal, or drive your own setup with --config PATH --key APP=KEY`);
  }
  return state;
}
