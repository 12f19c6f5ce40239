/**
 * Each role loads what it uses, when it uses it (docs/build.md, "What each role loads"): every
 * role runs as a real `modelguard` process, answers a request where it takes them, and stops; a
 * preload lists the files it loaded. The heavy subsystems must be absent unless the configuration
 * asks for them, and present when it does (which also proves the trace sees them).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { startRole, type RoleProcess } from '../helpers/cluster.ts';
import { ANSWER, infer, PROXY_TOKEN, resources } from './fixture.ts';
import { loadTrace } from './load-trace.ts';
import { call, inferenceClient } from '../grpc/helpers.ts';

const KUBERNETES = '@kubernetes/client-node';
const ONNX = 'onnxruntime-node';
const MQTT = ['aedes', 'mqtt'];
const JWT = 'jose';
const CERTS = 'node-forge';
const GRPC = ['@grpc/grpc-js', 'protobufjs'];
/** The configuration compiler: schemas and the YAML parser. Files and CRDs need it; snapshots from a controller do not. */
const COMPILER = ['zod', 'yaml'];

function absent(loaded: Set<string>, role: string, packages: readonly string[]): void {
  const found = packages.filter((p) => loaded.has(p));
  assert.deepEqual(found, [], `${role} loaded ${found.join(', ')}, which it does not use`);
}

describe('each role loads only the subsystems its configuration uses', () => {
  const trace = loadTrace();
  const dir = mkdtempSync(join(tmpdir(), 'mg-fitness-'));
  const plain = join(dir, 'plain.yaml');
  const withMqtt = join(dir, 'mqtt.yaml');
  const running: RoleProcess[] = [];
  const upstream = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(ANSWER));
  });

  /** Starts a role with the trace preload; stop() writes its list. */
  async function role(name: string, args: string[], patterns: Record<string, RegExp>, env: Record<string, string> = {}): Promise<RoleProcess> {
    const r = await startRole(args, patterns, { ...env, ...trace.env(name) });
    running.push(r);
    return r;
  }

  before(async () => {
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    writeFileSync(plain, resources(url, ''));
    writeFileSync(withMqtt, resources(url, '  mqtt: { url: "mqtt://127.0.0.1:0", embedded: true }\n'));
  });

  after(async () => {
    await Promise.all(running.map((r) => r.stop(true)));
    upstream.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('up with an HTTP backend, no MQTT, JWT or Kubernetes, and no gRPC client: none of them, nor onnxruntime, nor the gRPC stack, nor the configuration compiler (a worker thread compiles the files)', async () => {
    const up = await role('up', ['up', '--config', plain, '--http', '127.0.0.1:0', '--grpc', '127.0.0.1:0', '--admin', '127.0.0.1:0'], {
      http: /inference HTTP\s+(http:\/\/\S+)/,
      admin: /admin\s+(http:\/\/\S+)/,
    });
    assert.equal(await infer(up.urls['http'] as string), 200);
    const script = await request(`${up.urls['admin'] as string}/dashboard.js`);
    assert.equal(script.statusCode, 200);
    assert.ok((await script.body.text()).length > 1000, "the dashboard's script is served");
    await up.stop();
    const loaded = trace.packages('up');
    // Its gRPC listener holds the port, but no gRPC client connected: no gRPC stack.
    absent(loaded, 'up', [...COMPILER, KUBERNETES, ONNX, ...MQTT, JWT, CERTS, ...GRPC]);
    // Compiled (the bin found a current dist/, as in the image): no TypeScript tooling at all, and
    // the dashboard's script comes from the build, not from esbuild at run time.
    if (trace.files('up').some((f) => f.endsWith('/dist/cli/main.js'))) absent(loaded, 'up (compiled)', ['tsx', 'esbuild', 'typescript']);
    else assert.ok(loaded.has('tsx'), 'without a current dist/, the sources run through tsx');
  });

  it('broker and proxy from files, HTTP backends and no MQTT: no gRPC, no MQTT, no Kubernetes, and no configuration compiler (a worker thread compiles the files)', async () => {
    const broker = await role('broker', ['broker', '--config', plain, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'], { link: /broker listener (http:\/\/\S+)/ });
    const proxy = await role('proxy', ['proxy', '--config', plain, '--broker', broker.urls['link'] as string, '--listen', '127.0.0.1:0', '--grpc', '127.0.0.1:0', '--admin', '127.0.0.1:0'], { http: /inference HTTP\s+(http:\/\/\S+)/ }, {
      MODELGUARD_PROXY_TOKEN: PROXY_TOKEN,
    });
    assert.equal(await infer(proxy.urls['http'] as string), 200, 'a request through proxy and broker');
    await proxy.stop();
    await broker.stop();
    absent(trace.packages('broker'), 'broker', [...COMPILER, KUBERNETES, ONNX, ...MQTT, JWT, CERTS, ...GRPC]);
    absent(trace.packages('proxy'), 'proxy', [...COMPILER, KUBERNETES, ONNX, ...MQTT, JWT, CERTS]);
  });

  it('broker and proxy managed by a controller: no configuration compiler (zod, yaml), which only files need', async () => {
    const controller = await role('controller-managing', ['controller', '--config', plain, '--admin', '127.0.0.1:0', '--heartbeat', '300'], { url: /controller +(http:\/\/\S+)/ });
    const ctl = controller.urls['url'] as string;
    const broker = await role('broker-managed', ['broker', '--controller', ctl, '--name', 'node-1', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'], { link: /broker listener (http:\/\/\S+)/ });
    const proxy = await role(
      'proxy-managed',
      ['proxy', '--controller', ctl, '--name', 'proxy-1', '--app', 'app', '--broker', broker.urls['link'] as string, '--listen', '127.0.0.1:0', '--grpc', '127.0.0.1:0', '--admin', '127.0.0.1:0'],
      { http: /inference HTTP\s+(http:\/\/\S+)/, grpc: /inference gRPC\s+(\S+)/ },
      { MODELGUARD_PROXY_TOKEN: PROXY_TOKEN },
    );
    assert.equal(await infer(proxy.urls['http'] as string), 200, 'a request through the managed proxy and broker');
    // A gRPC client connects: the proxy loads the gRPC stack then, and answers.
    const client = inferenceClient(proxy.urls['grpc'] as string);
    try {
      const live = await call<{ live: boolean }>(client, 'ServerLive', {});
      assert.equal(live.value?.live, true, 'the first gRPC call is answered once the stack is loaded');
    } finally {
      client.close();
    }
    await proxy.stop();
    await broker.stop();
    await controller.stop();
    absent(trace.packages('broker-managed'), 'managed broker', [...COMPILER, KUBERNETES, ONNX, ...MQTT, JWT, CERTS, ...GRPC]);
    const proxyLoaded = trace.packages('proxy-managed');
    absent(proxyLoaded, 'managed proxy', [...COMPILER, KUBERNETES, ONNX, ...MQTT, JWT, CERTS]);
    assert.ok(proxyLoaded.has('@grpc/grpc-js'), 'a gRPC client connected to the proxy, so grpc-js is loaded');
    // The controller compiles the files, so it loads them (the trace sees ESM packages too).
    const ctlLoaded = trace.packages('controller-managing');
    assert.ok(COMPILER.every((p) => ctlLoaded.has(p)), `the controller loads the compiler (saw ${[...ctlLoaded].join(', ')})`);
  });

  it('controller in file mode: no Kubernetes client, no webhook certificates, no data-plane protocols', async () => {
    const controller = await role('controller', ['controller', '--config', plain, '--admin', '127.0.0.1:0'], { url: /controller +(http:\/\/\S+)/ });
    await controller.stop();
    absent(trace.packages('controller'), 'controller', [KUBERNETES, CERTS, ONNX, ...MQTT, JWT, ...GRPC]);
  });

  it('a broker whose configuration has MQTT loads the embedded broker (and the trace sees it)', async () => {
    const broker = await role('broker-mqtt', ['broker', '--config', withMqtt, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'], { mqtt: /MQTT\s+(mqtt:\/\/\S+)/ });
    await broker.stop();
    const loaded = trace.packages('broker-mqtt');
    assert.ok(loaded.has('aedes'), `aedes loaded with MQTT configured (saw ${[...loaded].join(', ')})`);
    absent(loaded, 'broker with MQTT', [KUBERNETES, ONNX, JWT, ...GRPC]);
  });
});
