/** host:port listener addresses, and servers bound to them (port 0 for tests). */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export function parseListen(addr: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(addr) ?? /^([^:]+):(\d+)$/.exec(addr);
  if (!m) throw new Error(`listener address "${addr}" is not host:port (IPv6 as [::1]:port)`);
  return { host: m[1] as string, port: Number(m[2]) };
}

export async function listen(server: Server, addr: string): Promise<string> {
  const { host, port } = parseListen(addr);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
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
