/** What the protocol routes share: the models, the accelerator, generation settings and timers. */
import type { ServerResponse } from 'node:http';
import type { Accelerator, Slot } from './accelerator.ts';
import { onClientGone } from './http.ts';
import type { DemoModel } from './models.ts';
import { sampleServiceTime } from './service-time.ts';

export type DemoMode = 'onnx' | 'simulated';

export interface ServerContext {
  readonly serverName: string;
  readonly serverVersion: string;
  readonly mode: DemoMode;
  readonly models: ReadonlyMap<string, DemoModel>;
  readonly accelerator: Accelerator;
  readonly timers: Timers;
  /** Simulated generation time per output token, ms. */
  readonly tokenMs: number;
  /** Output tokens a generation produces when max_tokens does not stop it earlier. */
  readonly completionTokens: number;
  /** A fresh id for answers whose request carried none. */
  nextId(): string;
}

/**
 * setTimeout with bookkeeping, so that stopping the server clears every pending service timer
 * (a stopped replica does no more work, and a closed server keeps no timer alive).
 * A delay ≤ 0 runs the callback now: a zero-service-time request never touches the timer wheel.
 */
export class Timers {
  private readonly pending = new Set<NodeJS.Timeout>();

  after(ms: number, fn: () => void): () => void {
    if (ms <= 0) {
      fn();
      return () => undefined;
    }
    const t = setTimeout(() => {
      this.pending.delete(t);
      fn();
    }, ms);
    this.pending.add(t);
    return () => {
      clearTimeout(t);
      this.pending.delete(t);
    };
  }

  clearAll(): void {
    for (const t of this.pending) clearTimeout(t);
    this.pending.clear();
  }
}

/**
 * Waits for a slot, holds it for the model's service time (or the real compute time if longer),
 * then releases it and hands the outputs over. A request whose client leaves while it waits in
 * line is dropped from the line; once it holds a slot it runs to completion, as on a real
 * accelerator.
 */
export function serveOnAccelerator<T>(
  ctx: ServerContext,
  model: DemoModel,
  /** The HTTP response, or for other transports a hook that calls back when the client is gone (returns a detach). */
  res: ServerResponse | ((gone: () => void) => () => void),
  work: () => T | Promise<T>,
  done: (result: T) => void,
  fail: (err: unknown) => void,
  /** Rows (dim 0) the request carries: a batch may cost more than one row (ServiceTime.perRowMs). */
  rows = 1,
): void {
  let granted = false;
  let detach: (() => void) | undefined;
  const ticket = ctx.accelerator.acquire(model.name, (slot: Slot) => {
    granted = true;
    detach?.();
    const target = sampleServiceTime(model.serviceTime, model.random, rows);
    const started = performance.now();
    const finish = (result: T): void => {
      ctx.timers.after(target - (performance.now() - started), () => {
        ctx.accelerator.release(slot, 'served');
        done(result);
      });
    };
    const failed = (err: unknown): void => {
      ctx.accelerator.release(slot, 'failed');
      fail(err);
    };
    let result: T | Promise<T>;
    try {
      result = work();
    } catch (err) {
      failed(err);
      return;
    }
    if (result instanceof Promise) result.then(finish, failed);
    else finish(result);
  });
  if (!granted) detach = typeof res === 'function' ? res(() => ticket.cancel()) : onClientGone(res, () => ticket.cancel());
}
