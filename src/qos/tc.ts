/**
 * The tc runner (iproute2) and the readers of its output: the root qdisc of a device and the
 * counters of ModelGuard's classes. `tc -s -j class show` prints text for HTB classes in iproute2
 * 6.1, so the class counters are parsed from text (the format has been stable for decades).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { QOS_HANDLE, type QosClassCounters, type QosClassSpec, type TcCommand, type TcRunner } from './contract.ts';
import { qosClasses } from './plan.ts';

export class TcError extends Error {
  constructor(
    message: string,
    /** tc's stderr. */
    readonly output: string,
  ) {
    super(message);
  }
}

function exec(argv: readonly string[], input: string | undefined, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = argv;
    if (cmd === undefined) throw new Error('empty tc command');
    const child = spawn(cmd, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], timeout: timeoutMs });
    let out = '';
    let err = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', (e: NodeJS.ErrnoException) =>
      reject(e.code === 'ENOENT' ? new TcError(`${cmd} not found: install iproute2 (Debian/Ubuntu: apt-get install iproute2)`, '') : e),
    );
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else reject(new TcError(`${argv.join(' ')} failed: ${err.trim() || `exit ${String(code)}`}`, err));
    });
    if (input !== undefined && child.stdin !== null) {
      // tc may exit before reading everything (a failed batch): its exit status tells, not EPIPE.
      child.stdin.on('error', () => undefined);
      child.stdin.end(input);
    }
  });
}

/** tc from iproute2. `command` may prefix it (tests: ['ip', 'netns', 'exec', NS, 'tc']). */
export class TcCli implements TcRunner {
  private readonly command: readonly string[];
  private readonly timeoutMs: number;

  constructor(opts: { command?: readonly string[]; timeoutMs?: number } = {}) {
    this.command = opts.command ?? ['tc'];
    this.timeoutMs = opts.timeoutMs ?? 5000;
  }

  async batch(commands: readonly TcCommand[]): Promise<void> {
    if (commands.length === 0) return;
    await exec([...this.command, '-batch', '-'], commands.map((c) => c.join(' ')).join('\n') + '\n', this.timeoutMs);
  }

  run(args: readonly string[]): Promise<string> {
    return exec([...this.command, ...args], undefined, this.timeoutMs);
  }
}

export interface RootQdisc {
  readonly kind: string;
  readonly handle: string;
}

/** The root qdisc of a device (`tc -j qdisc show dev X`); throws when the device does not exist. */
export async function rootQdisc(tc: TcRunner, device: string): Promise<RootQdisc | undefined> {
  const list = JSON.parse(await tc.run(['-j', 'qdisc', 'show', 'dev', device])) as { kind?: string; handle?: string; root?: boolean }[];
  const root = list.find((q) => q.root === true);
  return root === undefined ? undefined : { kind: String(root.kind), handle: String(root.handle) };
}

/** Kernel defaults (pfifo_fast, mq, noqueue, fq_codel as default_qdisc) carry handle 0:. */
export const isKernelDefault = (q: RootQdisc | undefined): boolean => q === undefined || q.handle === '0:';
export const isOurs = (q: RootQdisc | undefined): boolean => q?.kind === 'htb' && q.handle === `${QOS_HANDLE.toString(16)}:`;

/** Counters of ModelGuard's classes (default: those without levels) from `tc -s class show dev X` text. */
export function parseClassCounters(text: string, classes: readonly QosClassSpec[] = qosClasses([])): QosClassCounters[] {
  const out: QosClassCounters[] = [];
  for (const block of text.split(/\n(?=class )/)) {
    const id = /^class htb ([0-9a-f]+:[0-9a-f]+)/.exec(block)?.[1];
    const c = classes.find((k) => `${QOS_HANDLE.toString(16)}:${k.minor.toString(16)}` === id);
    if (c === undefined || id === undefined) continue;
    const sent = /Sent (\d+) bytes (\d+) pkt \(dropped (\d+), overlimits (\d+)/.exec(block);
    const backlog = /backlog (\d+)([KMG]?)b/.exec(block);
    const scale: Record<string, number> = { '': 1, K: 1e3, M: 1e6, G: 1e9 };
    out.push({
      name: c.name,
      groups: c.groups.join(','),
      classid: id,
      bytes: Number(sent?.[1] ?? 0),
      packets: Number(sent?.[2] ?? 0),
      drops: Number(sent?.[3] ?? 0),
      overlimits: Number(sent?.[4] ?? 0),
      backlogBytes: Number(backlog?.[1] ?? 0) * (scale[backlog?.[2] ?? ''] ?? 1),
    });
  }
  return out;
}

/** The MTU of an interface of this network namespace; 1500 when it cannot be read (not here, not Linux). */
export function interfaceMtu(device: string, sysNet = '/sys/class/net'): number {
  try {
    const mtu = Number(readFileSync(`${sysNet}/${device}/mtu`, 'utf8').trim());
    return Number.isInteger(mtu) && mtu >= 68 ? mtu : 1500;
  } catch {
    return 1500;
  }
}

/** Whether this process may change traffic control (CAP_NET_ADMIN in its effective set). */
export function hasNetAdmin(statusFile = '/proc/self/status'): boolean {
  try {
    const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync(statusFile, 'utf8'))?.[1];
    return hex !== undefined && (BigInt(`0x${hex}`) & (1n << 12n)) !== 0n;
  } catch {
    return false; // not Linux
  }
}
