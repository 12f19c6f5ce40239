/**
 * Where the controller's resources come from. A source hands over each new valid configuration, and
 * each refusal with its reason; the controller keeps the last good one. Files here; the Kubernetes
 * source (src/k8s) implements the same contract over CRDs.
 */
import { loadConfig, type LoadedConfig } from '../config/index.ts';
import { WatchedFiles } from '../config/file-watch.ts';

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

/** A YAML file or a directory of them, compiled here, re-read on change (debounced) and on demand. */
export class FileSource extends WatchedFiles<LoadedConfig> implements ConfigSource {
  constructor(path: string) {
    super(path, (p) => loadConfig(p));
  }

  get description(): string {
    return `files at ${this.path}`;
  }
}
