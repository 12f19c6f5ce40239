/**
 * A proxy keeps undici's HTTP parser (llhttp, WebAssembly) on V8's baseline compiler (Liftoff).
 *
 * About a second after a process's first undici request, V8 optimizes llhttp in the background
 * (TurboFan; one very large function): the compile peaks at ~35 MiB of malloc on a V8 worker
 * thread, and glibc then often keeps ~10 MiB of that thread's arena resident for good. A sidecar
 * runs once per app on a small box, so that memory counts N times; the baseline tier parses a
 * response slower (about 1–2 µs more per backend call, measured with both builds under load at
 * once), which is a few percent of a proxy's CPU per request. Settled RSS of a managed proxy:
 * 67 MiB by default (58 in lucky starts), 58 MiB with this (docs/build.md, "Footprint").
 *
 * The flag must be set before undici compiles the parser (its first connection): the proxy command
 * sets it before loading its roles. An explicit choice on node's command line wins: start node
 * with `--no-liftoff-only` (or any other --liftoff / --wasm-tier flag) to keep V8's default.
 */
import v8 from 'node:v8';

/** Sets `--liftoff-only` unless node's own arguments already choose a WebAssembly tier; true when set. */
export function keepWasmOnBaselineTier(execArgv: readonly string[] = process.execArgv): boolean {
  if (execArgv.some((a) => /^--(no-)?(liftoff|wasm-tier|wasm-dynamic-tiering)/.test(a.replaceAll('_', '-')))) return false;
  v8.setFlagsFromString('--liftoff-only');
  return true;
}
