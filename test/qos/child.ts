/** Child processes of the QoS tests: their output kept line by line, awaited by pattern, killed in after(). */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export class Child {
  readonly proc: ChildProcess;
  /** Every line, stdout and stderr, for the failure message. */
  readonly output: string[] = [];
  private readonly stdoutLines: string[] = [];
  private readonly listeners = new Set<() => void>();
  readonly exited: Promise<number | null>;

  constructor(
    readonly label: string,
    argv: readonly string[],
  ) {
    const [cmd, ...args] = argv;
    this.proc = spawn(cmd as string, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => this.proc.once('exit', (code) => resolve(code)));
    const take = (stream: NodeJS.ReadableStream, isStdout: boolean): void => {
      createInterface({ input: stream }).on('line', (line) => {
        this.output.push(line);
        if (isStdout) this.stdoutLines.push(line);
        for (const l of this.listeners) l();
      });
    };
    if (this.proc.stdout) take(this.proc.stdout, true);
    if (this.proc.stderr) take(this.proc.stderr, false);
    void this.exited.then(() => {
      for (const l of this.listeners) l();
    });
  }

  /** The first line (stdout or stderr, already seen or to come) matching `re`. */
  waitFor(re: RegExp, timeoutMs: number, from = 0): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const hit = this.output.slice(from).find((l) => re.test(l));
        if (hit !== undefined) {
          done();
          resolve(hit);
          return true;
        }
        if (this.proc.exitCode !== null || this.proc.signalCode !== null) {
          done();
          reject(new Error(`${this.label} exited before printing ${String(re)}:\n${this.tail()}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.label} did not print ${String(re)} within ${timeoutMs} ms:\n${this.tail()}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.listeners.delete(listener);
      };
      const listener = (): void => void check();
      this.listeners.add(listener);
      check();
    });
  }

  /** Sends one JSON line and returns the next JSON line on stdout. */
  async ask<T>(command: unknown, timeoutMs: number): Promise<T> {
    const from = this.stdoutLines.length;
    this.proc.stdin?.write(`${JSON.stringify(command)}\n`);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners.delete(listener);
        reject(new Error(`${this.label} did not answer ${JSON.stringify(command)} within ${timeoutMs} ms:\n${this.tail()}`));
      }, timeoutMs);
      const listener = (): void => {
        if (this.stdoutLines.length > from || this.proc.exitCode !== null) {
          clearTimeout(timer);
          this.listeners.delete(listener);
          resolve();
        }
      };
      this.listeners.add(listener);
      listener();
    });
    const line = this.stdoutLines[from];
    if (line === undefined) throw new Error(`${this.label} exited:\n${this.tail()}`);
    return JSON.parse(line) as T;
  }

  tail(n = 30): string {
    return this.output.slice(-n).map((l) => `  ${this.label}| ${l}`).join('\n');
  }

  /** Stops it (if it still runs) and waits for the exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<number | null> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill(signal);
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
      const code = await this.exited;
      clearTimeout(timer);
      return code;
    }
    return this.exited;
  }
}
