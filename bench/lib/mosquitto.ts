/** Debian's mosquitto in its own process, on a free loopback port, with a generated configuration. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chmodSync } from 'node:fs';
import { canConnect, freePort } from './ports.ts';
import { spawnTracked, tempDir, waitFor, waitForExit, type Service } from './processes.ts';

export async function startMosquitto(): Promise<Service & { url: string }> {
  const dir = tempDir('mosquitto');
  chmodSync(dir, 0o755);
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence false', 'log_dest stderr', 'log_type error', 'user root', 'max_inflight_messages 0', 'set_tcp_nodelay true', ''].join('\n'));
  const child = spawnTracked('mosquitto', '/usr/sbin/mosquitto', ['-c', conf], { raiseFileLimit: true });
  child.stdout?.resume();
  child.stderr?.resume();
  await waitFor('mosquitto', async () => ((await canConnect(port)) ? true : undefined), 10_000, 20);
  if (child.pid === undefined) throw new Error('mosquitto: no pid');
  return { child, pid: child.pid, url: `mqtt://127.0.0.1:${port}`, stop: (graceMs) => waitForExit(child, graceMs) };
}
