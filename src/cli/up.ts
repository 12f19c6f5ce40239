/**
 * `modelguard up`: everything on one box. With --config, a real setup (reloaded on SIGHUP and on
 * file changes, keeping the last good configuration when a new one is invalid); without, the
 * embedded demo.
 */
import { watch } from 'node:fs';
import { ConfigError } from '../config/issues.ts';
import { DEFAULTS } from '../config/defaults.ts';
import type { Snapshot } from '../core/snapshot.ts';
import type { Gateway } from '../compose/gateway.ts';
import type { ModelServer } from '../demo/index.ts';
import { DEMO_MQTT, DEMO_SERVICE_TIME, DEMO_SLOTS, demoResources } from './demo-config.ts';
import { removeDemoState, writeDemoState } from './demo-state.ts';
import { mqttTryLine } from './mqtt-hint.ts';
import { restartNote } from '../admin/restart.ts';
import { mqttFlagNeedsGateway } from './flags.ts';
import { loadSnapshot } from './config-thread.ts';

export interface UpOptions {
  readonly config?: string;
  readonly http?: string;
  readonly grpc?: string;
  readonly admin?: string;
  /** MQTT URL override (the embedded broker's address in the demo). */
  readonly mqtt?: string;
}

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

function mqttStartProblem(err: Error, url: string): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') return `${url} is already in use (another MQTT broker?); running without MQTT. Stop it, or pass --mqtt mqtt://127.0.0.1:<free port>`;
  if (code === 'EACCES') return `not allowed to listen on ${url}; running without MQTT. Pass --mqtt mqtt://127.0.0.1:<port above 1024>`;
  return `the embedded broker did not start at ${url} (${err.message}); running without MQTT`;
}

export async function up(opts: UpOptions): Promise<{ gateway: Gateway; stop: () => Promise<void> }> {
  let modelServer: ModelServer | undefined;
  let snapshot: Snapshot;
  let demoKeys: Record<string, { key: string }> | undefined;
  // The gateway's modules load while the worker compiles the files (two threads at once).
  const gatewayModule = import('../compose/gateway.ts');
  gatewayModule.catch(() => undefined); // awaited below; not an unhandled rejection if the configuration fails first
  if (opts.config) {
    // Compiled in a worker thread: this process never holds the compiler (config-thread.ts).
    snapshot = await loadSnapshot(opts.config);
    mqttFlagNeedsGateway(`modelguard up --config ${opts.config}`, snapshot.gateway.mqtt !== undefined, opts.mqtt);
  } else {
    // The demo model server (onnxruntime, its own gRPC server) only for the demo.
    const [{ startModelServer }, { compileResources }] = await Promise.all([import('../demo/index.ts'), import('../config/load.ts')]);
    modelServer = await startModelServer({ mode: 'onnx', slots: DEMO_SLOTS, serviceTime: DEMO_SERVICE_TIME });
    const demo = demoResources(modelServer.url, { http: opts.http ?? '127.0.0.1:8080', ...(opts.grpc === undefined ? {} : { grpc: opts.grpc }), admin: opts.admin ?? DEFAULTS.gateway.adminByRole.up });
    snapshot = compileResources(demo.resources, { version: 1, sources: ['<embedded demo>'] }).snapshot;
    demoKeys = demo.keys;
  }
  const overrides: { http?: string; grpc?: string; admin?: string; mqtt?: string; onMqttError?: (err: Error) => void } = {};
  if (opts.http) overrides.http = opts.http;
  if (opts.grpc) overrides.grpc = opts.grpc;
  if (opts.admin) overrides.admin = opts.admin;
  if (opts.mqtt) overrides.mqtt = opts.mqtt;
  let mqttProblem: string | undefined;
  // The demo must come up even when something else (a system mosquitto) holds port 1883.
  if (!opts.config) overrides.onMqttError = (err) => (mqttProblem = mqttStartProblem(err, opts.mqtt ?? DEMO_MQTT));
  const gateway = await (await gatewayModule).startGateway(snapshot, overrides);

  // Before the lines that say it is up: a SIGHUP sent as soon as they appear must reload, not kill.
  let version = snapshot.version;
  const reload = async (why: string): Promise<void> => {
    if (!opts.config) return;
    try {
      const next = await loadSnapshot(opts.config, { version: version + 1 });
      if (next.hash === gateway.broker.current.hash) return;
      version = next.version;
      const before = gateway.broker.current.gateway;
      gateway.reload(next);
      log(`configuration reloaded (${why}): version ${next.version}, ${next.hash.slice(0, 12)}`);
      const note = restartNote(before, next.gateway, next.version, 'modelguard up');
      if (note) log(note);
    } catch (err) {
      const text = err instanceof ConfigError ? err.format() : String(err);
      process.stderr.write(`configuration not reloaded (${why}); keeping version ${gateway.broker.current.version}:\n${text}\n`);
    }
  };
  const onHup = (): void => void reload('SIGHUP');
  process.on('SIGHUP', onHup);
  log(`ModelGuard is up (configuration version ${snapshot.version}, ${snapshot.hash.slice(0, 12)})`);
  log(`  inference HTTP  ${gateway.httpUrl}`);
  log(`  inference gRPC  ${gateway.grpcUrl}`);
  log(`  admin           ${gateway.adminUrl}   (dashboard at /, /metrics /healthz /readyz /api/v1/status)`);
  if (gateway.mqtt) log(`  MQTT            ${gateway.mqtt.url}   (${gateway.mqtt.embedded ? 'embedded broker, MQTT 3.1.1; ' : ''}requests on ${snapshot.gateway.mqtt?.topicPrefix}/infer/<model>)`);
  if (mqttProblem) log(`  MQTT            off: ${mqttProblem}`);
  if (modelServer && demoKeys) {
    log(`  demo model server (ONNX, real iris classifier) ${modelServer.url}`);
    log('');
    log('Demo apps and their keys (shown once):');
    for (const [app, k] of Object.entries(demoKeys)) {
      const app_ = snapshot.apps[app];
      log(`  ${app.padEnd(16)} group ${String(app_?.serviceGroup).padEnd(7)} key ${k.key}`);
    }
    const key = demoKeys['camera-line-1']?.key ?? '';
    log('');
    log('Try:');
    log(
      `  curl -s -H 'Authorization: Bearer ${key}' -H 'content-type: application/json' ` +
        `-d '{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}' ${gateway.httpUrl}/v2/models/iris/infer`,
    );
    if (gateway.mqtt) log(`  ${mqttTryLine(gateway.mqtt.url, 'camera-line-1', key)}`);
    const apps = Object.entries(demoKeys).map(([name, k]) => ({ name, group: snapshot.apps[name]?.serviceGroup ?? 'default', key: k.key }));
    try {
      writeDemoState({ httpUrl: gateway.httpUrl, adminUrl: gateway.adminUrl, model: 'iris', apps, pid: process.pid });
      log('');
      log(`See the sharing: \`npx modelguard demo-load --seconds 8\` overloads the accelerator from both apps; watch ${gateway.adminUrl}/`);
    } catch (err) {
      log(`  (demo-load will need --config and --key: could not record the demo's keys: ${(err as Error).message})`);
    }
  }

  let debounce: NodeJS.Timeout | undefined;
  const watcher = opts.config
    ? watch(opts.config, { persistent: false }, () => {
        clearTimeout(debounce);
        debounce = setTimeout(() => void reload('file change'), 200);
      })
    : undefined;

  const stop = async (): Promise<void> => {
    process.off('SIGHUP', onHup);
    watcher?.close();
    clearTimeout(debounce);
    if (demoKeys) removeDemoState(process.pid);
    await gateway.close();
    await modelServer?.close();
  };
  return { gateway, stop };
}
