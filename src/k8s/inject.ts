/**
 * What the sidecar injector adds to a pod, as an RFC 6902 JSON Patch: the proxy container (the app's
 * identity from the `modelguard.io/app` annotation, probes on its admin port, resources, a
 * non-root user the redirect rules exempt), an init container whose iptables rules send the pod's
 * outgoing traffic for the model service ports to the proxy, and the volumes the proxy needs. Pure:
 * the webhook server (webhook.ts) does the HTTP; this decides.
 *
 *   app ──tcp :8000──▶ (nat OUTPUT → MODELGUARD_REDIRECT) ──REDIRECT──▶ proxy :15080 ──▶ broker hostIP:8010
 *                       uid 1337 (the proxy itself) → RETURN, so the proxy's own calls leave untouched
 */

export const INJECT_LABEL = 'modelguard.io/inject';
export const APP_ANNOTATION = 'modelguard.io/app';
export const STATUS_ANNOTATION = 'modelguard.io/status';
/** Comma-separated destination ports redirected to the proxy; default "8000" (KServe v2 / Triton HTTP). */
export const PORTS_ANNOTATION = 'modelguard.io/redirect-ports';
/** Comma-separated destination CIDRs the redirect is limited to (the model Service's ClusterIP); default every destination. */
export const CIDRS_ANNOTATION = 'modelguard.io/redirect-cidrs';
export const PROXY_CONTAINER = 'modelguard-proxy';
export const INIT_CONTAINER = 'modelguard-init';

export const SYSTEM_NAMESPACES: readonly string[] = ['kube-system', 'kube-public', 'kube-node-lease'];

/** Secret (in the app's namespace) holding the injected proxy's tokens, and where it is mounted. */
export const PROXY_SECRET = 'modelguard-proxy';
const TOKEN_DIR = '/var/run/secrets/modelguard.io';

export interface InjectOptions {
  /** The ModelGuard image (the proxy and the init container). */
  readonly image: string;
  /** Where proxies get their snapshot: the controller Service. */
  readonly controllerUrl: string;
  /** The controller's own namespace: never injected. */
  readonly namespace: string;
  readonly brokerPort?: number;
  readonly proxyPort?: number;
  readonly adminPort?: number;
  /** User the proxy runs as; the redirect rules exempt it. Default 1337. */
  readonly proxyUid?: number;
  readonly imagePullPolicy?: string;
}

export interface PatchOp {
  readonly op: 'add' | 'replace' | 'remove';
  readonly path: string;
  readonly value?: unknown;
}

/** The parts of a v1 Pod this reads. */
export interface PodLike {
  readonly metadata?: { readonly name?: string; readonly generateName?: string; readonly namespace?: string; readonly labels?: Record<string, string>; readonly annotations?: Record<string, string> };
  readonly spec?: {
    readonly hostNetwork?: boolean;
    readonly containers?: readonly { readonly name: string; readonly ports?: readonly { readonly containerPort?: number }[] }[];
    readonly initContainers?: readonly { readonly name: string }[];
    readonly volumes?: readonly { readonly name: string }[];
  };
}

export type Decision =
  | { readonly kind: 'patch'; readonly patch: readonly PatchOp[] }
  | { readonly kind: 'skip'; readonly reason: string }
  | { readonly kind: 'deny'; readonly message: string };

const escape = (key: string): string => key.replace(/~/g, '~0').replace(/\//g, '~1');

function ports(text: string | undefined): number[] | string {
  const list = (text ?? '8000').split(',').map((s) => s.trim()).filter((s) => s !== '');
  const bad = list.find((p) => !/^\d{1,5}$/.test(p) || Number(p) < 1 || Number(p) > 65535);
  if (bad !== undefined || list.length === 0) return `${PORTS_ANNOTATION}: expected comma-separated ports 1-65535 like "8000,8001", got ${JSON.stringify(text)}`;
  return [...new Set(list.map(Number))];
}

function cidrs(text: string | undefined): string[] | string {
  if (text === undefined) return [];
  const list = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const bad = list.find((c) => !/^\d{1,3}(\.\d{1,3}){3}(\/\d{1,2})?$/.test(c));
  if (bad !== undefined) return `${CIDRS_ANNOTATION}: expected comma-separated IPv4 addresses or CIDRs like "10.96.12.7/32", got ${JSON.stringify(bad)}`;
  return list;
}

/** The init container's script: idempotent (a restarted init container rebuilds the same chain). */
export function redirectScript(opts: { ports: readonly number[]; cidrs: readonly string[]; proxyPort: number; proxyUid: number }): string {
  const chain = 'MODELGUARD_REDIRECT';
  const lines = [
    'set -e',
    `iptables -t nat -N ${chain} 2>/dev/null || iptables -t nat -F ${chain}`,
    `iptables -t nat -A ${chain} -m owner --uid-owner ${opts.proxyUid} -j RETURN`,
    `iptables -t nat -A ${chain} -d 127.0.0.0/8 -j RETURN`,
  ];
  const dests = opts.cidrs.length === 0 ? [''] : opts.cidrs.map((c) => ` -d ${c}`);
  for (const d of dests) for (const p of opts.ports) lines.push(`iptables -t nat -A ${chain} -p tcp${d} --dport ${p} -j REDIRECT --to-ports ${opts.proxyPort}`);
  lines.push(`iptables -t nat -C OUTPUT -p tcp -j ${chain} 2>/dev/null || iptables -t nat -A OUTPUT -p tcp -j ${chain}`);
  return lines.join('\n');
}

/**
 * The decision for one pod being created in `namespace`. `knownApp` says whether an App resource of
 * that name exists (the controller's current snapshot).
 */
export function decide(pod: PodLike, namespace: string, options: InjectOptions, knownApp: (name: string) => boolean): Decision {
  if (SYSTEM_NAMESPACES.includes(namespace) || namespace === options.namespace) return { kind: 'skip', reason: `namespace ${namespace} is never injected` };
  if (pod.metadata?.labels?.[INJECT_LABEL] === 'disabled') return { kind: 'skip', reason: `pod has ${INJECT_LABEL}: disabled` };
  const containers = pod.spec?.containers ?? [];
  if (containers.some((c) => c.name === PROXY_CONTAINER)) return { kind: 'skip', reason: 'already injected' };
  // Its iptables rules would rewrite the node's own nat table.
  if (pod.spec?.hostNetwork === true) return { kind: 'skip', reason: 'hostNetwork pods share the node\'s network and are never injected' };
  const app = pod.metadata?.annotations?.[APP_ANNOTATION];
  if (app === undefined || app === '') {
    return { kind: 'deny', message: `ModelGuard injection is enabled for this pod but it has no ${APP_ANNOTATION} annotation: add ${APP_ANNOTATION}: <App name> to the pod template, or label the pod ${INJECT_LABEL}: disabled` };
  }
  if (!knownApp(app)) {
    return { kind: 'deny', message: `${APP_ANNOTATION}: "${app}" names no ModelGuard App: create it first (kind: App, metadata.name: ${app}, in namespace ${options.namespace}) or fix the annotation; see kubectl get apps.modelguard.io -n ${options.namespace}` };
  }
  const redirectPorts = ports(pod.metadata?.annotations?.[PORTS_ANNOTATION]);
  if (typeof redirectPorts === 'string') return { kind: 'deny', message: redirectPorts };
  const redirectCidrs = cidrs(pod.metadata?.annotations?.[CIDRS_ANNOTATION]);
  if (typeof redirectCidrs === 'string') return { kind: 'deny', message: redirectCidrs };

  const proxyPort = options.proxyPort ?? 15080;
  const adminPort = options.adminPort ?? 15090;
  const taken = containers.find((c) => c.ports?.some((p) => p.containerPort === proxyPort || p.containerPort === proxyPort + 1 || p.containerPort === adminPort));
  if (taken !== undefined) {
    return { kind: 'deny', message: `container "${taken.name}" uses port ${proxyPort}, ${proxyPort + 1} or ${adminPort}, which the ModelGuard proxy needs in the pod: move it, or label the pod ${INJECT_LABEL}: disabled` };
  }
  const proxyUid = options.proxyUid ?? 1337;
  const pull = options.imagePullPolicy ?? 'IfNotPresent';
  const proxy = {
    name: PROXY_CONTAINER,
    image: options.image,
    imagePullPolicy: pull,
    args: [
      'proxy',
      '--controller', options.controllerUrl,
      '--name', '$(POD_NAME).$(POD_NAMESPACE)',
      '--app', app,
      '--broker', `http://$(HOST_IP):${options.brokerPort ?? 8010}`,
      '--listen', `0.0.0.0:${proxyPort}`,
      '--grpc', `0.0.0.0:${proxyPort + 1}`,
      '--admin', `0.0.0.0:${adminPort}`,
      '--token-file', `${TOKEN_DIR}/token`,
      '--node-token-file', `${TOKEN_DIR}/node-token`,
    ],
    env: [
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      // The node's broker: the DaemonSet pod on this node listens on the host network.
      { name: 'HOST_IP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } },
    ],
    ports: [
      { name: 'mg-proxy', containerPort: proxyPort, protocol: 'TCP' },
      { name: 'mg-grpc', containerPort: proxyPort + 1, protocol: 'TCP' },
      { name: 'mg-admin', containerPort: adminPort, protocol: 'TCP' },
    ],
    readinessProbe: { httpGet: { path: '/readyz', port: adminPort }, periodSeconds: 5, failureThreshold: 3 },
    livenessProbe: { httpGet: { path: '/healthz', port: adminPort }, initialDelaySeconds: 10, periodSeconds: 10, failureThreshold: 3 },
    resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } },
    securityContext: {
      runAsUser: proxyUid,
      runAsGroup: proxyUid,
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    },
    volumeMounts: [
      { name: 'modelguard-tmp', mountPath: '/tmp' },
      { name: 'modelguard-token', mountPath: TOKEN_DIR, readOnly: true },
    ],
  };
  const init = {
    name: INIT_CONTAINER,
    image: options.image,
    imagePullPolicy: pull,
    command: ['/bin/sh', '-c', redirectScript({ ports: redirectPorts, cidrs: redirectCidrs, proxyPort, proxyUid })],
    resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { memory: '64Mi' } },
    securityContext: { runAsUser: 0, runAsNonRoot: false, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'], add: ['NET_ADMIN', 'NET_RAW'] } },
  };
  const volumes = [
    { name: 'modelguard-tmp', emptyDir: { sizeLimit: '64Mi' } },
    // The proxy's credentials, from a Secret the operator creates in the app's namespace: `token`
    // (a Gateway.spec.proxies token, for the broker) and `node-token` (a Gateway.spec.nodeTokens
    // token, for the controller). Not optional: without it the pod waits with a clear event.
    { name: 'modelguard-token', secret: { secretName: PROXY_SECRET, items: [{ key: 'token', path: 'token' }, { key: 'node-token', path: 'node-token' }] } },
  ];

  const patch: PatchOp[] = [];
  const spec = pod.spec ?? {};
  if (spec.initContainers === undefined) patch.push({ op: 'add', path: '/spec/initContainers', value: [init] });
  // First, so the redirect is in place before any other init container talks to the model.
  else patch.push({ op: 'add', path: '/spec/initContainers/0', value: init });
  patch.push({ op: 'add', path: '/spec/containers/-', value: proxy });
  const existingVolumes = new Set((spec.volumes ?? []).map((v) => v.name));
  const newVolumes = volumes.filter((v) => !existingVolumes.has(v.name));
  if (spec.volumes === undefined) patch.push({ op: 'add', path: '/spec/volumes', value: newVolumes });
  else for (const v of newVolumes) patch.push({ op: 'add', path: '/spec/volumes/-', value: v });
  if (pod.metadata?.annotations === undefined) patch.push({ op: 'add', path: '/metadata/annotations', value: { [STATUS_ANNOTATION]: 'injected' } });
  else patch.push({ op: 'add', path: `/metadata/annotations/${escape(STATUS_ANNOTATION)}`, value: 'injected' });
  return { kind: 'patch', patch };
}
