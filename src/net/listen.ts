/**
 * host:port listener addresses, and servers bound to them (port 0 for tests). Every listener of
 * every role binds through `listen` or `bound`, so a port that is taken, forbidden or not on this
 * machine always fails the same way: naming the listener, the address, and what moves it.
 */
import type { Server } from 'node:http';
import type { AddressInfo, Server as TcpServer } from 'node:net';

export function parseListen(addr: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(addr) ?? /^([^:]+):(\d+)$/.exec(addr);
  if (!m) throw new Error(`listener address "${addr}" is not host:port (IPv6 as [::1]:port)`);
  return { host: m[1] as string, port: Number(m[2]) };
}

/** The listeners ModelGuard opens, and the configuration field that sets each one's address. */
export const LISTENERS = {
  http: { name: 'inference HTTP listener', field: 'Gateway.spec.listeners.http' },
  grpc: { name: 'inference gRPC listener', field: 'Gateway.spec.listeners.grpc' },
  admin: { name: 'admin listener', field: 'Gateway.spec.listeners.admin' },
  broker: { name: 'broker listener', field: 'Gateway.spec.listeners.broker' },
  controller: { name: 'controller listener (node and admin API)', field: 'Gateway.spec.listeners.admin' },
  webhook: { name: 'injection webhook listener', field: undefined },
  mqtt: { name: 'embedded MQTT broker', field: 'Gateway.spec.mqtt.url' },
} as const satisfies Record<string, { name: string; field: string | undefined }>;

export type ListenerKind = keyof typeof LISTENERS;

const REASONS: Readonly<Record<string, string>> = {
  EADDRINUSE: 'the address is already in use: another process, or another ModelGuard role, holds it',
  EACCES: 'not allowed to listen there (ports below 1024 need privileges)',
  EADDRNOTAVAIL: 'the address is not one of this machine',
};

/** A listener that could not bind: which one, where, why, and the flag or field that moves it. */
export class ListenError extends Error {
  readonly code: string;
  readonly listener: ListenerKind;
  readonly address: string;
  /** The command-line flag that moves this listener, when the command has one. */
  flag: string | undefined;

  constructor(listener: ListenerKind, address: string, code: string, flag?: string) {
    super('');
    this.name = 'ListenError';
    this.listener = listener;
    this.address = address;
    this.code = code;
    this.flag = flag;
    this.message = this.describe();
  }

  /** Names the command-line flag in the message (the CLI knows its flags; compose does not). */
  withFlag(flag: string | undefined): this {
    if (flag !== undefined) this.flag = flag;
    this.message = this.describe();
    return this;
  }

  private describe(): string {
    const l = LISTENERS[this.listener];
    const value = this.listener === 'mqtt' ? 'mqtt://HOST:PORT' : 'HOST:PORT';
    const moves = [this.flag === undefined ? undefined : `${this.flag} ${value}`, l.field].filter((m) => m !== undefined);
    return `the ${l.name} cannot listen on ${this.address}: ${REASONS[this.code] ?? 'failed'} (${this.code}). Move it with ${moves.join(' or ')}`;
  }
}

/** The listen errno of an error (Node's `code`, or one named in a message such as grpc-js's). */
function listenCode(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined;
  const code = (err as NodeJS.ErrnoException).code;
  if (typeof code === 'string' && code in REASONS) return code;
  return /\b(EADDRINUSE|EACCES|EADDRNOTAVAIL)\b/.exec(err.message)?.[1];
}

/** Runs a bind; a listen failure becomes a ListenError for `listener` at `addr`, other errors pass. */
export async function bound<T>(listener: ListenerKind, addr: string, bind: () => Promise<T>): Promise<T> {
  try {
    return await bind();
  } catch (err) {
    const code = listenCode(err);
    if (code === undefined || err instanceof ListenError) throw err;
    throw new ListenError(listener, addr, code);
  }
}

export async function listen(server: TcpServer, addr: string, listener: ListenerKind = 'http'): Promise<string> {
  const { host, port } = parseListen(addr);
  await bound(
    listener,
    addr,
    () =>
      new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      }),
  );
  const a = server.address() as AddressInfo;
  const h = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return `http://${h === '0.0.0.0' ? '127.0.0.1' : h === '[::]' ? '[::1]' : h}:${a.port}`;
}

export async function closeServer(server: Server): Promise<void> {
  server.closeIdleConnections();
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    setTimeout(() => {
      server.closeAllConnections();
    }, 1000).unref();
  });
}
