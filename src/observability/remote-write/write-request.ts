/**
 * The remote-write 1.0 payload: a `prometheus.WriteRequest` protobuf built from a metrics
 * registry. Encoded by hand: the message has four types and seven fields, so a two-pass writer
 * (sizes, then bytes into one buffer) is shorter than loading a .proto and copies nothing twice.
 *
 *   WriteRequest { repeated TimeSeries timeseries = 1; }
 *   TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
 *   Label        { string name = 1; string value = 2; }
 *   Sample       { double value = 1; int64 timestamp = 2; }   // timestamp: ms since the epoch
 */
import type { Registry } from '../../core/prom.ts';

/** One series with its one sample: labels sorted by name, `__name__` among them. */
export interface Series {
  readonly labels: readonly (readonly [string, string])[];
  readonly value: number;
}

/**
 * Every series the registry exposes, as `/metrics` shows it (histograms as `_bucket{le}`, `_sum` and
 * `_count`), with `external` labels added to series that do not have them already (as Prometheus
 * does with its external labels).
 */
export async function gather(registry: Registry, external: Readonly<Record<string, string>>): Promise<Series[]> {
  const out: Series[] = [];
  await registry.forEachSample((name, own, value) => {
    const labels = new Map<string, string>(own);
    for (const [k, val] of Object.entries(external)) if (!labels.has(k)) labels.set(k, val);
    labels.set('__name__', name);
    // The protocol requires the labels of a series sorted by name (byte order).
    out.push({ labels: [...labels].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)), value });
  });
  return out;
}

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    size++;
  }
  return size;
}

/** Unsigned varint; `Math.floor` rather than `>>>` since a millisecond timestamp exceeds 32 bits. */
function putVarint(out: Buffer, pos: number, n: number): number {
  while (n >= 0x80) {
    out[pos++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  out[pos++] = n;
  return pos;
}

const TAG_1_BYTES = 0x0a; // field 1, length-delimited
const TAG_2_BYTES = 0x12; // field 2, length-delimited
const TAG_1_DOUBLE = 0x09; // field 1, 64-bit
const TAG_2_VARINT = 0x10; // field 2, varint

/** Encodes the series, each with one sample at `timestampMs`, as a WriteRequest. */
export function encodeWriteRequest(series: readonly Series[], timestampMs: number): Buffer {
  const ts = Math.max(0, Math.round(timestampMs));
  const sampleSize = 1 + 8 + 1 + varintSize(ts);
  // Pass 1: the size of every nested message (a length prefix needs it before the bytes).
  const labelSizes: number[] = [];
  const seriesSizes: number[] = [];
  let total = 0;
  for (const s of series) {
    let size = 1 + varintSize(sampleSize) + sampleSize;
    for (const [name, value] of s.labels) {
      const n = Buffer.byteLength(name);
      const v = Buffer.byteLength(value);
      const label = 1 + varintSize(n) + n + 1 + varintSize(v) + v;
      labelSizes.push(label);
      size += 1 + varintSize(label) + label;
    }
    seriesSizes.push(size);
    total += 1 + varintSize(size) + size;
  }
  // Pass 2: the bytes.
  const out = Buffer.allocUnsafe(total);
  let pos = 0;
  let li = 0;
  series.forEach((s, si) => {
    out[pos++] = TAG_1_BYTES;
    pos = putVarint(out, pos, seriesSizes[si]!);
    for (const [name, value] of s.labels) {
      out[pos++] = TAG_1_BYTES;
      pos = putVarint(out, pos, labelSizes[li++]!);
      out[pos++] = TAG_1_BYTES;
      pos = putVarint(out, pos, Buffer.byteLength(name));
      pos += out.write(name, pos);
      out[pos++] = TAG_2_BYTES;
      pos = putVarint(out, pos, Buffer.byteLength(value));
      pos += out.write(value, pos);
    }
    out[pos++] = TAG_2_BYTES;
    pos = putVarint(out, pos, sampleSize);
    out[pos++] = TAG_1_DOUBLE;
    pos = out.writeDoubleLE(s.value, pos);
    out[pos++] = TAG_2_VARINT;
    pos = putVarint(out, pos, ts);
  });
  return out;
}
