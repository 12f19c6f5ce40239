/**
 * The `modelguard` command line. Each subcommand is a thin composition of library parts.
 *
 * Commands are defined here, but each loads its module with import() when it runs: a proxy never
 * pays for the Kubernetes client, `validate` never for the gRPC server (docs/build.md,
 * "What each role loads"; test/fitness/lazy-loading.test.ts).
 */
import { Command } from 'commander';
import { ListenError, type ListenerKind } from '../net/listen.ts';
import { DEFAULTS } from '../config/defaults.ts';
import { refuseSilentFlags, type FlagRule } from './flags.ts';
import type { Running } from './roles.ts';

/** Each command's flag for each listener, named when that listener cannot bind. */
const LISTEN_FLAGS = {
  up: { http: '--http', grpc: '--grpc', admin: '--admin', mqtt: '--mqtt' },
  controller: { controller: '--admin', webhook: '--webhook' },
  broker: { broker: '--listen', admin: '--admin', mqtt: '--mqtt' },
  proxy: { http: '--listen', grpc: '--grpc', admin: '--admin' },
} as const satisfies Record<string, Partial<Record<ListenerKind, string>>>;

function fail(err: unknown, flags?: Partial<Record<ListenerKind, string>>): never {
  if (err instanceof ListenError) err.withFlag(flags?.[err.listener]);
  // A ConfigError's message is the file:line list itself; checked by name so this file stays light.
  if (err instanceof Error && err.name === 'ConfigError') process.stderr.write(`${err.message}\n`);
  else process.stderr.write(`modelguard: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}

const ROLE_HELP = Object.entries(DEFAULTS.gateway.adminByRole).map(([r, a]) => `${r} ${a}`).join(', ');

/** The admin URL `status` and `top` read: --admin, else the default of --role (default up). */
function adminUrl(o: { admin?: string; role?: string }): string {
  if (o.admin !== undefined) return o.admin;
  const role = o.role ?? 'up';
  const addr = (DEFAULTS.gateway.adminByRole as Record<string, string>)[role];
  if (addr === undefined) throw new Error(`--role ${role} is not a role; use one of: ${ROLE_HELP}`);
  return `http://${addr}`;
}

const program = new Command('modelguard').description('Inference governance for edge computing').version('0.1.0');

program
  .command('up')
  .description('run everything on one box; without --config, the embedded demo')
  .option('-c, --config <path>', 'configuration file or directory')
  .option('--http <addr>', 'inference HTTP listener (overrides the Gateway)')
  .option('--grpc <addr>', 'inference gRPC listener (overrides the Gateway)')
  .option('--admin <addr>', 'admin listener (overrides the Gateway)')
  .option('--mqtt <url>', 'MQTT broker URL, or where the embedded broker listens (overrides the Gateway); demo default mqtt://127.0.0.1:1883')
  .action((o: { config?: string; http?: string; grpc?: string; admin?: string; mqtt?: string }) =>
    serve(async () => {
      const { up } = await import('./up.ts');
      return up(o);
    }, LISTEN_FLAGS.up),
  );

program
  .command('validate')
  .description('check configuration; exits non-zero with file:line errors')
  .requiredOption('-c, --config <path>', 'configuration file or directory')
  .action(async (o: { config: string }) => {
    try {
      const { loadConfig } = await import('../config/index.ts');
      const loaded = await loadConfig(o.config);
      for (const w of loaded.warnings) process.stderr.write(`warning: ${w.file}:${w.line ?? 0}: ${w.message}\n`);
      const s = loaded.snapshot;
      process.stdout.write(
        `ok: ${loaded.resources.length} resources in ${loaded.sources.length} file(s); ` +
          `${Object.keys(s.groups).length} groups, ${Object.keys(s.backends).length} backends, ${Object.keys(s.models).length} models, ` +
          `${Object.keys(s.apps).length} apps; hash ${s.hash.slice(0, 12)}\n`,
      );
    } catch (err) {
      fail(err);
    }
  });

const keys = program.command('keys').description('API keys');
keys
  .command('create')
  .description('print a new key or token once (on stderr), and the exact configuration that accepts it (on stdout)')
  .option('--app <name>', 'an API key for this app: prints the App resource with its sha256')
  .option('--kind <kind>', 'a token instead: node (nodeTokens), proxy (proxies[].tokens) or admin (adminTokens)')
  .option('--group <name>', 'with --app: service group of the App snippet (default "default")')
  .option('--name <name>', 'with --kind proxy: name of the proxy credential (default "proxy")')
  .action(async (o: { app?: string; kind?: string; group?: string; name?: string }) => {
    try {
      const { keysCreate } = await import('./keys.ts');
      const { secret, snippet } = keysCreate(o);
      process.stderr.write(secret);
      process.stdout.write(snippet);
    } catch (err) {
      fail(err);
    }
  });

program
  .command('status')
  .description('what is running and how the accelerator is shared')
  .option('--admin <url>', `admin listener URL (default up's, http://${DEFAULTS.gateway.adminByRole.up}; see --role)`)
  .option('--role <role>', `the default admin port of a role on this box: ${ROLE_HELP}`)
  .option('--token <token>', 'admin token (or MODELGUARD_ADMIN_TOKEN)')
  .action(async (o: { admin?: string; role?: string; token?: string }, cmd: Command) => {
    try {
      refuseSilentFlags(cmd, [{ option: 'role', flag: '--role', works: o.admin === undefined, needs: 'it picks the default admin URL of a role, and --admin gives the URL; give one of them' }]);
      if (o.token) process.env['MODELGUARD_ADMIN_TOKEN'] = o.token;
      const { printStatus } = await import('./status.ts');
      await printStatus(adminUrl(o));
    } catch (err) {
      fail(err);
    }
  });

program
  .command('top')
  .description('the live view of the dashboard in a terminal (q quits)')
  .option('--admin <url>', `admin listener URL (default up's, http://${DEFAULTS.gateway.adminByRole.up}; see --role)`)
  .option('--role <role>', `the default admin port of a role on this box: ${ROLE_HELP}`)
  .option('-n, --iterations <n>', 'draw n frames and exit', (v: string) => Number.parseInt(v, 10))
  .option('--token <token>', 'admin token (or MODELGUARD_ADMIN_TOKEN)')
  .action(async (o: { admin?: string; role?: string; iterations?: number; token?: string }, cmd: Command) => {
    try {
      refuseSilentFlags(cmd, [{ option: 'role', flag: '--role', works: o.admin === undefined, needs: 'it picks the default admin URL of a role, and --admin gives the URL; give one of them' }]);
      if (o.token) process.env['MODELGUARD_ADMIN_TOKEN'] = o.token;
      const { top } = await import('./top.ts');
      await top(adminUrl(o), o.iterations === undefined ? {} : { iterations: o.iterations });
    } catch (err) {
      fail(err);
    }
  });

program
  .command('demo-load')
  .description('overload the demo (or a configuration\'s apps) for a while, and print what each group got and the split')
  .option('--seconds <n>', 'how long to drive the load', (v: string) => Number(v), 8)
  .option('-c, --config <path>', "drive this configuration's apps instead of the running demo (with --key)")
  .option('--key <app=key>', 'with --config: an app to drive and its API key (repeat)', (v: string, prev: string[]) => [...prev, v], [] as string[])
  .option('--url <url>', 'inference HTTP URL (default the demo\'s, or the configuration\'s listeners.http)')
  .option('--admin <url>', 'admin listener URL (default the demo\'s, or the configuration\'s)')
  .option('--model <name>', 'model to call (default iris in the demo; with --config the first model every app may use)')
  .option('--concurrency <n>', 'requests each app keeps outstanding (default 2 × slots + 2)', (v: string) => Number.parseInt(v, 10))
  .action(async (o: { seconds: number; config?: string; key: string[]; url?: string; admin?: string; model?: string; concurrency?: number }) => {
    try {
      const { demoLoad } = await import('./demo-load.ts');
      await demoLoad(o);
    } catch (err) {
      fail(err);
    }
  });

/**
 * Runs until SIGINT/SIGTERM, then stops cleanly. The handlers are in place before anything starts:
 * a signal that arrives while the role is starting (or right after it printed its addresses) waits
 * for the start and then stops it, instead of killing the process mid-way.
 */
function serve(start: () => Promise<Running>, flags: Partial<Record<ListenerKind, string>>): Promise<void> {
  const running = Promise.resolve().then(start);
  const shutdown = (): void => {
    running
      .then((r) => r.stop())
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
  return running.then(
    () => undefined,
    (err: unknown) => fail(err, flags),
  );
}

const collect = (v: string, prev: string[]): string[] => [...prev, ...v.split(',').filter(Boolean)];

program
  .command('controller')
  .description('control plane: reads resources, serves each broker and proxy its snapshot, and the admin API')
  .option('-c, --config <path>', 'file mode: configuration file or directory (watched)')
  .option('--kubernetes', 'Kubernetes mode: read the modelguard.io CRDs of --namespace (in-cluster credentials, else KUBECONFIG)')
  .option('--namespace <ns>', 'namespace of the CRDs, the Lease and the webhook Secret', process.env['POD_NAMESPACE'] ?? 'modelguard-system')
  .option('--webhook <addr>', 'Kubernetes mode: serve the sidecar injection webhook (TLS) here, e.g. 0.0.0.0:9443')
  .option('--admin <addr>', 'listener for the node and admin APIs (overrides the Gateway)')
  .option('--heartbeat <ms>', 'heartbeat interval nodes keep, ms', (v: string) => Number.parseInt(v, 10))
  .action((o: { config?: string; kubernetes?: boolean; namespace: string; webhook?: string; admin?: string; heartbeat?: number }, cmd: Command) =>
    serve(async () => {
      const k8s = o.kubernetes === true;
      refuseSilentFlags(cmd, [
        { option: 'webhook', flag: '--webhook', works: k8s, needs: 'the sidecar injection webhook runs in Kubernetes mode only; add --kubernetes, or drop --webhook' },
        { option: 'namespace', flag: '--namespace', works: k8s, needs: 'it picks the namespace of the CRDs in Kubernetes mode only; add --kubernetes, or drop --namespace' },
      ]);
      const { runController } = await import('./roles.ts');
      return runController({
        ...(o.config ? { config: o.config } : {}),
        ...(o.kubernetes ? { kubernetes: { namespace: o.namespace } } : {}),
        ...(o.webhook ? { webhook: o.webhook } : {}),
        ...(o.admin ? { admin: o.admin } : {}),
        ...(o.heartbeat ? { heartbeatMs: o.heartbeat } : {}),
      });
    }, LISTEN_FLAGS.controller,
    ),
  );

program
  .command('broker')
  .description('node data plane: queues, scheduler and slots; takes calls from proxies')
  .option('--controller <url>', 'managed: the controller to follow')
  .option('-c, --config <path>', 'standalone: configuration file or directory')
  .option('--name <node>', 'node name (required with --controller; picks the Backends whose spec.nodes list it)')
  .option('--listen <addr>', 'broker listener for proxies (overrides the Gateway, default 0.0.0.0:8010)')
  .option('--admin <addr>', 'admin listener (overrides the Gateway)')
  .option('--mqtt <url>', 'MQTT broker URL, or where the embedded broker listens (overrides the Gateway)')
  .option('--node-token-file <path>', 'token for the controller (or MODELGUARD_NODE_TOKEN)')
  .action((o: { controller?: string; config?: string; name?: string; listen?: string; admin?: string; mqtt?: string; nodeTokenFile?: string }, cmd: Command) =>
    serve(async () => {
      refuseSilentFlags(cmd, [nodeTokenRule(o)]);
      const { runBroker, secret } = await import('./roles.ts');
      return runBroker({ ...o, ...optional('nodeToken', secret(o.nodeTokenFile, 'MODELGUARD_NODE_TOKEN')) });
    }, LISTEN_FLAGS.broker),
  );

program
  .command('proxy')
  .description("an app's sidecar (or a shared gateway): authenticates, enforces its apps' policy, forwards to its broker")
  .option('--controller <url>', 'managed: the controller to follow')
  .option('-c, --config <path>', 'standalone: configuration file or directory')
  .option('--name <node>', 'node name (required with --controller)')
  .option('--app <name>', 'app this proxy serves; repeat or comma-separate for a shared gateway (default every app)', collect, [])
  .option('--broker <url>', 'broker listener URL, e.g. http://127.0.0.1:8010')
  .option('--listen <addr>', 'inference HTTP listener (overrides the Gateway, default 0.0.0.0:8080)')
  .option('--grpc <addr>', 'inference gRPC listener (overrides the Gateway, default 0.0.0.0:8081)')
  .option('--admin <addr>', 'admin listener (overrides the Gateway)')
  .option('--token-file <path>', 'this proxy\'s token for the broker (or MODELGUARD_PROXY_TOKEN); optional with --tls-cert when the certificate identifies the proxy')
  .option('--tls-cert <path>', 'PEM client certificate for an https:// broker (Gateway.spec.brokerTls)')
  .option('--tls-key <path>', 'PEM private key of --tls-cert')
  .option('--tls-ca <path>', "PEM CA file that signed the broker's certificate (default the system CAs)")
  .option('--tls-server-name <name>', "name checked against the broker's certificate (default the URL host)")
  .option('--node-token-file <path>', 'token for the controller (or MODELGUARD_NODE_TOKEN)')
  .action(
    (o: {
      controller?: string;
      config?: string;
      name?: string;
      app: string[];
      broker?: string;
      listen?: string;
      grpc?: string;
      admin?: string;
      tokenFile?: string;
      nodeTokenFile?: string;
      tlsCert?: string;
      tlsKey?: string;
      tlsCa?: string;
      tlsServerName?: string;
    }, cmd: Command) =>
      serve(async () => {
        refuseSilentFlags(cmd, [nodeTokenRule(o)]);
        // Before anything opens a connection with undici: a sidecar's idle memory (wasm-tier.ts).
        (await import('./wasm-tier.ts')).keepWasmOnBaselineTier();
        const { runProxy, secret } = await import('./roles.ts');
        return runProxy({
          ...o,
          apps: o.app,
          ...optional('token', secret(o.tokenFile, 'MODELGUARD_PROXY_TOKEN')),
          ...optional('nodeToken', secret(o.nodeTokenFile, 'MODELGUARD_NODE_TOKEN')),
        });
      }, LISTEN_FLAGS.proxy,
      ),
  );

/** The controller token means nothing to a standalone node, which has no controller. */
function nodeTokenRule(o: { controller?: string }): FlagRule {
  return { option: 'nodeTokenFile', flag: '--node-token-file', works: o.controller !== undefined, needs: 'it is the token for the controller, and with --config there is none; use it with --controller URL' };
}

function optional<K extends string>(key: K, value: string | undefined): Partial<Record<K, string>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, string>);
}

// demo-model's and qos's definitions live with their modules (the demo server loads onnxruntime and
// a gRPC server; qos its planner): read them only when that command, or the help listing every
// command, is asked for.
const args = process.argv.slice(2);
const first = args.find((a) => !a.startsWith('-'));
const listing = (first === undefined && !args.includes('-V') && !args.includes('--version')) || first === 'help';
if (listing || first === 'demo-model') program.addCommand((await import('../demo/cli.ts')).demoModelCommand());
if (listing || first === 'qos') program.addCommand((await import('./qos.ts')).qosCommand(fail));

await program.parseAsync(process.argv);
