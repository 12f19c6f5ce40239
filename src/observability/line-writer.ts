/**
 * Text lines to stdout, stderr or a file, written in batches off the request path: a line is
 * appended to a buffer, and the buffer goes out in one asynchronous write when it reaches 32 KiB
 * and at least once a second. It is what the access log writes through (a line costs no system
 * call of its own; 32 KiB batches measured best, 4 KiB cost a fifth more CPU per line).
 *
 * Bounded: while the destination does not keep up (a stalled pipe, a slow disk), at most 1 MiB
 * waits; lines beyond are dropped, never queued without limit, and never block the event loop.
 * Trouble is reported on stderr when it starts and when it ends, with the number of lines lost,
 * never once per line; nothing here throws into the caller or crashes the process.
 */
import { closeSync, mkdirSync, openSync, write, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/** A batch goes out once the buffer holds this much (UTF-16 units: bytes for ASCII lines). */
const BATCH = 32 * 1024;
/** What may wait, buffered and in flight, before lines are dropped. */
const MAX_WAITING = 1024 * 1024;
const FLUSH_EVERY_MS = 1000;
/** A pipe that is full (EAGAIN) is tried again after this long. */
const RETRY_MS = 100;
/** How long close() waits for the last batch. */
const CLOSE_WAIT_MS = 2000;

export class LineWriter {
  private readonly fd: number | undefined;
  /** A file this writer opened (and closes); not stdout or stderr. */
  private readonly ownsFd: boolean;
  private buffer = '';
  private bufferLines = 0;
  /** Bytes of the batch being written (0: none). */
  private inFlight = 0;
  private writing = false;
  private closed = false;
  private released = false;
  /** Lines dropped or failed since trouble started; undefined while all is well. */
  private lost: number | undefined;
  private readonly timer: NodeJS.Timeout;
  private idleWaiters: (() => void)[] = [];

  /** `destination`: `stdout`, `stderr` or a file path (appended to; its directory is created). */
  constructor(
    destination: string,
    private readonly report: (message: string) => void = (m) => void process.stderr.write(`modelguard: access log ${destination}: ${m}\n`),
  ) {
    this.ownsFd = destination !== 'stdout' && destination !== 'stderr';
    if (!this.ownsFd) this.fd = destination === 'stdout' ? 1 : 2;
    else {
      try {
        mkdirSync(dirname(destination), { recursive: true });
        this.fd = openSync(destination, 'a');
      } catch (err) {
        this.report(`cannot open: ${(err as Error).message}; nothing is written`);
      }
    }
    this.timer = setInterval(() => this.flush(), FLUSH_EVERY_MS);
    this.timer.unref();
    process.on('exit', this.onExit);
  }

  /** Queues one line (with its line feed). */
  write(line: string): void {
    if (this.fd === undefined || this.closed) return;
    if (this.buffer.length + this.inFlight >= MAX_WAITING) return this.trouble('cannot keep up (1 MiB waiting)', 1);
    this.buffer += line;
    this.bufferLines++;
    if (this.buffer.length >= BATCH) this.flush();
  }

  /** Writes out what is buffered (waiting at most 2 s) and closes a file; stdout and stderr stay open. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    process.off('exit', this.onExit);
    this.flush();
    if (this.writing) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([new Promise<void>((resolve) => this.idleWaiters.push(resolve)), new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS)))]);
      clearTimeout(timer);
    }
    if (this.lost !== undefined) this.report(`${this.lost} line(s) lost`);
    this.lost = undefined;
    if (!this.writing) this.release();
  }

  /**
   * A process that exits without close() (process.exit on a failure) still gets what is buffered,
   * written synchronously; only a batch in flight at that moment may be lost (or land after it).
   */
  private readonly onExit = (): void => {
    if (this.fd === undefined || this.buffer === '') return;
    try {
      writeSync(this.fd, this.buffer);
    } catch {
      // Exiting: there is nowhere left to report it.
    }
    this.buffer = '';
  };

  private flush(): void {
    if (this.writing || this.buffer === '' || this.fd === undefined) return;
    const chunk = Buffer.from(this.buffer);
    const lines = this.bufferLines;
    this.buffer = '';
    this.bufferLines = 0;
    this.send(this.fd, chunk, lines);
  }

  private send(fd: number, chunk: Buffer, lines: number): void {
    this.writing = true;
    this.inFlight = chunk.length;
    write(fd, chunk, 0, chunk.length, null, (err, written) => {
      if (err?.code === 'EAGAIN') {
        setTimeout(() => this.send(fd, chunk, lines), RETRY_MS).unref();
        return;
      }
      if (!err && written < chunk.length) return this.send(fd, chunk.subarray(written), lines);
      this.writing = false;
      this.inFlight = 0;
      if (err) this.trouble(`write failed: ${err.message}`, lines);
      else if (this.lost !== undefined) {
        this.report(`writing again; ${this.lost} line(s) lost meanwhile`);
        this.lost = undefined;
      }
      if (this.buffer.length >= BATCH || (this.closed && this.buffer !== '')) this.flush();
      if (!this.writing) this.idle();
    });
  }

  /** Counts lost lines, reporting only the start of the trouble. */
  private trouble(what: string, lines: number): void {
    if (this.lost === undefined) this.report(`${what}: lines are dropped until it recovers`);
    this.lost = (this.lost ?? 0) + lines;
  }

  private idle(): void {
    for (const resolve of this.idleWaiters.splice(0)) resolve();
    if (this.closed) this.release();
  }

  /** Closes a file once nothing is in flight (a late batch after a timed-out close closes it then). */
  private release(): void {
    if (this.released || this.fd === undefined || !this.ownsFd) return;
    this.released = true;
    try {
      closeSync(this.fd);
    } catch (err) {
      this.report(`close failed: ${(err as Error).message}`);
    }
  }
}
