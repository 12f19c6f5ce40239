/**
 * Runs the `sh` blocks of a documentation section as a reader would: line by line, in a fresh
 * directory (with the clone's `examples/` beside it), `npx modelguard` being this clone's command.
 * Servers (`modelguard up`, the roles, `demo-model`, a line ending in `&`) are started and waited
 * for; `<placeholders>` are replaced by what earlier commands printed (the keys); a trailing
 * `# 401`-style comment is the status the command must print.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, ROOT, run, start, type Proc } from './helpers.ts';

/** The `sh` blocks between `## from` (or `n. **from`) and the next heading of the same kind. */
export function shBlocks(file: string, from: RegExp, to: RegExp): string[][] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const begin = text.search(from);
  assert.ok(begin >= 0, `${file}: no section ${from}`);
  const rest = text.slice(begin + 1);
  const endAt = rest.search(to);
  const section = endAt < 0 ? rest : rest.slice(0, endAt);
  const blocks: string[][] = [];
  for (const m of section.matchAll(/```sh\n([\s\S]*?)\n\s*```/g)) {
    const joined = (m[1] as string)
      .split('\n')
      .map((l) => l.trim())
      .join('\n')
      .replace(/\\\n/g, ' ');
    blocks.push(joined.split('\n').filter((l) => l !== ''));
  }
  return blocks;
}

/** What one line should print: `# 401` at its end. */
function split(line: string): { command: string; expect: string | undefined } {
  const m = /^(.*?)\s{2,}#\s*(.*)$/.exec(line);
  if (!m) return { command: line, expect: undefined };
  const status = /^(\d{3})\b/.exec(m[2] as string);
  return { command: m[1] as string, expect: status?.[1] };
}

const SERVER = /(?:^|\s)npx modelguard (up|controller|broker|proxy|demo-model)\b/;
/** What each server prints when it is ready to serve. */
const READY: Record<string, RegExp> = {
  up: /ModelGuard is up[\s\S]*admin +http\S+[^\n]*\n/,
  'up-demo': /See the sharing/,
  controller: /ModelGuard controller is up[\s\S]*controller +http/,
  broker: /ModelGuard broker[^\n]* is up[\s\S]*admin +http/,
  proxy: /ModelGuard proxy[^\n]* is up[\s\S]*admin +http/,
  'demo-model': /listening on http/,
};

export class DocShell {
  readonly cwd = mkdtempSync(join(tmpdir(), 'mg-newcomer-'));
  readonly vars = new Map<string, string>();
  readonly servers: { kind: string; proc: Proc }[] = [];
  /** Every command run and what it printed, for the failure message. */
  readonly transcript: string[] = [];

  constructor() {
    symlinkSync(join(ROOT, 'examples'), join(this.cwd, 'examples'));
  }

  private expand(line: string): string {
    const out = line.replace(/<([^<>]+)>/g, (whole, name: string) => {
      const v = this.vars.get(name);
      assert.ok(v !== undefined, `no value for ${whole} in: ${line}`);
      return v;
    });
    return out.replace(/\bnpx modelguard\b/g, `${process.execPath} ${BIN}`);
  }

  /** Runs one documented line; servers keep running until `close`. */
  async line(raw: string): Promise<{ stdout: string; stderr: string }> {
    const { command, expect } = split(raw);
    const server = SERVER.exec(command)?.[1];
    const background = server !== undefined || /&\s*$/.test(command);
    const text = this.expand(command.replace(/&\s*$/, '').trim());
    if (background) {
      // Ctrl-C the running `up` first, as the tour says: a new one takes the same ports.
      if (server === 'up') for (const s of this.servers.filter((x) => x.kind === 'up')) await s.proc.stop();
      // `exec` after any VAR=value prefix, so that stopping the shell stops the server.
      const proc = start('sh', ['-c', text.replace(/^((?:[A-Z_][A-Z0-9_]*=\S*\s+)*)/, '$1exec ')], {}, this.cwd);
      this.servers.push({ kind: server ?? 'background', proc });
      const ready = READY[server === 'up' && !/--config/.test(text) ? 'up-demo' : (server ?? '')];
      if (ready) await proc.waitFor(ready, 90_000);
      this.transcript.push(`$ ${raw}\n${proc.out()}`);
      return { stdout: proc.out(), stderr: proc.err() };
    }
    const r = await run('sh', ['-c', text], {}, this.cwd);
    this.transcript.push(`$ ${raw}\n${r.stdout}${r.stderr}`);
    assert.equal(r.code, 0, `${raw}\nexited ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
    if (expect !== undefined) assert.match(r.stdout, new RegExp(`^${expect}\\b`, 'm'), `${raw}\nexpected ${expect}, printed:\n${r.stdout}`);
    return r;
  }

  async close(): Promise<void> {
    for (const s of this.servers.reverse()) await s.proc.stop();
  }
}
