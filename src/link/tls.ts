/**
 * Mutual TLS on the proxy → broker hop (Gateway.spec.brokerTls). The broker listener serves HTTPS
 * and refuses, in the handshake, any client without a certificate signed by `clientCa`; the names
 * of an accepted certificate then identify the proxy (security/proxies.ts). The files are read at
 * start and again on reload, SIGHUP and when they change on disk: new contents become a new secure
 * context for the next connections (`setSecureContext`), so rotation needs no restart, and files
 * that do not make a valid context are refused while the last good ones stay.
 */
import { createHash } from 'node:crypto';
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import { createSecureContext, type SecureContextOptions, type TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import type { BrokerTlsSnapshot } from '../core/snapshot.ts';

/** The PEM contents of the broker listener's files; throws an error naming the field and file. */
export interface BrokerTlsFiles {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer;
  readonly minVersion: 'TLSv1.2';
}

export function readBrokerTls(cfg: BrokerTlsSnapshot): BrokerTlsFiles {
  const read = (field: keyof BrokerTlsSnapshot): Buffer => {
    try {
      return readFileSync(cfg[field]);
    } catch (err) {
      throw new Error(`Gateway.spec.brokerTls.${field}: cannot read ${cfg[field]} (${err instanceof Error ? err.message : String(err)})`);
    }
  };
  const opts: BrokerTlsFiles = { cert: read('cert'), key: read('key'), ca: read('clientCa'), minVersion: 'TLSv1.2' };
  try {
    createSecureContext(opts);
  } catch (err) {
    throw new Error(
      `Gateway.spec.brokerTls: ${cfg.cert}, ${cfg.key} and ${cfg.clientCa} do not make a TLS context (${err instanceof Error ? err.message : String(err)}); ` +
        'check that they are PEM files and that key belongs to cert',
    );
  }
  return opts;
}

/** Server options of the broker listener: the files, and a client certificate is required. */
export function brokerServerOptions(tls: SecureContextOptions): SecureContextOptions & { requestCert: true; rejectUnauthorized: true } {
  return { ...tls, requestCert: true, rejectUnauthorized: true };
}

function digest(o: BrokerTlsFiles): string {
  const h = createHash('sha256');
  for (const part of [o.cert, o.key, o.ca]) h.update(part).update('\0');
  return h.digest('hex');
}

/** The listener's current files; swaps its secure context when they change. */
export class ListenerTls {
  private readonly server: { setSecureContext(options: SecureContextOptions): void };
  private current: string;
  private watched: string[] = [];
  private watchArgs: [number | undefined, ((err: Error) => void) | undefined] = [undefined, undefined];

  constructor(
    server: HttpServer,
    private cfg: BrokerTlsSnapshot,
    first: BrokerTlsFiles,
  ) {
    const secure = server as Partial<{ setSecureContext(options: SecureContextOptions): void }>;
    if (typeof secure.setSecureContext !== 'function') throw new TypeError('the broker listener with brokerTls must be an https server');
    this.server = { setSecureContext: (o) => secure.setSecureContext?.call(server, o) };
    this.current = digest(first);
  }

  /**
   * Reads the files (of `next`, or the current paths again) and installs them when their contents
   * changed. Throws, changing nothing, when they cannot be read or do not fit together.
   * Returns whether a new context was installed.
   */
  refresh(next: BrokerTlsSnapshot = this.cfg): boolean {
    return this.prepare(next)();
  }

  /** Reads and checks the files now (throws on bad ones); the returned function installs them. */
  prepare(next: BrokerTlsSnapshot = this.cfg): () => boolean {
    const opts = readBrokerTls(next);
    const d = digest(opts);
    return () => {
      const moved = next.cert !== this.cfg.cert || next.key !== this.cfg.key || next.clientCa !== this.cfg.clientCa;
      this.cfg = next;
      if (moved && this.watched.length > 0) this.watch(...this.watchArgs);
      if (d === this.current) return false;
      this.server.setSecureContext(brokerServerOptions(opts));
      this.current = d;
      return true;
    };
  }

  /**
   * Follows the files on disk (stat polling: also sees a Kubernetes Secret's symlink swap). A change
   * caught half-way (a new cert with the old key) is reported and retried on the next change.
   */
  watch(intervalMs?: number, onError?: (err: Error) => void): void {
    this.unwatch();
    this.watchArgs = [intervalMs, onError];
    const report = onError ?? ((err: Error): void => void process.stderr.write(`modelguard: ${err.message}; keeping the current certificate\n`));
    const changed = (): void => {
      try {
        if (this.refresh()) process.stdout.write(`broker listener: new TLS certificate files loaded from ${this.cfg.cert}\n`);
      } catch (err) {
        report(err instanceof Error ? err : new Error(String(err)));
      }
    };
    this.watched = [...new Set([this.cfg.cert, this.cfg.key, this.cfg.clientCa])];
    for (const f of this.watched) watchFile(f, { interval: intervalMs ?? 2000, persistent: false }, changed);
  }

  unwatch(): void {
    for (const f of this.watched) unwatchFile(f);
    this.watched = [];
  }
}

/**
 * HTTP and HTTPS are different listeners: turning brokerTls on or off takes a restart, and a reload
 * that asks for it is refused rather than leaving the listener in the mode it no longer should be.
 */
export function checkTlsSwitch(from: BrokerTlsSnapshot | undefined, to: BrokerTlsSnapshot | undefined): void {
  if ((from === undefined) === (to === undefined)) return;
  throw new Error(
    `Gateway.spec.brokerTls was ${to === undefined ? 'removed' : 'added'}: the broker listener changes between HTTP and HTTPS only at a restart; ` +
      'restart the broker with this configuration (its proxies need https:// URLs and client certificates with brokerTls)',
  );
}

/**
 * The names a verified client certificate stands for, lower case: its DNS subject alternative
 * names, or, only when it has none, its subject CN (the rule RFC 6125 gives for server names, and
 * what Node's checkServerIdentity does). Undefined on a plain connection or an unverified one.
 */
export function peerCertificateNames(socket: Socket): string[] | undefined {
  const tls = socket as Partial<TLSSocket>;
  if (tls.encrypted !== true || tls.authorized !== true || typeof tls.getPeerCertificate !== 'function') return undefined;
  const cert = tls.getPeerCertificate();
  const dns: string[] = [];
  for (const entry of splitAltNames(cert.subjectaltname ?? '')) {
    if (entry.startsWith('DNS:')) dns.push(unquote(entry.slice(4)).toLowerCase());
  }
  if (dns.length > 0) return dns;
  const cn = (cert.subject as Record<string, string | string[] | undefined> | undefined)?.['CN'];
  const cns = Array.isArray(cn) ? cn : cn === undefined ? [] : [cn];
  return cns.map((n) => n.toLowerCase());
}

/** Node writes `DNS:a, DNS:"b, c", IP Address:…`: commas inside quoted values are not separators. */
function splitAltNames(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c === '"' && text[i - 1] !== '\\') quoted = !quoted;
    if (!quoted && c === ',' && text[i + 1] === ' ') {
      out.push(cur);
      cur = '';
      i++;
      continue;
    }
    cur += c;
  }
  if (cur !== '') out.push(cur);
  return out;
}

function unquote(v: string): string {
  if (!v.startsWith('"')) return v;
  try {
    return String(JSON.parse(v));
  } catch {
    return v;
  }
}
