/**
 * The layers of src/ along the data flow (eslint.layers.js, shown in docs/architecture.md): the
 * documented table is the enforced one, every import of src/ (dynamic ones included, which lint
 * does not see) follows it, no module imports itself round a cycle, and the lint rule fails an
 * import that runs against the flow.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, it } from 'node:test';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { INDEPENDENT, LAYERS, layerRules } from '../../eslint.layers.js';

const SRC = 'src';

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? sources(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

interface Edge {
  from: string;
  to: string;
  /** `import type` (and type-only re-exports): gone at run time, still a dependency of the design. */
  typeOnly: boolean;
}

const IMPORT = /(?:^|\n)\s*(import|export)\s+(type\s+)?(?:[^'";]*?\sfrom\s+)?['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;

function edges(): Edge[] {
  const out: Edge[] = [];
  for (const file of sources(SRC)) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(IMPORT)) {
      const spec = m[3] ?? m[4];
      if (spec === undefined) continue;
      out.push({ from: file, to: normalize(join(dirname(file), spec)), typeOnly: m[2] !== undefined });
    }
  }
  return out;
}

const top = (file: string): string => relative(SRC, file).split('/')[0] as string;

describe('layers of src/', () => {
  it('docs/architecture.md shows the enforced table, row for row', () => {
    const all = readFileSync('docs/architecture.md', 'utf8');
    const start = all.indexOf('\n## Layers');
    assert.ok(start >= 0, 'docs/architecture.md has a "## Layers" section');
    const end = all.indexOf('\n## ', start + 1);
    const doc = all.slice(start, end < 0 ? undefined : end);
    const rows = new Map<string, string[]>();
    for (const m of doc.matchAll(/^\| `([a-z0-9]+)\/` \| ([^|]*)\|/gm)) {
      const allowed = (m[2] as string).trim();
      rows.set(m[1] as string, allowed === '—' ? [] : allowed.split(',').map((s) => s.trim().replace(/`|\//g, '')));
    }
    const table = new Map(Object.entries(LAYERS).map(([k, v]) => [k, [...v]]));
    assert.deepEqual(rows, table);
  });

  it('every folder of src/ is in the table, and every import (dynamic ones too) follows it', () => {
    const folders = new Set(readdirSync(SRC, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name));
    assert.deepEqual([...folders].sort(), Object.keys(LAYERS).sort());
    // src/index.ts, the package's entry point, sits above every layer.
    const against = edges()
      .filter((e) => relative(SRC, e.from).includes('/'))
      .filter((e) => top(e.from) !== top(e.to) && !(LAYERS[top(e.from)] as readonly string[]).includes(top(e.to)))
      .map((e) => `${e.from} -> ${e.to}`);
    assert.deepEqual(against, []);
    const crossing = edges()
      .filter((e) => INDEPENDENT.includes(top(e.from)) && top(e.from) === top(e.to))
      .filter((e) => relative(SRC, e.from).split('/')[1] !== relative(SRC, e.to).split('/')[1])
      .map((e) => `${e.from} -> ${e.to}`);
    assert.deepEqual(crossing, []);
  });

  it('no module reaches itself through its imports (run-time imports)', () => {
    const graph = new Map<string, string[]>();
    for (const e of edges()) if (!e.typeOnly) graph.set(e.from, [...(graph.get(e.from) ?? []), e.to]);
    const state = new Map<string, 'open' | 'done'>();
    const cycles: string[] = [];
    const visit = (n: string, path: string[]): void => {
      if (state.get(n) === 'done') return;
      if (state.get(n) === 'open') {
        cycles.push([...path.slice(path.indexOf(n)), n].join(' -> '));
        return;
      }
      state.set(n, 'open');
      for (const m of graph.get(n) ?? []) visit(m, [...path, n]);
      state.set(n, 'done');
    };
    for (const n of graph.keys()) visit(n, []);
    assert.deepEqual(cycles, []);
  });

  it('lint fails an import against the flow, and one adapter importing another', async () => {
    const eslint = new ESLint({
      overrideConfigFile: true,
      overrideConfig: [{ files: ['**/*.ts'], languageOptions: { parser: tseslint.parser } }, ...layerRules()],
    });
    const bad = async (filePath: string, code: string): Promise<string[]> =>
      (await eslint.lintText(code, { filePath })).flatMap((r) => r.messages.map((m) => `${m.ruleId}: ${m.message}`));
    const core = await bad('src/core/bad-fixture.ts', "import { Work } from '../broker/work.ts';\nexport const w = Work;\n");
    assert.equal(core.length, 1, core.join('\n'));
    assert.match(core[0] as string, /^no-restricted-imports: .*src\/core imports nothing else in src/);
    const dispatch = await bad('src/dispatch/clients/bad-fixture.ts', "import { Pipeline } from '../../pipeline/pipeline.ts';\nexport const p = Pipeline;\n");
    assert.match(dispatch.join('\n'), /src\/dispatch may import only core, config, security, grpc/);
    const adapter = await bad('src/adapters/http/bad-fixture.ts', "import { errorStatus } from '../grpc/encode.ts';\nexport const e = errorStatus;\n");
    assert.match(adapter.join('\n'), /each folder of src\/adapters stands alone/);
    // Along the flow: no message.
    assert.deepEqual(await bad('src/adapters/http/good-fixture.ts', "import { Pipeline } from '../../pipeline/pipeline.ts';\nexport const p = Pipeline;\n"), []);
  });
});
