#!/usr/bin/env node
// The CLI runs the compiled JavaScript in dist/ (`npm run build`; the image ships only that) when it
// is there and newer than every file in src/, and otherwise the TypeScript sources through tsx's
// loader: a fresh clone runs after `npm ci` alone (tsx is a devDependency), and an edited source is
// never shadowed by an old build. docs/build.md.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const dist = new URL('../dist/', import.meta.url);
const src = new URL('../src/', import.meta.url);

function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

/** True when dist/ was built after the last change in src/ (or there is no src/, as in the image). */
function distIsCurrent() {
  const built = mtime(new URL('BUILD', dist));
  if (built === undefined) return false;
  let entries;
  try {
    entries = readdirSync(src, { recursive: true, withFileTypes: true });
  } catch {
    return true;
  }
  for (const e of entries) {
    if ((mtime(join(e.parentPath, e.name)) ?? 0) > built) return false;
  }
  return true;
}

if (distIsCurrent()) {
  // Stack traces point into src/*.ts through the source maps next to each module, each read the
  // first time a stack passes through its module (src/cli/stack-traces.ts).
  const { mapStackTraces } = await import('../dist/cli/stack-traces.js');
  mapStackTraces(dist);
  await import('../dist/cli/main.js');
} else {
  if (mtime(new URL('BUILD', dist)) !== undefined) process.stderr.write('modelguard: src/ changed after the last build; running the sources (npm run build refreshes dist/)\n');
  let register;
  try {
    ({ register } = await import('tsx/esm/api'));
  } catch {
    process.stderr.write('modelguard: no dist/ build and no tsx to run the sources; run `npm ci && npm run build`\n');
    process.exit(1);
  }
  register();
  await import('../src/cli/main.ts');
}
