/** Debian's mosquitto in its own process, on a free loopback port, with a generated configuration. */
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { chmodSync } from 'node:fs';
import { spawnTracked, tempDir, waitFor, waitForExit, type Service } from './processes.ts';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export async function startMosquitto(): Promise<Service & { url: string }> {
  const dir = tempDir('mosquitto');
  chmodSync(dir, 0o755);
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence false', 'log_dest stderr', 'log_type error', 'user root', 'max_inflight_messages 0', 'set_tcp_nodelay true', ''].join('\n'));
  const child = spawnTracked('mosquitto', '/usr/sbin/mosquitto', ['-c', conf], { raiseFileLimit: true });
  child.stdout?.resume();
  child.stderr?.resume();
  await waitFor(
    'mosquitto',
    () =>
      new Promise<true | undefined>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(undefined));
      }),
    10_000,
    20,
  );
  if (child.pid === undefined) throw new Error('mosquitto: no pid');
  return { child, pid: child.pid, url: `mqtt://127.0.0.1:${port}`, stop: (graceMs) => waitForExit(child, graceMs) };
}
