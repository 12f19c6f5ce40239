import { test } from 'node:test';
import assert from 'node:assert/strict';
import { brokerUrl, nodeAddress } from '../../src/k8s/node-address.ts';
import type { NodeLike } from '../../src/k8s/node-address.ts';
import { fixture } from './helpers.ts';
import type { Json } from './helpers.ts';

test('a KubeEdge node is reached at its kubeedge.io/internal-ip annotation, not its InternalIP', () => {
  const node = fixture<NodeLike>('node-kubeedge.json');
  assert.deepEqual(nodeAddress(node), { address: '192.168.31.17', source: 'kubeedge-annotation' });
  assert.equal(brokerUrl(nodeAddress(node)!.address), 'http://192.168.31.17:8010');
});

test('older KubeEdge releases put it in a label; a malformed value falls through to InternalIP', () => {
  const node = fixture<Json>('node-kubeedge.json');
  delete node.metadata.annotations['kubeedge.io/internal-ip'];
  node.metadata.labels['kubeedge.io/internal-ip'] = '192.168.31.18';
  assert.deepEqual(nodeAddress(node), { address: '192.168.31.18', source: 'kubeedge-label' });
  node.metadata.labels['kubeedge.io/internal-ip'] = 'not-an-ip';
  assert.deepEqual(nodeAddress(node), { address: '10.244.17.1', source: 'InternalIP' });
});

test('an ordinary node uses its InternalIP, then ExternalIP, then Hostname; a node without addresses has none', () => {
  const node = fixture<Json>('node-cloud.json');
  assert.deepEqual(nodeAddress(node), { address: '10.0.3.12', source: 'InternalIP' });
  node.status.addresses = node.status.addresses.filter((a: Json) => a.type !== 'InternalIP');
  assert.deepEqual(nodeAddress(node), { address: '203.0.113.40', source: 'ExternalIP' });
  node.status.addresses = [{ type: 'Hostname', address: 'cloud-worker-2' }];
  assert.equal(nodeAddress(node)?.source, 'Hostname');
  assert.equal(nodeAddress({ metadata: { name: 'new' } }), undefined);
  assert.equal(brokerUrl('fd00::17'), 'http://[fd00::17]:8010');
});
