/**
 * The baseline reverse proxy: a node:http server that forwards every request to one upstream over
 * an undici Pool (keep-alive, pipelining 1) and streams the answer back. No auth, no queue, no
 * validation: what any Node proxy has to pay for two HTTP hops, and nothing else.
 *
 *   node --import tsx bench/lib/node-proxy.ts <upstream-url> [connections]   (prints "listening on URL")
 */
import http, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authenticate', 'proxy-authorization', 'host']);

const [upstream, connectionsText] = process.argv.slice(2);
if (!upstream) {
  process.stderr.write('usage: node-proxy.ts <upstream-url> [connections]\n');
  process.exit(2);
}
const pool = new Pool(upstream, { connections: Number(connectionsText ?? 64), pipelining: 1, keepAliveTimeout: 60_000 });

function forwardable(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

const server = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
    pool
      .request({
        method: req.method ?? 'GET',
        path: req.url ?? '/',
        headers: forwardable(req.headers) as Record<string, string>,
        body: hasBody ? (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)) : null,
      })
      .then(
        (up) => {
          res.writeHead(up.statusCode, forwardable(up.headers));
          up.body.pipe(res);
        },
        (err: unknown) => {
          res.writeHead(502, { 'content-type': 'text/plain' });
          res.end(`proxy: ${err instanceof Error ? err.message : String(err)}\n`);
        },
      );
  });
});

server.listen(0, '127.0.0.1', () => {
  const a = server.address() as AddressInfo;
  process.stdout.write(`node proxy listening on http://127.0.0.1:${a.port} -> ${upstream}\n`);
});
const stop = (): void => {
  server.close();
  server.closeAllConnections();
  void pool.destroy().then(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
