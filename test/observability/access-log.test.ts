/**
 * The access log: one line per request, matching what was sent and answered, with no secret in it;
 * the documented line format byte for byte; levels, sampling and reconfiguration.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Pool } from 'undici';
import type { Gateway } from '../../src/compose/gateway.ts';
import type { ModelServer } from '../../src/demo/index.ts';
import { RequestEvents, newRecord, type RequestRecord } from '../../src/core/events.ts';
import type { AccessLogSnapshot } from '../../src/core/snapshot.ts';
import { AccessLog, accessLine, formatLine, levelOf } from '../../src/observability/access-log.ts';
import { sha256Hex } from '../../src/security/identity.ts';
import { accelerator, gateway, INFER_BODY, keyFor, pool, send } from '../helpers/harness.ts';

const API = 'modelguard.io/v1alpha1';
const SECRET_KEY = 'mg_live_2f9c0d41a7be4e5f9d3c8b6a1e0f7d25';
const WRONG_KEY = 'mg_live_WRONG_7b1f3e9a2c4d6e8f0a1b3c5d7e9f1a3b';

interface Line {
  level: string;
  time: string;
  id: string;
  app: string | null;
  group: string | null;
  model: string | null;
  protocol: string;
  outcome: string;
  status: number;
  queueMs: number | null;
  backendMs: number | null;
  durationMs: number;
  endpoint: string | null;
  servedBy: string | null;
  sampleRate?: number;
}

const parse = (text: string): Line[] => text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Line);

describe('access log of a run', () => {
  let dir: string;
  let file: string;
  let acc: ModelServer;
  let gw: Gateway;
  let p: Pool;
  const sent = new Map<string, { status: number; code: string | undefined }>();
  let text: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mg-access-'));
    file = join(dir, 'logs', 'access.log');
    acc = await accelerator({ slots: 2, serviceTime: 2 });
    gw = await gateway({
      endpoints: [{ url: acc.url, slots: 2 }],
      groups: [{ name: 'gold' }],
      gateway: { accessLog: { destination: file } },
      extra: [
        { apiVersion: API, kind: 'App', metadata: { name: 'camera' }, spec: { serviceGroup: 'gold', apiKeys: [{ sha256: sha256Hex(SECRET_KEY) }] } },
        { apiVersion: API, kind: 'Model', metadata: { name: 'private' }, spec: { backend: 'accel', visibility: 'private' } },
      ],
    });
    p = pool(gw.httpUrl);
    let n = 0;
    const req = async (path: string, headers: Record<string, string>): Promise<void> => {
      const id = `run-${n++}`;
      const a = await send(p, path, { body: INFER_BODY, headers: { ...headers, 'x-request-id': id } });
      sent.set(id, { status: a.status, code: a.code });
    };
    const jobs: Promise<void>[] = [];
    for (let i = 0; i < 20; i++) jobs.push(req('/v2/models/demo/infer', { authorization: `Bearer ${SECRET_KEY}` }));
    for (let i = 0; i < 5; i++) jobs.push(req('/v2/models/demo/infer', { 'x-api-key': SECRET_KEY }));
    for (let i = 0; i < 5; i++) jobs.push(req('/v2/models/demo/infer', { authorization: `Bearer ${keyFor('gold')}` }));
    for (let i = 0; i < 4; i++) jobs.push(req('/v2/models/demo/infer', { authorization: `Bearer ${WRONG_KEY}` }));
    for (let i = 0; i < 3; i++) jobs.push(req('/v2/models/private/infer', { 'x-api-key': SECRET_KEY }));
    for (let i = 0; i < 2; i++) jobs.push(req('/v2/models/nope/infer', { authorization: `Bearer ${SECRET_KEY}` }));
    await Promise.all(jobs);
    await p.close();
    await gw.close(); // writes out what is buffered
    text = await readFile(file, 'utf8');
  });

  after(async () => {
    await acc.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('has one line per request sent, and the answer each got', () => {
    const lines = parse(text);
    assert.equal(lines.length, sent.size);
    assert.deepEqual(lines.map((l) => l.id).sort(), [...sent.keys()].sort());
    for (const l of lines) {
      const s = sent.get(l.id)!;
      assert.equal(l.status, s.status, l.id);
      assert.equal(l.outcome, s.code ?? 'OK', l.id);
      assert.equal(l.protocol, 'http');
      assert.ok(!Number.isNaN(Date.parse(l.time)));
      assert.ok(l.durationMs >= 0);
    }
    const count = (f: (l: Line) => boolean): number => lines.filter(f).length;
    assert.equal(count((l) => l.outcome === 'OK'), 30);
    assert.equal(count((l) => l.outcome === 'MG_UNAUTHENTICATED'), 4);
    assert.equal(count((l) => l.outcome === 'MG_FORBIDDEN'), 3);
    assert.equal(count((l) => l.outcome === 'MG_MODEL_NOT_FOUND'), 2);
  });

  it('fills who, what and where for answered requests', () => {
    for (const l of parse(text).filter((x) => x.outcome === 'OK')) {
      assert.ok(l.app === 'camera' || l.app === 'app-gold', l.app ?? 'null');
      assert.equal(l.group, 'gold');
      assert.equal(l.model, 'demo');
      assert.equal(l.level, 'info');
      assert.equal(l.endpoint, acc.url);
      assert.equal(l.servedBy, 'edge');
      assert.ok(l.queueMs !== null && l.queueMs >= 0);
      assert.ok(l.backendMs !== null && l.backendMs >= 2 * 0.9, `backendMs ${l.backendMs}`);
      assert.ok(l.durationMs >= l.backendMs + l.queueMs - 0.01);
    }
  });

  it('logs refusals at warn with the identity that was established', () => {
    const lines = parse(text);
    for (const l of lines.filter((x) => x.outcome !== 'OK')) assert.equal(l.level, 'warn', l.outcome);
    assert.ok(lines.filter((l) => l.outcome === 'MG_UNAUTHENTICATED').every((l) => l.app === null && l.group === null));
    assert.ok(lines.filter((l) => l.outcome === 'MG_FORBIDDEN').every((l) => l.app === 'camera' && l.model === null));
  });

  it('contains no key, valid or not, and no header', () => {
    for (const secret of [SECRET_KEY, WRONG_KEY, keyFor('gold'), 'Bearer', 'authorization', 'x-api-key']) {
      assert.ok(!text.toLowerCase().includes(secret.toLowerCase()), `the log contains ${secret}`);
    }
  });
});

describe('access log levels and sampling', () => {
  const settings = (s: Partial<AccessLogSnapshot>): AccessLogSnapshot => ({ enabled: true, level: 'info', sampleRate: 1, destination: 'stdout', ...s });
  const record = (i: number, outcome: RequestRecord['outcome']): RequestRecord => {
    const r = newRecord(`r${i}`, 'http', performance.now());
    r.outcome = outcome;
    r.status = outcome === 'OK' ? 200 : 503;
    return r;
  };
  const capture = (): { lines: string[]; stream: { write(s: string): void } } => {
    const lines: string[] = [];
    return { lines, stream: { write: (s: string) => void lines.push(s) } };
  };
  const publishAll = (events: RequestEvents): void => {
    for (let i = 0; i < 40; i++) events.publish(record(i, 'OK'));
    events.publish(record(40, 'MG_QUEUE_FULL'));
    events.publish(record(41, 'MG_BACKEND_ERROR'));
    events.publish(record(42, 'MG_QUEUE_TIMEOUT'));
  };
  const levels = (lines: string[]): string[] => lines.map((l) => (JSON.parse(l) as Line).level);

  it('samples info lines evenly and writes every refusal and failure', async () => {
    const events = new RequestEvents();
    const out = capture();
    const log = new AccessLog(events, settings({ sampleRate: 0.25 }), { stream: out.stream });
    publishAll(events);
    await log.close();
    assert.deepEqual(levels(out.lines).filter((l) => l === 'info').length, 10);
    assert.deepEqual(levels(out.lines).filter((l) => l !== 'info'), ['warn', 'error', 'error']);
    assert.ok(out.lines.filter((l) => l.includes('"level":"info"')).every((l) => (JSON.parse(l) as Line).sampleRate === 0.25));
  });

  it('keeps an exact period: the first request, then every 1/sampleRate-th', async () => {
    for (const rate of [0.1, 1 / 3, 0.5, 1]) {
      const events = new RequestEvents();
      const out = capture();
      const log = new AccessLog(events, settings({ sampleRate: rate }), { stream: out.stream });
      for (let i = 0; i < 300; i++) events.publish(record(i, 'OK'));
      await log.close();
      const ids = out.lines.map((l) => Number((JSON.parse(l) as Line).id.slice(1)));
      assert.equal(ids.length, Math.ceil(300 * rate - 1e-9), `rate ${rate}`);
      assert.equal(ids[0], 0);
      assert.ok(ids.every((id, i) => i === 0 || id - ids[i - 1]! === Math.round(1 / rate)), `rate ${rate}: ${ids.join(',')}`);
    }
  });

  it('writes only what reaches the configured level, and nothing when disabled or absent', async () => {
    const events = new RequestEvents();
    const errorsOnly = capture();
    const log = new AccessLog(events, settings({ level: 'error' }), { stream: errorsOnly.stream });
    publishAll(events);
    await log.close();
    assert.deepEqual(levels(errorsOnly.lines), ['error', 'error']);
    for (const s of [settings({ enabled: false }), undefined]) {
      const out = capture();
      const off = new AccessLog(events, s, { stream: out.stream });
      publishAll(events);
      await off.close();
      assert.deepEqual(out.lines, []);
    }
  });

  it('follows a reloaded setting', async () => {
    const events = new RequestEvents();
    const out = capture();
    const log = new AccessLog(events, undefined, { stream: out.stream });
    events.publish(record(1, 'OK'));
    await log.configure(settings({}));
    events.publish(record(2, 'OK'));
    await log.configure(settings({ level: 'warn' }));
    events.publish(record(3, 'OK'));
    events.publish(record(4, 'MG_QUEUE_FULL'));
    await log.close();
    assert.deepEqual(out.lines.map((l) => (JSON.parse(l) as Line).id), ['r2', 'r4']);
  });
});

describe('access log lines', () => {
  const DOC = new URL('../../docs/observability.md', import.meta.url);
  const section = async (): Promise<string> => {
    const text = await readFile(DOC, 'utf8');
    const start = text.indexOf('\n## Access log');
    return text.slice(start, text.indexOf('\n## ', start + 1));
  };

  it('are the documented examples, byte for byte', async () => {
    const examples = /```json\n([\s\S]*?)```/.exec(await section())![1]!.split('\n').filter((l) => l !== '');
    assert.equal(examples.length, 2);
    const now = 1000;
    for (const example of examples) {
      const d = JSON.parse(example) as Record<string, string | number | null>;
      const v = <T>(k: string): T | undefined => (d[k] ?? undefined) as T | undefined;
      const r: RequestRecord = {
        ...newRecord(v<string>('id')!, v<RequestRecord['protocol']>('protocol')!, now - v<number>('durationMs')!),
        time: Date.parse(v<string>('time')!),
        app: v('app'),
        group: v('group'),
        model: v('model'),
        api: v('api'),
        outcome: v<RequestRecord['outcome']>('outcome')!,
        status: v<number>('status')!,
        queueMs: v('queueMs'),
        backendMs: v('backendMs'),
        backend: v('backend'),
        endpoint: v('endpoint'),
        servedBy: v('servedBy'),
        offload: v('offload'),
      };
      assert.equal(levelOf(r.outcome), d['level']);
      assert.equal(formatLine(levelOf(r.outcome), accessLine(r, now)), `${example}\n`);
    }
  });

  it('hold only the documented fields, none of which looks like a credential, and nothing else of the record', async () => {
    const r: RequestRecord = {
      ...newRecord('r1', 'http', 0),
      app: 'camera',
      group: 'gold',
      model: 'iris',
      api: 'openai',
      status: 200,
      queueMs: 1,
      backendMs: 2,
      backend: 'accel',
      endpoint: 'http://127.0.0.1:9001',
      servedBy: 'cloud',
      offload: 'cloud',
      predictedWaitMs: 3,
      source: '203.0.113.7',
      queuedAt: 1,
      dispatchedAt: 2,
    };
    const line = formatLine('info', accessLine(r, 5));
    const keys = Object.keys(JSON.parse(line) as object);
    for (const k of keys) assert.doesNotMatch(k, /auth|key|token|pass|secret|cookie|header|body|cred/i);
    assert.ok(!line.includes('203.0.113.7'), 'the client address is not in the access log');
    // The field table: the backticked names in its first column.
    const table = (await section()).split('\n').filter((l) => /^\| `/.test(l));
    const documented = table.flatMap((l) => [...l.split('|')[1]!.matchAll(/`(\w+)`/g)].map((m) => m[1]!));
    assert.deepEqual([...keys, 'sampleRate'].sort(), documented.sort());
  });
});
