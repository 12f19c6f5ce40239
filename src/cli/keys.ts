/**
 * `modelguard keys create`: a new secret, shown once, and the exact configuration that accepts it.
 * `--app NAME` makes an API key and its App resource; `--kind node|proxy|admin` makes a token and the
 * Gateway snippet for nodeTokens, proxies[].tokens or adminTokens. The snippets are whole resources
 * that `modelguard validate` accepts as they are printed.
 */
import { dnsName } from '../config/primitives.ts';
import { appSnippet, createKey } from '../security/keys.ts';

export const TOKEN_KINDS = ['node', 'proxy', 'admin'] as const;
export type TokenKind = (typeof TOKEN_KINDS)[number];

export interface KeysCreateOptions {
  readonly app?: string;
  readonly kind?: string;
  /** Service group of the App snippet (--app only). */
  readonly group?: string;
  /** Proxy credential name (--kind proxy only). */
  readonly name?: string;
}

/** A resource name as the configuration checks it; the error says what is valid. */
function checkName(flag: string, value: string): void {
  const r = dnsName().safeParse(value);
  if (!r.success) throw new Error(`${flag} ${JSON.stringify(value)}: ${r.error.issues[0]?.message ?? 'not a valid name'}`);
}

const GATEWAY_HEAD = ['apiVersion: modelguard.io/v1alpha1', 'kind: Gateway', 'metadata: { name: default }', 'spec:'];

/** The Gateway snippet listing one token digest where `kind` tokens are read. */
export function tokenSnippet(kind: TokenKind, sha256: string, proxyName = 'proxy'): string {
  const entry = `{ sha256: "${sha256}" }`;
  const body =
    kind === 'node'
      ? [`  nodeTokens: [${entry}]          # brokers and proxies present it to the controller`]
      : kind === 'admin'
        ? [`  adminTokens: [${entry}]         # the admin API and /metrics accept it (Authorization: Bearer)`]
        : ['  proxies:                        # brokers trust this proxy to assert app identity', `    - name: ${proxyName}`, `      tokens: [${entry}]`];
  return [...GATEWAY_HEAD, ...body].join('\n');
}

const USE: Record<TokenKind, string> = {
  node: 'give it to each broker and proxy as --node-token-file FILE or MODELGUARD_NODE_TOKEN',
  proxy: 'give it to the proxy as --token-file FILE or MODELGUARD_PROXY_TOKEN',
  admin: 'pass it to `modelguard status --token`, or as Authorization: Bearer to the admin API',
};

/**
 * What `keys create` prints: the secret (for the terminal: stderr) and the snippet (stdout, so that
 * `keys create ... > apps.yaml` writes a file `validate` accepts, and the secret stays out of it).
 * Throws with what is valid when the flags are not.
 */
export function keysCreate(o: KeysCreateOptions): { secret: string; snippet: string } {
  if ((o.app === undefined) === (o.kind === undefined)) throw new Error('give either --app NAME (an API key for an app) or --kind node|proxy|admin (a token)');
  const k = createKey();
  if (o.app !== undefined) {
    if (o.name !== undefined) throw new Error('--name names a proxy credential; it goes with --kind proxy, not --app');
    checkName('--app', o.app);
    const group = o.group ?? 'default';
    checkName('--group', group);
    const note = group === 'default' ? '' : `# the ServiceGroup "${group}" must exist in your configuration\n`;
    return { secret: `key (shown once, store it now): ${k.key}\n`, snippet: `${note}${appSnippet(o.app, k.sha256, group)}\n` };
  }
  const kind = o.kind as string;
  if (!(TOKEN_KINDS as readonly string[]).includes(kind)) throw new Error(`--kind ${JSON.stringify(kind)}: expected one of ${TOKEN_KINDS.join(', ')}`);
  if (o.group !== undefined) throw new Error('--group is the service group of an App; it goes with --app, not --kind');
  if (o.name !== undefined && kind !== 'proxy') throw new Error('--name names a proxy credential; it goes with --kind proxy');
  if (o.name !== undefined) checkName('--name', o.name);
  return {
    secret: `token (shown once, store it now): ${k.key}\n${USE[kind as TokenKind]}\n`,
    snippet: `# merge into your Gateway resource (one Gateway per configuration):\n${tokenSnippet(kind as TokenKind, k.sha256, o.name)}\n`,
  };
}
