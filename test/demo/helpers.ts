/** Small HTTP helpers for the demo server tests (undici, one agent per test file). */
import { after } from 'node:test';
import { Agent, request } from 'undici';
import { startModelServer, type ModelServer } from '../../src/demo/index.ts';

export interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  readonly json: unknown;
}

export function newAgent(): Agent {
  return new Agent({ keepAliveTimeout: 1000 });
}

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export async function call(agent: Agent, url: string, opts: { method?: 'GET' | 'POST'; body?: unknown; headers?: Record<string, string>; headersTimeout?: number } = {}): Promise<Answer> {
  const res = await request(url, {
    dispatcher: agent,
    method: opts.method ?? (opts.body === undefined ? 'GET' : 'POST'),
    headers: { 'content-type': 'application/json', ...opts.headers },
    ...(opts.body !== undefined && { body: typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body) }),
    ...(opts.headersTimeout !== undefined && { headersTimeout: opts.headersTimeout }),
  });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, json: tryJson(text) };
}

export function inferBody(data: number[], shape = [1, data.length], name = 'input'): unknown {
  return { inputs: [{ name, shape, datatype: 'FP32', data }] };
}

/** Waits until `predicate` holds (polling every 2 ms), failing after `timeoutMs`. A state wait, not a fixed sleep. */
export async function until(predicate: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > deadline) throw new Error(`condition not met within ${timeoutMs}ms`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Model servers started by a test file, and one agent; all closed after the file's tests. */
export function useServers(): { agent: Agent; start: (...args: Parameters<typeof startModelServer>) => Promise<ModelServer> } {
  const agent = newAgent();
  const servers: ModelServer[] = [];
  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
    await agent.close();
  });
  return {
    agent,
    start: async (...args) => {
      const s = await startModelServer(...args);
      servers.push(s);
      return s;
    },
  };
}
