/**
 * ModelGuard's roles as real processes (`modelguard controller|broker|proxy`) on loopback, for the
 * multi-process tests: each prints its listener URLs, which are read from its output.
 */
import { spawn, type ChildProcess } from 'node:child_process';

const ROOT = new URL('../../', import.meta.url).pathname;

export interface RoleProcess {
  readonly urls: Record<string, string>;
  readonly output: () => string;
  readonly child: ChildProcess;
  /** SIGTERM and wait; SIGKILL with `hard`. */
  stop(hard?: boolean): Promise<void>;
}

/**
 * Starts `modelguard <args>` (`node <nodeArgs> bin/modelguard.js <args>`) and resolves once every
 * pattern (name → regexp with one URL group) matched its output.
 */
export function startRole(args: string[], patterns: Record<string, RegExp>, env: Record<string, string> = {}, nodeArgs: readonly string[] = []): Promise<RoleProcess> {
  const child = spawn(process.execPath, [...nodeArgs, 'bin/modelguard.js', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    const check = (): void => {
      const urls: Record<string, string> = {};
      for (const [name, re] of Object.entries(patterns)) {
        const m = re.exec(out);
        if (!m) return;
        urls[name] = m[1] as string;
      }
      child.stdout.off('data', check);
      resolve({
        urls,
        child,
        output: () => out,
        stop: (hard = false) =>
          new Promise<void>((done) => {
            if (child.exitCode !== null || child.signalCode !== null) return done();
            child.once('exit', () => done());
            child.kill(hard ? 'SIGKILL' : 'SIGTERM');
          }),
      });
    };
    child.stdout.on('data', check);
    child.once('exit', (code) => reject(new Error(`modelguard ${args[0]} exited ${code}:\n${out}`)));
  });
}

export function startController(config: string, admin = '127.0.0.1:0'): Promise<RoleProcess> {
  return startRole(['controller', '--config', config, '--admin', admin, '--heartbeat', '300'], { url: /controller +(http:\/\/\S+)/ });
}

export function startBrokerProcess(controller: string, name: string, nodeToken: string): Promise<RoleProcess> {
  return startRole(
    ['broker', '--controller', controller, '--name', name, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'],
    { link: /broker listener (http:\/\/\S+)/, admin: /admin +(http:\/\/\S+)/ },
    { MODELGUARD_NODE_TOKEN: nodeToken },
  );
}

export function startProxyProcess(controller: string, name: string, app: string, broker: string, tokens: { node: string; proxy: string }): Promise<RoleProcess> {
  return startRole(
    ['proxy', '--controller', controller, '--name', name, '--app', app, '--broker', broker, '--listen', '127.0.0.1:0', '--grpc', '127.0.0.1:0', '--admin', '127.0.0.1:0'],
    { http: /inference HTTP +(http:\/\/\S+)/, admin: /admin +(http:\/\/\S+)/ },
    { MODELGUARD_NODE_TOKEN: tokens.node, MODELGUARD_PROXY_TOKEN: tokens.proxy },
  );
}

/** Waits until every role answers 200 on its admin /readyz (a proxy reaches its broker, a broker its model server). */
export async function waitAllReady(nodes: readonly RoleProcess[]): Promise<void> {
  for (const n of nodes) {
    let ready = false;
    for (let i = 0; i < 200 && !ready; i++) {
      ready = (await fetch(`${n.urls['admin']!}/readyz`).catch(() => undefined))?.status === 200;
      if (!ready) await new Promise((r) => setTimeout(r, 50));
    }
    if (!ready) throw new Error(`${n.urls['admin']!} never became ready:\n${n.output()}`);
  }
}

/**
 * The cluster of the two-app role tests: the controller over `dir`, one broker `node-1`, and
 * proxies `proxy-a` (app-a) and `proxy-b` (app-b), as separate processes, all ready. Each process
 * is pushed on `started` as soon as it runs (the caller stops them all, also when this throws).
 */
export async function twoProxyCluster(dir: string, tokens: { node: string; proxies: { 'proxy-a': string; 'proxy-b': string } }, started: RoleProcess[]): Promise<{ controller: RoleProcess; broker: RoleProcess; proxies: { a: string; b: string } }> {
  const controller = await startController(dir);
  started.push(controller);
  const ctl = controller.urls['url']!;
  const broker = await startBrokerProcess(ctl, 'node-1', tokens.node);
  started.push(broker);
  const proxies = await Promise.all([
    startProxyProcess(ctl, 'proxy-a', 'app-a', broker.urls['link']!, { node: tokens.node, proxy: tokens.proxies['proxy-a'] }),
    startProxyProcess(ctl, 'proxy-b', 'app-b', broker.urls['link']!, { node: tokens.node, proxy: tokens.proxies['proxy-b'] }),
  ]);
  started.push(...proxies);
  await waitAllReady([broker, ...proxies]);
  return { controller, broker, proxies: { a: proxies[0].urls['http']!, b: proxies[1].urls['http']! } };
}
