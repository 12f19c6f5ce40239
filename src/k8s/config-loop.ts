/**
 * Kubernetes mode of the controller's configuration, end to end: KubernetesSource's documents are
 * compiled with compileResources() exactly as files are; a valid set becomes the new configuration,
 * an invalid one is rejected and the last good one stays; each resource's Accepted condition is
 * written to its status by the leader only (so two replicas never fight over it). The controller
 * plugs this in and distributes `onConfig`'s snapshots as in file mode.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { compileResources } from '../config/load.ts';
import type { LoadedConfig } from '../config/load.ts';
import type { ResourceInput } from '../config/schema.ts';
import { KubernetesSource } from './source.ts';
import type { ResourceDoc, ResourceProblem } from './resources.ts';
import { conditionsFor, resourceKey } from './status.ts';
import type { AcceptedCondition } from './status.ts';
import type { LeaderElector } from './leader.ts';

export interface KubernetesConfigOptions {
  readonly kubeConfig: KubeConfig;
  readonly namespace: string;
  /** A new valid configuration (every change after the first is a reload). */
  readonly onConfig: (loaded: LoadedConfig) => void;
  /** The set was rejected; the last good configuration stays. */
  readonly onRejected?: (error: unknown, problems: readonly ResourceProblem[]) => void;
  /** Status is written only while this elector leads; without one, always (a single replica). */
  readonly leader?: LeaderElector;
  /** Snapshot versions; default 1, 2, 3, ... in this process. */
  readonly nextVersion?: () => number;
  readonly onError?: (err: Error, what: string) => void;
  readonly debounceMs?: number;
  readonly initialBackoffMs?: number;
}

export class KubernetesConfig {
  readonly #o: KubernetesConfigOptions;
  readonly source: KubernetesSource;
  #version = 0;
  #current: LoadedConfig | undefined;
  #conditions = new Map<string, AcceptedCondition>();
  #docs: readonly ResourceDoc[] = [];
  #writing: Promise<void> = Promise.resolve();
  #unsubscribe: (() => void) | undefined;

  constructor(options: KubernetesConfigOptions) {
    this.#o = options;
    this.source = new KubernetesSource({
      kubeConfig: options.kubeConfig,
      namespace: options.namespace,
      onResources: (docs, problems) => this.#compile(docs, problems),
      ...(options.onError === undefined ? {} : { onError: options.onError }),
      ...(options.debounceMs === undefined ? {} : { debounceMs: options.debounceMs }),
      ...(options.initialBackoffMs === undefined ? {} : { initialBackoffMs: options.initialBackoffMs }),
    });
  }

  /** The last good configuration. */
  get current(): LoadedConfig | undefined {
    return this.#current;
  }

  /** The Accepted condition of every resource after the last compile ("Kind/name" keys). */
  get conditions(): ReadonlyMap<string, AcceptedCondition> {
    return this.#conditions;
  }

  /** Whether the last good configuration has this App: the injection webhook's knownApp. */
  knownApp(name: string): boolean {
    return this.#current?.resources.some((r) => r.kind === 'App' && r.metadata.name === name) ?? false;
  }

  /** Resolves after the first set was compiled (valid or not). */
  async start(): Promise<void> {
    // A new leader writes every status at once: a predecessor may have left some stale.
    this.#unsubscribe = this.#o.leader?.onChange((leading) => void (leading ? this.#writeStatuses() : undefined));
    await this.source.start();
  }

  stop(): void {
    this.#unsubscribe?.();
    this.source.stop();
  }

  /** Resolves when the status writes queued so far are done (tests, shutdown). */
  settled(): Promise<void> {
    return this.#writing;
  }

  #compile(docs: readonly ResourceDoc[], problems: readonly ResourceProblem[]): void {
    let error: unknown;
    let loaded: LoadedConfig | undefined;
    const version = this.#o.nextVersion?.() ?? this.#version + 1;
    try {
      loaded = compileResources(docs as unknown as ResourceInput[], { version, sources: [`kubernetes:${this.#o.namespace}`] });
    } catch (e) {
      error = e;
    }
    this.#docs = docs;
    this.#conditions = conditionsFor(docs, problems, error);
    if (loaded !== undefined && problems.length === 0) {
      this.#version = version;
      this.#current = loaded;
      this.#notify(() => this.#o.onConfig(loaded), 'onConfig');
    } else {
      this.#notify(() => this.#o.onRejected?.(error, problems), 'onRejected');
    }
    this.#writeStatuses();
  }

  /** A throwing callback must not break the watches that called it. */
  #notify(fn: () => void, what: string): void {
    try {
      fn();
    } catch (e) {
      this.#o.onError?.(e as Error, what);
    }
  }

  #writeStatuses(): void {
    if (this.#o.leader !== undefined && !this.#o.leader.isLeader) return;
    const docs = this.#docs;
    const conditions = this.#conditions;
    this.#writing = this.#writing.then(async () => {
      for (const d of docs) {
        const c = conditions.get(resourceKey(d.kind, d.metadata.name));
        if (c === undefined) continue;
        if (this.#o.leader !== undefined && !this.#o.leader.isLeader) return;
        try {
          await this.source.writeStatus(d.kind, d.metadata.name, c);
        } catch (e) {
          this.#o.onError?.(e as Error, `status of ${d.kind} ${d.metadata.name}`);
        }
      }
    });
  }
}
