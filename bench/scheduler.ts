/**
 * Cost of one scheduling decision of the fairness policy (VirtualTimePolicy: start-time fair
 * queuing over strict priority levels, flows in an indexed binary heap) as the number of
 * backlogged service groups grows. One decision = peek() the next flow + charge() it the cost of
 * the work it dispatches, the flow staying backlogged (so every decision re-sifts the heap). In
 * process: this is CPU work with no I/O, measured with process.hrtime over millions of decisions.
 *
 *   node --import tsx bench/scheduler.ts [--groups 1,10,100,1000] [--ms 300] [--repeats 7]
 *
 * Variants:
 *   weighted    one priority level, weights 1..4, costs 5..15 (accelerator ms, as compute fairness)
 *   priorities  the same flows spread over 4 priority levels (strict between levels)
 *   churn       one level, but every decision the flow goes idle and comes back (remove + push)
 */
import { parseArgs } from 'node:util';
import { VirtualTimePolicy, type VirtualTimeFlow } from '../src/broker/fairness/virtual-time.ts';
import { fixed, machineLine, median, say, seededRandom, table } from './lib/stats.ts';

const { values: args } = parseArgs({
  options: {
    groups: { type: 'string', default: '1,10,100,1000' },
    ms: { type: 'string', default: '300' },
    repeats: { type: 'string', default: '7' },
  },
});

interface BenchFlow extends VirtualTimeFlow {
  readonly name: string;
  priority: number;
  weight: number;
  pass: number;
  readonly seq: number;
  heapIndex: number;
}

type Variant = 'weighted' | 'priorities' | 'churn';

const COSTS = (() => {
  const random = seededRandom(42);
  return Float64Array.from({ length: 4096 }, () => 5 + 10 * random());
})();
const COST_MASK = COSTS.length - 1;

function setup(n: number, variant: Variant): VirtualTimePolicy<BenchFlow> {
  const random = seededRandom(n);
  const policy = new VirtualTimePolicy<BenchFlow>();
  for (let i = 0; i < n; i++) {
    policy.activate({
      name: `g${i}`,
      priority: variant === 'priorities' ? i % 4 : 0,
      weight: 1 + Math.floor(random() * 4),
      pass: 0,
      seq: i,
      heapIndex: -1,
    });
  }
  return policy;
}

/** Runs `count` decisions; returns a checksum so the work cannot be optimised away. */
function decide(policy: VirtualTimePolicy<BenchFlow>, count: number, churn: boolean, offset: number): number {
  let sum = 0;
  for (let i = 0; i < count; i++) {
    const flow = policy.peek()!;
    sum += flow.seq;
    if (churn) {
      policy.charge(flow, COSTS[(i + offset) & COST_MASK]!, false);
      policy.activate(flow);
    } else {
      policy.charge(flow, COSTS[(i + offset) & COST_MASK]!, true);
    }
  }
  return sum;
}

/** ns per decision: median of `repeats` timed batches sized to last about `ms` each. */
function measure(n: number, variant: Variant, ms: number, repeats: number): { ns: number; spread: number } {
  const policy = setup(n, variant);
  const churn = variant === 'churn';
  // Calibrate (this also warms up the JIT): grow the batch until it takes ~ms/10.
  let batch = 1000;
  for (;;) {
    const t0 = process.hrtime.bigint();
    decide(policy, batch, churn, 0);
    const took = Number(process.hrtime.bigint() - t0) / 1e6;
    if (took > ms / 10) {
      batch = Math.max(1000, Math.round((batch * ms) / took));
      break;
    }
    batch *= 4;
  }
  const samples: number[] = [];
  let checksum = 0;
  for (let r = 0; r < repeats; r++) {
    const t0 = process.hrtime.bigint();
    checksum += decide(policy, batch, churn, r);
    samples.push(Number(process.hrtime.bigint() - t0) / batch);
  }
  if (checksum < 0) say(String(checksum)); // never true; keeps the result observable
  const sorted = [...samples].sort((a, b) => a - b);
  return { ns: median(samples), spread: sorted[sorted.length - 1]! / sorted[0]! };
}

async function main(): Promise<void> {
  const sizes = args.groups.split(',').map(Number);
  const ms = Number(args.ms);
  const repeats = Number(args.repeats);
  say('ModelGuard scheduler benchmark: cost of one fairness decision (peek + charge) vs backlogged groups');
  say(await machineLine());
  say(`in-process; each figure is the median of ${repeats} batches of ~${ms} ms; "ratio" is to the 1-group figure of the same variant`);
  say();

  const verdicts: string[] = [];
  for (const variant of ['weighted', 'priorities', 'churn'] as const) {
    const rows: string[][] = [];
    const results = sizes.map((n) => ({ n, ...measure(n, variant, ms, repeats) }));
    const base = results.find((r) => r.n === 1)?.ns ?? results[0]!.ns;
    for (const r of results) {
      const log2 = Math.log2(r.n);
      rows.push([String(r.n), fixed(r.ns, 1), fixed(r.ns / base, 2), fixed(log2, 2), r.n > 1 ? fixed((r.ns - base) / log2, 1) : '-', fixed(r.spread, 2)]);
    }
    say(`variant: ${variant}`);
    say(table(['groups', 'ns/decision', 'ratio', 'log2(n)', 'ns per log2 step', 'max/min batch'], rows));
    say();
    const first = results.find((r) => r.n >= 10);
    const last = results[results.length - 1]!;
    if (first && last.n > first.n) {
      verdicts.push(
        `${variant.padEnd(10)} ${first.n} -> ${last.n} groups (x${last.n / first.n}): cost x${fixed(last.ns / first.ns, 2)}; ` +
          `O(log n) predicts x${fixed(Math.log2(last.n) / Math.log2(first.n), 2)}, O(n) x${last.n / first.n}`,
      );
    }
  }
  say('growth (a heap decision costs about c + d*log2(n): the "ns per log2 step" column should stay roughly flat):');
  for (const v of verdicts) say(`  ${v}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
