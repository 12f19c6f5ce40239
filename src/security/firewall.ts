/** Source-address rules (IPv4 and IPv6 CIDRs) on node's BlockList: deny first, then allow. */
import { BlockList, isIPv4 } from 'node:net';
import type { SourcesSnapshot } from '../core/snapshot.ts';
import { parseCidr } from '../config/values.ts';

function blockList(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const c of cidrs) {
    const p = parseCidr(c);
    if (p) list.addSubnet(p.address, p.prefix, p.family);
  }
  return list;
}

/** `::ffff:10.1.2.3` (an IPv4 client on a dual-stack socket) is the IPv4 address it carries. */
export function normaliseAddress(address: string): { address: string; family: 'ipv4' | 'ipv6' } {
  const lower = address.toLowerCase();
  if (lower.startsWith('::ffff:') && isIPv4(lower.slice(7))) return { address: lower.slice(7), family: 'ipv4' };
  return isIPv4(address) ? { address, family: 'ipv4' } : { address: lower, family: 'ipv6' };
}

export class SourceRules {
  private readonly allow: BlockList | undefined;
  private readonly deny: BlockList;

  constructor(rules: SourcesSnapshot) {
    this.allow = rules.allow.length > 0 ? blockList(rules.allow) : undefined;
    this.deny = blockList(rules.deny);
  }

  /** True when a request from `address` may pass. An unknown address passes only when nothing is allow-listed. */
  permits(address: string | undefined): boolean {
    if (address === undefined) return this.allow === undefined;
    const a = normaliseAddress(address);
    if (this.deny.check(a.address, a.family)) return false;
    return this.allow === undefined || this.allow.check(a.address, a.family);
  }
}
