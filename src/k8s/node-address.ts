/**
 * The address a node's broker is reached at. KubeEdge edge nodes often sit behind NAT and report an
 * InternalIP the cloud cannot route to; KubeEdge then records the reachable one in
 * `kubeedge.io/internal-ip` (an annotation, or a label on older releases). Ordinary nodes use their
 * InternalIP, then ExternalIP, then Hostname.
 */
import { isIP } from 'node:net';

export const KUBEEDGE_INTERNAL_IP = 'kubeedge.io/internal-ip';

/** The parts of a v1 Node this reads (the client's V1Node fits). */
export interface NodeLike {
  readonly metadata?: { readonly name?: string; readonly annotations?: Record<string, string>; readonly labels?: Record<string, string> };
  readonly status?: { readonly addresses?: readonly { readonly type: string; readonly address: string }[] };
}

export interface NodeAddress {
  readonly address: string;
  /** Where it came from, for logs and the dashboard. */
  readonly source: 'kubeedge-annotation' | 'kubeedge-label' | 'InternalIP' | 'ExternalIP' | 'Hostname';
}

/** The node's broker address, or undefined when the node reports none (not ready yet). */
export function nodeAddress(node: NodeLike): NodeAddress | undefined {
  const annotated = node.metadata?.annotations?.[KUBEEDGE_INTERNAL_IP]?.trim();
  if (annotated !== undefined && isIP(annotated) !== 0) return { address: annotated, source: 'kubeedge-annotation' };
  const labelled = node.metadata?.labels?.[KUBEEDGE_INTERNAL_IP]?.trim();
  if (labelled !== undefined && isIP(labelled) !== 0) return { address: labelled, source: 'kubeedge-label' };
  for (const type of ['InternalIP', 'ExternalIP', 'Hostname'] as const) {
    const found = node.status?.addresses?.find((a) => a.type === type && a.address !== '');
    if (found !== undefined) return { address: found.address, source: type };
  }
  return undefined;
}

/** The broker URL of a node (IPv6 in brackets). */
export function brokerUrl(address: string, port = 8010): string {
  return `http://${isIP(address) === 6 ? `[${address}]` : address}:${port}`;
}
