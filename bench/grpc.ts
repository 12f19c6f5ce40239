/**
 * gRPC ModelInfer throughput and latency through ModelGuard against the demo server's gRPC
 * listener with zero service time, so what is measured is the cost of the governed path. Closed
 * loop on one HTTP/2 channel; in the same run:
 *   (a) direct            — the demo server's gRPC listener: the ceiling of this machine and client
 *   (b) ModelGuard → gRPC — gRPC in, kserve-v2-grpc backend (protobuf → KServe JSON → protobuf both ways)
 *   (c) ModelGuard → HTTP — gRPC in, kserve-v2-http backend (protobuf → KServe JSON over HTTP/1.1)
 * The demo server, ModelGuard and the load generator each run in their own process.
 *
 *   node --import tsx bench/grpc.ts [--concurrency 32] [--seconds 3] [--warmup 2] [--rounds 2] [--slots 64]
 *
 * One number per path: answered ModelInfer calls per second (OK status only); p50/p99 are the
 * latency of one call under that load. The ratios against direct are the headline.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { waitReady } from './lib/admin.ts';
import { ROOT, runMain, startService, tempDir, treeCpuMs, type Service } from './lib/processes.ts';
import { fixed, machineLine, mean, median, say, table } from './lib/stats.ts';

const { values: args } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '32' },
    seconds: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '2' },
    slots: { type: 'string', default: '64' },
  },
});

interface LoadResult {
  answered: number;
  errors: number;
  elapsedMs: number;
  p50Ms: number;
  p99Ms: number;
}

function runLoad(target: string, model: string, concurrency: number, warmupMs: number, durationMs: number): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', 'bench/lib/grpc-load.ts', target, model, String(concurrency), String(warmupMs), String(durationMs)], { cwd: ROOT }, (err, stdout) => {
      if (err) reject(new Error(`gRPC load generator failed: ${err.message}`));
      else resolve(JSON.parse(stdout) as LoadResult);
    });
  });
}

function config(grpcUrl: string, httpUrl: string, slots: number): string {
  const dir = tempDir('grpc-config');
  const backend = (name: string, protocol: string, url: string): string =>
    `apiVersion: modelguard.io/v1alpha1\nkind: Backend\nmetadata: { name: ${name} }\nspec:\n  protocol: ${protocol}\n  endpoints: [{ url: ${url}, slots: ${slots} }]\n  timeout: 30s\n`;
  const model = (name: string, b: string): string => `apiVersion: modelguard.io/v1alpha1\nkind: Model\nmetadata: { name: ${name} }\nspec: { backend: ${b}, backendModel: demo }\n`;
  writeFileSync(
    join(dir, 'modelguard.yaml'),
    [
      'apiVersion: modelguard.io/v1alpha1\nkind: Gateway\nmetadata: { name: default }\nspec:\n  auth: none\n',
      backend('accel-grpc', 'kserve-v2-grpc', grpcUrl),
      backend('accel-http', 'kserve-v2-http', httpUrl),
      model('demo-grpc', 'accel-grpc'),
      model('demo-http', 'accel-http'),
      'apiVersion: modelguard.io/v1alpha1\nkind: ServiceGroup\nmetadata: { name: default }\nspec:\n  queue: { maxLength: 10000, maxWait: 30s }\n',
    ].join('---\n'),
  );
  return dir;
}

interface Subject {
  readonly name: string;
  readonly target: string;
  readonly model: string;
  readonly pid: number | undefined;
  readonly rps: number[];
  readonly p50: number[];
  readonly p99: number[];
  readonly cpu: number[];
  errors: number;
}

async function main(): Promise<void> {
  const concurrency = Number(args.concurrency);
  const seconds = Number(args.seconds);
  const rounds = Math.max(1, Number(args.rounds));
  const slots = Number(args.slots);
  say('ModelGuard gRPC benchmark: closed loop of ModelInfer calls against a zero-cost accelerator');
  say(await machineLine());
  say(`accelerator: demo server, ${slots} slots, service time 0; load: ${concurrency} calls outstanding on one HTTP/2 channel, FP32 [1,4] typed contents`);
  say(`schedule: ${args.warmup} s warm-up per path, then ${rounds} round(s) in alternating order of 0.5 s ramp + ${seconds} s measured`);
  say();

  const services: Service[] = [];
  try {
    const acc = await startService(
      'demo-model',
      process.execPath,
      ['bin/modelguard.js', 'demo-model', '--listen', '127.0.0.1:0', '--grpc-listen', '127.0.0.1:0', '--mode', 'simulated', '--slots', String(slots), '--service-time', '0'],
      { ready: /listening on (http:\/\/[\d.]+:\d+)[\s\S]*gRPC[^\n]*listening on http:\/\/([\d.]+:\d+)/, raiseFileLimit: true },
    );
    services.push(acc);
    const accHttp = acc.match[1]!;
    const accGrpc = acc.match[2]!;
    const mg = await startService(
      'modelguard',
      process.execPath,
      ['bin/modelguard.js', 'up', '--config', config(`http://${accGrpc}`, accHttp, slots), '--http', '127.0.0.1:0', '--grpc', '127.0.0.1:0', '--admin', '127.0.0.1:0'],
      { ready: /inference gRPC\s+([\d.]+:\d+)[\s\S]*admin\s+(http:\/\/[\d.]+:\d+)/, raiseFileLimit: true },
    );
    services.push(mg);
    await waitReady(mg.match[2]!);

    const subject = (name: string, target: string, model: string, pid: number | undefined): Subject => ({ name, target, model, pid, rps: [], p50: [], p99: [], cpu: [], errors: 0 });
    const subjects = [subject('direct', accGrpc, 'demo', undefined), subject('ModelGuard -> gRPC', mg.match[1]!, 'demo-grpc', mg.pid), subject('ModelGuard -> HTTP', mg.match[1]!, 'demo-http', mg.pid)];

    for (const s of subjects) await runLoad(s.target, s.model, concurrency, 0, Number(args.warmup) * 1000);
    for (let r = 0; r < rounds; r++) {
      for (const s of r % 2 === 0 ? subjects : [...subjects].reverse()) {
        const before = s.pid === undefined ? NaN : treeCpuMs(s.pid);
        const res = await runLoad(s.target, s.model, concurrency, 500, seconds * 1000);
        const rps = (res.answered / res.elapsedMs) * 1000;
        s.rps.push(rps);
        s.p50.push(res.p50Ms);
        s.p99.push(res.p99Ms);
        s.errors += res.errors;
        // CPU of the process under test per answered call (warm-up ramp included, so slightly high).
        if (s.pid !== undefined) s.cpu.push((treeCpuMs(s.pid) - before) / res.answered);
        say(`  round ${r + 1} ${s.name.padEnd(18)} ${fixed(rps, 0).padStart(7)} calls/s   p50 ${fixed(res.p50Ms)} ms   p99 ${fixed(res.p99Ms)} ms`);
      }
    }
    say();
    const direct = subjects[0]!;
    say(
      table(
        ['path', 'calls/s', 'x direct', 'p50 ms', 'p99 ms', 'CPU ms/call (ModelGuard)', 'errors'],
        subjects.map((s) => [
          s.name,
          fixed(mean(s.rps), 0),
          fixed(median(s.rps.map((v, i) => v / direct.rps[i]!)), 3),
          fixed(mean(s.p50)),
          fixed(mean(s.p99)),
          s.cpu.length ? fixed(mean(s.cpu), 3) : '-',
          String(s.errors),
        ]),
      ),
    );
    say();
    for (const s of subjects.slice(1)) {
      const per = s.rps.map((v, i) => v / direct.rps[i]!);
      say(`${s.name} / direct = ${fixed(median(per), 3)} (per round: ${per.map((p) => fixed(p, 3)).join(', ')}); p50 +${fixed(mean(s.p50) - mean(direct.p50))} ms`);
    }
  } finally {
    await Promise.all(services.map((s) => s.stop()));
  }
}

runMain(main);
