/**
 * Which proxy is on the other end of a broker-listener request: a proxy token (stored only as its
 * sha256) names a `Gateway.spec.proxies` entry, which lists the apps that proxy may speak for.
 */
import { MGError } from '../core/errors.ts';
import type { Identity } from '../core/request.ts';
import { DEFAULT_GROUP, type ProxySnapshot, type Snapshot } from '../core/snapshot.ts';
import { sha256Hex } from './identity.ts';

export class ProxyAuthority {
  private readonly byHash = new Map<string, ProxySnapshot>();

  constructor(private readonly snapshot: Snapshot) {
    for (const p of snapshot.gateway.proxies) for (const h of p.tokenHashes) this.byHash.set(h, p);
  }

  /** The proxy presenting `header` (`Bearer <token>`), or MG_UNAUTHENTICATED. */
  authenticate(header: string | undefined): ProxySnapshot {
    const m = header === undefined ? null : /^Bearer +(\S+)$/i.exec(header.trim());
    const proxy = m ? this.byHash.get(sha256Hex(m[1] as string)) : undefined;
    if (!proxy) {
      throw new MGError('MG_UNAUTHENTICATED', 'the broker listener takes requests from configured proxies only (x-modelguard-proxy-authorization)');
    }
    return proxy;
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
