/** The benchmark's side of the load generator: starts bench/lib/load-child.ts and drives it. */
import type { ChildProcess } from 'node:child_process';
import type { BurstResult, ClosedResult, HoldResult, LoadCommand, LoadResult, OpenResult } from './load-protocol.ts';
import { spawnTracked, waitForExit } from './processes.ts';

type ResultOf<C extends LoadCommand['op']> = C extends 'open'
  ? OpenResult
  : C extends 'closed'
    ? ClosedResult
    : C extends 'hold'
      ? HoldResult
      : C extends 'burst'
        ? BurstResult
        : never;

export class LoadGenerator {
  private constructor(private readonly child: ChildProcess) {}

  static start(): LoadGenerator {
    const child = spawnTracked('load-generator', process.execPath, ['--import', 'tsx', 'bench/lib/load-child.ts'], { ipc: true, raiseFileLimit: true });
    child.stdout?.pipe(process.stdout);
    child.stderr?.pipe(process.stderr);
    return new LoadGenerator(child);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Sends one command and resolves with its result; commands run one at a time. */
  run<C extends Exclude<LoadCommand, { op: 'exit' }>>(command: C): Promise<ResultOf<C['op']>> {
    return new Promise((resolve, reject) => {
      const onMessage = (m: LoadResult): void => {
        cleanup();
        if (m.op === 'error') reject(new Error(`load generator: ${m.message}`));
        else if (m.op !== command.op) reject(new Error(`load generator answered ${m.op} to ${command.op}`));
        else resolve(m as ResultOf<C['op']>);
      };
      const onExit = (code: number | null, signal: string | null): void => {
        cleanup();
        reject(new Error(`load generator exited (${code ?? signal})`));
      };
      const cleanup = (): void => {
        this.child.off('message', onMessage);
        this.child.off('exit', onExit);
      };
      this.child.on('message', onMessage);
      this.child.once('exit', onExit);
      this.child.send(command);
    });
  }

  async close(): Promise<void> {
    if (this.child.connected) this.child.send({ op: 'exit' } satisfies LoadCommand);
    await waitForExit(this.child, 2000, false);
  }
}
