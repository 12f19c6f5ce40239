/** What batching did per model, read by the broker's status (the dashboard, `modelguard status`). */

/** Weight of the newest batch in the recent averages (about the last 10 batches). */
const ALPHA = 0.1;

export interface BatchModelStatus {
  readonly model: string;
  /** Backend calls sent as batches (a batch of one counts too). */
  readonly batches: number;
  /** Rows and requests they carried. */
  readonly rows: number;
  readonly requests: number;
  /** Rows per batch, recent (smoothed over about the last 10 batches). */
  readonly recentRows: number;
  /** Delay batching added (slot taken → sent), ms, recent. */
  readonly recentDelayMs: number;
}

interface Entry {
  batches: number;
  rows: number;
  requests: number;
  recentRows: number;
  recentDelayMs: number;
}

export class BatchStats {
  private readonly models = new Map<string, Entry>();

  add(model: string, rows: number, requests: number, delayMs: number): void {
    const e = this.models.get(model);
    if (!e) {
      this.models.set(model, { batches: 1, rows, requests, recentRows: rows, recentDelayMs: delayMs });
      return;
    }
    e.batches++;
    e.rows += rows;
    e.requests += requests;
    e.recentRows += (rows - e.recentRows) * ALPHA;
    e.recentDelayMs += (delayMs - e.recentDelayMs) * ALPHA;
  }

  status(): BatchModelStatus[] {
    return [...this.models].map(([model, e]) => ({ model, ...e }));
  }
}
