/**
 * `modelguard controller | broker | proxy`: the three roles as separate processes
 * (docs/deployment.md). A broker or proxy runs managed (`--controller URL`: its configuration comes
 * from the controller and follows it) or standalone (`--config PATH`: read from files, reloaded on
 * change and on SIGHUP). Either way a bad configuration is refused and the last good one stays.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../config/issues.ts';
import { brokerSnapshot, proxySnapshot } from '../config/partition.ts';
import { isLoopbackHost } from '../config/values.ts';
import { withVersion } from '../config/seal.ts';
import type { Snapshot } from '../core/snapshot.ts';
import { followBrokerTls, followProxyTls, proxyTls } from './tls.ts';
import { startBroker, startProxy, type Role } from '../compose/roles.ts';
import { bound, closeServer, listen, parseListen } from '../net/listen.ts';
import { adminAddress } from '../compose/admin-address.ts';
import type { Controller } from '../controller/controller.ts';
import { NodeAgent } from '../controller/agent.ts';
import { restartNote } from '../admin/restart.ts';
import { mqttFlagNeedsGateway } from './flags.ts';
import type { KubeConfig } from '@kubernetes/client-node';

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

function isLoopback(addr: string): boolean {
  return isLoopbackHost(parseListen(addr).host);
}

/** A secret from a file (trailing newline dropped) or an environment variable. */
export function secret(file: string | undefined, env: string): string | undefined {
  if (file !== undefined) return readFileSync(file, 'utf8').trim();
  const v = process.env[env];
  return v === undefined || v === '' ? undefined : v.trim();
}

export interface Running {
  stop(): Promise<void>;
}

export interface ControllerCliOptions {
  /** File mode: a file or directory of resources. */
  readonly config?: string;
  /** Kubernetes mode: the namespace holding the CRDs. */
  readonly kubernetes?: { readonly namespace: string; readonly kubeConfig?: KubeConfig };
  readonly admin?: string;
  /** Kubernetes mode: the injection webhook's TLS listener (host:port). */
  readonly webhook?: string;
  readonly heartbeatMs?: number;
}

export async function runController(o: ControllerCliOptions): Promise<Running & { url: string; webhookUrl: string | undefined; controller: Controller }> {
  if ((o.config === undefined) === (o.kubernetes === undefined)) throw new Error('give either --config PATH (files) or --kubernetes (CRDs in --namespace)');
  // The Kubernetes client (hundreds of files, tens of MB) is loaded only in Kubernetes mode.
  const k8sMode = o.kubernetes ? await import('../k8s/controller-mode.ts') : undefined;
  // So is the configuration compiler (zod, yaml): only the controller and standalone nodes use it.
  const [{ Controller }, { createControllerServer }, { FileSource }] = await Promise.all([import('../controller/controller.ts'), import('../controller/server.ts'), import('../controller/source.ts')]);
  const k8s = o.kubernetes && k8sMode ? new k8sMode.KubernetesConfigSource({ namespace: o.kubernetes.namespace, ...(o.kubernetes.kubeConfig ? { kubeConfig: o.kubernetes.kubeConfig } : {}) }) : undefined;
  const source = k8s ?? new FileSource(o.config as string);
  const started: { gateway?: Snapshot['gateway'] } = {};
  const controller: Controller = new Controller(source, {
    ...(o.heartbeatMs === undefined ? {} : { heartbeatMs: o.heartbeatMs }),
    log: (line) => {
      log(line);
      // Its own listener is the controller's one start-only setting (nodes report theirs).
      const now = controller.current;
      const startedWith = started.gateway;
      if (!startedWith || !now || o.admin !== undefined || !line.startsWith('configuration version')) return;
      if (adminAddress(startedWith, 'controller') !== adminAddress(now.gateway, 'controller')) {
        log(`configuration version ${now.version} moves Gateway.spec.listeners.admin to ${adminAddress(now.gateway, 'controller')}, read only at start: restart \`modelguard controller\` to apply it (/api/v1/status lists restartRequired)`);
      }
    },
  });
  await controller.start();
  const full = controller.current;
  if (!full) throw new Error(`no valid configuration from ${source.description}; the controller needs one to start (see the errors above)`);
  const addr = o.admin ?? adminAddress(full.gateway, 'controller');
  if (!isLoopback(addr) && (full.gateway.nodeTokenHashes.length === 0 || full.gateway.adminTokenHashes.length === 0)) {
    const missing = full.gateway.nodeTokenHashes.length === 0 ? 'Gateway.spec.nodeTokens' : 'Gateway.spec.adminTokens';
    const text = `the controller listens on ${addr}, beyond loopback, without ${missing}; add them (\`modelguard keys create --kind node\` and \`--kind admin\` print a token and its Gateway lines), or listen on 127.0.0.1`;
    // In a cluster the listener must be reachable by probes and nodes: say it loudly, but serve.
    if (!k8s) throw new Error(text);
    process.stderr.write(`warning: ${text}\n`);
  }
  started.gateway = full.gateway;
  const server = createControllerServer(controller);
  const url = await listen(server, addr, 'controller');
  // Before the lines that say it is up: a SIGHUP sent as soon as they appear must reload, not kill.
  const onHup = (): void => void controller.reload('SIGHUP');
  process.on('SIGHUP', onHup);
  log(`ModelGuard controller is up: configuration version ${full.version} (${full.hash.slice(0, 12)}) from ${source.description}`);
  log(`  controller      ${url}   (node API, /api/v1/nodes, /api/v1/config, /metrics)`);
  let webhook: { url: string; stop: () => Promise<void> } | undefined;
  if (k8s && k8sMode && o.webhook && o.kubernetes) {
    const ns = o.kubernetes.namespace;
    const hook = o.webhook;
    webhook = await bound('webhook', hook, () => k8sMode.startWebhook({ source: k8s, namespace: ns, listen: hook, controllerUrl: `http://modelguard-controller.${ns}.svc:${parseListen(addr).port}`, log }));
    log(`  webhook         ${webhook.url}   (sidecar injection, TLS)`);
  }
  return {
    url,
    webhookUrl: webhook?.url,
    controller,
    async stop() {
      process.off('SIGHUP', onHup);
      controller.close();
      await webhook?.stop();
      await closeServer(server);
    },
  };
}

export interface NodeOptions {
  readonly controller?: string;
  readonly config?: string;
  readonly name?: string;
  readonly listen?: string;
  readonly admin?: string;
  readonly nodeToken?: string;
  /** Broker: MQTT URL override. */
  readonly mqtt?: string;
  /** Proxy: gRPC listener override. */
  readonly grpc?: string;
}

/**
 * Runs a role either way: `start` builds it from the first snapshot, `partition` cuts a standalone
 * configuration to this node, `check` refuses snapshots the node cannot serve.
 */
async function runNode<R extends Role>(
  o: NodeOptions,
  role: 'broker' | 'proxy',
  apps: readonly string[],
  partition: (full: Snapshot) => Snapshot,
  check: (s: Snapshot) => void,
  start: (s: Snapshot) => Promise<R>,
): Promise<Running & { role: R }> {
  if ((o.controller === undefined) === (o.config === undefined)) throw new Error('give either --controller URL (managed) or --config PATH (standalone)');
  let running: R | undefined;
  const apply = (s: Snapshot): void => {
    check(s);
    const before = running?.current.gateway;
    running?.reload(s);
    const note = before && restartNote(before, s.gateway, s.version, `modelguard ${role}`);
    if (note) log(note);
  };
  if (o.controller !== undefined) {
    if (!o.name) throw new Error('--name NODE is required with --controller');
    const agent = new NodeAgent({ controller: o.controller, name: o.name, role, apps, ...(o.nodeToken ? { token: o.nodeToken } : {}) }, apply);
    const first = await agent.first();
    check(first);
    running = await start(first);
    agent.run();
    log(`  managed by      ${o.controller} as ${role} "${o.name}" (configuration version ${first.version})`);
    const r = running;
    return {
      role: r,
      async stop() {
        await agent.close();
        await r.close();
      },
    };
  }
  // Files need the configuration compiler (zod, yaml): a worker thread (a broker) or a child process
  // (a proxy, whose idle memory counts once per app) runs it for each load, so a standalone node does
  // not keep it either (config-thread.ts).
  const { snapshotFiles } = await import('./config-thread.ts');
  const source = snapshotFiles(o.config as string, role === 'proxy' ? 'process' : 'thread');
  let first: Snapshot | undefined;
  let version = 0;
  await source.start({
    onLoad: (snapshot) => {
      const s = partition(snapshot);
      if (running && s.hash === running.current.hash) return;
      version++;
      const next = withVersion(s, version);
      if (!running) {
        first = next;
        return;
      }
      try {
        apply(next);
        log(`configuration reloaded: version ${version} (${s.hash.slice(0, 12)})`);
      } catch (err) {
        process.stderr.write(`configuration refused; keeping version ${running.current.version}: ${err instanceof Error ? err.message : String(err)}\n`);
      }
    },
    onError: (err) => {
      const text = err instanceof ConfigError ? err.format() : String(err);
      process.stderr.write(`configuration refused${running ? `; keeping version ${running.current.version}` : ''}:\n${text}\n`);
    },
  });
  if (!first) throw new Error(`no valid configuration at ${o.config}`);
  check(first);
  running = await start(first);
  const onHup = (): void => void source.reload('SIGHUP');
  process.on('SIGHUP', onHup);
  const r = running;
  return {
    role: r,
    async stop() {
      process.off('SIGHUP', onHup);
      source.close();
      await r.close();
    },
  };
}

export async function runBroker(o: NodeOptions): Promise<Running> {
  const name = o.name;
  const node = await runNode(
    o,
    'broker',
    [],
    (full) => (name ? brokerSnapshot(full, name) : full),
    () => undefined,
    (s) => {
      mqttFlagNeedsGateway('modelguard broker', s.gateway.mqtt !== undefined, o.mqtt);
      return startBroker(s, { ...(o.listen ? { listen: o.listen } : {}), ...(o.admin ? { admin: o.admin } : {}), ...(o.mqtt ? { mqtt: o.mqtt } : {}) });
    },
  );
  const b = node.role;
  log(`ModelGuard broker${name ? ` "${name}"` : ''} is up (configuration version ${b.current.version}, ${b.current.hash.slice(0, 12)})`);
  log(`  broker listener ${b.linkUrl}   (calls from proxies; ${b.current.gateway.proxies.length} proxy credential(s) configured)`);
  if (b.tls) log(`  TLS             client certificates signed by ${b.current.gateway.brokerTls?.clientCa ?? ''} required; files re-read on change and SIGHUP`);
  if (b.mqttUrl) log(`  MQTT            ${b.mqttUrl}   (requests on ${b.current.gateway.mqtt?.topicPrefix ?? 'modelguard/v1'}/infer/<model>)`);
  log(`  admin           ${b.adminUrl}   (/metrics /healthz /readyz /api/v1/status, dashboard at /)`);
  return b.tls === undefined ? node : followBrokerTls(b.tls, node);
}

export interface ProxyCliOptions extends NodeOptions {
  readonly apps: readonly string[];
  readonly broker?: string;
  readonly token?: string;
  /** PEM file paths for an https:// broker listener (Gateway.spec.brokerTls). */
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  readonly tlsCa?: string;
  readonly tlsServerName?: string;
}

export async function runProxy(o: ProxyCliOptions): Promise<Running> {
  if (!o.broker) throw new Error('--broker URL is required (the broker listener of this node, e.g. http://127.0.0.1:8010)');
  const broker = o.broker;
  const tls = proxyTls(o, broker);
  if (!o.token && !tls) throw new Error('a proxy token is required: --token-file PATH or MODELGUARD_PROXY_TOKEN (listed in Gateway.spec.proxies), or a client certificate (--tls-cert) for an https:// broker');
  const token = o.token;
  const node = await runNode(
    o,
    'proxy',
    o.apps,
    (full) => proxySnapshot(full, o.apps),
    (s) => {
      const missing = o.apps.filter((a) => !s.apps[a]);
      if (missing.length > 0) throw new Error(`app${missing.length > 1 ? 's' : ''} ${missing.map((a) => `"${a}"`).join(', ')} not in the configuration`);
    },
    (s) => startProxy(s, { broker, ...(token ? { token } : {}), ...(tls ? { tls } : {}), ...(o.listen ? { http: o.listen } : {}), ...(o.grpc ? { grpc: o.grpc } : {}), ...(o.admin ? { admin: o.admin } : {}) }),
  );
  const p = node.role;
  log(`ModelGuard proxy${o.name ? ` "${o.name}"` : ''} is up for ${o.apps.length ? `app(s) ${o.apps.join(', ')}` : 'every app'} (configuration version ${p.current.version})`);
  log(`  inference HTTP  ${p.httpUrl}`);
  log(`  inference gRPC  ${p.grpcUrl}`);
  log(`  broker          ${broker}`);
  log(`  admin           ${p.adminUrl}   (/metrics /healthz /readyz)`);
  return tls === undefined ? node : followProxyTls(o, broker, tls, p.remote, node);
}
