/**
 * Writes deploy/base/crds/*.yaml from the resource schemas (src/k8s/crds.ts). Run after changing
 * src/config/schema.ts: `node --import tsx scripts/gen-crds.ts`. test/k8s/crds.test.ts fails while
 * the committed files differ from what this writes.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { renderCrdFiles } from '../src/k8s/crds.ts';

const dir = join(import.meta.dirname, '..', 'deploy', 'base', 'crds');
for (const [name, text] of renderCrdFiles((v) => stringify(v, { lineWidth: 0 }))) {
  await writeFile(join(dir, name), text);
  console.log(`wrote deploy/base/crds/${name}`);
}
