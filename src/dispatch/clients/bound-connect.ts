/**
 * An undici connector whose connections leave from a block of local ports (traffic QoS per priority
 * level, docs/traffic-qos.md): a u32 filter on the uplink matches the block with one mask, so the
 * kernel can put each level's packets in its own class. Node binds one `localPort`, not a range, so
 * each connection tries ports of the block in turn from a moving cursor:
 *
 *   connect ─► bind port p of the block ─► EADDRINUSE / EADDRNOTAVAIL (p is held, or p→this
 *              endpoint is still in TIME_WAIT) ─► p+1 ... ─► after a bounded number of tries:
 *              connect without a bound port (an ephemeral one: the call goes in the inference class,
 *              still ahead of bulk) and say so once
 *
 * Any other error (refused, unreachable, timeout) is the connection's own and goes to undici as is.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { Socket } from 'node:net';
import { errors, type buildConnector } from '../../core/undici.ts';
import type { LinkTls } from '../link.ts';

export interface PortBlock {
  readonly first: number;
  /** A power of two. */
  readonly size: number;
}

/** Tries per connection before it leaves from an ephemeral port. */
const MAX_TRIES = 32;
const CONNECT_TIMEOUT_MS = 10_000;
/** Bind failures that say "try another port": taken locally, or this 4-tuple is still in use. */
const PORT_TAKEN = new Set(['EADDRINUSE', 'EADDRNOTAVAIL']);

export interface BoundConnectorOptions {
  readonly ports: PortBlock;
  readonly tls?: LinkTls | undefined;
  /** Where the fallback to ephemeral ports is said (default: stderr, once per connector). */
  readonly warn?: (line: string) => void;
}

export function boundConnector(opts: BoundConnectorOptions): buildConnector.connector {
  const { first, size } = opts.ports;
  // The next port to try; random at first so that two processes do not walk the block in step.
  let cursor = Math.floor(Math.random() * size);
  let warned = false;
  const sessions = new Map<string, Buffer>();
  const warn = opts.warn ?? ((line: string) => process.stderr.write(`${line}\n`));

  return (o, callback) => {
    const port = Number(o.port) || (o.protocol === 'https:' ? 443 : 80);
    const secure = o.protocol === 'https:';
    const servername = opts.tls?.servername ?? o.servername ?? (net.isIP(o.hostname) === 0 ? o.hostname : undefined);
    let tries = 0;

    const attempt = (localPort: number | undefined): void => {
      const base = { host: o.hostname, port, ...(localPort === undefined ? {} : { localPort }), ...(o.localAddress ? { localAddress: o.localAddress } : {}) };
      let socket: Socket;
      if (secure) {
        const key = servername ?? o.hostname;
        const session = sessions.get(key);
        const s = tls.connect({ ...opts.tls, ...base, ...(servername === undefined ? {} : { servername }), ...(session === undefined ? {} : { session }), ALPNProtocols: ['http/1.1'] });
        s.on('session', (sess: Buffer) => sessions.set(key, sess));
        socket = s;
      } else {
        socket = net.connect(base);
      }
      const timer = setTimeout(() => socket.destroy(new errors.ConnectTimeoutError(`connect to ${o.hostname}:${port} timed out`)), CONNECT_TIMEOUT_MS);
      timer.unref();
      const onError = (err: NodeJS.ErrnoException): void => {
        clearTimeout(timer);
        socket.removeListener(secure ? 'secureConnect' : 'connect', onConnect);
        if (localPort !== undefined && err.code !== undefined && PORT_TAKEN.has(err.code)) {
          next();
          return;
        }
        callback(err, null);
      };
      const onConnect = (): void => {
        clearTimeout(timer);
        socket.removeListener('error', onError);
        socket.setNoDelay(true);
        socket.setKeepAlive(true, 60_000);
        callback(null, socket);
      };
      socket.once('error', onError);
      socket.once(secure ? 'secureConnect' : 'connect', onConnect);
    };

    const next = (): void => {
      if (tries >= Math.min(MAX_TRIES, size)) {
        if (!warned) {
          warned = true;
          warn(
            `modelguard: traffic QoS: no free local port in ${first}-${first + size - 1} after ${tries} tries for ${o.hostname}:${port}; ` +
              'this connection uses an ephemeral port (its calls go in the inference class). Widen trafficQoS.sourcePorts, or check what holds those ports (ss -tanp).',
          );
        }
        attempt(undefined);
        return;
      }
      tries++;
      const p = first + (cursor % size);
      cursor = (cursor + 1) % size;
      attempt(p);
    };
    next();
  };
}
