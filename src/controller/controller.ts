/**
 * The control plane's state: the last good configuration (versioned), the nodes that registered,
 * and what each of them applied. Nodes long-poll for their own part of the configuration
 * (src/config/partition.ts); a new configuration wakes every waiting node at once.
 */
import { ConfigError, type LoadedConfig } from '../config/index.ts';
import { withVersion } from '../config/seal.ts';
import { brokerSnapshot, proxySnapshot } from '../config/partition.ts';
import type { Snapshot } from '../core/snapshot.ts';
import type { ConfigSource } from './source.ts';

export type NodeRole = 'broker' | 'proxy';

export interface Applied {
  readonly version: number;
  readonly hash: string;
}

export interface NodeInfo {
  readonly name: string;
  readonly role: NodeRole;
  /** ModelGuard version the node runs. */
  readonly software: string;
  /** Apps a proxy serves (empty: every app). */
  readonly apps: readonly string[];
  registeredAt: number;
  lastSeen: number;
  applied: Applied | undefined;
  /** Why the node refused the last snapshot it was sent, if it did. */
  error: { version: number; hash: string; message: string } | undefined;
}

export interface NodeView {
  name: string;
  role: NodeRole;
  software: string;
  apps: readonly string[];
  applied: Applied | undefined;
  error: NodeInfo['error'];
  /** ms since the last heartbeat. */
  lastSeenMs: number;
  healthy: boolean;
  upToDate: boolean;
}

export interface ConfigView {
  version: number | undefined;
  hash: string | undefined;
  source: string;
  sources: readonly string[];
  /** The last refused configuration, if the newest attempt failed. */
  error: { at: string; message: string } | undefined;
  loadedAt: string | undefined;
}

export interface ControllerOptions {
  /** Heartbeat interval nodes are told to keep, ms. */
  readonly heartbeatMs?: number;
  /** Log line sink. */
  readonly log?: (line: string) => void;
}

export class Controller {
  private full: Snapshot | undefined;
  private config: LoadedConfig | undefined;
  private version = 0;
  private lastError: ConfigView['error'];
  private loadedAt: string | undefined;
  private readonly nodes = new Map<string, NodeInfo>();
  private readonly parts = new Map<string, Snapshot>();
  private waiters = new Set<() => void>();
  readonly heartbeatMs: number;
  private readonly log: (line: string) => void;
  /** Counters for /metrics. */
  readonly counters = { loads: 0, refusals: 0 };

  constructor(
    private readonly source: ConfigSource,
    opts: ControllerOptions = {},
  ) {
    this.heartbeatMs = opts.heartbeatMs ?? 5000;
    this.log = opts.log ?? ((line) => process.stdout.write(`${line}\n`));
  }

  async start(): Promise<void> {
    await this.source.start({ onLoad: (c) => this.onLoad(c), onError: (e) => this.onError(e) });
  }

  reload(why: string): Promise<void> {
    return this.source.reload(why);
  }

  close(): void {
    this.source.close();
    this.wake();
  }

  get current(): Snapshot | undefined {
    return this.full;
  }

  private onLoad(c: LoadedConfig): void {
    if (this.full && c.snapshot.hash === this.full.hash) {
      this.lastError = undefined;
      return;
    }
    this.version++;
    this.config = c;
    this.full = withVersion(c.snapshot, this.version);
    this.parts.clear();
    this.lastError = undefined;
    this.loadedAt = new Date().toISOString();
    this.counters.loads++;
    this.log(`configuration version ${this.version} (${this.full.hash.slice(0, 12)}) from ${c.sources.length} file(s)`);
    this.wake();
  }

  private onError(err: unknown): void {
    this.counters.refusals++;
    const message = err instanceof ConfigError ? err.format() : err instanceof Error ? err.message : String(err);
    const repeated = this.lastError?.message === message;
    this.lastError = { at: new Date().toISOString(), message };
    if (repeated) return;
    const keeping = this.full ? `keeping version ${this.version}` : 'no configuration yet';
    process.stderr.write(`configuration refused (${keeping}):\n${message}\n`);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = new Set();
    for (const fn of w) fn();
  }

  configView(): ConfigView {
    return {
      version: this.full?.version,
      hash: this.full?.hash,
      source: this.source.description,
      sources: this.config?.sources ?? [],
      error: this.lastError,
      loadedAt: this.loadedAt,
    };
  }

  register(info: { name: string; role: NodeRole; software: string; apps: readonly string[]; applied: Applied | undefined }): NodeInfo {
    const now = Date.now();
    const node: NodeInfo = { ...info, registeredAt: now, lastSeen: now, error: undefined };
    this.nodes.set(info.name, node);
    this.parts.delete(info.name);
    // After a controller restart, versions continue above what nodes already run.
    if (info.applied && info.applied.version >= this.version && this.full) {
      const same = this.snapshotFor(node)?.hash === info.applied.hash;
      this.version = info.applied.version + (same ? 0 : 1);
      this.full = withVersion(this.full, this.version);
      this.parts.clear();
      this.wake();
    }
    this.log(`node ${info.name} registered (${info.role}${info.apps.length ? `, apps ${info.apps.join(',')}` : ''}, modelguard ${info.software})`);
    return node;
  }

  node(name: string): NodeInfo | undefined {
    return this.nodes.get(name);
  }

  /** A heartbeat, with what the node runs and why it refused a snapshot, if it did. */
  report(node: NodeInfo, applied: Applied | undefined, error: NodeInfo['error']): void {
    node.lastSeen = Date.now();
    if (applied) node.applied = applied;
    if (error !== undefined) {
      if (node.error?.hash !== error.hash) this.log(`node ${node.name} refused version ${error.version}: ${error.message}`);
      node.error = error;
    } else if (applied && node.error && applied.version >= node.error.version) node.error = undefined;
  }

  /** The part of the configuration this node needs, or undefined before any configuration loaded. */
  snapshotFor(node: NodeInfo): Snapshot | undefined {
    if (!this.full) return undefined;
    let part = this.parts.get(node.name);
    if (!part) {
      part = node.role === 'broker' ? brokerSnapshot(this.full, node.name) : proxySnapshot(this.full, node.apps);
      this.parts.set(node.name, part);
    }
    return part;
  }

  /**
   * Resolves with the node's snapshot as soon as it differs from `have` (version:hash), or with
   * undefined after `waitMs`.
   */
  watch(node: NodeInfo, have: string | undefined, waitMs: number, gone: { once(ev: 'close', fn: () => void): unknown }): Promise<Snapshot | undefined> {
    const current = (): Snapshot | undefined => {
      const s = this.snapshotFor(node);
      return s && `${s.version}:${s.hash}` !== have ? s : undefined;
    };
    const now = current();
    if (now || waitMs <= 0) return Promise.resolve(now);
    return new Promise((resolve) => {
      let done = false;
      const finish = (s: Snapshot | undefined): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(s);
      };
      const check = (): void => {
        const s = current();
        if (s) finish(s);
        else this.waiters.add(check);
      };
      const timer = setTimeout(() => finish(undefined), waitMs);
      this.waiters.add(check);
      gone.once('close', () => finish(undefined));
    });
  }

  nodeViews(): NodeView[] {
    const now = Date.now();
    return [...this.nodes.values()]
      .map((n) => {
        const want = this.snapshotFor(n);
        return {
          name: n.name,
          role: n.role,
          software: n.software,
          apps: n.apps,
          applied: n.applied,
          error: n.error,
          lastSeenMs: now - n.lastSeen,
          healthy: now - n.lastSeen < 3 * this.heartbeatMs,
          upToDate: want !== undefined && n.applied?.hash === want.hash && n.applied.version === want.version,
        };
      })
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
}
