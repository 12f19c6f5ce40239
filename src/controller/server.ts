/**
 * The controller's listener: the node API (register, watch, report) and the admin API (nodes and
 * configuration), with health, readiness and Prometheus metrics. Node calls need a node token when
 * `Gateway.spec.nodeTokens` lists any; the admin API needs an admin token when `adminTokens` does.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { Gauge, Registry, Counter } from '../core/prom.ts';
import { presentedToken } from '../security/credentials.ts';
import { sha256Hex } from '../security/identity.ts';
import type { Applied, Controller } from './controller.ts';
import { NODES_PAGE } from './page.ts';
import { restartRequired } from '../admin/restart.ts';

const MAX_WAIT_MS = 60_000;
const VERSION = '0.1.0';

function send(res: ServerResponse, status: number, doc: unknown): void {
  const body = JSON.stringify(doc);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

function readJson(req: IncomingMessage, limit = 64 * 1024): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new Error('body too large'));
        req.destroy();
      } else chunks.push(c);
    });
    req.once('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}'));
      } catch {
        reject(new Error('body is not JSON'));
      }
    });
    req.once('error', reject);
  });
}

const NAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;

function isApplied(v: unknown): v is Applied {
  return typeof v === 'object' && v !== null && typeof (v as Applied).version === 'number' && typeof (v as Applied).hash === 'string';
}

function controllerMetrics(c: Controller): Registry {
  const registry = new Registry();
  new Gauge({
    name: 'modelguard_controller_config_version',
    help: 'Version of the configuration the controller serves (0 before the first valid one)',
    registry,
    collect() {
      this.set(c.current?.version ?? 0);
    },
  });
  new Counter({
    name: 'modelguard_controller_config_refusals_total',
    help: 'Configurations refused as invalid (the last good one stays)',
    registry,
    collect() {
      this.reset();
      this.inc(c.counters.refusals);
    },
  });
  new Gauge({
    name: 'modelguard_controller_nodes',
    help: 'Registered nodes by role and state (healthy: heartbeat recent; current: runs the latest snapshot)',
    labelNames: ['role', 'state'],
    registry,
    collect() {
      this.reset();
      for (const role of ['broker', 'proxy'] as const) for (const state of ['healthy', 'unhealthy', 'current', 'behind']) this.set({ role, state }, 0);
      for (const n of c.nodeViews()) {
        this.inc({ role: n.role, state: n.healthy ? 'healthy' : 'unhealthy' });
        this.inc({ role: n.role, state: n.upToDate ? 'current' : 'behind' });
      }
    },
  });
  return registry;
}

export function createControllerServer(c: Controller): http.Server {
  const registry = controllerMetrics(c);
  // The listener was bound from this configuration: a later one that moves it needs a restart.
  const started = c.current?.gateway;
  const allowed = (req: IncomingMessage, hashes: readonly string[] | undefined): boolean => {
    if (!hashes || hashes.length === 0) return true;
    const t = presentedToken(req);
    return t !== undefined && hashes.includes(sha256Hex(t));
  };
  return http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://controller');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const fail = (status: number, message: string): void => send(res, status, { error: message });
    if (path === '/healthz') return send(res, 200, { ok: true });
    if (path === '/readyz') return send(res, c.current ? 200 : 503, { ready: c.current !== undefined });
    if (path === '/' && method === 'GET') {
      // The page holds no data: it reads the admin API with the token of ?token=.
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(NODES_PAGE), 'cache-control': 'no-store' });
      res.end(NODES_PAGE);
      return;
    }

    const gw = c.current?.gateway;
    const nodeApi = path === '/api/v1/nodes' ? method === 'POST' : /^\/api\/v1\/nodes\/[^/]+\/(snapshot|status)$/.test(path);
    if (!allowed(req, nodeApi ? gw?.nodeTokenHashes : gw?.adminTokenHashes)) {
      res.setHeader('www-authenticate', 'Bearer realm="modelguard-controller"');
      return fail(401, nodeApi ? 'node token required: Authorization: Bearer <token> (Gateway.spec.nodeTokens)' : 'admin token required');
    }

    if (path === '/metrics' && method === 'GET') {
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(text);
        },
        (err: unknown) => fail(500, String(err)),
      );
      return;
    }
    if (path === '/api/v1/config' && method === 'GET') return send(res, 200, c.configView());
    if (path === '/api/v1/status' && method === 'GET') {
      // The same path as a broker's or a proxy's, so `modelguard status` and `top` read any role.
      const now = c.current?.gateway;
      const restart = started && now ? restartRequired(started, now).filter((f) => f === 'Gateway.spec.listeners.admin') : [];
      return send(res, 200, { role: 'controller', ...c.configView(), nodes: c.nodeViews(), restartRequired: restart });
    }
    if (path === '/api/v1/nodes' && method === 'GET') return send(res, 200, { version: c.current?.version, nodes: c.nodeViews() });
    if (path === '/api/v1/nodes' && method === 'POST') {
      readJson(req).then(
        (doc) => {
          const d = doc as { name?: unknown; role?: unknown; software?: unknown; apps?: unknown; applied?: unknown };
          if (typeof d.name !== 'string' || !NAME.test(d.name)) return fail(400, 'name: a DNS name (lower-case letters, digits, "-" and ".") is required');
          if (d.role !== 'broker' && d.role !== 'proxy') return fail(400, 'role: broker or proxy');
          const apps = Array.isArray(d.apps) ? d.apps.filter((a): a is string => typeof a === 'string') : [];
          c.register({
            name: d.name,
            role: d.role,
            software: typeof d.software === 'string' ? d.software.slice(0, 64) : 'unknown',
            apps,
            applied: isApplied(d.applied) ? d.applied : undefined,
          });
          send(res, 200, { heartbeatMs: c.heartbeatMs, controller: VERSION });
        },
        (err: unknown) => fail(400, err instanceof Error ? err.message : String(err)),
      );
      return;
    }
    const m = /^\/api\/v1\/nodes\/([^/]+)\/(snapshot|status)$/.exec(path);
    if (m) {
      const node = c.node(decodeURIComponent(m[1] as string));
      if (!node) return fail(404, 'unknown node: register first (POST /api/v1/nodes)');
      if (m[2] === 'snapshot' && method === 'GET') {
        node.lastSeen = Date.now();
        const wait = Math.min(MAX_WAIT_MS, Math.max(0, Number(url.searchParams.get('wait') ?? 0) || 0));
        c.watch(node, url.searchParams.get('have') ?? undefined, wait, res).then(
          (s) => {
            if (res.destroyed) return;
            if (s) send(res, 200, s);
            else if (!c.current) fail(503, 'no valid configuration loaded yet');
            else {
              res.writeHead(204);
              res.end();
            }
          },
          (err: unknown) => fail(500, String(err)),
        );
        return;
      }
      if (m[2] === 'status' && method === 'POST') {
        readJson(req).then(
          (doc) => {
            const d = doc as { applied?: unknown; error?: unknown };
            const e = d.error as { version?: unknown; hash?: unknown; message?: unknown } | undefined;
            const error =
              e && typeof e.version === 'number' && typeof e.hash === 'string' && typeof e.message === 'string'
                ? { version: e.version, hash: e.hash, message: e.message.slice(0, 2000) }
                : undefined;
            c.report(node, isApplied(d.applied) ? d.applied : undefined, error);
            send(res, 200, { ok: true });
          },
          (err: unknown) => fail(400, err instanceof Error ? err.message : String(err)),
        );
        return;
      }
    }
    fail(404, 'not found');
  });
}
