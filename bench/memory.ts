/**
 * Memory held per queued request, and proof that the queue is bounded. The accelerator has one
 * slot and a service time far longer than the run, so the first request holds the slot and every
 * later one waits in ModelGuard's `default` group queue (maxLength 10,000, maxWait 10m). ModelGuard's
 * resident set size (VmRSS from /proc/<pid>/status) is read with the slot busy and the queue empty
 * (the baseline), with 1,000 queued and with 10,000 queued. Then more requests are sent: they must
 * be answered 429 MG_QUEUE_FULL at once, without growing the queue. Queue depth comes from the
 * admin API (GET /api/v1/status, groups[].queued).
 *
 *   node --import tsx bench/memory.ts [--queued 10000] [--connections N] [--overflow 1000]
 *
 * Clients: one keep-alive connection per request when the open-files limit allows (like 10,000
 * devices); otherwise, or with --connections N, N connections with HTTP/1.1 pipelining.
 */
import { parseArgs } from 'node:util';
import { group, waitReady } from './lib/admin.ts';
import { INFER_BODY, INFER_PATH, JSON_HEADERS, writeConfig } from './lib/config.ts';
import { LoadGenerator } from './lib/load.ts';
import type { Target } from './lib/load-protocol.ts';
import { fileLimits, rssBytes, runMain, startAccelerator, startModelGuard, waitFor } from './lib/processes.ts';
import { fixed, machineLine, mib, percentile, say, table } from './lib/stats.ts';

const { values: args } = parseArgs({
  options: {
    queued: { type: 'string', default: '10000' },
    connections: { type: 'string' },
    overflow: { type: 'string', default: '1000' },
    'service-time': { type: 'string', default: '600s' },
  },
});

/** File descriptors kept free for everything but the client sockets. */
const FD_MARGIN = 512;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function main(): Promise<void> {
  const queued = Number(args.queued);
  const overflow = Number(args.overflow);
  const limits = fileLimits();
  // Children raise their soft limit to the hard one; each side needs one descriptor per connection.
  const maxConnections = Math.max(1, limits.hard - FD_MARGIN);
  const wanted = args.connections === undefined ? queued : Number(args.connections);
  const connections = Math.min(wanted, maxConnections, queued);
  const pipelining = Math.ceil(queued / connections);

  say('ModelGuard memory benchmark: resident memory per queued request, and the queue bound');
  say(await machineLine());
  say(`open files: soft ${limits.soft}, hard ${limits.hard} (children raise soft to hard)`);
  say(
    `clients: ${queued} queued requests on ${connections} keep-alive connection(s)` +
      (pipelining > 1 ? `, up to ${pipelining} pipelined per connection (HTTP/1.1 pipelining)` : ', one request each') +
      (connections < wanted ? ` — limited by the open-files limit` : ''),
  );
  say(`accelerator: 1 slot, service time ${args['service-time']}; ModelGuard default group: queue maxLength ${queued}, maxWait 10m`);
  say();

  const acc = await startAccelerator({ slots: 1, serviceTime: args['service-time'] });
  const mg = await startModelGuard(writeConfig({ acceleratorUrl: acc.url, slots: 1, timeout: '15m', maxLength: queued, maxWait: '10m' }));
  const load = LoadGenerator.start();
  try {
    await waitReady(mg.adminUrl);
    const target: Target = { url: mg.httpUrl, path: INFER_PATH, headers: JSON_HEADERS, body: INFER_BODY };
    const depth = async (): Promise<{ queued: number; inflight: number }> => {
      const g = await group(mg.adminUrl);
      return { queued: g?.queued ?? 0, inflight: g?.inflight ?? 0 };
    };
    /** RSS once it has settled: the median of five reads 200 ms apart. */
    const settledRss = async (): Promise<number> => {
      await sleep(1000);
      const reads: number[] = [];
      for (let i = 0; i < 5; i++) {
        reads.push(rssBytes(mg.pid));
        await sleep(200);
      }
      return percentile(reads, 50);
    };
    const hold = async (count: number, untilQueued: number): Promise<number> => {
      const conns = Math.max(1, Math.ceil(count / pipelining));
      const t0 = performance.now();
      await load.run({ op: 'hold', target, count, connections: conns, pipelining: Math.ceil(count / conns) });
      await waitFor(`${untilQueued} queued`, async () => ((await depth()).queued >= untilQueued ? true : undefined), 120_000, 100);
      return performance.now() - t0;
    };

    const rssStart = await settledRss();
    // The first request takes the only slot and keeps it for the whole run.
    await load.run({ op: 'hold', target, count: 1, connections: 1, pipelining: 1 });
    await waitFor('the slot to be taken', async () => ((await depth()).inflight === 1 ? true : undefined), 10_000);
    const rss0 = await settledRss();
    const first = Math.min(1000, queued);
    const t1000 = await hold(first, first);
    const rss1000 = await settledRss();
    const tRest = queued > first ? await hold(queued - first, queued) : 0;
    const rssFull = await settledRss();
    const full = await depth();

    say('resident set size of the ModelGuard process (VmRSS):');
    say(
      table(
        ['state', 'queued', 'RSS', 'x baseline', 'time to fill'],
        [
          ['started, idle', '0', mib(rssStart), fixed(rssStart / rss0, 3), '-'],
          ['slot busy, queue empty (baseline)', '0', mib(rss0), '1.000', '-'],
          [`${first} queued`, String(first), mib(rss1000), fixed(rss1000 / rss0, 3), `${fixed(t1000 / 1000, 1)} s`],
          [`${queued} queued`, String(full.queued), mib(rssFull), fixed(rssFull / rss0, 3), `${fixed(tRest / 1000, 1)} s`],
        ],
      ),
    );
    say();
    say(`bytes per queued request, (RSS at ${queued} - baseline) / ${queued}:        ${fixed((rssFull - rss0) / queued, 0)} B  (${fixed((rssFull - rss0) / queued / 1024, 1)} KiB)`);
    if (queued > first) {
      say(`bytes per queued request, marginal (RSS at ${queued} - at ${first}) / ${queued - first}:  ${fixed((rssFull - rss1000) / (queued - first), 0)} B  (${fixed((rssFull - rss1000) / (queued - first) / 1024, 1)} KiB)`);
    }
    say(`(each includes the client connection's cost in ModelGuard: ${pipelining > 1 ? `${connections} sockets shared by ${pipelining} requests each` : 'one socket, its HTTP parser and buffers per request'})`);
    say();

    // Bounded: the queue is full, so more requests are refused at admission.
    const ob = await load.run({ op: 'burst', target, count: overflow, connections: Math.min(100, overflow) });
    // One at a time on one connection: the latency of a single rejection, without a client-side queue.
    const seq = await load.run({ op: 'burst', target, count: 200, connections: 1, sequential: true });
    const after = await depth();
    const rssAfter = rssBytes(mg.pid);
    const rejected = (ob.byCode['MG_QUEUE_FULL'] ?? 0) + (seq.byCode['MG_QUEUE_FULL'] ?? 0);
    say(`bounded: ${overflow} more requests sent with the queue full (100 connections):`);
    say(`  answers by status: ${Object.entries(ob.byStatus).map(([k, v]) => `${k}: ${v}`).join(', ')}; by code: ${Object.entries(ob.byCode).map(([k, v]) => `${k}: ${v}`).join(', ') || 'none'}`);
    say(`  all answered in ${fixed(ob.elapsedMs, 0)} ms (${fixed((overflow / ob.elapsedMs) * 1000, 0)} rejections/s, new connections included)`);
    say(`  latency as the client sees it (up to ${Math.ceil(overflow / Math.min(100, overflow))} requests wait their turn on each connection): p50 ${fixed(percentile(ob.latencies, 50))} ms, p99 ${fixed(percentile(ob.latencies, 99))} ms, max ${fixed(percentile(ob.latencies, 100))} ms`);
    say(`  then 200 more, one at a time on one connection: ${Object.entries(seq.byCode).map(([k, v]) => `${k}: ${v}`).join(', ') || 'no codes'}; latency p50 ${fixed(percentile(seq.latencies, 50))} ms, p99 ${fixed(percentile(seq.latencies, 99))} ms`);
    say(`  queue depth after: ${after.queued} (was ${full.queued}); RSS after: ${mib(rssAfter)} (${fixed(((rssAfter - rssFull) / 1_048_576), 1)} MiB change)`);
    say(`  held requests answered meanwhile: ${ob.held.answered}, failed: ${ob.held.failed}${ob.held.firstError ? ` (first: ${ob.held.firstError})` : ''}`);
    const bounded = rejected === overflow + 200 && after.queued === full.queued;
    say(`  verdict: ${bounded ? 'BOUNDED — every extra request got 429 MG_QUEUE_FULL and the queue did not grow' : 'NOT BOUNDED as expected'}`);
  } finally {
    await load.close();
    await mg.stop(10_000);
    await acc.stop();
  }
}

runMain(main);
