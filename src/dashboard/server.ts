/**
 * The dashboard on the admin listener: the page, its stylesheet and script, the live view as JSON
 * (`/api/v1/live`) and as server-sent events (`/api/v1/events`, one `data:` line of JSON a second).
 * Everything is served from this folder: the browser script is bundled from client/*.ts by esbuild
 * (from node_modules, offline) on first request and kept in memory. No CDN, nothing fetched.
 */
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { LiveFeed } from '../observability/live.ts';

const here = (name: string): string => fileURLToPath(new URL(name, import.meta.url));

/** The page loads only its own script, stylesheet and event stream. */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'";

interface Asset {
  readonly type: string;
  readonly body: string;
}

const cache = new Map<string, Promise<Asset>>();

function cached(key: string, load: () => Promise<Asset>): Promise<Asset> {
  let p = cache.get(key);
  if (!p) {
    p = load();
    cache.set(key, p);
    // A failed build is retried on the next request rather than cached.
    p.catch(() => cache.delete(key));
  }
  return p;
}

async function bundle(): Promise<Asset> {
  // The compiled build ships the bundle beside this module (scripts/build.mjs); the sources bundle it here.
  const built = await readFile(here('./dashboard.js'), 'utf8').catch(() => undefined);
  if (built !== undefined) return { type: 'text/javascript; charset=utf-8', body: built };
  const { build } = await import('esbuild');
  const out = await build({
    entryPoints: [here('./client/main.ts')],
    bundle: true,
    write: false,
    format: 'esm',
    target: 'es2020',
    charset: 'utf8',
    legalComments: 'none',
    logLevel: 'silent',
  });
  const file = out.outputFiles[0];
  if (!file) throw new Error('esbuild produced no output');
  return { type: 'text/javascript; charset=utf-8', body: file.text };
}

const ASSETS: Readonly<Record<string, () => Promise<Asset>>> = {
  '/': () => cached('html', async () => ({ type: 'text/html; charset=utf-8', body: await readFile(here('./index.html'), 'utf8') })),
  '/dashboard.css': () => cached('css', async () => ({ type: 'text/css; charset=utf-8', body: await readFile(here('./dashboard.css'), 'utf8') })),
  '/dashboard.js': () => cached('js', bundle),
  '/favicon.svg': () => cached('icon', async () => ({ type: 'image/svg+xml', body: await readFile(here('./favicon.svg'), 'utf8') })),
};

/**
 * The page with the current view in it (a JSON data block, which the CSP does not count as a script),
 * so the first paint shows the state, not empty frames waiting for the event stream.
 */
function withView(html: string, live: LiveFeed): string {
  const json = JSON.stringify(live.view()).replace(/</g, '\\u003c');
  return html.replace('<!--initial-view-->', `<script type="application/json" id="initial-view">${json}</script>`);
}

/**
 * Answers the dashboard's paths; returns false for any other path. `showData`: the request may
 * read the live view (no admin tokens, or it presents one); only then is the view put in the page.
 */
export function serveDashboard(live: LiveFeed, path: string, req: IncomingMessage, res: ServerResponse, showData = true): boolean {
  const key = path === '/index.html' ? '/' : path;
  const asset = ASSETS[key];
  if (asset) {
    asset().then(
      (cachedAsset) => {
        const a = key === '/' && showData ? { ...cachedAsset, body: withView(cachedAsset.body, live) } : cachedAsset;
        res.writeHead(200, { 'content-type': a.type, 'content-length': Buffer.byteLength(a.body), 'cache-control': 'no-cache', 'content-security-policy': CSP, 'x-content-type-options': 'nosniff' });
        res.end(req.method === 'HEAD' ? undefined : a.body);
      },
      (err: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`dashboard asset ${path} failed: ${err instanceof Error ? err.message : String(err)}\n`);
      },
    );
    return true;
  }
  if (path === '/api/v1/live') {
    const body = JSON.stringify(live.view());
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  }
  if (path === '/api/v1/events') {
    streamEvents(live, req, res);
    return true;
  }
  return false;
}

function streamEvents(live: LiveFeed, req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
  if (req.method === 'HEAD') return void res.end();
  res.socket?.setNoDelay(true);
  // The current view at once, so a page has something to draw before the next tick.
  res.write(`retry: 2000\n\ndata: ${JSON.stringify(live.view())}\n\n`);
  const stop = live.watch(
    (json) => {
      // A client that does not keep up skips views rather than making the server buffer them.
      if (!res.writableNeedDrain) res.write(`data: ${json}\n\n`);
    },
    () => res.end(),
  );
  res.on('close', stop);
}
