/**
 * Which proxy is on the other end of a broker-listener request: a proxy token (stored only as its
 * sha256) or, over mutual TLS, the client certificate's names (certificateNames) name a
 * `Gateway.spec.proxies` entry, which lists the apps that proxy may speak for.
 */
import { MGError } from '../core/errors.ts';
import type { Identity } from '../core/request.ts';
import { DEFAULT_GROUP, type ProxySnapshot, type Snapshot } from '../core/snapshot.ts';
import { bearerToken } from './credentials.ts';
import { sha256Hex } from './identity.ts';

export class ProxyAuthority {
  private readonly byHash = new Map<string, ProxySnapshot>();
  private readonly byCertificate = new Map<string, ProxySnapshot>();

  constructor(private readonly snapshot: Snapshot) {
    for (const p of snapshot.gateway.proxies) {
      for (const h of p.tokenHashes) this.byHash.set(h, p);
      for (const n of p.certificateNames ?? []) this.byCertificate.set(n, p);
    }
  }

  /**
   * The proxy presenting `header` (`Bearer <token>`) and/or, over brokerTls, a verified client
   * certificate with `certificateNames` (lower case; see link/tls.ts), or MG_UNAUTHENTICATED.
   * A token must be valid when sent; a certificate that names no proxy is only a TLS client (the
   * token then identifies the proxy); when both name a proxy they must name the same one.
   */
  authenticate(header: string | undefined, certificateNames?: readonly string[]): ProxySnapshot {
    const byCert = this.fromCertificate(certificateNames);
    if (header === undefined) {
      if (byCert) return byCert;
      const presented = certificateNames && certificateNames.length > 0 ? `; the client certificate (${certificateNames.join(', ')}) is not in any proxy's certificateNames` : '';
      throw new MGError('MG_UNAUTHENTICATED', `the broker listener takes requests from configured proxies only (x-modelguard-proxy-authorization or a client certificate)${presented}`);
    }
    const token = bearerToken(header);
    const proxy = token === undefined ? undefined : this.byHash.get(sha256Hex(token));
    if (!proxy) {
      throw new MGError('MG_UNAUTHENTICATED', 'the broker listener takes requests from configured proxies only (x-modelguard-proxy-authorization)');
    }
    if (byCert !== undefined && byCert !== proxy) {
      throw new MGError('MG_UNAUTHENTICATED', `the proxy token belongs to proxy "${proxy.name}" but the client certificate to proxy "${byCert.name}"`);
    }
    return proxy;
  }

  private fromCertificate(names: readonly string[] | undefined): ProxySnapshot | undefined {
    let found: ProxySnapshot | undefined;
    for (const n of names ?? []) {
      const p = this.byCertificate.get(n);
      if (p === undefined || p === found) continue;
      if (found !== undefined) throw new MGError('MG_UNAUTHENTICATED', `the client certificate names two proxies ("${found.name}", "${p.name}"); give each proxy its own certificate`);
      found = p;
    }
    return found;
  }

  /**
   * The identity a proxy asserts: an app this broker knows and the proxy may speak for; its group
   * comes from this broker's configuration, never from the proxy.
   */
  assert(proxy: ProxySnapshot, app: string | undefined, group: string | undefined): Identity {
    if (app === undefined) {
      if (this.snapshot.gateway.auth === 'apiKey') throw new MGError('MG_UNAUTHENTICATED', 'the proxy asserted no app');
      const g = group ?? DEFAULT_GROUP;
      if (!this.snapshot.groups[g]) throw new MGError('MG_BAD_REQUEST', `unknown service group "${g}"`);
      return { app: undefined, group: g };
    }
    const known = this.snapshot.apps[app];
    if (!known) throw new MGError('MG_UNAUTHENTICATED', `app "${app}" is not known to this broker`);
    if (proxy.apps.length > 0 && !proxy.apps.includes(app)) {
      throw new MGError('MG_FORBIDDEN', `proxy "${proxy.name}" may not act for app "${app}"`);
    }
    return { app: known.name, group: known.serviceGroup };
  }
}
