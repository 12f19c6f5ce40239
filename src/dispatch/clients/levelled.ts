/**
 * One endpoint's client with a connection pool per priority level (traffic QoS, docs/traffic-qos.md):
 * a call that names its level goes through that level's pool, whose connections leave from the
 * level's block of local ports; probes and calls without a level use the endpoint's usual pool.
 * Wraps the clients rather than teaching each one about levels.
 */
import type { BackendClient, BackendRequest, BackendResponse } from '../client.ts';

export class LevelledClient implements BackendClient {
  private readonly pools: BackendClient[] = [];

  constructor(
    private readonly base: BackendClient,
    /** Builds level i's client (bound to block i: the same ports whichever priorities it holds). */
    private readonly make: (level: number) => BackendClient,
    levels: number,
  ) {
    this.grow(levels);
  }

  /**
   * A reload with more levels adds their pools. Fewer levels keep the extra pools (no call goes there
   * any more; their idle connections close at undici's keep-alive timeout), so nothing in flight is cut.
   */
  grow(levels: number): void {
    while (this.pools.length < levels) this.pools.push(this.make(this.pools.length));
  }

  get levels(): number {
    return this.pools.length;
  }

  request(req: BackendRequest): Promise<BackendResponse> {
    const pool = req.level === undefined ? undefined : this.pools[req.level];
    return (pool ?? this.base).request(req);
  }

  probe(path: string, timeoutMs: number): Promise<boolean> {
    return this.base.probe(path, timeoutMs);
  }

  async close(): Promise<void> {
    await Promise.all([this.base.close(), ...this.pools.map((p) => p.close())]);
  }
}
