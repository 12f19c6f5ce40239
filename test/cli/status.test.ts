/**
 * `modelguard status` as an operator reads it: every cell under its column's title, whatever the
 * length of a name or URL, numbers aligned right under the end of their title, no trailing spaces.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { controllerText, nodeText, type ControllerStatus } from '../../src/cli/status.ts';

type NodeStatus = Parameters<typeof nodeText>[0];

const group = (name: string, extra: Partial<NodeStatus['groups'][number]> = {}): NodeStatus['groups'][number] => ({
  name, priority: 0, weight: 1, queued: 0, maxLength: 100, inflight: 0, dispatched: 0, drainPerSecond: 0, acceleratorMs: 0, configuredShare: 0.5, ...extra,
});
const endpoint = (backend: string, url: string, extra: Partial<NodeStatus['endpoints'][number]> = {}): NodeStatus['endpoints'][number] => ({
  backend, url, slots: 4, inflight: 0, healthy: true, served: 0, failures: 0, latencyMs: 0, ...extra,
});

const node: NodeStatus = {
  version: 7,
  hash: 'abcdef0123456789',
  fairness: 'compute',
  groups: [group('safety', { priority: 10, weight: 3, queued: 2, dispatched: 1234, acceleratorMs: 300 }), group('a-group-name-longer-than-any-fixed-column', { maxLength: 10000, acceleratorMs: 100 })],
  endpoints: [
    endpoint('accel', 'http://127.0.0.1:8000', { served: 99, failures: 1, latencyMs: 12.34, modelsDown: [{ model: 'm', reason: 'status 500', retryInMs: 2500 }] }),
    endpoint('cloud', 'https://cloud.example.com:8443/a/long/path/prefix', { slots: 16, healthy: false, failures: 7 }),
  ],
  offload: [{ model: 'demo', backend: 'cloud', when: 'saturated', breaker: 'closed', edgeServiceMs: 4.56, cloudMs: 80.1, sent: 3, answered: 2, leftToday: 97 } as NonNullable<NodeStatus['offload']>[number]],
  batching: [{ model: 'batched', backend: 'accel', maxBatchSize: 8, batches: 10, rows: 55, requests: 40, recentRows: 5.5, recentDelayMs: 1.25 }],
  restartRequired: ['gateway.listeners'],
};

/** The table whose title line starts with `first`: its title line and the lines of its rows. */
function tableOf(text: string, first: string, rows: number): { title: string; lines: string[] } {
  const lines = text.split('\n');
  const at = lines.findIndex((l) => l.startsWith(`${first} `));
  assert.ok(at >= 0, `a table titled ${first} in:\n${text}`);
  return { title: lines[at] as string, lines: lines.slice(at + 1, at + 1 + rows) };
}

/** Where a title starts and ends on the title line. */
function span(title: string, name: string): [number, number] {
  const i = title.search(new RegExp(`(^| )${name.replace(/[()/]/g, '\\$&')}( |$)`));
  assert.ok(i >= 0, `column ${name} in "${title}"`);
  const start = i === 0 ? 0 : i + 1;
  return [start, start + name.length];
}

function assertLeft(t: { title: string; lines: string[] }, name: string, cells: string[]): void {
  const [start] = span(t.title, name);
  cells.forEach((c, i) => assert.equal((t.lines[i] as string).slice(start, start + c.length), c, `${name} row ${i} starts under its title:\n${t.title}\n${t.lines.join('\n')}`));
}

function assertRight(t: { title: string; lines: string[] }, name: string, cells: string[]): void {
  const [, end] = span(t.title, name);
  cells.forEach((c, i) => assert.equal((t.lines[i] as string).slice(end - c.length, end), c, `${name} row ${i} ends under its title:\n${t.title}\n${t.lines.join('\n')}`));
}

test('status: groups, endpoints, offload and batching line up under their titles, a long name included', () => {
  const text = nodeText(node);
  const groups = tableOf(text, 'GROUP', 2);
  assertLeft(groups, 'GROUP', ['safety', 'a-group-name-longer-than-any-fixed-column']);
  assertRight(groups, 'PRIO', ['10', '0']);
  assertRight(groups, 'SHARE(used)', ['75.0%', '25.0%']);
  assertRight(groups, 'QUEUED/MAX', ['2/100', '0/10000']);
  assertRight(groups, 'DISPATCHED', ['1234', '0']);
  assertRight(groups, 'DRAIN/s', ['0.0', '0.0']);

  const endpoints = tableOf(text, 'BACKEND', 3);
  assertLeft(endpoints, 'ENDPOINT', ['http://127.0.0.1:8000']);
  assertRight(endpoints, 'SLOTS', ['4']);
  assertRight(endpoints, 'LATENCY', ['12.3ms']);
  // The model that is down on the first endpoint is told under its URL, before the next endpoint.
  assert.equal(endpoints.lines[1], `${' '.repeat(span(endpoints.title, 'ENDPOINT')[0])}model m DOWN here (tried again in 2.5s): status 500`);
  const last = { title: endpoints.title, lines: [endpoints.lines[2] as string] };
  assertLeft(last, 'ENDPOINT', ['https://cloud.example.com:8443/a/long/path/prefix']);
  assertRight(last, 'HEALTHY', ['NO']);
  assertRight(last, 'FAILURES', ['7']);

  const offload = tableOf(text, 'OFFLOAD MODEL', 1);
  assertLeft(offload, 'WHEN', ['saturated']);
  assertRight(offload, 'CLOUD', ['80.1ms']);
  assertRight(offload, 'LEFT-TODAY', ['97']);

  const batching = tableOf(text, 'BATCH MODEL', 1);
  assertRight(batching, 'BATCHES', ['10']);
  assertRight(batching, 'ADDED(recent)', ['1.3ms']);

  assert.match(text, /^RESTART REQUIRED: the configuration changed gateway\.listeners/m);
  for (const line of text.split('\n')) assert.equal(line, line.trimEnd(), `no trailing spaces: "${line}"`);
});

test('status: sections with nothing to show are left out', () => {
  const { batching: _, ...rest } = node;
  const text = nodeText({ ...rest, offload: [], restartRequired: [] });
  assert.doesNotMatch(text, /OFFLOAD|BATCH MODEL|RESTART/);
  assert.match(text, /^GROUP /m);
  assert.match(text, /^BACKEND /m);
});

test('status of a controller: its nodes under their titles, or a line saying none registered', () => {
  const ctl: ControllerStatus = {
    role: 'controller',
    version: 3,
    hash: '0123456789abcdef',
    source: '/etc/modelguard',
    restartRequired: [],
    nodes: [
      { name: 'node-a', role: 'broker', apps: [], applied: { version: 3 }, upToDate: true, healthy: true, lastSeenMs: 400 },
      { name: 'a-proxy-with-a-long-pod-name-0', role: 'proxy', apps: ['one', 'two', 'three', 'four', 'five'], upToDate: false, healthy: false, lastSeenMs: 4500, error: { version: 4, message: 'refused' } },
    ],
  } as unknown as ControllerStatus;
  const text = controllerText(ctl);
  const nodes = tableOf(text, 'NODE', 2);
  assertLeft(nodes, 'ROLE', ['broker', 'proxy']);
  assertLeft(nodes, 'APPS', ['-', 'one,two,three,four,fi']);
  assertRight(nodes, 'LAST-SEEN', ['400ms', '4.5s']);
  assertLeft(nodes, 'ERROR', ['', 'v4: refused']);
  for (const line of text.split('\n')) assert.equal(line, line.trimEnd(), `no trailing spaces: "${line}"`);
  assert.match(controllerText({ ...ctl, nodes: [] }), /\(no broker or proxy has registered yet\)/);
});
