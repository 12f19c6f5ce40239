/**
 * Request counts per label combination, as plain numbers: one lookup per label (tuple-map.ts) per
 * request instead of a labelled counter update per metric. The counters are summed from these rows when
 * /metrics is scraped. Rows are bounded like the labels: every value comes from configuration or a
 * fixed set.
 */
import { TupleMap } from '../core/tuple-map.ts';

export interface TallyRow {
  readonly group: string;
  readonly app: string;
  readonly model: string;
  readonly protocol: string;
  readonly outcome: string;
  /** Requests with these labels. */
  count: number;
  /** Of those, the ones that held a backend slot. */
  handled: number;
}

export class RequestTally {
  private readonly byKey = new TupleMap<TallyRow>(5, ([group = '', app = '', model = '', protocol = '', outcome = '']) => ({ group, app, model, protocol, outcome, count: 0, handled: 0 }));

  add(group: string, app: string, model: string, protocol: string, outcome: string, handled: boolean): void {
    const row = this.byKey.at(group, app, model, protocol, outcome);
    row.count++;
    if (handled) row.handled++;
  }

  rows(): Iterable<TallyRow> {
    return this.byKey.values();
  }

  /** Sums `value` over the rows by `by`, leaving out sums of 0. */
  sum(by: (row: TallyRow) => string, value: (row: TallyRow) => number): Map<string, number> {
    const out = new Map<string, number>();
    for (const row of this.byKey.values()) {
      const v = value(row);
      if (v > 0) out.set(by(row), (out.get(by(row)) ?? 0) + v);
    }
    return out;
  }
}
