/** The admin listener: health, readiness, Prometheus metrics and the JSON admin API. */
import http from 'node:http';
import type { Broker } from '../broker/broker.ts';
import type { Metrics } from '../observability/metrics.ts';

export function createAdminServer(broker: Broker, metrics: Metrics): http.Server {
  return http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (status: number, type: string, body: string): void => {
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'method not allowed\n');
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
        return send(200, 'application/json', JSON.stringify(broker.status()));
      case '/':
        return send(200, 'text/plain', 'ModelGuard admin: /healthz /readyz /metrics /api/v1/status\n');
      default:
        return send(404, 'text/plain', 'not found\n');
    }
  });
}
