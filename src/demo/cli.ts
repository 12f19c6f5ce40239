/**
 * `modelguard demo-model`: the embedded model server on its own. Starts it, prints where it
 * listens and a curl command that works, and shuts down cleanly on SIGINT/SIGTERM.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { IRIS_MODEL_NAME } from './onnx/iris-model.ts';
import { startModelServer, type DemoMode, type ModelServer, type ModelSpec } from './server.ts';
import { formatServiceTime, parseServiceTime, type ServiceTime } from './service-time.ts';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** `127.0.0.1:8000`, `[::1]:8000`, `:8000` (all interfaces) or `8000` (loopback). */
export function parseListen(text: string): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(text.trim()) ?? /^()()(\d+)$/.exec(text.trim());
  const port = Number(m?.[3]);
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidArgumentError(`expected HOST:PORT such as 127.0.0.1:8000, got "${text}"`);
  }
  const host = m[1] ?? m[2] ?? '';
  const bare = /^\d+$/.test(text.trim());
  return { host: host !== '' ? host : bare ? '127.0.0.1' : '0.0.0.0', port };
}

function parseSlots(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected an integer ≥ 1, got "${text}"`);
  return n;
}

function parseNonNegative(text: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`expected a number ≥ 0, got "${text}"`);
  return n;
}

function parseSpec(text: string): ServiceTime {
  try {
    return parseServiceTime(text);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** `a,b` or `slow=40ms,fast=10ms`: model names, each with an optional service time of its own. */
function parseModels(text: string): (string | ModelSpec)[] {
  const items = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) throw new InvalidArgumentError('expected a comma-separated list of model names');
  return items.map((item) => {
    const eq = item.indexOf('=');
    if (eq < 0) return item;
    return { name: item.slice(0, eq), serviceTime: parseSpec(item.slice(eq + 1)) };
  });
}

interface CliOptions {
  readonly listen: ListenAddress;
  readonly grpcListen?: ListenAddress;
  readonly mode: DemoMode;
  readonly slots: number;
  readonly serviceTime?: ServiceTime;
  readonly models?: (string | ModelSpec)[];
  readonly tokenMs: number;
  readonly seed: number;
  readonly cacheDir?: string;
}

/** A URL a local curl can reach, even when the server listens on every interface. */
function reachableUrl(server: ModelServer): string {
  const host = server.host === '0.0.0.0' ? '127.0.0.1' : server.host === '::' ? '[::1]' : server.host.includes(':') ? `[${server.host}]` : server.host;
  return `http://${host}:${server.port}`;
}

/** The lines printed after start: where it listens, what it serves, and a working curl example. */
export function describeServer(server: ModelServer, serviceTime: string): string[] {
  const url = reachableUrl(server);
  const model = server.models[0] ?? IRIS_MODEL_NAME;
  const isIris = server.mode === 'onnx' && model === IRIS_MODEL_NAME;
  const body = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: isIris ? [5.1, 3.5, 1.4, 0.2] : [1, 2, 3, 4] }] });
  return [
    `ModelGuard demo model server (${server.mode}) listening on ${server.url}`,
    ...(server.grpcUrl !== undefined ? [`  KServe v2 gRPC (inference.GRPCInferenceService) listening on ${server.grpcUrl}`] : []),
    `  models: ${server.models.join(', ')}   slots: ${server.stats().slots}   service time: ${serviceTime}`,
    `  KServe v2: ${url}/v2/models/${model}/infer   OpenAI: ${url}/v1/chat/completions`,
    'Try:',
    `  curl -s ${url}/v2/models/${model}/infer -H 'content-type: application/json' -d '${body}'`,
    `  curl -sN ${url}/v1/chat/completions -H 'content-type: application/json' -d '{"model":"${model}","stream":true,"messages":[{"role":"user","content":"hi"}]}'`,
    'Press Ctrl-C to stop.',
  ];
}

export interface DemoModelCommandIo {
  /** Where the banner goes. Default: stdout. */
  readonly out?: (line: string) => void;
  /** Called after a signal closed the server. Default: nothing (the process exits once idle). */
  readonly onShutdown?: (signal: NodeJS.Signals) => void;
}

export function demoModelCommand(io: DemoModelCommandIo = {}): Command {
  const out = io.out ?? ((line: string) => process.stdout.write(line + '\n'));
  return new Command('demo-model')
    .description('run the embedded demo model server alone (a real ONNX model, or a simulated accelerator)')
    .option('--listen <addr>', 'HOST:PORT to listen on', parseListen, { host: '127.0.0.1', port: 8000 })
    .option('--grpc-listen <addr>', 'HOST:PORT for KServe v2 gRPC as well (default: no gRPC listener)', parseListen)
    .addOption(new Option('--mode <mode>', 'onnx: real Iris classifier; simulated: no real model').choices(['onnx', 'simulated']).default('onnx'))
    .option('--slots <n>', 'accelerator slots shared by all models', parseSlots, 2)
    .option('--service-time <spec>', 'per-request slot time: 20ms | 10ms..30ms | exp:20ms, optionally +1ms/row per row after the first (default: 20ms simulated, real compute time onnx)', parseSpec)
    .option('--models <names>', 'comma-separated model names, each optionally NAME=SERVICE-TIME (default: iris in onnx mode, demo in simulated mode)', parseModels)
    .option('--token-ms <ms>', 'simulated generation time per token on /v1', parseNonNegative, 2)
    .option('--seed <n>', 'seed for sampled service times', parseNonNegative, 1)
    .option('--cache-dir <dir>', 'where the generated .onnx file is written (default: OS temp dir/modelguard-demo)')
    .action(async (opts: CliOptions) => {
      const serviceTime = opts.serviceTime ?? (opts.mode === 'simulated' ? parseServiceTime('20ms') : undefined);
      const server = await startModelServer({
        host: opts.listen.host,
        port: opts.listen.port,
        mode: opts.mode,
        slots: opts.slots,
        tokenMs: opts.tokenMs,
        seed: opts.seed,
        ...(serviceTime !== undefined && { serviceTime }),
        ...(opts.models !== undefined && { models: opts.models }),
        ...(opts.cacheDir !== undefined && { cacheDir: opts.cacheDir }),
        ...(opts.grpcListen !== undefined && { grpcHost: opts.grpcListen.host, grpcPort: opts.grpcListen.port }),
      });
      for (const line of describeServer(server, serviceTime ? formatServiceTime(serviceTime) : 'real compute time')) out(line);
      const shutdown = (signal: NodeJS.Signals): void => {
        process.off('SIGINT', shutdown);
        process.off('SIGTERM', shutdown);
        out(`${signal}: stopping demo model server`);
        // A second signal while closing falls back to Node's default and ends the process at once.
        server.close().then(
          () => io.onShutdown?.(signal),
          (err: unknown) => {
            process.stderr.write(`error while stopping: ${String(err)}\n`);
            process.exitCode = 1;
          },
        );
      };
      process.once('SIGINT', shutdown);
      process.once('SIGTERM', shutdown);
    });
}
