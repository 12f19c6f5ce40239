/** The admin listener: health, readiness, Prometheus metrics, the JSON admin API and the dashboard. */
import http from 'node:http';
import type { DataPlane } from '../broker/plane.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { LiveFeed } from '../observability/live.ts';
import { serveDashboard } from '../dashboard/server.ts';
import { presentedToken } from '../security/credentials.ts';
import { sha256Hex } from '../security/identity.ts';
import { restartRequired } from './restart.ts';


/**
 * Data paths (/metrics, /api/...) need an admin token when `Gateway.spec.adminTokens` lists any;
 * probes (/healthz, /readyz) and the dashboard's static page and assets do not.
 */
function authorized(req: http.IncomingMessage, path: string, hashes: readonly string[]): boolean {
  if (hashes.length === 0 || !(path === '/metrics' || path.startsWith('/api/'))) return true;
  const token = presentedToken(req);
  return token !== undefined && hashes.includes(sha256Hex(token));
}

export function createAdminServer(broker: DataPlane, metrics: Metrics, live: LiveFeed): http.Server {
  // What the listeners and MQTT were started with: later snapshots that change it need a restart.
  const started = broker.current.gateway;
  return http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const send = (status: number, type: string, body: string): void => {
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'method not allowed\n');
    if (!authorized(req, path, broker.current.gateway.adminTokenHashes)) {
      res.setHeader('www-authenticate', 'Bearer realm="modelguard-admin"');
      return send(401, 'text/plain', 'admin token required: Authorization: Bearer <token> (or ?token= for the dashboard)\n');
    }
    // The page, its assets, /api/v1/live and the /api/v1/events stream.
    if (serveDashboard(live, path, req, res, authorized(req, '/api/', broker.current.gateway.adminTokenHashes))) return;
    switch (path) {
      case '/healthz':
        return send(200, 'text/plain', 'ok\n');
      case '/readyz': {
        const ready = broker.ready();
        return send(ready ? 200 : 503, 'text/plain', ready ? 'ready\n' : 'not ready: a backend has no healthy endpoint\n');
      }
      case '/metrics':
        metrics.registry.metrics().then(
          (text) => send(200, metrics.registry.contentType, text),
          (err: unknown) => send(500, 'text/plain', `metrics failed: ${String(err)}\n`),
        );
        return;
      case '/api/v1/status':
        return send(200, 'application/json', JSON.stringify({ ...broker.status(), restartRequired: restartRequired(started, broker.current.gateway) }));
      default:
        return send(404, 'text/plain', 'not found\n');
    }
  });
}
