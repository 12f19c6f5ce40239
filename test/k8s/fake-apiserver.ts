/**
 * A fake Kubernetes API server on loopback, enough for what src/k8s calls: list and watch (with
 * resourceVersion, bookmarks, "410 Gone" after compaction, dropped connections), get, create,
 * replace with optimistic concurrency, JSON/merge patch (status subresource included) and delete.
 * It is a peer the client really talks HTTP to, not a stub of the code under test.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { applyPatch } from './json-patch.ts';
import type { PatchOp } from './json-patch.ts';

type Obj = { apiVersion?: string; kind?: string; metadata: { name: string; namespace?: string; resourceVersion?: string; generation?: number; [k: string]: unknown }; [k: string]: unknown };

interface Event {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: Obj;
}

interface Parsed {
  collection: string;
  name?: string;
  sub?: string;
}

/** Splits an API path into its collection, the object's name and a subresource. */
function parse(path: string): Parsed | undefined {
  const s = path.split('/').filter((x) => x !== '');
  const ns = s.indexOf('namespaces');
  // /api/v1/... or /apis/group/version/...
  const base = s[0] === 'api' ? 2 : 3;
  const pluralAt = ns === base && s.length > ns + 2 ? ns + 2 : base;
  if (s.length <= pluralAt) return undefined;
  const collection = `/${s.slice(0, pluralAt + 1).join('/')}`;
  const name = s[pluralAt + 1];
  const sub = s[pluralAt + 2];
  return { collection, ...(name === undefined ? {} : { name }), ...(sub === undefined ? {} : { sub }) };
}

export class FakeApiServer {
  readonly requests: { method: string; path: string; query: Record<string, string>; body?: unknown; contentType?: string }[] = [];
  readonly #store = new Map<string, Map<string, Obj>>();
  readonly #events = new Map<string, Event[]>();
  readonly #watchers = new Set<{ collection: string; res: ServerResponse }>();
  readonly #failures: { method: string; pathPart: string; status: number; times: number }[] = [];
  #rv = 100;
  #compactedBelow = 0;
  #server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    this.#server = createServer((req, res) => void this.#handle(req, res));
    await new Promise<void>((r) => this.#server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.dropWatches();
    this.#server?.closeAllConnections();
    await new Promise<void>((r) => (this.#server === undefined ? r() : this.#server.close(() => r())));
  }

  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'fake', server: this.url, skipTLSVerify: true }],
      users: [{ name: 'fake', token: 'fake-token' }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'fake', namespace: 'modelguard-system' }],
      currentContext: 'fake',
    });
    return kc;
  }

  /** Creates or replaces an object as a user would (`kubectl apply`), with a watch event. */
  put(collection: string, obj: Obj): Obj {
    const items = this.#items(collection);
    const old = items.get(obj.metadata.name);
    const rv = ++this.#rv;
    const specChanged = old === undefined || JSON.stringify(old.spec) !== JSON.stringify(obj.spec);
    const generation = (old?.metadata.generation ?? 0) + (specChanged ? 1 : 0);
    const stored: Obj = { ...structuredClone(obj), metadata: { ...structuredClone(obj.metadata), resourceVersion: String(rv), generation } };
    if (old !== undefined && obj.status === undefined && old.status !== undefined) stored.status = old.status;
    items.set(obj.metadata.name, stored);
    this.#publish(collection, { rv, type: old === undefined ? 'ADDED' : 'MODIFIED', object: stored });
    return stored;
  }

  remove(collection: string, name: string): void {
    const items = this.#items(collection);
    const old = items.get(name);
    if (old === undefined) return;
    items.delete(name);
    const rv = ++this.#rv;
    this.#publish(collection, { rv, type: 'DELETED', object: { ...old, metadata: { ...old.metadata, resourceVersion: String(rv) } } });
  }

  get(collection: string, name: string): Obj | undefined {
    return this.#store.get(collection)?.get(name);
  }

  /** Forgets history: watches from an older resourceVersion get "410 Gone". */
  compact(): void {
    this.#compactedBelow = this.#rv;
  }

  /** Ends every open watch connection abruptly (a network drop or an API server restart). */
  dropWatches(): void {
    for (const w of this.#watchers) w.res.destroy();
    this.#watchers.clear();
  }

  /** Sends a 410 ERROR event on open watches of a collection, as the API server does after compaction. */
  goneOnWatches(collection: string): void {
    this.compact();
    for (const w of this.#watchers) {
      if (w.collection !== collection) continue;
      w.res.write(`${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Expired', code: 410, message: 'too old resource version' } })}\n`);
    }
  }

  /** The next `times` requests whose method matches and path contains pathPart fail with status (0: never answer). */
  failNext(method: string, pathPart: string, status: number, times = 1): void {
    this.#failures.push({ method, pathPart, status, times });
  }

  openWatches(collection?: string): number {
    return [...this.#watchers].filter((w) => collection === undefined || w.collection === collection).length;
  }

  #items(collection: string): Map<string, Obj> {
    let items = this.#store.get(collection);
    if (items === undefined) this.#store.set(collection, (items = new Map()));
    return items;
  }

  #publish(collection: string, event: Event): void {
    const list = this.#events.get(collection) ?? [];
    list.push(event);
    this.#events.set(collection, list);
    for (const w of this.#watchers) if (w.collection === collection) w.res.write(`${JSON.stringify({ type: event.type, object: event.object })}\n`);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const query = Object.fromEntries(url.searchParams);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const body: unknown = text === '' ? undefined : JSON.parse(text);
    const method = req.method ?? 'GET';
    this.requests.push({ method, path: url.pathname, query, ...(body === undefined ? {} : { body }), ...(req.headers['content-type'] === undefined ? {} : { contentType: req.headers['content-type'] }) });
    const send = (status: number, value: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(value));
    };
    const statusBody = (code: number, reason: string, message: string): void => send(code, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, message, code });
    if (req.headers.authorization !== 'Bearer fake-token') return statusBody(401, 'Unauthorized', 'no token');
    const failure = this.#failures.find((f) => f.method === method && url.pathname.includes(f.pathPart) && f.times > 0);
    if (failure !== undefined) {
      failure.times--;
      if (failure.status === 0) return; // a hung server: the connection stays open, unanswered
      return statusBody(failure.status, 'Injected', `injected ${failure.status}`);
    }
    const p = parse(url.pathname);
    if (p === undefined) return statusBody(404, 'NotFound', `no route ${url.pathname}`);
    const items = this.#items(p.collection);

    if (p.name === undefined && method === 'GET' && query.watch === 'true') return this.#watch(p.collection, query, res);
    if (p.name === undefined && method === 'GET') {
      return send(200, { kind: 'List', apiVersion: 'v1', metadata: { resourceVersion: String(this.#rv) }, items: [...items.values()] });
    }
    if (p.name === undefined && method === 'POST') {
      const obj = body as Obj;
      if (items.has(obj.metadata.name)) return statusBody(409, 'AlreadyExists', `${obj.metadata.name} already exists`);
      return send(201, this.put(p.collection, obj));
    }
    if (p.name === undefined) return statusBody(405, 'MethodNotAllowed', method);
    const current = items.get(p.name);
    if (current === undefined) return statusBody(404, 'NotFound', `${p.name} not found`);
    if (method === 'GET') return send(200, current);
    if (method === 'DELETE') {
      this.remove(p.collection, p.name);
      return send(200, current);
    }
    if (method === 'PUT') {
      const obj = body as Obj;
      if (obj.metadata.resourceVersion !== undefined && obj.metadata.resourceVersion !== current.metadata.resourceVersion) {
        return statusBody(409, 'Conflict', 'the object has been modified; please apply your changes to the latest version and try again');
      }
      return send(200, this.put(p.collection, obj));
    }
    if (method === 'PATCH') {
      const type = req.headers['content-type'] ?? '';
      let next: Obj;
      if (type.startsWith('application/json-patch+json')) next = applyPatch(current, body as PatchOp[]);
      else if (type.startsWith('application/merge-patch+json')) next = { ...current, ...(body as object) };
      else return statusBody(415, 'UnsupportedMediaType', type);
      // The status subresource changes only status; the main resource ignores status.
      const merged: Obj = p.sub === 'status' ? { ...current, status: next.status } : { ...next, status: current.status };
      return send(200, this.put(p.collection, merged));
    }
    return statusBody(405, 'MethodNotAllowed', method);
  }

  #watch(collection: string, query: Record<string, string>, res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    const from = Number(query.resourceVersion ?? '0');
    if (from !== 0 && from < this.#compactedBelow) {
      res.end(`${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Expired', code: 410, message: `too old resource version: ${from}` } })}\n`);
      return;
    }
    for (const e of this.#events.get(collection) ?? []) if (e.rv > from) res.write(`${JSON.stringify({ type: e.type, object: e.object })}\n`);
    if (query.allowWatchBookmarks === 'true') res.write(`${JSON.stringify({ type: 'BOOKMARK', object: { kind: 'Bookmark', metadata: { resourceVersion: String(this.#rv) } } })}\n`);
    const watcher = { collection, res };
    this.#watchers.add(watcher);
    res.on('close', () => this.#watchers.delete(watcher));
  }
}
