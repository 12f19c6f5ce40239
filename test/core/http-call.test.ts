/**
 * httpCall (src/core/http-call.ts): one exchange through undici's handler interface, against a real
 * node:http server on loopback. What undici's `request` API guaranteed must still hold: 1xx skipped,
 * repeated headers kept, the signal aborting before and after the answer began, backpressure on a
 * streamed answer, a dropped stream aborting the call; and what is new: an answer read whole, cut
 * off at its limit.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { Cancel } from '../../src/core/cancel.ts';
import { httpCall, type Whole } from '../../src/core/http-call.ts';
import { Pool } from '../../src/core/undici.ts';

const BIG = 8 * 1024 * 1024;
const WHOLE: Whole = { limit: (status) => (status === 200 ? 1024 * 1024 : undefined), tooLarge: (limit) => new Error(`over ${limit}`) };

async function readAll(body: Readable | Buffer): Promise<Buffer> {
  if (Buffer.isBuffer(body)) return body;
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('httpCall', () => {
  let server: http.Server;
  let pool: Pool;
  /** Requests whose connection closed before the answer was finished. */
  let cut = 0;
  /** Bytes of /big the server managed to write before its first write had to wait. */
  let writtenBeforeWait = -1;
  let release: (() => void) | undefined;

  before(async () => {
    server = http.createServer((req, res) => {
      res.once('close', () => {
        if (!res.writableFinished) cut++;
      });
      const url = req.url ?? '/';
      req.resume();
      if (url === '/echo') {
        req.on('end', () => {
          res.writeEarlyHints({ link: '</style.css>; rel=preload' });
          res.setHeader('set-cookie', ['a=1', 'b=2']);
          res.writeHead(200, { 'content-type': 'application/json', 'x-method': req.method ?? '' });
          res.end(JSON.stringify({ ok: true }));
        });
        return;
      }
      if (url === '/big') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BIG });
        let sent = 0;
        const chunk = Buffer.alloc(64 * 1024, 7);
        const pump = (): void => {
          while (sent < BIG) {
            sent += chunk.length;
            if (!res.write(chunk)) {
              if (writtenBeforeWait < 0) writtenBeforeWait = sent;
              res.once('drain', pump);
              return;
            }
          }
          res.end();
        };
        pump();
        return;
      }
      if (url === '/slow') {
        release = () => res.end('late');
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('early');
        return;
      }
      if (url === '/hang') return; // never answers
      res.writeHead(404);
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    pool = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { connections: 2, pipelining: 1 });
  });
  after(async () => {
    await pool.destroy();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('reads an answer whole when asked: status, headers (1xx skipped, repeats joined) and body as a Buffer', async () => {
    const res = await httpCall(pool, { method: 'POST', path: '/echo', headers: { 'content-type': 'application/json' }, body: Buffer.from('{}') }, WHOLE);
    assert.equal(res.status, 200);
    assert.ok(Buffer.isBuffer(res.body));
    assert.deepEqual(JSON.parse(res.body.toString('utf8')), { ok: true });
    assert.equal(res.headers['x-method'], 'POST');
    assert.equal(res.headers['set-cookie'], 'a=1, b=2');
    assert.equal(res.headers['link'], undefined, 'the 103 answer\'s headers are not the final answer\'s');
  });

  it('streams what `whole` does not ask for (status 404 here), and with no `whole` at all', async () => {
    const missing = await httpCall(pool, { method: 'GET', path: '/nothing', headers: {}, body: null }, WHOLE);
    assert.equal(missing.status, 404);
    assert.ok(!Buffer.isBuffer(missing.body));
    assert.equal((await readAll(missing.body)).length, 0);
    const plain = await httpCall(pool, { method: 'GET', path: '/echo', headers: {}, body: null });
    assert.ok(!Buffer.isBuffer(plain.body));
    assert.equal((await readAll(plain.body)).toString(), '{"ok":true}');
  });

  it('an answer read whole past its limit fails with tooLarge, and the pool goes on working', async () => {
    cut = 0;
    await assert.rejects(httpCall(pool, { method: 'GET', path: '/big', headers: {}, body: null }, WHOLE), /over 1048576/);
    await waitUntil(() => cut === 1, 'the server to see the call cut');
    const next = await httpCall(pool, { method: 'GET', path: '/echo', headers: {}, body: null }, WHOLE);
    assert.equal(next.status, 200);
  });

  it('a streamed answer nobody reads holds the server back (backpressure), then arrives whole', async () => {
    writtenBeforeWait = -1;
    const res = await httpCall(pool, { method: 'GET', path: '/big', headers: {}, body: null });
    const body = res.body as Readable;
    await waitUntil(() => writtenBeforeWait > 0, 'the server to wait for the socket to drain');
    await new Promise((r) => setTimeout(r, 200));
    // Unread, the stream holds about its high-water mark (plus a chunk), not the 8 MiB the server has to send.
    assert.ok(body.readableLength < 1024 * 1024, `${body.readableLength} bytes buffered unread`);
    assert.equal((await readAll(body)).length, BIG);
  });

  it('a streamed answer dropped by its reader aborts the call', async () => {
    cut = 0;
    const res = await httpCall(pool, { method: 'GET', path: '/big', headers: {}, body: null });
    (res.body as Readable).destroy();
    await waitUntil(() => cut === 1, 'the server to see the call cut');
  });

  it('the signal: already aborted → rejected at once; aborted while waiting for the answer → rejected with its reason', async () => {
    const done = new Cancel();
    done.abort(new Error('gone before'));
    await assert.rejects(httpCall(pool, { method: 'GET', path: '/echo', headers: {}, body: null, signal: done }, WHOLE), /gone before/);
    cut = 0;
    const cancel = new Cancel();
    const pending = httpCall(pool, { method: 'GET', path: '/hang', headers: {}, body: null, signal: cancel }, WHOLE);
    setTimeout(() => cancel.abort(new Error('caller left')), 50);
    await assert.rejects(pending, /caller left/);
    await waitUntil(() => cut === 1, 'the server to see the call cut');
  });

  it('the signal aborted after a streamed answer began destroys the stream with its reason', async () => {
    const cancel = new Cancel();
    const res = await httpCall(pool, { method: 'GET', path: '/slow', headers: {}, body: null, signal: cancel });
    cancel.abort(new Error('deadline'));
    await assert.rejects(readAll(res.body), /deadline/);
    release?.();
  });

  it('a refused connection rejects with undici\'s error code (where it failed)', async () => {
    const probe = http.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const dead = new Pool(`http://127.0.0.1:${port}`, { connections: 1 });
    try {
      await assert.rejects(httpCall(dead, { method: 'GET', path: '/', headers: {}, body: null }, WHOLE), (err: Error & { code?: string }) => err.code === 'ECONNREFUSED');
    } finally {
      await dead.destroy();
    }
  });
});

async function waitUntil(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
