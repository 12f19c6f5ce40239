/**
 * The live feed: keeps the recent window (window.ts) from the request events, closes a second of
 * it every `intervalMs` with a sample of the broker, and hands the resulting view to whoever watches
 * (the dashboard's server-sent events). With nobody watching, a tick is one broker status call; the
 * view is built once per tick however many watch.
 */
import type { DataPlane } from '../broker/plane.ts';
import type { RequestEvents } from '../core/events.ts';
import type { LiveView } from './live-view.ts';
import { buildView } from './view.ts';
import { RecentWindow } from './window.ts';

interface Watcher {
  readonly onView: (json: string) => void;
  readonly onClose: () => void;
}

export interface LiveFeedOptions {
  /** Length of one second of the window, ms; 0 for no timer (tests call tick()). */
  readonly intervalMs?: number;
}

export class LiveFeed {
  readonly startedAt = Date.now();
  private readonly window = new RecentWindow();
  private readonly watchers = new Set<Watcher>();
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly broker: DataPlane,
    events: RequestEvents,
    opts: LiveFeedOptions = {},
  ) {
    this.unsubscribe = events.subscribe((r) => this.window.observe(r, r.endedAt ?? performance.now()));
    const interval = opts.intervalMs ?? 1000;
    if (interval > 0) {
      this.timer = setInterval(() => this.tick(), interval);
      this.timer.unref();
    }
  }

  /** Closes the current second and sends the new view to every watcher. */
  tick(): void {
    const status = this.broker.status();
    this.window.tick(status);
    if (this.watchers.size === 0) return;
    const json = JSON.stringify(buildView(this.window, status, this.broker.current, this.startedAt, this.broker.offloadStatus()));
    for (const w of this.watchers) w.onView(json);
  }

  /** The view over the complete seconds so far. */
  view(): LiveView {
    return buildView(this.window, this.broker.status(), this.broker.current, this.startedAt, this.broker.offloadStatus());
  }

  get watching(): number {
    return this.watchers.size;
  }

  /** Calls `onView` with each new view (JSON) until unsubscribed; `onClose` when the feed closes. */
  watch(onView: (json: string) => void, onClose: () => void): () => void {
    const w: Watcher = { onView, onClose };
    this.watchers.add(w);
    return () => this.watchers.delete(w);
  }

  close(): void {
    clearInterval(this.timer);
    this.unsubscribe();
    const watchers = [...this.watchers];
    this.watchers.clear();
    for (const w of watchers) w.onClose();
  }
}
