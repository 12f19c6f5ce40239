#!/usr/bin/env node
// `npm run build`: the production build in dist/ (docs/build.md).
//   1. tsc -p tsconfig.build.json: src/**/*.ts → dist/**/*.js with source maps, `.ts` specifiers
//      rewritten to `.js`;
//   2. the files the code reads next to itself (the gRPC .proto, the dashboard's page, stylesheet
//      and icon) copied beside the compiled modules;
//   3. the dashboard's browser script bundled by esbuild into dist/dashboard/dashboard.js (from the
//      sources it is bundled at run time instead);
//   4. dist/BUILD stamped last: the bin runs dist/ only when the stamp is newer than every file in src/.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src');
const dist = join(root, 'dist');
const require = createRequire(import.meta.url);

rmSync(dist, { recursive: true, force: true });
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit' });

const ASSET = /\.(proto|html|css|svg)$/;
for (const entry of readdirSync(src, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !ASSET.test(entry.name)) continue;
  const from = join(entry.parentPath, entry.name);
  const to = join(dist, relative(src, from));
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(from, to);
}

const { build } = await import('esbuild');
await build({
  entryPoints: [join(src, 'dashboard/client/main.ts')],
  outfile: join(dist, 'dashboard/dashboard.js'),
  bundle: true,
  format: 'esm',
  target: 'es2020',
  charset: 'utf8',
  legalComments: 'none',
  logLevel: 'warning',
});

writeFileSync(join(dist, 'BUILD'), `${new Date().toISOString()}\n`);
process.stdout.write(`dist/ built from src/ (${relative(process.cwd(), dist) || 'dist'})\n`);
