/** The backend client for an endpoint, chosen by its backend's protocol. */
import type { BackendProtocol } from '../../core/snapshot.ts';
import type { BackendClient } from '../client.ts';
import { GrpcBackendClient } from './grpc.ts';
import { HttpBackendClient } from './http.ts';

/** `connections`: HTTP keep-alive connections to keep (gRPC multiplexes all calls on one channel). */
export function createBackendClient(protocol: BackendProtocol, url: string, connections: number): BackendClient {
  return protocol === 'kserve-v2-grpc' ? new GrpcBackendClient(url) : new HttpBackendClient(url, connections);
}
