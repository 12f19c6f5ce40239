/** Messages between a benchmark and its load-generator process (bench/lib/load-child.ts). */

export interface Target {
  /** Origin, e.g. http://127.0.0.1:8000. */
  readonly url: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export type LoadCommand =
  | {
      /** Open loop: arrivals at `rate` per second for `durationMs`, whatever the answers do. */
      readonly op: 'open';
      readonly target: Target;
      readonly rate: number;
      readonly durationMs: number;
      /** Poisson arrivals (exponential gaps) from `seed`; otherwise evenly spaced. */
      readonly poisson: boolean;
      readonly seed: number;
      readonly connections: number;
    }
  | {
      /** Closed loop: `concurrency` requests outstanding; counts answers in the measured window. */
      readonly op: 'closed';
      readonly target: Target;
      readonly concurrency: number;
      readonly warmupMs: number;
      readonly durationMs: number;
    }
  | {
      /** Sends `count` requests and does not wait for them (they stay queued upstream). */
      readonly op: 'hold';
      readonly target: Target;
      readonly count: number;
      readonly connections: number;
      /** Requests per connection in flight (HTTP/1.1 pipelining). */
      readonly pipelining: number;
    }
  | {
      /** Sends `count` requests at once (or one after another) and waits for every answer. */
      readonly op: 'burst';
      readonly target: Target;
      readonly count: number;
      readonly connections: number;
      /** One request at a time: each latency is then the server's answer time, not a wait in the client. */
      readonly sequential?: boolean;
    }
  | { readonly op: 'exit' };

export interface OpenResult {
  readonly op: 'open';
  readonly sent: number;
  /** Latency of every answered request (ms), from the moment it was handed to the client. */
  readonly latencies: number[];
  readonly byStatus: Record<string, number>;
  readonly elapsedMs: number;
  /** How late the generator sent, at worst (ms): timer and event-loop delay on its side. */
  readonly maxLateMs: number;
}

export interface ClosedResult {
  readonly op: 'closed';
  /** Answers completed inside the measured window. */
  readonly completed: number;
  /** Every answer, the warm-up's included (for costs measured over the whole command). */
  readonly answered: number;
  readonly elapsedMs: number;
  readonly byStatus: Record<string, number>;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

export interface HoldResult {
  readonly op: 'hold';
  readonly dispatched: number;
}

export interface BurstResult {
  readonly op: 'burst';
  readonly latencies: number[];
  /** From the first request sent to the last answer read. */
  readonly elapsedMs: number;
  readonly byStatus: Record<string, number>;
  /** Values of the X-ModelGuard-Error header. */
  readonly byCode: Record<string, number>;
  /** Outcomes of the held requests so far (they should still be waiting). */
  readonly held: { readonly answered: number; readonly failed: number; readonly firstError?: string };
}

export type LoadResult = OpenResult | ClosedResult | HoldResult | BurstResult | { readonly op: 'error'; readonly message: string };
