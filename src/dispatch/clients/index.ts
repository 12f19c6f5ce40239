/** The backend client for an endpoint, chosen by its backend's protocol. */
import type { BackendProtocol } from '../../core/snapshot.ts';
import type { BackendClient } from '../client.ts';
import type { LinkOptions } from '../link.ts';
import { GrpcBackendClient } from './grpc.ts';
import { HttpBackendClient } from './http.ts';

/**
 * `connections`: HTTP keep-alive connections to keep (gRPC multiplexes all calls on one channel).
 * `link`: TLS and credentials of an HTTP link (the cloud); gRPC backends use the URL's scheme only.
 */
export function createBackendClient(protocol: BackendProtocol, url: string, connections: number, link?: LinkOptions): BackendClient {
  return protocol === 'kserve-v2-grpc' ? new GrpcBackendClient(url) : new HttpBackendClient(url, connections, link);
}
