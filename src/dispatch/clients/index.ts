/** The backend client for an endpoint, chosen by its backend's protocol. */
import type { BackendProtocol } from '../../core/snapshot.ts';
import type { BackendClient, BackendRequest, BackendResponse } from '../client.ts';
import type { LinkOptions } from '../link.ts';
import type { PortBlock } from './bound-connect.ts';
import { HttpBackendClient } from './http.ts';

/**
 * `connections`: HTTP keep-alive connections to keep (gRPC multiplexes all calls on one channel).
 * `link`: TLS and credentials of an HTTP link (the cloud); gRPC backends use the URL's scheme only.
 * `ports`: the local ports an HTTP client's connections leave from (a priority level's block).
 */
export function createBackendClient(protocol: BackendProtocol, url: string, connections: number, link?: LinkOptions, ports?: PortBlock): BackendClient {
  return protocol === 'kserve-v2-grpc' ? new LazyGrpcClient(url) : new HttpBackendClient(url, connections, link, ports);
}

/** Whether a protocol's client can keep one pool per priority level (gRPC has one channel). */
export const hasLevelPools = (protocol: BackendProtocol): boolean => protocol !== 'kserve-v2-grpc';

let grpcModule: Promise<typeof import('./grpc.ts')> | undefined;

/**
 * The gRPC client (grpc-js, protobufjs) is loaded with the first kserve-v2-grpc backend, not by
 * every broker: the import starts when the endpoint is created, and calls go straight to the real
 * client once it is there (docs/build.md, "What each role loads").
 */
class LazyGrpcClient implements BackendClient {
  private client: BackendClient | undefined;
  private readonly ready: Promise<BackendClient>;

  constructor(url: string) {
    this.ready = (grpcModule ??= import('./grpc.ts')).then((m) => (this.client = new m.GrpcBackendClient(url)));
    this.ready.catch(() => undefined); // reported by the first call
  }

  request(req: BackendRequest): Promise<BackendResponse> {
    return this.client ? this.client.request(req) : this.ready.then((c) => c.request(req));
  }

  probe(path: string, timeoutMs: number): Promise<boolean> {
    return this.client ? this.client.probe(path, timeoutMs) : this.ready.then((c) => c.probe(path, timeoutMs));
  }

  close(): Promise<void> {
    return this.ready.then(
      (c) => c.close(),
      () => undefined,
    );
  }
}
