/** Shared helpers of the configuration tests (not a test file itself). */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig } from '../../src/config/index.ts';
import type { ConfigIssue } from '../../src/config/index.ts';

export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));

export function fixture(path: string): string {
  return join(FIXTURES, path);
}

/** The ConfigError a load must throw. */
export async function loadError(path: string): Promise<ConfigError> {
  try {
    await loadConfig(path);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${String(e)}`);
    return e;
  }
  return assert.fail(`expected ${path} to fail`);
}

/** The ConfigError a synchronous call must throw. */
export function syncError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${String(e)}`);
    return e;
  }
  return assert.fail('expected a ConfigError');
}

/** The one issue whose message contains `text`. */
export function issue(issues: readonly ConfigIssue[], text: string): ConfigIssue {
  const found = issues.filter((i) => i.message.includes(text));
  assert.equal(found.length, 1, `expected one issue containing ${JSON.stringify(text)}, got:\n${issues.map((i) => i.message).join('\n')}`);
  return found[0]!;
}

/** Asserts an issue's place and, optionally, that its hint contains `hint`. */
export function assertAt(i: ConfigIssue, file: string, line: number, column: number | undefined, hint?: string | RegExp): void {
  assert.equal(i.file, file);
  assert.equal(i.line, line, `line of: ${i.message}`);
  if (column !== undefined) assert.equal(i.column, column, `column of: ${i.message}`);
  if (hint instanceof RegExp) assert.match(i.hint ?? '', hint);
  else if (hint !== undefined) assert.ok(i.hint?.includes(hint), `hint of ${i.message}: ${i.hint ?? '(none)'} lacks ${hint}`);
}
