/**
 * Composition roots for the separate roles (docs/deployment.md): a broker alone (the data plane of
 * one node, taking calls from proxies on its broker listener) and a proxy (an app's sidecar, or a
 * shared gateway, forwarding to its broker). `startGateway` is the all-in-one.
 */
import type { Server } from 'node:http';
import type { Snapshot } from '../core/snapshot.ts';
import { Broker } from '../broker/broker.ts';
import { Pipeline } from '../pipeline/pipeline.ts';
import { createHttpServer } from '../adapters/http/server.ts';
import { createLinkServer } from '../link/server.ts';
import { RemoteBroker } from '../link/remote.ts';
import { closeServer, listen } from './listen.ts';
import { observe, type Observers } from './observe.ts';

export interface Role {
  readonly pipeline: Pipeline;
  readonly observers: Observers;
  readonly adminUrl: string;
  /** The current configuration. */
  readonly current: Snapshot;
  /** Swaps configuration without dropping queued or in-flight work. */
  reload(next: Snapshot): void;
  close(): Promise<void>;
}

export interface BrokerRole extends Role {
  readonly broker: Broker;
  /** Where proxies send calls. */
  readonly linkUrl: string;
}

export interface ProxyRole extends Role {
  readonly remote: RemoteBroker;
  readonly httpUrl: string;
}

async function compose(
  plane: Broker | RemoteBroker,
  servers: (pipeline: Pipeline) => { server: Server; addr: string }[],
  admin: string,
): Promise<{ pipeline: Pipeline; observers: Observers; adminUrl: string; urls: string[]; reload: (next: Snapshot) => void; close: () => Promise<void> }> {
  const pipeline = new Pipeline(plane);
  const observers = observe(pipeline);
  const listeners = servers(pipeline);
  plane.start();
  const urls: string[] = [];
  const closeAll = async (): Promise<void> => {
    observers.closeStreams();
    const open = [...listeners.map((s) => s.server), observers.adminServer].filter((s) => s.listening);
    await Promise.all(open.map((s) => closeServer(s)));
    await observers.close();
    await plane.close();
  };
  try {
    for (const s of listeners) urls.push(await listen(s.server, s.addr));
    const adminUrl = await listen(observers.adminServer, admin);
    return {
      pipeline,
      observers,
      adminUrl,
      urls,
      reload: (next) => {
        pipeline.apply(next);
        observers.reload(next);
      },
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

export async function startBroker(snapshot: Snapshot, opts: { listen?: string; admin?: string } = {}): Promise<BrokerRole> {
  const broker = new Broker(snapshot);
  const c = await compose(
    broker,
    (pipeline) => [{ server: createLinkServer(pipeline), addr: opts.listen ?? snapshot.gateway.listeners.broker }],
    opts.admin ?? snapshot.gateway.listeners.admin,
  );
  return {
    broker,
    pipeline: c.pipeline,
    observers: c.observers,
    adminUrl: c.adminUrl,
    linkUrl: c.urls[0] as string,
    get current() {
      return broker.current;
    },
    reload: c.reload,
    close: c.close,
  };
}

export interface ProxyOptions {
  /** Broker listener URL. */
  readonly broker: string;
  /** This proxy's token. */
  readonly token: string;
  readonly http?: string;
  readonly admin?: string;
}

export async function startProxy(snapshot: Snapshot, opts: ProxyOptions): Promise<ProxyRole> {
  const remote = new RemoteBroker(snapshot, { url: opts.broker, token: opts.token });
  const c = await compose(
    remote,
    (pipeline) => [{ server: createHttpServer(pipeline), addr: opts.http ?? snapshot.gateway.listeners.http }],
    opts.admin ?? snapshot.gateway.listeners.admin,
  );
  return {
    remote,
    pipeline: c.pipeline,
    observers: c.observers,
    adminUrl: c.adminUrl,
    httpUrl: c.urls[0] as string,
    get current() {
      return remote.current;
    },
    reload: c.reload,
    close: c.close,
  };
}
