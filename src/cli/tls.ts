/**
 * The command line's side of mutual TLS on the proxy → broker link (docs/deployment.md): a proxy's
 * `--tls-*` flags read into a client certificate, and both ends following their certificate files
 * (SIGHUP, and changes on disk) so that rotation needs no restart.
 */
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { LinkClientTls, RemoteBroker } from '../link/remote.ts';
import type { ListenerTls } from '../link/tls.ts';

/** PEM file paths given to `modelguard proxy`. */
export interface ProxyTlsFlags {
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  readonly tlsCa?: string;
  readonly tlsServerName?: string;
}

export type ProxyTlsFiles = LinkClientTls & { readonly cert: Buffer; readonly key: Buffer; readonly ca?: Buffer };

interface Stoppable {
  stop(): Promise<void>;
}

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

function warn(err: unknown, keeping: string): void {
  process.stderr.write(`modelguard: ${err instanceof Error ? err.message : String(err)}; keeping the current ${keeping}\n`);
}

/** The proxy's client certificate from its files, checked against the broker URL's scheme and each other. */
export function proxyTls(o: ProxyTlsFlags, broker: string): ProxyTlsFiles | undefined {
  const https = broker.startsWith('https:');
  if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) throw new Error("--tls-cert and --tls-key go together: give the proxy's client certificate and its key");
  if (o.tlsCert === undefined) {
    if (https) throw new Error(`${broker} is an https:// broker listener, which requires a client certificate: give --tls-cert and --tls-key (and --tls-ca for its CA)`);
    if (o.tlsCa !== undefined || o.tlsServerName !== undefined) throw new Error('--tls-ca and --tls-server-name need --tls-cert and --tls-key');
    return undefined;
  }
  if (!https) throw new Error(`--tls-cert needs an https:// broker URL, got ${broker}`);
  const read = (flag: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new Error(`${flag} ${path}: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  const tls = {
    cert: read('--tls-cert', o.tlsCert),
    key: read('--tls-key', o.tlsKey as string),
    ...(o.tlsCa === undefined ? {} : { ca: read('--tls-ca', o.tlsCa) }),
    ...(o.tlsServerName === undefined ? {} : { servername: o.tlsServerName }),
  };
  try {
    createSecureContext(tls);
  } catch (err) {
    throw new Error(
      `--tls-cert ${o.tlsCert}, --tls-key ${o.tlsKey ?? ''}${o.tlsCa ? ` and --tls-ca ${o.tlsCa}` : ''} do not make a TLS context ` +
        `(${err instanceof Error ? err.message : String(err)}); check that they are PEM files and that the key belongs to the certificate`,
    );
  }
  return tls;
}

/** The broker re-reads its brokerTls files on SIGHUP too, when the configuration itself did not change. */
export function followBrokerTls(tls: ListenerTls, node: Stoppable): Stoppable {
  const onHup = (): void => {
    try {
      if (tls.refresh()) log('broker listener: new TLS certificate files loaded');
    } catch (err) {
      warn(err, 'certificate');
    }
  };
  process.on('SIGHUP', onHup);
  return {
    async stop() {
      process.off('SIGHUP', onHup);
      await node.stop();
    },
  };
}

/**
 * A proxy picks up its rotated client certificate on SIGHUP and when its files change; a pair
 * caught half-way (new certificate, old key) is refused and the current one stays.
 */
export function followProxyTls(
  o: ProxyTlsFlags,
  broker: string,
  first: ProxyTlsFiles,
  remote: RemoteBroker,
  node: Stoppable,
  intervalMs = 2000,
  report: (err: unknown) => void = (err) => warn(err, 'client certificate'),
): Stoppable {
  let last = first;
  const same = (a: Buffer | undefined, b: Buffer | undefined): boolean => (a === undefined ? b === undefined : b !== undefined && a.equals(b));
  const reread = (): void => {
    try {
      const next = proxyTls(o, broker);
      if (!next || (same(next.cert, last.cert) && same(next.key, last.key) && same(next.ca, last.ca))) return;
      remote.useTls(next);
      last = next;
      log('broker link: new client certificate loaded');
    } catch (err) {
      report(err);
    }
  };
  const files = [o.tlsCert, o.tlsKey, o.tlsCa].filter((f): f is string => f !== undefined);
  for (const f of files) watchFile(f, { interval: intervalMs, persistent: false }, reread);
  process.on('SIGHUP', reread);
  return {
    async stop() {
      process.off('SIGHUP', reread);
      for (const f of files) unwatchFile(f, reread);
      await node.stop();
    },
  };
}
