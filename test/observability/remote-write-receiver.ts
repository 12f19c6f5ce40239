/**
 * A Prometheus remote-write receiver on loopback for the tests. It decodes with code independent of
 * ModelGuard's encoders: snappyjs for the block format and protobufjs with the WriteRequest schema
 * from Prometheus's prompb/remote.proto and types.proto (the fields remote write 1.0 uses).
 */
import http from 'node:http';
import https from 'node:https';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import protobuf from 'protobufjs';

const snappy = createRequire(import.meta.url)('snappyjs') as { uncompress(data: Uint8Array): Uint8Array };

const PROTO = `
syntax = "proto3";
package prometheus;
message WriteRequest { repeated TimeSeries timeseries = 1; reserved 2; reserved 3; }
message TimeSeries { repeated Label labels = 1; repeated Sample samples = 2; }
message Label { string name = 1; string value = 2; }
message Sample { double value = 1; int64 timestamp = 2; }
`;
const WriteRequest = protobuf.parse(PROTO).root.lookupType('prometheus.WriteRequest');

export interface DecodedSeries {
  readonly labels: Record<string, string>;
  /** Label names in the order they were sent. */
  readonly order: string[];
  readonly samples: { value: number; timestamp: number }[];
}

export function decodeBody(body: Buffer): DecodedSeries[] {
  const raw = Buffer.from(snappy.uncompress(body));
  const msg = WriteRequest.toObject(WriteRequest.decode(raw), { longs: Number, defaults: true }) as {
    timeseries: { labels: { name: string; value: string }[]; samples: { value: number; timestamp: number }[] }[];
  };
  return msg.timeseries.map((t) => ({
    labels: Object.fromEntries(t.labels.map((l) => [l.name, l.value])),
    order: t.labels.map((l) => l.name),
    samples: t.samples,
  }));
}

export interface Push {
  readonly headers: http.IncomingHttpHeaders;
  readonly series: DecodedSeries[];
  /** The one timestamp all samples of a batch share. */
  readonly timestamp: number;
  /** What the receiver answered. */
  readonly status: number;
}

export interface Receiver {
  readonly url: string;
  /** Every request, in arrival order, with the status it got. */
  readonly pushes: Push[];
  /** Decides the status of the n-th request (0-based); `hang` leaves it unanswered. */
  answer: (n: number) => number | 'hang';
  /** Pushes it accepted (2xx). */
  accepted(): Push[];
  close(): Promise<void>;
}

/** A receiver on 127.0.0.1 port 0; with `tls` (PEM key and certificate), over https. */
export async function receiver(answer: (n: number) => number | 'hang' = () => 204, tls?: { key: Buffer; cert: Buffer }): Promise<Receiver> {
  const pushes: Push[] = [];
  const hanging: http.ServerResponse[] = [];
  let n = 0;
  const r: Receiver = {
    url: '',
    pushes,
    answer,
    accepted: () => pushes.filter((p) => p.status >= 200 && p.status < 300),
    close: async () => {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      const status = r.answer(n++);
      const series = decodeBody(Buffer.concat(chunks));
      pushes.push({ headers: req.headers, series, timestamp: series[0]?.samples[0]?.timestamp ?? NaN, status: status === 'hang' ? 0 : status });
      if (status === 'hang') {
        hanging.push(res);
        return;
      }
      res.writeHead(status, { 'content-type': 'text/plain' });
      // Error answers echo the authorization header, as a careless receiver might: it must not reach a log.
      res.end(status < 300 ? '' : `refused with ${status}: out of order sample (authorization: ${req.headers.authorization ?? 'none'})`);
    });
  };
  const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  (r as { url: string }).url = `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/write`;
  return r;
}

/** The value of the one series with this name and these labels (undefined when absent). */
export function valueOf(series: readonly DecodedSeries[], name: string, labels: Record<string, string> = {}): number | undefined {
  const s = series.find((x) => x.labels['__name__'] === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s?.samples[0]?.value;
}
