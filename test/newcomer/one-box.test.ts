/**
 * docs/deployment.md's one-box walkthrough, as written: a controller, a broker and a proxy, each with
 * only the flags it requires, all on one box at once on their default ports, all ready, a request
 * through all three, and `status` against the controller. Then the default ports held by someone
 * else: every role stops with the listener, the address and what moves it. In a private network
 * namespace, so the defaults are free whatever else runs on the machine.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { IN_NETNS, mg, rerunInNetns, until200 } from './helpers.ts';
import { DocShell, shBlocks } from './shell.ts';

function hold(port: number, host = '127.0.0.1'): Promise<Server> {
  const s = createServer();
  return new Promise((resolve, reject) => {
    s.once('error', reject);
    s.listen(port, host, () => resolve(s));
  });
}

const close = (s: Server): Promise<void> => new Promise((r) => s.close(() => r()));

if (!IN_NETNS) rerunInNetns(import.meta.url, 300_000);
else {
  describe('the three roles on one box, as docs/deployment.md walks through', () => {
    const sh = new DocShell();
    const blocks = shBlocks('docs/deployment.md', /## The three roles on one box/, /\n## /);
    after(() => sh.close());

    it('runs as written: all three ready on their defaults, a request through them, status against the controller', { timeout: 180_000 }, async () => {
      assert.equal(blocks.length, 3, 'set-up, the three roles, the checks');
      const roles = (blocks[1] ?? []).join('\n');
      assert.doesNotMatch(roles, /--(admin|listen|grpc)\b/, 'only the flags each role requires');
      try {
        for (const line of blocks[0] ?? []) {
          const r = await sh.line(line);
          const key = /key \(shown once, store it now\): (\S+)/.exec(r.stderr)?.[1];
          if (key) sh.vars.set('camera-line-1 key', key);
          const token = /token \(shown once, store it now\): (\S+)/.exec(r.stderr)?.[1];
          if (token) sh.vars.set('proxy token', token);
        }
        // The step the page describes in words: the proxies lines into gateway.yaml, one Gateway.
        const dir = join(sh.cwd, 'my-setup');
        const snippet = readFileSync(join(dir, 'proxy.yaml'), 'utf8');
        const proxies = snippet.slice(snippet.indexOf('\nspec:\n') + '\nspec:\n'.length);
        assert.match(proxies, /^ {2}proxies:/);
        writeFileSync(join(dir, 'gateway.yaml'), `${readFileSync(join(dir, 'gateway.yaml'), 'utf8')}${proxies}`);
        rmSync(join(dir, 'proxy.yaml'));
        const v = await mg(['validate', '--config', dir]);
        assert.equal(v.code, 0, v.stderr);

        for (const line of blocks[1] ?? []) await sh.line(line);
        for (const port of [9461, 9462, 9463]) await until200(`http://127.0.0.1:${port}/readyz`);
        for (const line of blocks[2] ?? []) {
          const r = await sh.line(line);
          if (/^curl/.test(line)) assert.match(r.stdout, /"outputs"/, r.stdout);
          if (/status --role controller/.test(line)) {
            assert.match(r.stdout, /^controller: configuration version 1 /m);
            assert.match(r.stdout, /^box-a +broker .* v1 +yes +yes/m);
            assert.match(r.stdout, /^camera-proxy +proxy +camera-line-1 +v1 +yes +yes/m);
          }
          if (/status --role broker/.test(line)) assert.match(r.stdout, /^gold +0 +3 /m);
        }
        const top = await mg(['top', '--role', 'controller', '-n', '1']);
        assert.equal(top.code, 0, top.stderr);
        assert.match(top.stdout, /ModelGuard top · controller[\s\S]*box-a +broker/);
      } catch (err) {
        throw new Error(`${(err as Error).message}\n\n--- transcript ---\n${sh.transcript.join('\n')}`);
      }
    });
  });

  describe('a default port held by another process', () => {
    const cases: { what: string; hold: [number, string]; args: string[]; message: RegExp }[] = [
      {
        what: 'up: the admin listener',
        hold: [9460, '127.0.0.1'],
        args: ['up'],
        message: /^modelguard: the admin listener cannot listen on 127\.0\.0\.1:9460: the address is already in use: .* \(EADDRINUSE\)\. Move it with --admin HOST:PORT or Gateway\.spec\.listeners\.admin$/m,
      },
      {
        what: 'up: the inference gRPC listener, on the HTTP listener\'s host',
        hold: [8081, '127.0.0.1'],
        args: ['up'],
        message: /^modelguard: the inference gRPC listener cannot listen on 127\.0\.0\.1:8081: the address is already in use: .* \(EADDRINUSE\)\. Move it with --grpc HOST:PORT or Gateway\.spec\.listeners\.grpc$/m,
      },
      {
        what: 'controller: its listener',
        hold: [9461, '127.0.0.1'],
        args: ['controller', '--config', 'examples/starter'],
        message: /^modelguard: the controller listener \(node and admin API\) cannot listen on 127\.0\.0\.1:9461: the address is already in use: .* \(EADDRINUSE\)\. Move it with --admin HOST:PORT or Gateway\.spec\.listeners\.admin$/m,
      },
      {
        what: 'broker: the broker listener',
        hold: [8010, '127.0.0.1'],
        args: ['broker', '--config', 'examples/starter'],
        message: /^modelguard: the broker listener cannot listen on 127\.0\.0\.1:8010: the address is already in use: .* \(EADDRINUSE\)\. Move it with --listen HOST:PORT or Gateway\.spec\.listeners\.broker$/m,
      },
      {
        what: 'proxy: the inference HTTP listener',
        hold: [8080, '127.0.0.1'],
        args: ['proxy', '--config', 'examples/starter', '--broker', 'http://127.0.0.1:8010'],
        message: /^modelguard: the inference HTTP listener cannot listen on 127\.0\.0\.1:8080: the address is already in use: .* \(EADDRINUSE\)\. Move it with --listen HOST:PORT or Gateway\.spec\.listeners\.http$/m,
      },
      {
        what: 'proxy: the admin listener',
        hold: [9463, '127.0.0.1'],
        args: ['proxy', '--config', 'examples/starter', '--broker', 'http://127.0.0.1:8010'],
        message: /^modelguard: the admin listener cannot listen on 127\.0\.0\.1:9463: .*\. Move it with --admin HOST:PORT or Gateway\.spec\.listeners\.admin$/m,
      },
    ];
    for (const c of cases) {
      it(`${c.what}: names the listener, the address, the flag and the field; exits 1`, { timeout: 60_000 }, async () => {
        const held = await hold(...c.hold);
        try {
          const r = await mg(c.args, { MODELGUARD_PROXY_TOKEN: 'a-proxy-token' });
          assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
          assert.match(r.stderr, c.message);
          assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
        } finally {
          await close(held);
        }
      });
    }

    it('an address not on this machine says so', { timeout: 60_000 }, async () => {
      const r = await mg(['up', '--http', '192.0.2.1:8080']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /the inference HTTP listener cannot listen on 192\.0\.2\.1:8080: the address is not one of this machine \(EADDRNOTAVAIL\)\. Move it with --http HOST:PORT or Gateway\.spec\.listeners\.http/);
    });
  });
}
