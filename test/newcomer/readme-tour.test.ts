/**
 * The README's five-minute tour, followed literally: every command of its `sh` blocks, in order, on
 * the default ports (in a private network namespace, so nothing else on the machine holds them),
 * with the keys the demo and `keys create` print put where the README says `<… key>`.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { IN_NETNS, rerunInNetns } from './helpers.ts';
import { DocShell, shBlocks } from './shell.ts';

if (!IN_NETNS) rerunInNetns(import.meta.url, 300_000);
else {
  describe('README five-minute tour, as written', () => {
    const sh = new DocShell();
    process.env['MODELGUARD_DEMO_FILE'] = join(sh.cwd, 'demo.json');
    const blocks = shBlocks('README.md', /## Five-minute tour/, /\n## /);
    after(() => sh.close());

    it('has the commands of every step', () => {
      const all = blocks.flat().join('\n');
      for (const c of ['npx modelguard up', 'demo-load --seconds 8', 'cp -r examples/starter my-setup', 'keys create --app', 'validate --config my-setup/', 'up --config my-setup/']) {
        assert.ok(all.includes(c), `the tour runs ${c}`);
      }
    });

    it('runs every command, and each does what the tour says', { timeout: 240_000 }, async () => {
      try {
        for (const block of blocks) {
          for (const line of block) {
            const r = await sh.line(line);
            if (/^npx modelguard up$/.test(line)) {
              for (const m of r.stdout.matchAll(/^ {2}(\S+) +group \S+ +key (\S+)$/gm)) sh.vars.set(`${m[1]} key`, m[2] as string);
              assert.ok(sh.vars.has('camera-line-1 key') && sh.vars.has('batch-analytics key'), r.stdout);
              assert.match(r.stdout, /inference HTTP +http:\/\/127\.0\.0\.1:8080\n/);
              assert.match(r.stdout, /admin +http:\/\/127\.0\.0\.1:9460 /);
            }
            if (/keys create --app/.test(line)) {
              const key = /key \(shown once, store it now\): (\S+)/.exec(r.stderr)?.[1];
              assert.ok(key, r.stderr);
              sh.vars.set('your key', key);
            }
            if (/^curl .*\/infer$/.test(line)) assert.match(r.stdout, /"outputs"/, `${line}\n${r.stdout}`);
            if (/demo-load/.test(line)) {
              const ratio = Number(/served split gold:bronze = ([\d.]+):1/.exec(r.stdout)?.[1]);
              assert.ok(ratio >= 2.7 && ratio <= 3.3, `demo-load --seconds 8 split ${ratio}:1, not within 10% of 3:1\n${r.stdout}`);
              assert.match(r.stdout, /^gold +camera-line-1 +\d+/m);
              assert.match(r.stdout, /^bronze +batch-analytics +\d+/m);
            }
            if (/modelguard status/.test(line)) assert.match(r.stdout, /^gold +0 +3 /m);
            if (/modelguard top/.test(line)) assert.match(r.stdout, /ModelGuard top/);
            if (/\/metrics/.test(line)) assert.ok(Number(r.stdout.trim()) > 10, r.stdout);
          }
        }
      } catch (err) {
        throw new Error(`${(err as Error).message}\n\n--- transcript ---\n${sh.transcript.join('\n')}`);
      }
    });
  });
}
