/**
 * The access log's writer: batches (32 KiB, or at most a second late), a file in a directory it
 * creates and closes on close(), stdout left open, a destination that stalls (bounded: lines beyond
 * 1 MiB are dropped and counted, trouble reported once when it starts and once when it ends) and one
 * that fails (reported once, never thrown).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, readSync, readdirSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { LineWriter } from '../../src/observability/line-writer.ts';
import { delay, waitFor } from '../helpers/harness.ts';

const dir = mkdtempSync(join(tmpdir(), 'mg-lines-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const size = (file: string): number => statSync(file).size;
/** Whether this process holds an open descriptor on `file`. */
const isOpen = (file: string): boolean => readdirSync('/proc/self/fd').some((fd) => {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`) === file;
  } catch {
    return false;
  }
});

describe('line writer', () => {
  it('creates the directory, writes at most a second late, and closes the file on close()', async () => {
    const file = join(dir, 'a', 'b', 'access.log');
    const reports: string[] = [];
    const w = new LineWriter(file, (m) => reports.push(m));
    w.write('{"n":1}\n');
    w.write('{"n":2}\n');
    await delay(50);
    assert.equal(size(file), 0, 'a few lines wait for the batch');
    await waitFor(() => size(file) > 0, 'the once-a-second flush', 2000);
    assert.equal(readFileSync(file, 'utf8'), '{"n":1}\n{"n":2}\n');
    w.write('{"n":3}\n');
    assert.ok(isOpen(file));
    await w.close();
    assert.equal(readFileSync(file, 'utf8'), '{"n":1}\n{"n":2}\n{"n":3}\n', 'close() writes out the rest');
    assert.ok(!isOpen(file), 'and closes the file');
    w.write('{"n":4}\n');
    await delay(20);
    assert.equal(readFileSync(file, 'utf8').split('\n').length, 4, 'nothing after close');
    assert.deepEqual(reports, []);
  });

  it('writes a batch as soon as 32 KiB are buffered, appending to what the file holds', async () => {
    const file = join(dir, 'batch.log');
    const first = new LineWriter(file);
    first.write('old\n');
    await first.close();
    const w = new LineWriter(file);
    const line = `${'x'.repeat(99)}\n`;
    for (let i = 0; i < 400; i++) w.write(line); // 40,000 characters
    await waitFor(() => size(file) >= 4 + 32 * 1024, 'a 32 KiB batch before the timer', 500);
    await w.close();
    assert.equal(readFileSync(file, 'utf8'), `old\n${line.repeat(400)}`);
  });

  it('leaves stdout open and writes everything buffered at exit, even without close()', () => {
    const script = `
      import { LineWriter } from ${JSON.stringify(new URL('../../src/observability/line-writer.ts', import.meta.url).href)};
      const w = new LineWriter('stdout');
      w.write('one\\n');
      await w.close();
      process.stdout.write('stdout still open\\n');
      const v = new LineWriter('stdout');
      v.write('two\\n');
      process.exit(3);
    `;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(r.stderr, '');
    assert.equal(r.stdout, 'one\nstdout still open\ntwo\n');
    assert.equal(r.status, 3);
  });

  it('bounds what waits for a stalled pipe: drops beyond 1 MiB, says so once, and once more when it drains', async () => {
    const fifo = join(dir, 'stalled.fifo');
    execFileSync('mkfifo', [fifo]);
    // The reader end, open but not read: the pipe fills (64 KiB) and the writer's batch blocks.
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const reports: string[] = [];
    const w = new LineWriter(fifo, (m) => reports.push(m));
    try {
      const line = `${'y'.repeat(199)}\n`;
      const total = 15_000; // 3 MB of lines
      const started = performance.now();
      for (let i = 0; i < total; i++) {
        w.write(line);
        if (i % 1000 === 0) await delay(5); // let batches go out (and block)
      }
      assert.ok(performance.now() - started < 5000, 'writing never blocked the event loop');
      assert.equal(reports.length, 1, reports.join('\n'));
      assert.match(reports[0]!, /cannot keep up \(1 MiB waiting\): lines are dropped until it recovers/);

      // Drain the pipe until every line that was not dropped has arrived; then the writer is idle.
      const deadline = performance.now() + 20_000;
      const lostMeanwhile = (): number | undefined => {
        const m = /^writing again; (\d+) line\(s\) lost meanwhile$/.exec(reports[1] ?? '');
        return m ? Number(m[1]) : undefined;
      };
      let received = '';
      const buf = Buffer.alloc(1 << 16);
      const read = (): number => {
        try {
          const n = readSync(reader, buf);
          received += buf.toString('latin1', 0, n);
          return n;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
          return -1;
        }
      };
      while (lostMeanwhile() === undefined || received.length < (total - lostMeanwhile()!) * line.length) {
        assert.ok(performance.now() < deadline, `drained ${received.length} bytes; reports: ${reports.join(' | ')}`);
        if (read() < 0) await delay(2);
      }
      await w.close();
      await waitFor(() => read() === 0, 'the end of the pipe (the writer closed it)', 2000);
      const lost = lostMeanwhile()!;
      const lines = received.split('\n').filter((l) => l !== '');
      assert.ok(lines.every((l) => `${l}\n` === line), 'only whole lines');
      assert.equal(lines.length + lost, total, `written ${lines.length} + lost ${lost}`);
      assert.ok(lost > 0);
      assert.ok(lines.length * line.length <= 64 * 1024 + 1024 * 1024 + line.length, `${lines.length} lines waited`);
      assert.equal(reports.length, 2, reports.join('\n'));
    } finally {
      // On a failure too: with the reader gone, a write still blocked fails (EPIPE) instead of holding the process.
      closeSync(reader);
      await w.close();
    }
  });

  it('reports a failing destination once and never throws', async () => {
    const reports: string[] = [];
    const full = new LineWriter('/dev/full', (m) => reports.push(m));
    for (let i = 0; i < 3; i++) {
      full.write('z'.repeat(20_000));
      await delay(30);
    }
    await full.close();
    assert.equal(reports.length, 2, reports.join('\n'));
    assert.match(reports[0]!, /write failed: ENOSPC/);
    assert.match(reports[1]!, /3 line\(s\) lost/);

    const unopenable = new LineWriter(dir, (m) => reports.push(m)); // a directory
    unopenable.write('x\n');
    await unopenable.close();
    assert.match(reports[2]!, /cannot open: EISDIR.*nothing is written/);
    assert.equal(reports.length, 3);
  });
});
