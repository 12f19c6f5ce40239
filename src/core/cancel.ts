/**
 * A cancellation flag with listeners: what AbortController does, without its cost. Node 20's
 * AbortController is an EventTarget and cost ~6 µs to create per request on this path; this is a
 * plain object. undici accepts it as a request `signal` (it speaks the EventEmitter subset:
 * `aborted`, `reason`, `on`/`once`/`removeListener` for 'abort').
 */
type Listener = () => void;

export interface CancelSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  on(event: 'abort', fn: Listener): this;
  once(event: 'abort', fn: Listener): this;
  removeListener(event: 'abort', fn: Listener): this;
}

export class Cancel implements CancelSignal {
  aborted = false;
  reason: unknown = undefined;
  private listeners: Listener[] | undefined;

  on(_event: 'abort', fn: Listener): this {
    (this.listeners ??= []).push(fn);
    return this;
  }

  /** Listeners run once anyway: a Cancel aborts at most once. */
  once(event: 'abort', fn: Listener): this {
    return this.on(event, fn);
  }

  removeListener(_event: 'abort', fn: Listener): this {
    const l = this.listeners;
    if (l) {
      const i = l.indexOf(fn);
      if (i >= 0) l.splice(i, 1);
    }
    return this;
  }

  abort(reason?: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason ?? new Error('cancelled');
    const l = this.listeners;
    this.listeners = undefined;
    if (l) for (const fn of l) fn();
  }
}

/** Raised to the adapter when the client went away: there is nobody to answer. */
export class CancelledError extends Error {
  constructor() {
    super('client cancelled');
    this.name = 'CancelledError';
  }
}
