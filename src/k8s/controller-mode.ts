/**
 * `modelguard controller --kubernetes`: the controller of file mode with the cluster as its
 * configuration source. The five CRDs (and the Secrets they reference) are compiled exactly as files
 * are and served to brokers and proxies over the same node API; each resource gets its Accepted
 * condition; a Lease makes one replica the one that writes status and keeps the webhook's caBundle;
 * every replica serves the injection webhook with the certificate kept in a Secret.
 */
import { hostname } from 'node:os';
import { KubeConfig } from '@kubernetes/client-node';
import type { ConfigSource, SourceHandlers } from '../controller/source.ts';
import { KubernetesConfig } from './config-loop.ts';
import { LeaderElector } from './leader.ts';
import { WebhookTls } from './webhook-tls.ts';
import { InjectionWebhook } from './webhook.ts';
import { proxyImage } from './self.ts';
import type { ResourceProblem } from './resources.ts';

export interface KubernetesModeOptions {
  readonly namespace: string;
  /** Defaults to the in-cluster service account, else KUBECONFIG / ~/.kube/config. */
  readonly kubeConfig?: KubeConfig;
  /** This replica's identity for the Lease (POD_NAME). */
  readonly identity?: string;
  readonly log?: (line: string) => void;
  /** Test knobs. */
  readonly debounceMs?: number;
  readonly leaseDurationMs?: number;
  readonly retryPeriodMs?: number;
}

/** The cluster as a controller ConfigSource. */
export class KubernetesConfigSource implements ConfigSource {
  readonly kubeConfig: KubeConfig;
  readonly leader: LeaderElector;
  private config: KubernetesConfig | undefined;
  private readonly log: (line: string) => void;

  constructor(private readonly o: KubernetesModeOptions) {
    this.log = o.log ?? ((line) => process.stderr.write(`${line}\n`));
    if (o.kubeConfig) this.kubeConfig = o.kubeConfig;
    else {
      this.kubeConfig = new KubeConfig();
      this.kubeConfig.loadFromDefault();
    }
    this.leader = new LeaderElector({
      kubeConfig: this.kubeConfig,
      namespace: o.namespace,
      identity: o.identity ?? process.env['POD_NAME'] ?? hostname(),
      ...(o.leaseDurationMs === undefined ? {} : { leaseDurationMs: o.leaseDurationMs, renewDeadlineMs: Math.floor(o.leaseDurationMs * 0.66) }),
      ...(o.retryPeriodMs === undefined ? {} : { retryPeriodMs: o.retryPeriodMs }),
      onError: (err) => this.log(`leader election: ${err.message}`),
    });
    this.leader.onChange((leading) => this.log(leading ? 'this replica leads (writes status, keeps the caBundle)' : 'this replica follows'));
  }

  get description(): string {
    return `kubernetes namespace ${this.o.namespace}`;
  }

  /** Whether the last good configuration has this App (the webhook's check). */
  knownApp(name: string): boolean {
    return this.config?.knownApp(name) ?? false;
  }

  async start(handlers: SourceHandlers): Promise<void> {
    this.leader.start();
    this.config = new KubernetesConfig({
      kubeConfig: this.kubeConfig,
      namespace: this.o.namespace,
      leader: this.leader,
      onConfig: (loaded) => handlers.onLoad(loaded),
      onRejected: (err, problems) => handlers.onError(err ?? new Error(describeProblems(problems))),
      onError: (err, what) => this.log(`kubernetes ${what}: ${err.message}`),
      ...(this.o.debounceMs === undefined ? {} : { debounceMs: this.o.debounceMs }),
    });
    await this.config.start();
  }

  /** The cluster is watched: there is nothing to re-read on demand. */
  reload(): Promise<void> {
    return Promise.resolve();
  }

  close(): void {
    this.config?.stop();
    void this.leader.stop();
  }
}

function describeProblems(problems: readonly ResourceProblem[]): string {
  return problems.map((p) => JSON.stringify(p)).join('\n') || 'resources rejected';
}

export interface WebhookModeOptions {
  readonly source: KubernetesConfigSource;
  readonly namespace: string;
  /** host:port of the webhook listener (TLS). */
  readonly listen: string;
  /** URL injected proxies reach the controller at. */
  readonly controllerUrl: string;
  readonly log?: (line: string) => void;
}

/** Certificates from the Secret (created by the first replica), the webhook server, and renewal. */
export async function startWebhook(o: WebhookModeOptions): Promise<{ url: string; stop: () => Promise<void> }> {
  const m = /^(.*):(\d+)$/.exec(o.listen);
  if (!m) throw new Error(`--webhook ${o.listen} is not host:port`);
  const tls = new WebhookTls({ kubeConfig: o.source.kubeConfig, namespace: o.namespace, leader: o.source.leader, onError: (err, what) => o.log?.(`webhook certificates (${what}): ${err.message}`) });
  const certs = await tls.start();
  const override = process.env['MODELGUARD_PROXY_IMAGE'];
  const image = await proxyImage({ kubeConfig: o.source.kubeConfig, namespace: o.namespace, podName: process.env['POD_NAME'] ?? hostname(), ...(override ? { override } : {}) });
  const webhook = new InjectionWebhook({
    cert: certs.cert,
    key: certs.key,
    host: m[1] as string,
    port: Number(m[2]),
    knownApp: (name) => o.source.knownApp(name),
    image,
    controllerUrl: o.controllerUrl,
    namespace: o.namespace,
    onDecision: (d) => o.log?.(`injection ${d.namespace}/${d.pod}: ${JSON.stringify(d)}`),
  });
  tls.onRenew((cert, key) => webhook.setCertificate(cert, key));
  const url = await webhook.listen();
  return {
    url,
    async stop() {
      tls.stop();
      await webhook.close();
    },
  };
}
