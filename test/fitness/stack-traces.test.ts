/**
 * The compiled build's stack traces point into the TypeScript sources, with each module's source map
 * read only when a stack through it is formatted (src/cli/stack-traces.ts, docs/build.md).
 *
 * A small tree is compiled here the way `npm run build` compiles src/ (tsc, rootDir src, outDir
 * dist, a map beside each module), together with src/cli/stack-traces.ts itself, and run by a plain
 * `node` (no loader): what it prints is compared with the original positions in the source text and
 * with node's own `--enable-source-maps` output for the same throw.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import ts from 'typescript';

// Type annotations, an interface and comments above the throw: the compiled lines differ from these.
const THROWER = `/** A module that throws two calls deep. */
export interface Reading {
  readonly value: number;
  readonly unit: string;
}

function check(reading: Reading): number {
  if (reading.value < 0) throw new RangeError(\`negative reading: \${reading.value} \${reading.unit}\`);
  return reading.value;
}

export function sum(readings: readonly Reading[]): number {
  let total = 0;
  for (const r of readings) total += check(r);
  return total;
}
`;

const UNMAPPED = `export function fail(): never {
  throw new Error('no map here');
}
`;

const ODD = `export function fail(): never {
  throw new Error('a map naming a source that is not a file');
}
`;

/** Prints, as JSON, the maps read before and after the stack is formatted, and the stacks. */
const RUN = `const mode = process.argv[2];
const root = new URL('./dist/', import.meta.url);
let traces;
if (mode === 'ours') {
  traces = await import('./dist/cli/stack-traces.js');
  traces.mapStackTraces(root);
}
const thrower = await import('./dist/thrower.js');
const unmapped = await import('./dist/unmapped.js');
const odd = await import('./dist/odd.js');
let error;
try { thrower.sum([{ value: 1, unit: 'V' }, { value: -2, unit: 'V' }]); } catch (e) { error = e; }
const before = traces?.mapsRead();
const stack = error.stack;
const afterward = traces?.mapsRead();
let other;
try { unmapped.fail(); } catch (e) { other = e.stack; }
let oddStack;
try { odd.fail(); } catch (e) { oddStack = e.stack; }
process.stdout.write(JSON.stringify({ before, afterward, stack, other, odd: oddStack }));
`;

let dir: string;

function run(mode: 'ours' | 'node'): { before?: number; afterward?: number; stack: string; other: string; odd: string } {
  const args = mode === 'node' ? ['--enable-source-maps', join(dir, 'run.mjs'), mode] : [join(dir, 'run.mjs'), mode];
  return JSON.parse(execFileSync(process.execPath, args, { encoding: 'utf8', env: { PATH: process.env.PATH } })) as ReturnType<typeof run>;
}

/** 1-based line and column of `needle` in `text`. */
function position(text: string, needle: string): string {
  const i = text.indexOf(needle);
  assert.ok(i >= 0, `${needle} in the source`);
  const lines = text.slice(0, i).split('\n');
  return `${lines.length}:${lines.at(-1)!.length + 1}`;
}

describe('stack traces of the compiled build', () => {
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'mg-stack-'));
    mkdirSync(join(dir, 'src/cli'), { recursive: true });
    writeFileSync(join(dir, 'src/thrower.ts'), THROWER);
    writeFileSync(join(dir, 'src/unmapped.ts'), UNMAPPED);
    writeFileSync(join(dir, 'src/odd.ts'), ODD);
    copyFileSync(new URL('../../src/cli/stack-traces.ts', import.meta.url), join(dir, 'src/cli/stack-traces.ts'));
    writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
    writeFileSync(join(dir, 'run.mjs'), RUN);
    // As tsconfig.build.json compiles src/: ES modules, a map beside each module.
    const program = ts.createProgram([join(dir, 'src/thrower.ts'), join(dir, 'src/unmapped.ts'), join(dir, 'src/odd.ts'), join(dir, 'src/cli/stack-traces.ts')], {
      rootDir: join(dir, 'src'),
      outDir: join(dir, 'dist'),
      sourceMap: true,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      target: ts.ScriptTarget.ES2022,
      types: ['node'],
      typeRoots: [join(process.cwd(), 'node_modules/@types')],
      skipLibCheck: true,
    });
    const emitted = program.emit();
    assert.equal(emitted.emitSkipped, false);
    rmSync(join(dir, 'dist/unmapped.js.map'));
    // A map whose source is not a file (a URL of another scheme): no path to print.
    const oddMap = JSON.parse(readFileSync(join(dir, 'dist/odd.js.map'), 'utf8')) as { sources: string[] };
    oddMap.sources = ['https://example.invalid/odd.ts'];
    writeFileSync(join(dir, 'dist/odd.js.map'), JSON.stringify(oddMap));
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a frame in a compiled module shows its line and column in the .ts source', () => {
    const compiled = readFileSync(join(dir, 'dist/thrower.js'), 'utf8');
    const source = join(dir, 'src/thrower.ts');
    const { stack } = run('ours');
    const lines = stack.split('\n');
    assert.equal(lines[0], 'RangeError: negative reading: -2 V');
    // The throw and the call into it, at their places in the TypeScript text, not the JavaScript's.
    const throwAt = position(THROWER, 'new RangeError');
    const callAt = position(THROWER, 'check(r)');
    assert.notEqual(throwAt, position(compiled, 'new RangeError'), 'the fixture must compile to other lines');
    assert.equal(lines[1], `    at check (${source}:${throwAt})`);
    assert.equal(lines[2], `    at Module.sum (${source}:${callAt})`);
    // The frame in the script that is not under the mapped root is as V8 wrote it.
    assert.match(lines[3] ?? '', /^ {4}at file:\/\/.*\/run\.mjs:\d+:\d+$/);
  });

  it('is what node prints with --enable-source-maps, for mapped and unmapped modules alike', () => {
    const ours = run('ours');
    const node = run('node');
    assert.equal(ours.stack, node.stack);
    assert.equal(ours.other, node.other);
    assert.match(ours.other, /dist\/unmapped\.js:2:\d+\)$/m, 'a module without a map keeps its compiled position');
  });

  it('a frame it cannot map is printed as V8 wrote it, and the stack is still formatted', () => {
    const { odd } = run('ours');
    const lines = odd.split('\n');
    assert.equal(lines[0], 'Error: a map naming a source that is not a file');
    assert.match(lines[1] ?? '', /^ {4}at Module\.fail \(file:\/\/.*\/dist\/odd\.js:2:\d+\)$/);
  });

  it('reads a map only when a stack through its module is formatted', () => {
    const { before: read0, afterward: read1 } = run('ours');
    assert.equal(read0, 0, 'no map is read while modules load or an error is created');
    assert.equal(read1, 1, 'formatting the stack read the one map of the module it passes through');
  });
});
