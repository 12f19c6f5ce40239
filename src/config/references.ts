/**
 * Checks across resources: unique names, at most one Gateway, references that resolve, offload that
 * can work, API keys that identify one app. Warnings flag settings that are valid but have no effect.
 */
import { existsSync } from 'node:fs';
import { DEFAULT_GROUP } from '../core/snapshot.ts';
import type { BackendProtocol } from '../core/snapshot.ts';
import type { App, Backend, Gateway, Kind, Model, Resource } from './schema.ts';
import { isLoopbackHost, splitHostPort } from './values.ts';
import { DEFAULTS } from './schema.ts';
import { formatPlace, suggest } from './issues.ts';
import type { Reporter, SourceDocument } from './issues.ts';
import type { Declared, Located } from './validate.ts';

function where(doc: SourceDocument, path: readonly PropertyKey[]): string {
  const pos = doc.locate?.(path);
  return pos === undefined ? `${doc.file} (${doc.label})` : formatPlace(doc.file, pos.line, pos.column);
}

function refHint(name: string, kind: Kind, existing: Iterable<string>): string {
  const names = [...existing].sort();
  if (names.length === 0) return `no ${kind} is defined; add a "kind: ${kind}" resource named "${name}"`;
  return suggest(name, names, `defined ${kind}s`);
}

/** Request formats a backend speaks; offload needs the same family on both sides. */
const FAMILY: Record<BackendProtocol, string> = {
  'kserve-v2-http': 'KServe v2',
  'kserve-v2-grpc': 'KServe v2',
  openai: 'OpenAI',
  http: 'plain HTTP',
};

function byKind<K extends Resource['kind']>(all: readonly Located[], kind: K): Located<Extract<Resource, { kind: K }>>[] {
  return all.filter((l): l is Located<Extract<Resource, { kind: K }>> => l.resource.kind === kind);
}

function checkUnique(rep: Reporter, declared: Declared): void {
  const first = new Map<string, SourceDocument>();
  for (const { kind, name, doc } of declared.entries) {
    if (name === undefined) continue;
    const earlier = first.get(`${kind}/${name}`);
    if (earlier === undefined) first.set(`${kind}/${name}`, doc);
    else {
      rep.error(doc, ['metadata', 'name'], `duplicate ${kind} name "${name}"`, {
        hint: `first defined at ${where(earlier, ['metadata', 'name'])}; names are unique per kind`,
      });
    }
  }
}

function checkGateways(rep: Reporter, declared: Declared): void {
  const [first, ...rest] = declared.entries.filter((e) => e.kind === 'Gateway');
  if (first === undefined) return;
  for (const g of rest) {
    rep.error(g.doc, ['kind'], 'a second Gateway', { hint: `there is at most one; merge it into the Gateway at ${where(first.doc, ['kind'])}` });
  }
}

/** The link's secret and TLS files must be there on this machine; a warning, as a controller may validate for another box. */
function checkLink(rep: Reporter, b: Backend, doc: SourceDocument): void {
  const cred = b.spec.credentials;
  if (cred?.env !== undefined && process.env[cred.env] === undefined) {
    rep.warn(doc, ['spec', 'credentials', 'env'], `environment variable ${cred.env} is not set here`, {
      hint: 'set it where ModelGuard runs; until then calls to this backend fail and offload stays on the edge',
    });
  }
  const files: [string, string | undefined][] = [
    ['credentials', cred?.file],
    ['tls.ca', b.spec.tls?.ca],
    ['tls.cert', b.spec.tls?.cert],
    ['tls.key', b.spec.tls?.key],
  ];
  for (const [field, file] of files) {
    if (file === undefined || existsSync(file)) continue;
    const path = field === 'credentials' ? ['spec', 'credentials', 'file'] : ['spec', 'tls', field.slice(4)];
    rep.warn(doc, path, `file ${file} does not exist here`, { hint: 'give an absolute path to a readable file on the box that runs ModelGuard' });
  }
  if (b.spec.tls !== undefined && !b.spec.endpoints.some((e) => e.url.startsWith('https://'))) {
    rep.warn(doc, ['spec', 'tls'], 'tls is set but no endpoint uses https://', { hint: 'write the endpoint URLs with https://, or remove tls' });
  }
}

function checkBackends(rep: Reporter, backends: readonly Located<Backend>[]): void {
  for (const { resource: b, doc } of backends) {
    checkLink(rep, b, doc);
    const seen = new Map<string, number>();
    b.spec.endpoints.forEach((e, i) => {
      const url = e.url.replace(/\/+$/, '');
      const j = seen.get(url);
      if (j === undefined) seen.set(url, i);
      else rep.error(doc, ['spec', 'endpoints', i, 'url'], `duplicate endpoint ${url}`, { hint: `already endpoints[${j}]; raise its slots instead` });
    });
  }
}

function checkModels(rep: Reporter, models: readonly Located<Model>[], backends: readonly Located<Backend>[], declared: Declared): void {
  const protocol = new Map(backends.map((l) => [l.resource.metadata.name, l.resource.spec.protocol]));
  for (const { resource: m, doc } of models) {
    if (!declared.names.Backend.has(m.spec.backend)) {
      rep.error(doc, ['spec', 'backend'], `Backend "${m.spec.backend}" does not exist`, { hint: refHint(m.spec.backend, 'Backend', declared.names.Backend) });
    }
    const served = protocol.get(m.spec.backend);
    if (m.spec.batching !== undefined && served !== undefined && FAMILY[served] !== 'KServe v2') {
      rep.error(doc, ['spec', 'batching'], `batching joins KServe v2 tensors along dim 0, but "${m.spec.backend}" speaks ${served}`, {
        hint: 'remove batching, or serve the model from a kserve-v2-http or kserve-v2-grpc Backend',
      });
    }
    const offload = m.spec.offload;
    if (offload === undefined) continue;
    if (!declared.names.Backend.has(offload.backend)) {
      rep.error(doc, ['spec', 'offload', 'backend'], `Backend "${offload.backend}" does not exist`, {
        hint: refHint(offload.backend, 'Backend', declared.names.Backend),
      });
    } else if (offload.backend === m.spec.backend) {
      rep.error(doc, ['spec', 'offload', 'backend'], 'offloads to its own backend', { hint: 'name another Backend (usually the cloud one), or remove offload' });
    } else {
      const from = protocol.get(m.spec.backend);
      const to = protocol.get(offload.backend);
      if (from !== undefined && to !== undefined && FAMILY[from] !== FAMILY[to]) {
        rep.error(doc, ['spec', 'offload', 'backend'], `Backend "${offload.backend}" speaks ${to} but "${m.spec.backend}" speaks ${from}`, {
          hint: `requests cannot be translated between ${FAMILY[from]} and ${FAMILY[to]}; offload to a backend of the same protocol family`,
        });
      }
      if (offload.when === 'hard-example' && from !== undefined && FAMILY[from] !== 'KServe v2') {
        rep.error(doc, ['spec', 'offload', 'when'], `hard-example reads classification outputs of KServe v2 answers, but "${m.spec.backend}" speaks ${from}`, {
          hint: 'use when: saturated or failover for this model',
        });
      }
    }
    if (m.spec.visibility === 'private' && !offload.allowPrivate && offload.when !== 'never') {
      rep.warn(doc, ['spec', 'offload'], 'is private, so it is never offloaded', { hint: 'set offload.allowPrivate: true to let its requests leave the box, or remove offload' });
    }
  }
}

function checkApps(rep: Reporter, apps: readonly Located<App>[], models: readonly Located<Model>[], declared: Declared, auth: string): void {
  const visibility = new Map(models.map((l) => [l.resource.metadata.name, l.resource.spec.visibility]));
  const groups = new Set([DEFAULT_GROUP, ...declared.names.ServiceGroup]);
  const keyOwner = new Map<string, { app: string; doc: SourceDocument; index: number }>();
  for (const { resource: a, doc } of apps) {
    if (!groups.has(a.spec.serviceGroup)) {
      rep.error(doc, ['spec', 'serviceGroup'], `ServiceGroup "${a.spec.serviceGroup}" does not exist`, {
        hint: refHint(a.spec.serviceGroup, 'ServiceGroup', groups),
      });
    }
    a.spec.models.forEach((name, i) => {
      if (!declared.names.Model.has(name)) {
        rep.error(doc, ['spec', 'models', i], `Model "${name}" does not exist`, { hint: refHint(name, 'Model', declared.names.Model) });
      } else if (visibility.get(name) === 'public') {
        rep.warn(doc, ['spec', 'models', i], `Model "${name}" is public, so this grant has no effect`, { hint: 'grants matter for visibility: private models only' });
      }
    });
    a.spec.modelRateLimits.forEach((l, i) => {
      if (!declared.names.Model.has(l.model)) {
        rep.error(doc, ['spec', 'modelRateLimits', i, 'model'], `Model "${l.model}" does not exist`, { hint: refHint(l.model, 'Model', declared.names.Model) });
      }
    });
    a.spec.apiKeys.forEach((k, i) => {
      const owner = keyOwner.get(k.sha256);
      if (owner === undefined) keyOwner.set(k.sha256, { app: a.metadata.name, doc, index: i });
      else {
        const whose = owner.app === a.metadata.name ? 'this App' : `App "${owner.app}"`;
        rep.error(doc, ['spec', 'apiKeys', i, 'sha256'], `this key is already listed for ${whose}`, {
          hint: `a key identifies exactly one app (see ${where(owner.doc, ['spec', 'apiKeys', owner.index, 'sha256'])}); create another with \`modelguard keys create --app ${a.metadata.name}\``,
        });
      }
    });
    if (auth === 'apiKey' && a.spec.apiKeys.length === 0) {
      rep.warn(doc, ['spec'], 'has no apiKeys, so it can never authenticate', { hint: `\`modelguard keys create --app ${a.metadata.name}\` prints a key and its sha256` });
    }
  }
  const granted = new Set(apps.flatMap((l) => l.resource.spec.models));
  for (const { resource: m, doc } of models) {
    if (m.spec.visibility !== 'private') continue;
    if (auth === 'none') {
      rep.warn(doc, ['spec', 'visibility'], 'is private, but with auth: none no app is identified, so nobody can use it', { hint: 'use auth: apiKey, or make it public' });
    } else if (!granted.has(m.metadata.name)) {
      rep.warn(doc, ['spec', 'visibility'], 'is private and no App lists it in spec.models, so nobody can use it', { hint: `add "${m.metadata.name}" to an App's models` });
    }
  }
}

/** An admin listener reachable beyond loopback must require a token. */
function checkAdminExposure(rep: Reporter, g: Gateway, doc: SourceDocument): void {
  const admin = g.spec.listeners.admin ?? '127.0.0.1:0'; // unset: a loopback default per role
  const host = splitHostPort(admin)?.host;
  const loopback = host === undefined || isLoopbackHost(host);
  if (!loopback && g.spec.adminTokens.length === 0) {
    rep.error(doc, ['spec', 'listeners', 'admin'], `the admin listener ${admin} is reachable beyond loopback but no adminTokens are set`, {
      hint: 'add spec.adminTokens: [{ sha256: ... }] (`modelguard keys create --kind admin` prints a token and the snippet), or listen on 127.0.0.1',
    });
  }
}

/** Proxy credentials: unique names, apps that exist, a token that belongs to one proxy. */
function checkProxies(rep: Reporter, g: Gateway, doc: SourceDocument, declared: Declared): void {
  const names = new Set<string>();
  const tokenOwner = new Map<string, string>();
  const certOwner = new Map<string, string>();
  g.spec.proxies.forEach((p, i) => {
    if (names.has(p.name)) rep.error(doc, ['spec', 'proxies', i, 'name'], `duplicate proxy "${p.name}"`, { hint: 'proxy names are unique; list several tokens under one' });
    names.add(p.name);
    p.apps.forEach((app, j) => {
      if (!declared.names.App.has(app)) rep.error(doc, ['spec', 'proxies', i, 'apps', j], `App "${app}" does not exist`, { hint: refHint(app, 'App', declared.names.App) });
    });
    p.tokens.forEach((t, j) => {
      const owner = tokenOwner.get(t.sha256);
      if (owner !== undefined) {
        rep.error(doc, ['spec', 'proxies', i, 'tokens', j, 'sha256'], `this token is already listed for proxy "${owner}"`, {
          hint: 'a token identifies one proxy; `modelguard keys create --kind proxy --name <proxy>` makes another',
        });
      } else tokenOwner.set(t.sha256, p.name);
    });
    p.certificateNames.forEach((n, j) => {
      const path = ['spec', 'proxies', i, 'certificateNames', j];
      if (g.spec.brokerTls === undefined) {
        rep.error(doc, path, `certificate name "${n}" needs spec.brokerTls: without it the broker listener is plain HTTP and sees no client certificates`, {
          hint: 'add spec.brokerTls: { cert, key, clientCa } (docs/deployment.md shows the openssl commands), or identify this proxy by tokens',
        });
      }
      const owner = certOwner.get(n.toLowerCase());
      if (owner !== undefined && owner !== p.name) {
        rep.error(doc, path, `certificate name "${n}" is already listed for proxy "${owner}"`, { hint: 'a certificate name identifies one proxy; give each proxy its own certificate' });
      } else certOwner.set(n.toLowerCase(), p.name);
    });
  });
}

/** Remote write: its secret and TLS files must be there (a warning, as for a backend's link), and no password in the URL. */
function checkRemoteWrite(rep: Reporter, g: Gateway, doc: SourceDocument): void {
  const rw = g.spec.metrics?.remoteWrite;
  if (rw === undefined) return;
  const at = ['spec', 'metrics', 'remoteWrite'];
  if (rw.credentials?.env !== undefined && process.env[rw.credentials.env] === undefined) {
    rep.warn(doc, [...at, 'credentials', 'env'], `environment variable ${rw.credentials.env} is not set here`, { hint: 'set it where ModelGuard runs; until then every push fails (setup) and is retried' });
  }
  const files: [string[], string | undefined][] = [
    [['credentials', 'file'], rw.credentials?.file],
    [['tls', 'ca'], rw.tls?.ca],
    [['tls', 'cert'], rw.tls?.cert],
    [['tls', 'key'], rw.tls?.key],
  ];
  for (const [path, file] of files) {
    if (file !== undefined && !existsSync(file)) rep.warn(doc, [...at, ...path], `file ${file} does not exist here`, { hint: 'give an absolute path to a readable file on the box that runs ModelGuard' });
  }
  if (rw.tls !== undefined && !rw.url.startsWith('https://')) rep.warn(doc, [...at, 'tls'], 'tls is set but the url is not https://', { hint: 'write the url with https://, or remove tls' });
  if (/^https?:\/\/[^/@]*:[^/@]*@/.test(rw.url)) {
    rep.warn(doc, [...at, 'url'], 'the url holds a password, so the configuration does', { hint: 'put the secret in a file or environment variable: credentials: { file: ..., scheme: Basic } with base64 of user:password' });
  }
}

/** Runs every check across the validated resources. */
export function checkReferences(rep: Reporter, all: readonly Located[], declared: Declared): void {
  checkUnique(rep, declared);
  checkGateways(rep, declared);
  const gateways = byKind(all, 'Gateway');
  const backends = byKind(all, 'Backend');
  const models = byKind(all, 'Model');
  checkBackends(rep, backends);
  checkModels(rep, models, backends, declared);
  const auth = gateways[0]?.resource.spec.auth ?? DEFAULTS.gateway.auth;
  for (const { resource: g, doc } of gateways) {
    checkAdminExposure(rep, g, doc);
    checkProxies(rep, g, doc, declared);
    checkRemoteWrite(rep, g, doc);
  }
  checkApps(rep, byKind(all, 'App'), models, declared, auth);
}
