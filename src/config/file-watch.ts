/**
 * A YAML file or a directory of them, loaded once, then re-loaded on change (debounced) and on
 * demand (SIGHUP), one load at a time in order, so a slow read never overwrites a newer one. What
 * "load" means is the caller's: the controller compiles in its own process (controller/source.ts);
 * a standalone broker or proxy compiles in a worker thread (cli/config-thread.ts), so that the
 * compiler never stays resident there. No schema library here.
 */
import { watch, type FSWatcher } from 'node:fs';

export interface WatchHandlers<T> {
  onLoad(loaded: T): void;
  onError(err: unknown): void;
}

export class WatchedFiles<T> {
  private watcher: FSWatcher | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private handlers: WatchHandlers<T> | undefined;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    readonly path: string,
    private readonly load: (path: string) => Promise<T>,
  ) {}

  /** Loads once (resolving after the first onLoad or onError), then keeps watching. */
  async start(handlers: WatchHandlers<T>): Promise<void> {
    this.handlers = handlers;
    await this.reload('start');
    this.watcher = watch(this.path, { persistent: false }, () => {
      clearTimeout(this.debounce);
      this.debounce = setTimeout(() => void this.reload('file change'), 100);
    });
    this.watcher.on('error', (err) => handlers.onError(err));
  }

  /** Re-reads now. */
  reload(_why: string): Promise<void> {
    const run = async (): Promise<void> => {
      const h = this.handlers;
      if (!h) return;
      try {
        h.onLoad(await this.load(this.path));
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
