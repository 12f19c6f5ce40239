/**
 * Prometheus metrics: a registry of counters, gauges and histograms, rendered in the text
 * exposition format 0.0.4 (what `GET /metrics` answers) and walked sample by sample (what remote
 * write pushes). Written here instead of taken from a client library because a role only needs
 * these three types, and prom-client with its dependencies cost an idle role about 1 MiB of resident
 * memory.
 *
 * It lives in core because every layer that exposes metrics (observability, qos, controller) may
 * import core and nothing else in common; it imports nothing outside core.
 *
 * Counters and gauges take label objects and are mostly filled at scrape time by their `collect`
 * hook. The histogram is for the request path: label values positionally, one map lookup per
 * label (tuple-map.ts) and a short bucket scan per observation.
 */
import { TupleMap } from './tuple-map.ts';

/** One label of a sample: name, value. */
export type Label = readonly [name: string, value: string];
/** Label values by name; a label left out is not written. */
export type Labels<L extends string> = { readonly [K in L]?: string };
/** Receives the samples of a registry, one call per line `/metrics` would show. */
export type SampleVisitor = (name: string, labels: readonly Label[], value: number) => void;

/** The HTTP Content-Type of the text format. */
export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/**
 * A sample value as the format writes it: `+Inf`, `-Inf`, `NaN`, else JavaScript's shortest
 * round-trip decimal (integers without exponent up to 1e21), which Go's ParseFloat reads back exactly.
 */
export function formatValue(v: number): string {
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (Number.isNaN(v)) return 'NaN';
  return String(v);
}

/** HELP text: backslash and line feed escaped. */
function escapeHelp(s: string): string {
  return /[\\\n]/.test(s) ? s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n') : s;
}

/** A label value: backslash, double quote and line feed escaped. */
function escapeLabel(s: string): string {
  return /[\\"\n]/.test(s) ? s.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`)) : s;
}

/** `name="value",…` of the labels, escaped, without braces. */
function labelText(labels: readonly Label[]): string {
  return labels.map(([n, v]) => `${n}="${escapeLabel(v)}"`).join(',');
}

/** Every metric type: a name, help, label names, and a way to render and walk its samples. */
export abstract class Metric {
  /** The collect hook, bound to the metric (counters and gauges set it). */
  protected hook: (() => void | Promise<void>) | undefined;
  private collecting: Promise<void> | undefined;

  protected constructor(
    readonly type: 'counter' | 'gauge' | 'histogram',
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {
    if (!METRIC_NAME.test(name)) throw new Error(`invalid metric name: ${name}`);
    for (const l of labelNames) if (!LABEL_NAME.test(l) || l.startsWith('__')) throw new Error(`${name}: invalid label name: ${l}`);
  }

  /** `# HELP` and `# TYPE`, each ending in a line feed. */
  protected header(): string {
    return `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} ${this.type}\n`;
  }

  /**
   * Runs the collect hook. While an asynchronous one runs, a second scrape waits for it instead of
   * starting another (two would both reset, then both add: doubled values).
   */
  refresh(): Promise<void> | undefined {
    if (this.collecting) return this.collecting;
    const done = this.hook?.();
    if (done instanceof Promise) return (this.collecting = done.finally(() => (this.collecting = undefined)));
    return undefined;
  }

  /** The metric's lines of the text format, each ending in a line feed. */
  abstract render(): string;
  abstract samples(visit: SampleVisitor): void;
}

interface ScalarSeries {
  readonly labels: readonly Label[];
  /** `{…}` as written after the name, or '' without labels. */
  readonly text: string;
  value: number;
}

export interface MetricOptions<L extends string, M> {
  readonly name: string;
  readonly help: string;
  readonly labelNames?: readonly L[];
  readonly registry: Registry;
  /** Called before each render or walk (sync or async): fills the metric from where its figures live. */
  readonly collect?: (this: M) => void | Promise<void>;
}

/** A counter or a gauge: one number per label set, in the order the label sets first appeared. */
abstract class Scalar<L extends string> extends Metric {
  private readonly series = new Map<string, ScalarSeries>();
  private readonly head: string;

  protected constructor(type: 'counter' | 'gauge', opts: Omit<MetricOptions<L, never>, 'collect'>) {
    super(type, opts.name, opts.help, opts.labelNames ?? []);
    this.head = this.header();
    this.reset();
    opts.registry.register(this);
  }

  /** Forgets every label set; without labels, the one series is back to 0 (it is always shown). */
  reset(): void {
    this.series.clear();
    if (this.labelNames.length === 0) this.series.set('', { labels: [], text: '', value: 0 });
  }

  protected entry(labels: Labels<L> | undefined): ScalarSeries {
    const names = this.labelNames as readonly L[];
    // Length-prefixed, so no two label sets share a key whatever their values hold.
    let key = '';
    for (const n of names) {
      const v = labels?.[n];
      key += v === undefined ? '-' : `${v.length}:${v}`;
    }
    let s = this.series.get(key);
    if (!s) {
      const pairs: Label[] = [];
      for (const n of names) {
        const v = labels?.[n];
        if (v !== undefined) pairs.push([n, v]);
      }
      this.series.set(key, (s = { labels: pairs, text: pairs.length === 0 ? '' : `{${labelText(pairs)}}`, value: 0 }));
    }
    return s;
  }

  render(): string {
    let out = this.head;
    for (const s of this.series.values()) out += `${this.name}${s.text} ${formatValue(s.value)}\n`;
    return out;
  }

  samples(visit: SampleVisitor): void {
    for (const s of this.series.values()) visit(this.name, s.labels, s.value);
  }
}

/** A count that only goes up (or back to 0 by `reset`, when a collect hook refills it). */
export class Counter<L extends string = never> extends Scalar<L> {
  constructor(opts: MetricOptions<L, Counter<L>>) {
    super('counter', opts);
    this.hook = opts.collect?.bind(this);
  }

  inc(n?: number): void;
  inc(labels: Labels<L>, n?: number): void;
  inc(a?: Labels<L> | number, b?: number): void {
    const labels = typeof a === 'object' ? a : undefined;
    const n = typeof a === 'number' ? a : (b ?? 1);
    if (!(n >= 0) || n === Infinity) throw new RangeError(`${this.name}: a counter goes up by a finite amount, not ${n}`);
    this.entry(labels).value += n;
  }
}

/** A value that goes up and down. */
export class Gauge<L extends string = never> extends Scalar<L> {
  constructor(opts: MetricOptions<L, Gauge<L>>) {
    super('gauge', opts);
    this.hook = opts.collect?.bind(this);
  }

  set(v: number): void;
  set(labels: Labels<L>, v: number): void;
  set(a: Labels<L> | number, b?: number): void {
    if (typeof a === 'number') this.entry(undefined).value = a;
    else this.entry(a).value = b ?? 0;
  }

  inc(n?: number): void;
  inc(labels: Labels<L>, n?: number): void;
  inc(a?: Labels<L> | number, b?: number): void {
    if (typeof a === 'object') this.entry(a).value += b ?? 1;
    else this.entry(undefined).value += a ?? 1;
  }
}

interface HistogramSeries {
  readonly labels: readonly Label[];
  /** `{…,` before `le="…"}` of the bucket lines. */
  readonly bucketPrefix: string;
  /** `{…}` of the _sum and _count lines, or ''. */
  readonly text: string;
  /** Per bucket, not cumulative; the last one is +Inf. */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

export interface HistogramOptions<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames?: readonly L[];
  /** Upper bounds, ascending; +Inf is added. */
  readonly buckets: readonly number[];
  readonly registry: Registry;
}

/** Observations counted into buckets, written as cumulative `_bucket{le}` lines, `_sum` and `_count`. */
export class Histogram<L extends string = never> extends Metric {
  private readonly series: TupleMap<HistogramSeries>;
  private readonly buckets: readonly number[];
  /** The bounds as `le` values. */
  private readonly les: readonly string[];
  private readonly head: string;

  constructor(opts: HistogramOptions<L>) {
    super('histogram', opts.name, opts.help, opts.labelNames ?? []);
    if (this.labelNames.includes('le')) throw new Error(`${this.name}: le is the bucket label`);
    if (opts.buckets.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= opts.buckets[i - 1]!))) throw new Error(`${this.name}: buckets must be finite and ascending`);
    this.buckets = [...opts.buckets];
    this.les = [...this.buckets.map(formatValue), '+Inf'];
    this.head = this.header();
    this.series = new TupleMap(this.labelNames.length, (values) => {
      const labels: Label[] = this.labelNames.map((n, i) => [n, values[i] ?? '']);
      const inner = labelText(labels);
      return { labels, bucketPrefix: inner === '' ? '{' : `{${inner},`, text: inner === '' ? '' : `{${inner}}`, counts: new Float64Array(this.buckets.length + 1), sum: 0, count: 0 };
    });
    opts.registry.register(this);
  }

  /**
   * Records `value` for the series with these label values (in `labelNames` order; up to five
   * labels, positional rather than a rest array: it runs for every request).
   */
  observe(value: number, l0?: string, l1?: string, l2?: string, l3?: string, l4?: string): void {
    const s = this.series.at(l0, l1, l2, l3, l4);
    let i = 0;
    while (i < this.buckets.length && value > this.buckets[i]!) i++;
    s.counts[i]! += 1;
    s.sum += value;
    s.count++;
  }

  render(): string {
    let out = this.head;
    const bucket = `${this.name}_bucket`;
    for (const s of this.series.values()) {
      let acc = 0;
      for (let i = 0; i < this.les.length; i++) {
        acc += s.counts[i]!;
        out += `${bucket}${s.bucketPrefix}le="${this.les[i]!}"} ${acc}\n`;
      }
      out += `${this.name}_sum${s.text} ${formatValue(s.sum)}\n${this.name}_count${s.text} ${s.count}\n`;
    }
    return out;
  }

  samples(visit: SampleVisitor): void {
    for (const s of this.series.values()) {
      let acc = 0;
      for (let i = 0; i < this.les.length; i++) {
        acc += s.counts[i]!;
        visit(`${this.name}_bucket`, [...s.labels, ['le', this.les[i]!]], acc);
      }
      visit(`${this.name}_sum`, s.labels, s.sum);
      visit(`${this.name}_count`, s.labels, s.count);
    }
  }
}

/** The metrics of one `/metrics` endpoint, written in the order they were registered. */
export class Registry {
  readonly contentType = CONTENT_TYPE;
  private readonly list: Metric[] = [];

  /** Adds a metric (its constructor does); a second one of the same name is refused. */
  register(metric: Metric): void {
    if (this.list.some((m) => m.name === metric.name)) throw new Error(`a metric named ${metric.name} is already registered`);
    this.list.push(metric);
  }

  registered(): readonly Metric[] {
    return this.list;
  }

  /** Runs every collect hook, the asynchronous ones concurrently. */
  private async collect(): Promise<void> {
    let waits: Promise<void>[] | undefined;
    for (const m of this.list) {
      const p = m.refresh();
      if (p) (waits ??= []).push(p);
    }
    if (waits) await Promise.all(waits);
  }

  /** The text format: each metric's HELP, TYPE and samples, metrics separated by an empty line. */
  async metrics(): Promise<string> {
    await this.collect();
    let out = '';
    for (let i = 0; i < this.list.length; i++) out += i === 0 ? this.list[i]!.render() : `\n${this.list[i]!.render()}`;
    return out;
  }

  /** Every sample `metrics()` would write, with its labels as written (histograms: `le` last). */
  async forEachSample(visit: SampleVisitor): Promise<void> {
    await this.collect();
    for (const m of this.list) m.samples(visit);
  }
}
