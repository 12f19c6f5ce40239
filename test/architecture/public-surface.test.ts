/**
 * The public surface (package.json `exports`): embedding code gets configuration loading, the
 * gateway and the CLI; every other module is internal and refused by Node's resolver. Resolved as a
 * consumer would, through the package's own name (the `development` condition maps `.` to the
 * sources, as `npm run build` maps it to dist/ for everyone else).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

function consumer(code: string): string {
  return execFileSync(process.execPath, ['--import', 'tsx', '--conditions=development', '--input-type=module', '-e', code], { encoding: 'utf8' }).trim();
}

describe('public surface', () => {
  it('exports the entry point, the CLI and package.json only', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { exports: Record<string, unknown> };
    assert.deepEqual(Object.keys(pkg.exports).sort(), ['.', './cli', './package.json']);
    assert.deepEqual(pkg.exports['.'], { types: './src/index.ts', development: './src/index.ts', default: './dist/index.js' });
  });

  it('the entry point offers configuration loading and the gateway, and they work together', () => {
    const out = consumer(`
      import * as mg from 'modelguard';
      const loaded = mg.compileResources([
        { apiVersion: 'modelguard.io/v1alpha1', kind: 'Backend', metadata: { name: 'b' }, spec: { endpoints: [{ url: 'http://127.0.0.1:9' }] } },
        { apiVersion: 'modelguard.io/v1alpha1', kind: 'Model', metadata: { name: 'm' }, spec: { backend: 'b' } },
      ], { version: 1 });
      console.log(JSON.stringify({ names: Object.keys(mg).sort(), models: Object.keys(loaded.snapshot.models) }));
    `);
    const got = JSON.parse(out.split('\n').pop() as string) as { names: string[]; models: string[] };
    assert.deepEqual(got.names, ['ConfigError', 'compileResources', 'compileSnapshot', 'formatIssue', 'loadConfig', 'startGateway']);
    assert.deepEqual(got.models, ['m']);
  });

  it('internal modules are refused (ERR_PACKAGE_PATH_NOT_EXPORTED)', () => {
    for (const deep of ['modelguard/src/broker/broker.ts', 'modelguard/dist/broker/broker.js', 'modelguard/src/pipeline/exchange.ts']) {
      assert.equal(consumer(`import(${JSON.stringify(deep)}).then(() => console.log('loaded'), (e) => console.log(e.code));`), 'ERR_PACKAGE_PATH_NOT_EXPORTED', deep);
    }
  });
});
