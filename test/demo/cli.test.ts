import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { InvalidArgumentError } from 'commander';
import { parseListen } from '../../src/demo/cli.ts';
import { call, newAgent } from './helpers.ts';

const fixture = fileURLToPath(new URL('./fixtures/demo-model-cli.ts', import.meta.url));
const agent = newAgent();
const children: ChildProcess[] = [];
after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await agent.close();
});

interface Running {
  readonly child: ChildProcess;
  readonly url: string;
  readonly lines: string[];
  readonly stderr: () => string;
}

/** Spawns the command and resolves once it printed its banner. */
async function run(args: string[]): Promise<Running> {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const lines: string[] = [];
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    let buffer = '';
    child.stdout?.on('data', (d: Buffer) => {
      buffer += d.toString();
      const parts = buffer.split('\n');
      buffer = parts.pop() ?? '';
      lines.push(...parts);
      if (parts.some((l) => l.startsWith('Press Ctrl-C'))) {
        const m = /listening on (http:\/\/\S+)/.exec(lines.join('\n'));
        if (m?.[1]) resolve(m[1]);
        else reject(new Error(`no URL in ${lines.join('\n')}`));
      }
    });
    child.once('exit', (code) => reject(new Error(`exited ${code} before listening: ${err}`)));
  });
  return { child, url, lines, stderr: () => err };
}

describe('parseListen', () => {
  test('accepts the usual address forms', () => {
    assert.deepEqual(parseListen('127.0.0.1:8000'), { host: '127.0.0.1', port: 8000 });
    assert.deepEqual(parseListen('[::1]:9'), { host: '::1', port: 9 });
    assert.deepEqual(parseListen(':8000'), { host: '0.0.0.0', port: 8000 });
    assert.deepEqual(parseListen('8000'), { host: '127.0.0.1', port: 8000 });
    assert.deepEqual(parseListen('localhost:0'), { host: 'localhost', port: 0 });
    assert.throws(() => parseListen('host:99999'), InvalidArgumentError);
    assert.throws(() => parseListen('nonsense'), InvalidArgumentError);
  });
});

describe('modelguard demo-model', () => {
  test('simulated: serves, then stops cleanly on SIGTERM', async () => {
    const { child, url, lines } = await run(['--listen', '127.0.0.1:0', '--mode', 'simulated', '--slots', '3', '--service-time', '5ms', '--models', 'a,b']);
    assert.match(lines.join('\n'), /models: a, b\s+slots: 3\s+service time: 5ms/);
    const a = await call(agent, `${url}/v2/models/b/infer`, { body: { inputs: [{ name: 'input', shape: [1, 2], datatype: 'FP32', data: [1, 2] }] } });
    assert.equal(a.status, 200);
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const [code, signal] = (await exited) as [number | null, NodeJS.Signals | null];
    assert.deepEqual([code, signal], [0, null]);
    assert.ok(lines.some((l) => l.includes('SIGTERM: stopping')));
  });

  test('onnx (default mode): the printed curl example works and SIGINT stops it', async () => {
    const { child, url, lines } = await run(['--listen', '127.0.0.1:0']);
    assert.match(lines[0] ?? '', /\(onnx\)/);
    const curl = lines.find((l) => l.includes('/v2/models/iris/infer') && l.includes('curl'));
    const m = /curl -s (\S+) .* -d '(.+)'$/.exec(curl ?? '');
    assert.ok(m?.[1] && m[2], `curl line: ${curl}`);
    assert.ok(m[1].startsWith(url));
    const a = await call(agent, m[1], { body: m[2] });
    assert.equal(a.status, 200, a.text);
    const label = (a.json as { outputs: { name: string; data: number[] }[] }).outputs.find((o) => o.name === 'label');
    assert.deepEqual(label?.data, [0], 'the example row is a setosa');
    const exited = once(child, 'exit');
    child.kill('SIGINT');
    assert.deepEqual(await exited, [0, null]);
  });

  test('bad options exit non-zero with a message', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', fixture, '--slots', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.notEqual(code, 0);
    assert.match(err, /expected an integer ≥ 1/);
  });
});
