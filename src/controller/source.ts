/**
 * Where the controller's resources come from. A source hands over each new valid configuration, and
 * each refusal with its reason; the controller keeps the last good one. Files here; the Kubernetes
 * source (src/k8s) implements the same contract over CRDs.
 */
import { watch, type FSWatcher } from 'node:fs';
import { loadConfig, type LoadedConfig } from '../config/index.ts';

export interface SourceHandlers {
  onLoad(config: LoadedConfig): void;
  onError(err: unknown): void;
}

export interface ConfigSource {
  /** Human description for logs and the admin API. */
  readonly description: string;
  /** Loads once (resolving after the first onLoad or onError), then keeps watching. */
  start(handlers: SourceHandlers): Promise<void>;
  /** Re-reads now (SIGHUP). */
  reload(why: string): Promise<void>;
  close(): void;
}

/** A YAML file or a directory of them, re-read on change (debounced) and on demand. */
export class FileSource implements ConfigSource {
  private watcher: FSWatcher | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private handlers: SourceHandlers | undefined;
  /** Loads run one at a time, in order: a slow read never overwrites a newer one. */
  private chain: Promise<void> = Promise.resolve();

  constructor(readonly path: string) {}

  get description(): string {
    return `files at ${this.path}`;
  }

  async start(handlers: SourceHandlers): Promise<void> {
    this.handlers = handlers;
    await this.reload('start');
    this.watcher = watch(this.path, { persistent: false }, () => {
      clearTimeout(this.debounce);
      this.debounce = setTimeout(() => void this.reload('file change'), 100);
    });
    this.watcher.on('error', (err) => handlers.onError(err));
  }

  reload(_why: string): Promise<void> {
    const run = async (): Promise<void> => {
      const h = this.handlers;
      if (!h) return;
      try {
        h.onLoad(await loadConfig(this.path));
      } catch (err) {
        h.onError(err);
      }
    };
    this.chain = this.chain.then(run, run);
    return this.chain;
  }

  close(): void {
    clearTimeout(this.debounce);
    this.watcher?.close();
  }
}
