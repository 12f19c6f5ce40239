// Traces: ModelGuard continues the client's W3C trace, hands the backend its own span as parent,
// and exports request, queue and backend spans as OTLP/HTTP JSON to a collector on loopback.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { accelerator, gateway, keyFor, pool, send, waitFor, INFER_BODY } from '../helpers/harness.ts';

interface Span {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: { key: string; value: { stringValue?: string; intValue?: string } }[];
  status: { code: number; message?: string };
}

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

async function collector(): Promise<{ url: string; spans: Span[]; services: string[] }> {
  const spans: Span[] = [];
  const services: string[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const doc = JSON.parse(body) as { resourceSpans: { resource: { attributes: { value: { stringValue: string } }[] }; scopeSpans: { spans: Span[] }[] }[] };
      for (const rs of doc.resourceSpans) {
        services.push(rs.resource.attributes[0]!.value.stringValue);
        for (const ss of rs.scopeSpans) spans.push(...ss.spans);
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise<void>((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`, spans, services };
}

test('a traced request: three spans in the client\'s trace, the backend sees the backend span as its parent', { timeout: 30_000 }, async () => {
  const col = await collector();
  const acc = await accelerator({ slots: 1, serviceTime: 20 });
  closers.push(() => acc.close());
  const gw = await gateway({ endpoints: [{ url: acc.url, slots: 1 }], groups: [{ name: 'a' }], gateway: { tracing: { endpoint: col.url, serviceName: 'edge-box-7' } } });
  const p = pool(gw.httpUrl);
  closers.push(() => gw.close(), () => p.close());

  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const clientSpan = '00f067aa0ba902b7';
  const r = await send(p, '/v2/models/demo/infer', { key: keyFor('a'), body: INFER_BODY, headers: { traceparent: `00-${traceId}-${clientSpan}-01`, 'x-request-id': 'traced-1' } });
  assert.equal(r.status, 200);
  await waitFor(() => col.spans.length >= 3, 'three spans exported');
  const byName = Object.fromEntries(col.spans.map((s) => [s.name, s]));
  const req = byName['modelguard.request']!;
  const queue = byName['modelguard.queue']!;
  const backend = byName['modelguard.backend']!;
  for (const s of [req, queue, backend]) assert.equal(s.traceId, traceId, `${s.name} continues the client's trace`);
  assert.equal(req.parentSpanId, clientSpan);
  assert.equal(queue.parentSpanId, req.spanId);
  assert.equal(backend.parentSpanId, req.spanId);
  assert.deepEqual([req.kind, queue.kind, backend.kind], [2, 1, 3]);
  assert.equal(col.services[0], 'edge-box-7');
  const seen = acc.requests().find((q) => q.requestId === 'traced-1');
  assert.equal(seen?.headers['traceparent'], `00-${traceId}-${backend.spanId}-01`, 'the backend continues under the backend span');
  const t = (s: Span, k: 'startTimeUnixNano' | 'endTimeUnixNano'): bigint => BigInt(s[k]);
  assert.ok(t(req, 'startTimeUnixNano') <= t(queue, 'startTimeUnixNano'));
  assert.ok(t(queue, 'endTimeUnixNano') <= t(backend, 'startTimeUnixNano') + 1000n);
  assert.ok(t(backend, 'endTimeUnixNano') <= t(req, 'endTimeUnixNano'));
  const backendMs = Number(t(backend, 'endTimeUnixNano') - t(backend, 'startTimeUnixNano')) / 1e6;
  assert.ok(backendMs >= 19 && backendMs < 500, `backend span ${backendMs} ms for a 20 ms model`);
  assert.ok(req.attributes.some((a) => a.key === 'modelguard.group' && a.value.stringValue === 'a'));
  assert.equal(req.status.code, 1);
});

test('sampling: sampleRate 0 traces only requests whose client trace is sampled; refusals get an error span', { timeout: 30_000 }, async () => {
  const col = await collector();
  const acc = await accelerator({ slots: 1 });
  closers.push(() => acc.close());
  const gw = await gateway({ endpoints: [{ url: acc.url, slots: 1 }], groups: [{ name: 'a' }], gateway: { tracing: { endpoint: col.url, sampleRate: 0 } } });
  const p = pool(gw.httpUrl);
  closers.push(() => gw.close(), () => p.close());
  assert.equal((await send(p, '/v2/models/demo/infer', { key: keyFor('a'), body: INFER_BODY, headers: { 'x-request-id': 'plain' } })).status, 200);
  assert.equal(
    (await send(p, '/v2/models/demo/infer', { key: keyFor('a'), body: INFER_BODY, headers: { traceparent: '00-11111111111111111111111111111111-2222222222222222-00' } })).status,
    200,
  );
  assert.equal((await send(p, '/v2/models/demo/infer', { body: INFER_BODY, headers: { traceparent: '00-33333333333333333333333333333333-4444444444444444-01' } })).status, 401);
  await gw.tracer.flush();
  await waitFor(() => col.spans.length >= 1, 'the refused request\'s span');
  await gw.tracer.flush();
  assert.deepEqual([...new Set(col.spans.map((s) => s.traceId))], ['33333333333333333333333333333333'], 'only the sampled client trace');
  assert.equal(col.spans.length, 1, 'refused before the queue: one span');
  assert.deepEqual(col.spans[0]!.status, { code: 2, message: 'MG_UNAUTHENTICATED' });
  assert.equal(acc.requests().find((q) => q.requestId === 'plain')?.headers['traceparent'], undefined, 'nothing invented for untraced requests');
});
