/**
 * The node side of the control plane, run by a managed broker or proxy: register with the controller,
 * long-poll for this node's snapshot, apply it (or refuse it and keep the last good one), and report
 * what runs in heartbeats. The data path never waits on the controller: when it is down the node
 * keeps serving with what it has and re-registers when it returns.
 */
import { Pool } from '../core/undici.ts';
import { sealSnapshot } from '../config/seal.ts';
import type { Snapshot } from '../core/snapshot.ts';
import type { Applied, NodeRole } from './controller.ts';

export interface AgentOptions {
  /** Controller base URL (its admin listener). */
  readonly controller: string;
  readonly name: string;
  readonly role: NodeRole;
  /** Apps a proxy serves (empty: every app). */
  readonly apps?: readonly string[];
  /** Node token (Gateway.spec.nodeTokens). */
  readonly token?: string;
  /** Long-poll length, ms. */
  readonly waitMs?: number;
  readonly log?: (line: string) => void;
}

const SOFTWARE = '0.1.0';

export class NodeAgent {
  private readonly pool: Pool;
  private applied: Applied | undefined;
  /** version:hash of the newest snapshot seen (applied or refused): the watch waits for a newer one. */
  private have: string | undefined;
  private error: { version: number; hash: string; message: string } | undefined;
  private heartbeatMs = 5000;
  private registered = false;
  private closed = false;
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly log: (line: string) => void;
  private readonly ac = new AbortController();

  constructor(
    private readonly opts: AgentOptions,
    /** Applies a snapshot; throws to refuse it (the node keeps its last good one). */
    private readonly apply: (s: Snapshot) => void,
  ) {
    this.pool = new Pool(opts.controller, { connections: 2, headersTimeout: 0, bodyTimeout: 0 });
    this.log = opts.log ?? ((line) => process.stdout.write(`${line}\n`));
  }

  get current(): Applied | undefined {
    return this.applied;
  }

  /** Registers and resolves with the node's first snapshot (retrying while the controller is away). */
  async first(): Promise<Snapshot> {
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw new Error('agent closed');
      try {
        if (!this.registered) await this.register();
        const s = await this.poll(this.opts.waitMs ?? 25_000);
        if (s) {
          this.have = `${s.version}:${s.hash}`;
          this.applied = { version: s.version, hash: s.hash };
          return s;
        }
      } catch (err) {
        if (attempt === 0 || attempt % 20 === 0) this.log(`controller ${this.opts.controller}: ${err instanceof Error ? err.message : String(err)}; retrying`);
        await this.pause(backoff(attempt));
      }
    }
  }

  /** Keeps watching and heartbeating in the background until close(). */
  run(): void {
    // The controller learns what first() applied now, not a heartbeat later: `status` against the
    // controller right after a node says it is up shows it applied.
    void this.report();
    this.schedule();
    void this.loop();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.heartbeat);
    this.ac.abort();
    await this.pool.destroy();
  }

  private headers(): Record<string, string> {
    const h: Record<string, string> = { 'content-type': 'application/json' };
    if (this.opts.token) h['authorization'] = `Bearer ${this.opts.token}`;
    return h;
  }

  private async register(): Promise<void> {
    const body = JSON.stringify({ name: this.opts.name, role: this.opts.role, software: SOFTWARE, apps: this.opts.apps ?? [], applied: this.applied });
    const res = await this.pool.request({ method: 'POST', path: '/api/v1/nodes', headers: this.headers(), body, signal: this.ac.signal });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`registration refused (${res.statusCode}): ${text}`);
    const doc = JSON.parse(text) as { heartbeatMs?: unknown };
    if (typeof doc.heartbeatMs === 'number' && doc.heartbeatMs > 0) this.heartbeatMs = doc.heartbeatMs;
    this.registered = true;
  }

  /** One long-poll: the node's snapshot when it differs from what this node has, else undefined. */
  private async poll(waitMs: number): Promise<Snapshot | undefined> {
    const q = new URLSearchParams({ wait: String(waitMs) });
    if (this.have) q.set('have', this.have);
    const res = await this.pool.request({
      method: 'GET',
      path: `/api/v1/nodes/${encodeURIComponent(this.opts.name)}/snapshot?${q.toString()}`,
      headers: this.headers(),
      signal: this.ac.signal,
    });
    if (res.statusCode === 204) {
      await res.body.dump();
      return undefined;
    }
    const text = await res.body.text();
    if (res.statusCode === 404) {
      this.registered = false;
      throw new Error('the controller does not know this node (restarted?): registering again');
    }
    if (res.statusCode !== 200) throw new Error(`watch failed (${res.statusCode}): ${text.slice(0, 300)}`);
    return verify(JSON.parse(text) as Snapshot);
  }

  private async loop(): Promise<void> {
    let attempt = 0;
    while (!this.closed) {
      try {
        if (!this.registered) {
          await this.register();
          this.log(`registered with controller ${this.opts.controller}`);
        }
        const s = await this.poll(this.opts.waitMs ?? 25_000);
        attempt = 0;
        if (s) this.offer(s);
      } catch (err) {
        if (this.closed) return;
        if (attempt === 0) this.log(`controller ${this.opts.controller}: ${err instanceof Error ? err.message : String(err)}; keeping version ${this.applied?.version ?? '-'} and retrying`);
        await this.pause(backoff(attempt++));
      }
    }
  }

  private offer(s: Snapshot): void {
    this.have = `${s.version}:${s.hash}`;
    if (this.applied?.hash === s.hash) {
      // Same content under a newer version number (the controller restarted): nothing to reload.
      this.applied = { version: s.version, hash: s.hash };
      this.error = undefined;
    } else {
      try {
        this.apply(s);
        this.applied = { version: s.version, hash: s.hash };
        this.error = undefined;
        this.log(`applied configuration version ${s.version} (${s.hash.slice(0, 12)})`);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        this.error = { version: s.version, hash: s.hash, message };
        this.log(`refused configuration version ${s.version}: ${message}; keeping version ${this.applied?.version ?? '-'}`);
      }
    }
    void this.report();
  }

  private schedule(): void {
    this.heartbeat = setTimeout(() => {
      void this.report().finally(() => {
        if (!this.closed) this.schedule();
      });
    }, this.heartbeatMs);
    this.heartbeat.unref();
  }

  private async report(): Promise<void> {
    if (!this.registered || this.closed) return;
    try {
      const res = await this.pool.request({
        method: 'POST',
        path: `/api/v1/nodes/${encodeURIComponent(this.opts.name)}/status`,
        headers: this.headers(),
        body: JSON.stringify({ applied: this.applied, error: this.error }),
        signal: this.ac.signal,
      });
      await res.body.dump();
      if (res.statusCode === 404) this.registered = false;
    } catch {
      // The watch loop notices an absent controller and retries; a lost heartbeat changes nothing here.
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        this.ac.signal.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.ac.signal.addEventListener('abort', done, { once: true });
    });
  }
}

function backoff(attempt: number): number {
  return Math.min(5000, 100 * 2 ** Math.min(attempt, 6)) * (0.75 + Math.random() * 0.5);
}

/** A snapshot whose hash matches its content (not truncated, not tampered with on the way). */
function verify(s: Snapshot): Snapshot {
  if (typeof s !== 'object' || s === null || typeof s.version !== 'number' || typeof s.hash !== 'string') throw new Error('the controller sent something that is not a snapshot');
  const { version, hash, ...content } = s;
  const sealed = sealSnapshot(content, version);
  if (sealed.hash !== hash) throw new Error(`snapshot version ${version} does not match its hash`);
  return sealed;
}
