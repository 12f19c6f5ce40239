/**
 * The image injected proxies run: the controller's own, read from its Pod, so that whatever an
 * overlay does to `images:` (registry, tag, digest) proxies and controller stay on one version
 * without the image being written twice. MODELGUARD_PROXY_IMAGE overrides it.
 */
import { CoreV1Api } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';

export async function proxyImage(options: {
  readonly kubeConfig: KubeConfig;
  readonly namespace: string;
  /** The controller's pod (POD_NAME from the downward API). */
  readonly podName: string;
  /** Container to take the image from; default controller. */
  readonly container?: string;
  /** An explicit image (MODELGUARD_PROXY_IMAGE); used as is when set. */
  readonly override?: string;
}): Promise<string> {
  if (options.override !== undefined && options.override !== '') return options.override;
  const api = options.kubeConfig.makeApiClient(CoreV1Api);
  const pod = await api.readNamespacedPod({ name: options.podName, namespace: options.namespace });
  const name = options.container ?? 'controller';
  const image = pod.spec?.containers.find((c) => c.name === name)?.image;
  if (image === undefined) throw new Error(`pod ${options.namespace}/${options.podName} has no container "${name}" with an image; set MODELGUARD_PROXY_IMAGE`);
  return image;
}
