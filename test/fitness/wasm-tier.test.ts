/**
 * A proxy keeps undici's HTTP parser (WebAssembly) on V8's baseline tier (src/cli/wasm-tier.ts), so
 * V8's background optimization of it (a compile peak of ~35 MiB of malloc, part of which glibc keeps)
 * never happens in a sidecar. Real processes under the same traffic: a broker (V8's default: it
 * optimizes the parser it uses for its backend calls), the proxy in front of it, and a second proxy
 * started with node's `--no-liftoff-only` (an operator's explicit choice wins). Each one's peak of
 * malloc'ed memory, read by a preload as it exits, says whether the optimizing compile ran.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { keepWasmOnBaselineTier } from '../../src/cli/wasm-tier.ts';
import { startRole, type RoleProcess } from '../helpers/cluster.ts';
import { ANSWER, infer, PROXY_TOKEN, resources } from './fixture.ts';
import { loadTrace } from './load-trace.ts';

const MiB = 2 ** 20;
/** Calls through each proxy: well past what makes V8 optimize the parser (it did after a few dozen here). */
const CALLS = 300;

describe("a proxy keeps undici's HTTP parser on V8's baseline tier", () => {
  const trace = loadTrace();
  const dir = mkdtempSync(join(tmpdir(), 'mg-wasm-tier-'));
  const config = join(dir, 'config.yaml');
  const running: RoleProcess[] = [];
  const upstream = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(ANSWER));
  });

  before(async () => {
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    writeFileSync(config, resources(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, ''));
  });

  after(async () => {
    await Promise.all(running.map((r) => r.stop(true)));
    upstream.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('an explicit choice on node\'s command line is left alone', () => {
    assert.equal(keepWasmOnBaselineTier(['--no-liftoff-only']), false);
    assert.equal(keepWasmOnBaselineTier(['--wasm-tier-up']), false);
    assert.equal(keepWasmOnBaselineTier(['--no_wasm_dynamic_tiering']), false);
  });

  it('the proxy never runs the optimizing compile; the broker beside it does, and so does a proxy started with --no-liftoff-only', async (t) => {
    const start = async (name: string, args: string[], patterns: Record<string, RegExp>, nodeArgs: string[] = []): Promise<RoleProcess> => {
      const r = await startRole(args, patterns, { MODELGUARD_PROXY_TOKEN: PROXY_TOKEN, ...trace.env(name) }, nodeArgs);
      running.push(r);
      return r;
    };
    const listeners = ['--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'];
    const broker = await start('broker', ['broker', '--config', config, ...listeners], { link: /broker listener (http:\/\/\S+)/ });
    const proxyArgs = ['proxy', '--config', config, '--broker', broker.urls['link'] as string, '--grpc', '127.0.0.1:0', ...listeners];
    const http = { http: /inference HTTP\s+(http:\/\/\S+)/ };
    const proxy = await start('proxy', proxyArgs, http);
    const optimizing = await start('proxy-optimizing', proxyArgs, http, ['--no-liftoff-only']);
    for (let i = 0; i < CALLS; i++) {
      assert.equal(await infer(proxy.urls['http'] as string), 200);
      assert.equal(await infer(optimizing.urls['http'] as string), 200);
    }
    // V8 optimizes in the background about a second after the code got hot.
    await new Promise((r) => setTimeout(r, 3000));
    await Promise.all([proxy.stop(), optimizing.stop(), broker.stop()]);
    const peak = (name: string): number => trace.heap(name).peak_malloced_memory / MiB;
    const [p, o, b] = [peak('proxy'), peak('proxy-optimizing'), peak('broker')];
    const figures = `peak malloc, MiB: proxy ${p.toFixed(1)}, proxy with --no-liftoff-only ${o.toFixed(1)}, broker ${b.toFixed(1)}`;
    t.diagnostic(figures);
    assert.ok(p < 12, `the proxy compiled the parser with the optimizing tier: ${figures}`);
    assert.ok(b > p + 10, `the broker should have optimized its parser (V8's default), or this test measures nothing: ${figures}`);
    assert.ok(o > p + 10, `--no-liftoff-only on node's command line should keep V8's default: ${figures}`);
  });
});
