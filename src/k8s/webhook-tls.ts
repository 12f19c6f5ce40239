/**
 * Keeps the injection webhook's TLS current while the controller runs: reads (or creates) the
 * certificates in the Secret at start, re-checks them periodically and swaps renewed ones into the
 * running webhook, and — on the leader only — keeps the webhook configuration's caBundle equal to the
 * CA, at start, on gaining leadership, and after every renewal.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { ensureWebhookCerts, syncCaBundle } from './certs.ts';
import type { WebhookCerts } from './certs.ts';
import type { LeaderElector } from './leader.ts';

export interface WebhookTlsOptions {
  readonly kubeConfig: KubeConfig;
  readonly namespace: string;
  readonly secretName?: string;
  readonly service?: string;
  /** MutatingWebhookConfiguration to keep in sync; default modelguard-injector. */
  readonly configuration?: string;
  /** Without one, this replica always syncs the caBundle. */
  readonly leader?: LeaderElector;
  /** Time between checks; default 1 h. */
  readonly intervalMs?: number;
  /** The clock certificates are judged by (tests move it). */
  readonly now?: () => Date;
  readonly onError?: (err: Error, what: string) => void;
}

export class WebhookTls {
  readonly #o: WebhookTlsOptions;
  #certs: WebhookCerts | undefined;
  #timer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  #apply: ((cert: string, key: string) => void) | undefined;
  #syncing: Promise<void> = Promise.resolve();

  constructor(options: WebhookTlsOptions) {
    this.#o = options;
  }

  /** The certificates to start the webhook with. */
  async start(): Promise<WebhookCerts> {
    this.#certs = await this.#ensure();
    this.#unsubscribe = this.#o.leader?.onChange((leading) => void (leading ? this.#sync() : undefined));
    this.#sync();
    this.#timer = setInterval(() => void this.check(), this.#o.intervalMs ?? 3_600_000);
    this.#timer.unref();
    return this.#certs;
  }

  /** Where renewed certificates go (InjectionWebhook.setCertificate). */
  onRenew(apply: (cert: string, key: string) => void): void {
    this.#apply = apply;
  }

  /** One check now; resolves when renewal and caBundle sync (if any) are done. */
  async check(): Promise<void> {
    try {
      const next = await this.#ensure();
      if (next.cert !== this.#certs?.cert || next.caCert !== this.#certs.caCert) {
        this.#certs = next;
        this.#apply?.(next.cert, next.key);
        this.#sync();
      }
    } catch (e) {
      this.#o.onError?.(e as Error, 'webhook certificates');
    }
    await this.#syncing;
  }

  /** Resolves when the caBundle syncs started so far are done. */
  settled(): Promise<void> {
    return this.#syncing;
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#unsubscribe?.();
  }

  #ensure(): Promise<WebhookCerts> {
    return ensureWebhookCerts({
      kubeConfig: this.#o.kubeConfig,
      namespace: this.#o.namespace,
      ...(this.#o.secretName === undefined ? {} : { secretName: this.#o.secretName }),
      ...(this.#o.service === undefined ? {} : { service: this.#o.service }),
      ...(this.#o.now === undefined ? {} : { now: this.#o.now() }),
    });
  }

  #sync(): void {
    const certs = this.#certs;
    if (certs === undefined || (this.#o.leader !== undefined && !this.#o.leader.isLeader)) return;
    this.#syncing = this.#syncing.then(async () => {
      try {
        await syncCaBundle({ kubeConfig: this.#o.kubeConfig, caCert: certs.caCert, ...(this.#o.configuration === undefined ? {} : { configuration: this.#o.configuration }) });
      } catch (e) {
        this.#o.onError?.(e as Error, 'caBundle sync');
      }
    });
  }
}
