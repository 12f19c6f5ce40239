/**
 * The cluster as a configuration source: lists and watches the five ModelGuard kinds and the Secrets
 * of one namespace, and hands the controller the full current set of resource documents whenever it
 * changes (debounced, and only when the documents themselves changed: a status write or an unrelated
 * Secret does not recompile). The controller compiles them with compileResources() exactly as in file
 * mode, and reports each resource's validity back through writeStatus().
 */
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';
import { KINDS } from '../config/schema.ts';
import type { Kind } from '../config/schema.ts';
import { GROUP, KIND_NAMES, VERSION } from './crds.ts';
import { Reflector } from './reflector.ts';
import type { ListResult } from './reflector.ts';
import { secretLookupFrom, toResourceDoc } from './resources.ts';
import type { KubeObject, ResourceDoc, ResourceProblem } from './resources.ts';
import type { AcceptedCondition } from './status.ts';

export interface KubernetesSourceOptions {
  readonly kubeConfig: KubeConfig;
  /** Namespace the resources and their Secrets live in (the controller's own). */
  readonly namespace: string;
  /** The full set of documents and the problems found reading them; called after start() and on every change. */
  readonly onResources: (docs: readonly ResourceDoc[], problems: readonly ResourceProblem[]) => void;
  readonly onError?: (err: Error, what: string) => void;
  /** Quiet time before a burst of changes is handed over; default 200 ms. */
  readonly debounceMs?: number;
  readonly watchTimeoutSeconds?: number;
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

type Collection = Kind | 'Secret';

export class KubernetesSource {
  readonly #o: KubernetesSourceOptions;
  readonly #custom: CustomObjectsApi;
  readonly #core: CoreV1Api;
  readonly #reflectors = new Map<Collection, Reflector>();
  #debounce: NodeJS.Timeout | undefined;
  /** When the oldest change not yet handed over happened: a steady stream of changes must not starve it. */
  #pendingSince: number | undefined;
  #started = false;
  #last = '';

  constructor(options: KubernetesSourceOptions) {
    this.#o = options;
    this.#custom = options.kubeConfig.makeApiClient(CustomObjectsApi);
    this.#core = options.kubeConfig.makeApiClient(CoreV1Api);
    const ns = encodeURIComponent(options.namespace);
    const common = {
      kubeConfig: options.kubeConfig,
      onChange: () => this.#changed(),
      ...(options.onError === undefined ? {} : { onError: options.onError }),
      ...(options.watchTimeoutSeconds === undefined ? {} : { watchTimeoutSeconds: options.watchTimeoutSeconds }),
      ...(options.initialBackoffMs === undefined ? {} : { initialBackoffMs: options.initialBackoffMs }),
      ...(options.maxBackoffMs === undefined ? {} : { maxBackoffMs: options.maxBackoffMs }),
    };
    for (const kind of KINDS) {
      const plural = KIND_NAMES[kind].plural;
      this.#reflectors.set(kind, new Reflector({
        ...common,
        path: `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${plural}`,
        list: async () => toList(await this.#custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: options.namespace, plural })),
      }));
    }
    this.#reflectors.set('Secret', new Reflector({
      ...common,
      path: `/api/v1/namespaces/${ns}/secrets`,
      list: async () => toList(await this.#core.listNamespacedSecret({ namespace: options.namespace })),
    }));
  }

  /** Lists everything, starts the watches, and hands over the first set; resolves once that is done. */
  async start(): Promise<void> {
    await Promise.all([...this.#reflectors.values()].map((r) => r.start()));
    this.#started = true;
    this.#emit();
  }

  stop(): void {
    clearTimeout(this.#debounce);
    for (const r of this.#reflectors.values()) r.stop();
  }

  /** The reflector of one collection (its stats and resourceVersion; tests and the admin API read them). */
  reflector(collection: Collection): Reflector | undefined {
    return this.#reflectors.get(collection);
  }

  /** The current documents and problems, as last handed over or as they are now. */
  current(): { docs: ResourceDoc[]; problems: ResourceProblem[] } {
    const secrets = secretLookupFrom(this.#reflectors.get('Secret')?.items ?? new Map<string, KubeObject>());
    const docs: ResourceDoc[] = [];
    const problems: ResourceProblem[] = [];
    for (const kind of KINDS) {
      const items = [...(this.#reflectors.get(kind)?.items.values() ?? [])];
      items.sort((a, b) => ((a.metadata?.name ?? '') < (b.metadata?.name ?? '') ? -1 : 1));
      for (const obj of items) docs.push(toResourceDoc(kind, obj, secrets, problems));
    }
    return { docs, problems };
  }

  #changed(): void {
    if (!this.#started) return;
    clearTimeout(this.#debounce);
    const quiet = this.#o.debounceMs ?? 200;
    const now = Date.now();
    this.#pendingSince ??= now;
    // Wait for a quiet moment, but never longer than five quiet periods (at least 1 s) in all.
    const wait = Math.max(0, Math.min(quiet, this.#pendingSince + Math.max(1000, 5 * quiet) - now));
    this.#debounce = setTimeout(() => this.#emit(), wait);
  }

  #emit(): void {
    this.#pendingSince = undefined;
    const { docs, problems } = this.current();
    const text = JSON.stringify([docs, problems]);
    if (text === this.#last) return;
    this.#last = text;
    try {
      this.#o.onResources(docs, problems);
    } catch (e) {
      // Called from timers and watch callbacks: a throwing receiver must not take them down.
      this.#o.onError?.(e as Error, 'onResources');
    }
  }

  /**
   * Sets the Accepted condition on a resource's status subresource. Skipped when the stored status
   * already says the same for the current generation; lastTransitionTime moves only when the status
   * flips. Returns whether a write was made. Only the leader should call it.
   */
  async writeStatus(kind: Kind, name: string, condition: AcceptedCondition): Promise<boolean> {
    const obj = this.#reflectors.get(kind)?.items.get(name);
    if (obj === undefined) return false;
    const generation = obj.metadata?.generation;
    const previous = previousCondition(obj);
    if (
      previous !== undefined &&
      previous.status === condition.status &&
      previous.reason === condition.reason &&
      previous.message === condition.message &&
      previous.observedGeneration === generation
    ) return false;
    const lastTransitionTime = previous !== undefined && previous.status === condition.status && typeof previous.lastTransitionTime === 'string'
      ? previous.lastTransitionTime
      : new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const status = {
      ...(generation === undefined ? {} : { observedGeneration: generation }),
      conditions: [{ ...condition, lastTransitionTime, ...(generation === undefined ? {} : { observedGeneration: generation }) }],
    };
    await this.#custom.patchNamespacedCustomObjectStatus({
      group: GROUP,
      version: VERSION,
      namespace: this.#o.namespace,
      plural: KIND_NAMES[kind].plural,
      name,
      // JSON Patch "add" sets /status whether or not it exists yet.
      body: [{ op: 'add', path: '/status', value: status }],
    });
    return true;
  }
}

interface StoredCondition {
  readonly status?: string;
  readonly reason?: string;
  readonly message?: string;
  readonly observedGeneration?: number;
  readonly lastTransitionTime?: string;
}

function previousCondition(obj: KubeObject): StoredCondition | undefined {
  const status = obj.status as { conditions?: (StoredCondition & { type?: string })[] } | undefined;
  return status?.conditions?.find((c) => c.type === 'Accepted');
}

function toList(response: unknown): ListResult {
  const r = response as { metadata?: { resourceVersion?: string }; items?: KubeObject[] };
  return { resourceVersion: r.metadata?.resourceVersion ?? '', items: r.items ?? [] };
}
