/**
 * List-then-watch of one collection, kept in a map by name: the part of an informer ModelGuard needs.
 * The watch resumes from the last resourceVersion seen (bookmarks included); a dropped or silent
 * watch reconnects after a backoff; "410 Gone" (an HTTP 410 or an ERROR event, the history was
 * compacted) relists from scratch. Every change calls onChange once.
 */
import { Watch } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';
import type { KubeObject } from './resources.ts';

export interface ListResult {
  readonly resourceVersion: string;
  readonly items: readonly KubeObject[];
}

export interface ReflectorOptions {
  readonly kubeConfig: KubeConfig;
  /** Collection path, e.g. /apis/modelguard.io/v1alpha1/namespaces/ns/apps. */
  readonly path: string;
  /** The list call (through the typed client, so auth and TLS are the client's). */
  readonly list: () => Promise<ListResult>;
  readonly onChange: () => void;
  readonly onError?: (err: Error, what: string) => void;
  /** Server-side watch timeout; the watch is renewed after it. Default 300 s. */
  readonly watchTimeoutSeconds?: number;
  /** First retry delay, doubled per failure up to maxBackoffMs. Defaults 250 ms and 30 s. */
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** A list that has not answered by then counts as failed and is retried; default 60 s. */
  readonly listTimeoutMs?: number;
}

/** The promise, or a rejection after ms: the client has no request timeout of its own. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** HTTP status of a client error, when it has one. */
export function statusOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e.code === 'number') return e.code;
  if (typeof e.statusCode === 'number') return e.statusCode;
  return undefined;
}

export class Reflector {
  readonly items = new Map<string, KubeObject>();
  /** Completed lists and watch connections, for tests and logs. */
  readonly stats = { lists: 0, watches: 0, relistsAfterGone: 0, reconnects: 0 };
  #resourceVersion = '';
  #synced = false;
  #stopped = false;
  #abort: AbortController | undefined;
  #timer: NodeJS.Timeout | undefined;
  #idle: NodeJS.Timeout | undefined;
  #failures = 0;
  #firstSync: { resolve: () => void; reject: (e: Error) => void } | undefined;
  readonly #o: ReflectorOptions;

  constructor(options: ReflectorOptions) {
    this.#o = options;
  }

  get synced(): boolean {
    return this.#synced;
  }

  get resourceVersion(): string {
    return this.#resourceVersion;
  }

  /** Starts listing; resolves after the first successful list, rejects if stopped before it. */
  start(): Promise<void> {
    const first = new Promise<void>((resolve, reject) => (this.#firstSync = { resolve, reject }));
    this.#relist();
    return first;
  }

  stop(): void {
    if (!this.#synced) this.#firstSync?.reject(new Error(`stopped before the first list of ${this.#o.path}`));
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#idle);
    this.#abort?.abort();
  }

  #later(fn: () => void): void {
    if (this.#stopped) return;
    const initial = this.#o.initialBackoffMs ?? 250;
    const delay = Math.min(this.#o.maxBackoffMs ?? 30_000, initial * 2 ** Math.min(this.#failures, 16));
    this.#failures++;
    // Jitter so that replicas and collections do not retry in lockstep.
    this.#timer = setTimeout(fn, delay * (0.8 + Math.random() * 0.4));
  }

  #relist(): void {
    if (this.#stopped) return;
    withTimeout(this.#o.list(), this.#o.listTimeoutMs ?? 60_000, `list ${this.#o.path}`).then(
      (result) => {
        if (this.#stopped) return;
        this.stats.lists++;
        this.#failures = 0;
        this.items.clear();
        for (const item of result.items) if (item.metadata?.name !== undefined) this.items.set(item.metadata.name, item);
        this.#resourceVersion = result.resourceVersion;
        this.#synced = true;
        this.#firstSync?.resolve();
        this.#changed();
        this.#watch();
      },
      (err: unknown) => {
        this.#o.onError?.(err as Error, `list ${this.#o.path}`);
        this.#later(() => this.#relist());
      },
    );
  }

  /** onChange runs inside promise and socket callbacks: its exceptions are reported, not thrown there. */
  #changed(): void {
    try {
      this.#o.onChange();
    } catch (e) {
      this.#o.onError?.(e as Error, `change handler of ${this.#o.path}`);
    }
  }

  #armIdle(): void {
    clearTimeout(this.#idle);
    // The server ends a watch after timeoutSeconds; silence well past that means a dead connection.
    const ms = ((this.#o.watchTimeoutSeconds ?? 300) + 30) * 1000;
    this.#idle = setTimeout(() => this.#abort?.abort(), ms);
  }

  #watch(): void {
    if (this.#stopped) return;
    let gone = false;
    const startedAt = Date.now();
    const onEvent = (phase: string, obj: KubeObject & { code?: number }): void => {
      this.#armIdle();
      if (phase === 'ERROR') {
        if (obj.code === 410) gone = true;
        this.#abort?.abort();
        return;
      }
      const rv = obj.metadata?.resourceVersion;
      if (rv !== undefined) this.#resourceVersion = rv;
      this.#failures = 0;
      if (phase === 'BOOKMARK') return;
      const name = obj.metadata?.name;
      if (name === undefined) return;
      if (phase === 'DELETED') this.items.delete(name);
      else this.items.set(name, obj);
      this.#changed();
    };
    const onDone = (err: unknown): void => {
      clearTimeout(this.#idle);
      if (this.#stopped) return;
      if (gone || statusOf(err) === 410) {
        this.stats.relistsAfterGone++;
        this.#relist();
        return;
      }
      this.stats.reconnects++;
      if (err !== null && err !== undefined && (err as Error).name !== 'AbortError') this.#o.onError?.(err as Error, `watch ${this.#o.path}`);
      // A watch that ended cleanly after a while (server timeout) resumes at once; otherwise back off.
      if ((err === null || err === undefined) && Date.now() - startedAt > 1000) this.#watch();
      else this.#later(() => this.#watch());
    };
    this.#armIdle();
    new Watch(this.#o.kubeConfig)
      .watch(
        this.#o.path,
        { resourceVersion: this.#resourceVersion, allowWatchBookmarks: true, timeoutSeconds: this.#o.watchTimeoutSeconds ?? 300 },
        onEvent,
        onDone,
      )
      .then(
        (abort) => {
          this.stats.watches++;
          this.#abort = abort;
          if (this.#stopped) abort.abort();
        },
        (err: unknown) => onDone(err),
      );
  }
}
