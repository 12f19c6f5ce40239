/**
 * What the separate roles cost: sequential inference calls (one at a time, kept-alive connections)
 * straight to the accelerator, through the all-in-one gateway (`up`), and through a proxy and a
 * broker (two hops: client → proxy → broker → accelerator), alternating rounds in the same run.
 * The accelerator (simulated, 0 ms) runs in its own process; ModelGuard's parts share this one,
 * which is fine for a sequential measure. The added time of the proxy hop is (proxy path) − (up).
 *
 *   node --import tsx bench/roles.ts [--requests 2000] [--rounds 3]
 */
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { compileResources } from '../src/config/index.ts';
import { brokerSnapshot, proxySnapshot } from '../src/config/partition.ts';
import { startGateway } from '../src/compose/gateway.ts';
import { startBroker, startProxy } from '../src/compose/roles.ts';
import { sha256Hex } from '../src/security/identity.ts';
import { INFER_BODY, INFER_PATH, JSON_HEADERS } from './lib/config.ts';
import { runMain, startAccelerator } from './lib/processes.ts';
import { fixed, machineLine, percentile, say, table } from './lib/stats.ts';

const { values: args } = parseArgs({ options: { requests: { type: 'string', default: '2000' }, rounds: { type: 'string', default: '3' } } });
const N = Number(args.requests);
const ROUNDS = Number(args.rounds);
const KEY = 'bench-key';
const TOKEN = 'bench-proxy-token';

async function sequential(url: string, n: number, key: string | undefined): Promise<number[]> {
  const pool = new Pool(url, { connections: 1 });
  const times: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const res = await pool.request({ method: 'POST', path: INFER_PATH, headers: { ...JSON_HEADERS, ...(key ? { authorization: `Bearer ${key}` } : {}) }, body: INFER_BODY });
      await res.body.dump();
      if (res.statusCode !== 200) throw new Error(`${url}: status ${res.statusCode}`);
      times.push(performance.now() - t0);
    }
  } finally {
    await pool.close();
  }
  return times;
}

async function main(): Promise<void> {
  const accel = await startAccelerator({ slots: 4, serviceTime: '0ms' });
  const API = 'modelguard.io/v1alpha1';
  const full = compileResources(
    [
      { apiVersion: API, kind: 'Gateway', metadata: { name: 'default' }, spec: { proxies: [{ name: 'p', tokens: [{ sha256: sha256Hex(TOKEN) }] }] } },
      { apiVersion: API, kind: 'Backend', metadata: { name: 'accel' }, spec: { protocol: 'kserve-v2-http', endpoints: [{ url: accel.url, slots: 4 }] } },
      { apiVersion: API, kind: 'Model', metadata: { name: 'demo' }, spec: { backend: 'accel' } },
      { apiVersion: API, kind: 'App', metadata: { name: 'bench' }, spec: { apiKeys: [{ sha256: sha256Hex(KEY) }] } },
    ],
    { version: 1 },
  ).snapshot;
  const ports = { http: '127.0.0.1:0', grpc: '127.0.0.1:0', admin: '127.0.0.1:0' };
  const up = await startGateway(full, ports);
  const broker = await startBroker(brokerSnapshot(full, 'n'), { listen: '127.0.0.1:0', admin: '127.0.0.1:0' });
  const proxy = await startProxy(proxySnapshot(full, []), { broker: broker.linkUrl, token: TOKEN, ...ports });
  try {
    const paths: [string, string, string | undefined][] = [
      ['direct to the accelerator', accel.url, undefined],
      ['all-in-one (up)', up.httpUrl, KEY],
      ['proxy → broker', proxy.httpUrl, KEY],
    ];
    for (const [, url, key] of paths) await sequential(url, 300, key);
    const times = paths.map((): number[] => []);
    for (let r = 0; r < ROUNDS; r++) {
      // Alternate the order so a burst of other work on the machine does not land on one path.
      const order = r % 2 === 0 ? [0, 1, 2] : [2, 1, 0];
      for (const i of order) times[i]!.push(...(await sequential(paths[i]![1], N, paths[i]![2])));
    }
    say(await machineLine());
    say(`sequential calls, ${ROUNDS} × ${N} per path, kept-alive connections, accelerator service time 0 ms`);
    const p = (t: number[], q: number): number => percentile(t, q);
    say(table(['path', 'p50 ms', 'p99 ms'], paths.map(([name], i) => [name, fixed(p(times[i]!, 50), 3), fixed(p(times[i]!, 99), 3)])));
    const [direct, one, two] = times as [number[], number[], number[]];
    say(`up adds p50 ${fixed((p(one, 50) - p(direct, 50)) * 1000, 0)} µs over direct; the proxy hop adds p50 ${fixed((p(two, 50) - p(one, 50)) * 1000, 0)} µs and p99 ${fixed(p(two, 99) - p(one, 99), 3)} ms over up`);
    say(`ratio proxy → broker / up: p50 ${fixed(p(two, 50) / p(one, 50))}`);
  } finally {
    await proxy.close();
    await broker.close();
    await up.close();
    await accel.stop();
  }
}

runMain(main);
