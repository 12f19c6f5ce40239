/**
 * The edge of the program for configuration: read a file or a directory of YAML resources (or take
 * resource objects built in code), validate them all, and compile them into a Snapshot. Any problem
 * throws one ConfigError listing every issue with file, line and hint.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { LineCounter, isMap, isNode, isScalar, parseAllDocuments } from 'yaml';
import type { Document } from 'yaml';
import type { Snapshot } from '../core/snapshot.ts';
import { ConfigError, INLINE, makeIssue } from './issues.ts';
import type { ConfigIssue, Locator, Position, SourceDocument } from './issues.ts';
import type { Resource, ResourceInput } from './schema.ts';
import { validateDocuments } from './validate.ts';
import { compileSnapshot } from './compile.ts';
import { deepFreeze } from './seal.ts';

export interface LoadedConfig {
  /** The compiled, frozen configuration. */
  readonly snapshot: Snapshot;
  /** The validated resources (defaults applied, durations and sizes as written), frozen. */
  readonly resources: readonly Resource[];
  /** Where the resources came from: the files read, in order, or the caller's labels. */
  readonly sources: readonly string[];
  /** Valid settings that have no effect (a grant of a public model, an app without keys, ...). */
  readonly warnings: readonly ConfigIssue[];
}

export interface LoadOptions {
  /** Snapshot version (monotonic per producer); default 1. */
  readonly version?: number;
}

export interface CompileOptions {
  /** Snapshot version (monotonic per producer). */
  readonly version: number;
  /** Labels recorded as LoadedConfig.sources; default ["<inline>"]. */
  readonly sources?: readonly string[];
}

const YAML_HINTS: Record<string, string> = {
  DUPLICATE_KEY: 'each key may appear once per mapping; remove or merge the repeated one',
  TAB_AS_INDENT: 'indent with spaces, not tabs',
  BAD_INDENT: 'check the indentation and the closing bracket on this line and the one before',
  MISSING_CHAR: 'a closing bracket or quote is missing',
  MULTILINE_IMPLICIT_KEY: 'a key must fit on one line; is a ":" or a quote missing?',
  BLOCK_AS_IMPLICIT_KEY: 'is a ":" missing after the key on the line before?',
};

/** Points at the YAML text of a field: the value when it exists, else the key of its nearest parent. */
function locator(doc: Document, lines: LineCounter): Locator {
  const at = (offset: number): Position => {
    const p = lines.linePos(offset);
    return { line: p.line, column: p.col };
  };
  const keyOf = (mapPath: readonly PropertyKey[], key: unknown): Position | undefined => {
    const map = mapPath.length === 0 ? doc.contents : doc.getIn(mapPath, true);
    if (!isMap(map)) return undefined;
    const pair = map.items.find((p) => isScalar(p.key) && String(p.key.value) === String(key));
    return pair !== undefined && isNode(pair.key) && pair.key.range ? at(pair.key.range[0]) : undefined;
  };
  return (path, key) => {
    if (key !== undefined) {
      const found = keyOf(path, key);
      if (found !== undefined) return found;
    }
    for (let n = path.length; n > 0; n--) {
      const node = doc.getIn(path.slice(0, n), true);
      if (!isNode(node) || !node.range) continue;
      if (n === path.length) return at(node.range[0]);
      // The field itself is missing: its parent's key (`spec:`) reads better than the parent's first child.
      return keyOf(path.slice(0, n - 1), path[n - 1]) ?? at(node.range[0]);
    }
    return doc.contents?.range ? at(doc.contents.range[0]) : undefined;
  };
}

/** Splits one file's text into source documents; syntax errors go to `issues`. */
function parseYaml(file: string, text: string, issues: ConfigIssue[]): SourceDocument[] {
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines, prettyErrors: false });
  const out: SourceDocument[] = [];
  docs.forEach((doc, i) => {
    for (const err of doc.errors) {
      const p = lines.linePos(err.pos[0]);
      issues.push(makeIssue(file, { line: p.line, column: p.col }, `YAML syntax error: ${err.message}`, YAML_HINTS[err.code]));
    }
    const contents = doc.contents;
    if (contents === null || (isScalar(contents) && contents.value === null)) return; // empty document
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (e) {
      issues.push(makeIssue(file, contents.range ? { line: lines.linePos(contents.range[0]).line, column: 1 } : undefined, `YAML error: ${(e as Error).message}`));
      return;
    }
    out.push({ file, label: `document ${i + 1}`, value, locate: locator(doc, lines), broken: doc.errors.length > 0 });
  });
  return out;
}

const CONFIG_PATH_HINT = '--config takes a YAML file or a directory of *.yaml / *.yml files';

/** The files of a path: itself, or the *.yaml/*.yml directly inside a directory (sorted, no dotfiles). */
async function configFiles(path: string, issues: ConfigIssue[]): Promise<string[]> {
  let info;
  try {
    info = await stat(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const message = code === 'ENOENT' ? 'no such file or directory' : `cannot read: ${(e as Error).message}`;
    issues.push(makeIssue(path, undefined, message, CONFIG_PATH_HINT));
    return [];
  }
  if (!info.isDirectory()) return [path];
  const names = (await readdir(path)).filter((n) => /\.ya?ml$/i.test(n) && !n.startsWith('.')).sort();
  const files: string[] = [];
  for (const name of names) {
    const file = join(path, name);
    if ((await stat(file).catch(() => undefined))?.isFile() === true) files.push(file);
  }
  if (files.length === 0) issues.push(makeIssue(path, undefined, 'directory has no *.yaml or *.yml files', CONFIG_PATH_HINT));
  return files;
}

function finish(docs: readonly SourceDocument[], earlier: readonly ConfigIssue[], version: number, sources: readonly string[]): LoadedConfig {
  const result = validateDocuments(docs);
  const errors = [...earlier, ...result.errors];
  if (errors.length > 0) throw new ConfigError(errors);
  const resources = result.resources.map((l) => l.resource);
  return deepFreeze({
    snapshot: compileSnapshot(resources, version),
    resources,
    sources: [...sources],
    warnings: result.warnings,
  });
}

/**
 * Loads a YAML file (multi-document) or a directory of them and compiles it.
 * Throws ConfigError with every problem found.
 */
export async function loadConfig(path: string, options: LoadOptions = {}): Promise<LoadedConfig> {
  const issues: ConfigIssue[] = [];
  const files = await configFiles(path, issues);
  const docs: SourceDocument[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      issues.push(makeIssue(file, undefined, `cannot read: ${(e as Error).message}`));
      continue;
    }
    docs.push(...parseYaml(file, text, issues));
  }
  if (files.length === 0) throw new ConfigError(issues);
  return finish(docs, issues, options.version ?? 1, files);
}

/**
 * Validates and compiles resources built in code, exactly as loadConfig does for files.
 * Issues name the file `<inline>` and the resource by kind and name (or `resources[i]`).
 */
export function compileResources(resources: readonly ResourceInput[], options: CompileOptions): LoadedConfig {
  const docs = resources.map((value, i): SourceDocument => ({ file: INLINE, label: `resources[${i}]`, value }));
  return finish(docs, [], options.version, options.sources ?? [INLINE]);
}
