// Measured fairness: how the accelerator is shared under overload, printed against the configured
// target. Run: node --import tsx bench/fairness.ts
// Each scenario overloads a simulated accelerator (its own process) from two groups for a few
// seconds and counts what each group got in the contended window.
import { acceleratorProcess, closedLoop, delay, gateway, keyFor, pool, INFER_BODY } from '../test/helpers/harness.ts';

interface Result {
  name: string;
  measured: number;
  target: number;
  what: string;
}

async function scenario(
  name: string,
  models: string,
  slots: number,
  groups: { name: string; weight: number; model: string }[],
  fairness: 'compute' | 'requests',
  serviceMs: Record<string, number>,
): Promise<{ served: Record<string, number>; slotMs: Record<string, number>; computeMs: Record<string, number> }> {
  const acc = await acceleratorProcess(['--slots', String(slots), '--models', models]);
  const gw = await gateway({
    endpoints: [{ url: acc.url, slots }],
    models: Object.keys(serviceMs),
    groups: groups.map((g) => ({ name: g.name, weight: g.weight })),
    gateway: { fairness },
  });
  const p = pool(gw.httpUrl);
  try {
    const t0 = performance.now();
    const until = delay(4200);
    const acct = (): Record<string, number> => Object.fromEntries(gw.broker.status().groups.map((g) => [g.name, g.acceleratorMs]));
    let a: Record<string, number> = {};
    let b: Record<string, number> = {};
    const [answers] = await Promise.all([
      Promise.all(groups.map((g) => closedLoop(p, `/v2/models/${g.model}/infer`, { key: keyFor(g.name), body: INFER_BODY, concurrency: 8, until }))),
      (async () => {
        await delay(1000);
        a = acct();
        await delay(3000);
        b = acct();
      })(),
    ]);
    const served: Record<string, number> = {};
    const slotMs: Record<string, number> = {};
    const computeMs: Record<string, number> = {};
    groups.forEach((g, i) => {
      served[g.name] = answers[i]!.filter((x) => x.status === 200 && x.at - t0 > 1000 && x.at - t0 <= 4000).length;
      slotMs[g.name] = (b[g.name] ?? 0) - (a[g.name] ?? 0);
      computeMs[g.name] = served[g.name]! * serviceMs[g.model]!;
    });
    process.stdout.write(`  ${name}: served ${JSON.stringify(served)}\n`);
    return { served, slotMs, computeMs };
  } finally {
    await p.close();
    await gw.close();
    await acc.close();
  }
}

const share = (r: Record<string, number>, k: string): number => (r[k] ?? 0) / Object.values(r).reduce((n, v) => n + v, 0);
const results: Result[] = [];

const s1 = await scenario('weights 3:1, one 5 ms model', 'demo=5ms', 2, [{ name: 'a', weight: 3, model: 'demo' }, { name: 'b', weight: 1, model: 'demo' }], 'requests', { demo: 5 });
results.push({ name: 'weights 3:1, request fairness', measured: s1.served['a']! / s1.served['b']!, target: 3, what: 'served a:b' });

const s2 = await scenario('weights 1:1, 40 ms vs 10 ms models, compute', 'slow=40ms,fast=10ms', 2, [{ name: 'x', weight: 1, model: 'slow' }, { name: 'y', weight: 1, model: 'fast' }], 'compute', { slow: 40, fast: 10 });
results.push({ name: 'compute 1:1, 40 vs 10 ms', measured: share(s2.slotMs, 'x'), target: 0.5, what: 'slot-time share of x' });
results.push({ name: 'compute 1:1, 40 vs 10 ms', measured: share(s2.computeMs, 'x'), target: 0.5, what: 'compute share of x (outside view)' });
results.push({ name: 'compute 1:1, 40 vs 10 ms', measured: s2.served['y']! / s2.served['x']!, target: 4, what: 'served y:x' });

const s3 = await scenario('weights 1:1, 40 ms vs 10 ms models, requests', 'slow=40ms,fast=10ms', 2, [{ name: 'x', weight: 1, model: 'slow' }, { name: 'y', weight: 1, model: 'fast' }], 'requests', { slow: 40, fast: 10 });
results.push({ name: 'requests 1:1, 40 vs 10 ms', measured: s3.served['y']! / s3.served['x']!, target: 1, what: 'served y:x' });

const s4 = await scenario('weights 3:1, 40 ms vs 10 ms models, compute', 'slow=40ms,fast=10ms', 2, [{ name: 'x', weight: 3, model: 'slow' }, { name: 'y', weight: 1, model: 'fast' }], 'compute', { slow: 40, fast: 10 });
results.push({ name: 'compute 3:1, 40 vs 10 ms', measured: share(s4.slotMs, 'x'), target: 0.75, what: 'slot-time share of x' });
results.push({ name: 'compute 3:1, 40 vs 10 ms', measured: share(s4.computeMs, 'x'), target: 0.75, what: 'compute share of x (outside view)' });

process.stdout.write('\nscenario                        measure                            measured   target   measured/target\n');
for (const r of results) {
  process.stdout.write(`${r.name.padEnd(32)}${r.what.padEnd(35)}${r.measured.toFixed(3).padStart(8)}${r.target.toFixed(3).padStart(9)}${(r.measured / r.target).toFixed(3).padStart(18)}\n`);
}
