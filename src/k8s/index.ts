/**
 * Kubernetes and KubeEdge support, as a library the controller plugs in (docs/kubernetes.md):
 * the cluster as a configuration source, leader election, the injection webhook and its
 * certificates, broker addresses per node, and the CRDs generated from the config schemas.
 */
export { KubernetesConfig } from './config-loop.ts';
export type { KubernetesConfigOptions } from './config-loop.ts';
export { KubernetesSource } from './source.ts';
export type { KubernetesSourceOptions } from './source.ts';
export type { ResourceDoc, ResourceProblem } from './resources.ts';
export { conditionsFor, accepted, invalid } from './status.ts';
export type { AcceptedCondition } from './status.ts';
export { LeaderElector } from './leader.ts';
export type { LeaderElectorOptions } from './leader.ts';
export { InjectionWebhook } from './webhook.ts';
export type { WebhookOptions } from './webhook.ts';
export { decide as injectionDecision, APP_ANNOTATION, INJECT_LABEL, PORTS_ANNOTATION, CIDRS_ANNOTATION } from './inject.ts';
export type { InjectOptions } from './inject.ts';
export { ensureWebhookCerts, syncCaBundle, serviceDnsNames } from './certs.ts';
export type { WebhookCerts } from './certs.ts';
export { WebhookTls } from './webhook-tls.ts';
export type { WebhookTlsOptions } from './webhook-tls.ts';
export { proxyImage } from './self.ts';
export { nodeAddress, brokerUrl, KUBEEDGE_INTERNAL_IP } from './node-address.ts';
export type { NodeAddress } from './node-address.ts';
export { NodeDirectory } from './nodes.ts';
export { allCrds, crdFor, GROUP, VERSION, KIND_NAMES } from './crds.ts';
