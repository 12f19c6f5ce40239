/**
 * Where each node's broker is: a list/watch of Nodes (cluster-scoped), reduced to name → address with
 * the KubeEdge rule of node-address.ts. The controller uses it to show and reach brokers by node.
 */
import { CoreV1Api } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';
import { nodeAddress } from './node-address.ts';
import type { NodeAddress, NodeLike } from './node-address.ts';
import { Reflector } from './reflector.ts';

export interface NodeDirectoryOptions {
  readonly kubeConfig: KubeConfig;
  /** Only nodes with these labels (e.g. node-role.kubernetes.io/edge=); default every node. */
  readonly labelSelector?: string;
  readonly onChange?: () => void;
  readonly onError?: (err: Error, what: string) => void;
  readonly initialBackoffMs?: number;
}

export class NodeDirectory {
  readonly #reflector: Reflector;

  constructor(options: NodeDirectoryOptions) {
    const api = options.kubeConfig.makeApiClient(CoreV1Api);
    const query = options.labelSelector === undefined ? '' : `?labelSelector=${encodeURIComponent(options.labelSelector)}`;
    this.#reflector = new Reflector({
      kubeConfig: options.kubeConfig,
      path: `/api/v1/nodes${query}`,
      list: async () => {
        const list = await api.listNode(options.labelSelector === undefined ? {} : { labelSelector: options.labelSelector });
        return { resourceVersion: list.metadata?.resourceVersion ?? '', items: list.items };
      },
      onChange: () => options.onChange?.(),
      ...(options.onError === undefined ? {} : { onError: options.onError }),
      ...(options.initialBackoffMs === undefined ? {} : { initialBackoffMs: options.initialBackoffMs }),
    });
  }

  start(): Promise<void> {
    return this.#reflector.start();
  }

  stop(): void {
    this.#reflector.stop();
  }

  /** Node name → broker address; nodes that report no address yet are left out. */
  addresses(): Map<string, NodeAddress> {
    const out = new Map<string, NodeAddress>();
    for (const [name, node] of this.#reflector.items) {
      const a = nodeAddress(node as NodeLike);
      if (a !== undefined) out.set(name, a);
    }
    return out;
  }
}
