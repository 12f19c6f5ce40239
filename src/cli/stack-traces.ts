/**
 * Stack traces of the compiled build point into src/*.ts, with a source map read only when a stack
 * that passes through its module is formatted.
 *
 * Node's own support (`--enable-source-maps`, `process.setSourceMapsEnabled`) reads and keeps the
 * map of every module as it is loaded: about 1 MiB resident in a proxy that may never print a stack
 * (docs/build.md, "Footprint"). Here `Error.prepareStackTrace` formats a stack as V8 would, and
 * rewrites each frame in a module under `root` to its original position, loading that module's map
 * (`<file>.map`, beside it, as tsc writes it) the first time one of its frames is printed.
 */
import { readFileSync } from 'node:fs';
import { SourceMap, type SourceMapPayload } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** A V8 call site: its toString is the frame as V8 prints it (without the leading "at"). */
type Frame = NodeJS.CallSite & { toString(): string };

/** The map of each module seen so far, by its file URL; null when it has none or it does not parse. */
const maps = new Map<string, SourceMap | null>();

/** How many maps have been read from disk (for the test that proves they are read lazily). */
export function mapsRead(): number {
  return maps.size;
}

/** Formats every stack from now on with original positions for the modules under `root` (a directory URL). */
export function mapStackTraces(root: URL): void {
  const prefix = root.href.endsWith('/') ? root.href : `${root.href}/`;
  Error.prepareStackTrace = (error: unknown, frames: Frame[]): string => {
    let text = header(error);
    for (const frame of frames) text += `\n    at ${mapped(frame, prefix)}`;
    return text;
  };
}

/** The first line of a stack, as V8 writes it. */
function header(error: unknown): string {
  try {
    return Error.prototype.toString.call(error);
  } catch {
    try {
      return String(error);
    } catch {
      return '<error>';
    }
  }
}

/**
 * One frame as V8 prints it, its position replaced by the original one when its module is under the
 * prefix and has a map. Formatting a stack must never fail: anything unexpected prints the frame as is.
 */
function mapped(frame: Frame, prefix: string): string {
  const text = frame.toString();
  try {
    return withOriginalPosition(frame, text, prefix);
  } catch {
    return text;
  }
}

function withOriginalPosition(frame: Frame, text: string, prefix: string): string {
  const file = frame.getFileName();
  const line = frame.getLineNumber();
  const column = frame.getColumnNumber();
  if (file === undefined || file === null || line === null || column === null) return text;
  const url = file.startsWith('file://') ? file : pathToFileURL(file).href;
  if (!url.startsWith(prefix)) return text;
  const entry = mapOf(url)?.findEntry(line - 1, column - 1);
  if (entry === undefined || !('originalSource' in entry)) return text;
  // As node's own source maps print it: the original file's path.
  const original = `${fileURLToPath(new URL(entry.originalSource, url))}:${entry.originalLine + 1}:${entry.originalColumn + 1}`;
  const at = `${file}:${line}:${column}`;
  const i = text.lastIndexOf(at);
  return i < 0 ? text : text.slice(0, i) + original + text.slice(i + at.length);
}

function mapOf(url: string): SourceMap | null {
  let map = maps.get(url);
  if (map !== undefined) return map;
  try {
    map = new SourceMap(JSON.parse(readFileSync(new URL(`${url}.map`), 'utf8')) as SourceMapPayload);
  } catch {
    map = null;
  }
  maps.set(url, map);
  return map;
}
