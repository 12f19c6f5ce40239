/** API keys: generated with 256 bits of randomness, shown once, stored only as sha256. */
import { randomBytes } from 'node:crypto';
import { sha256Hex } from './identity.ts';

export interface NewKey {
  readonly key: string;
  readonly sha256: string;
}

export function createKey(): NewKey {
  const key = `mg_${randomBytes(32).toString('base64url')}`;
  return { key, sha256: sha256Hex(key) };
}

/** The App resource snippet an operator pastes into configuration. */
export function appSnippet(app: string, sha256: string, group = 'default'): string {
  return [
    'apiVersion: modelguard.io/v1alpha1',
    'kind: App',
    `metadata: { name: ${app} }`,
    'spec:',
    `  serviceGroup: ${group}`,
    '  apiKeys:',
    `    - sha256: "${sha256}"`,
  ].join('\n');
}
