/**
 * How many calls reached the model server, health probes left out: the measure of "a refused
 * request never reaches the model server" in the security tests. The demo server records every
 * call it receives (HTTP and gRPC, before any fault); start it with a large `recordLimit`.
 */
import type { ModelServer } from '../../src/demo/index.ts';

const PROBE = /\/health\/|\/ready$|\/(ServerReady|ServerLive|ModelReady)$/;

export function modelCalls(server: ModelServer): number {
  return server.requests().filter((r) => !PROBE.test(r.url)).length;
}

/** Calls other than probes received so far, by path (for failure messages). */
export function modelCallPaths(server: ModelServer): string[] {
  return server.requests().filter((r) => !PROBE.test(r.url)).map((r) => `${r.method} ${r.url}`);
}
