/** Reads ModelGuard's admin API from the benchmark process (a few requests, not load). */
import { request } from 'undici';
import { waitFor } from './processes.ts';

export interface GroupStatus {
  readonly name: string;
  readonly queued: number;
  readonly inflight: number;
  readonly maxLength: number;
}

export interface Status {
  readonly groups: readonly GroupStatus[];
}

export async function status(adminUrl: string): Promise<Status> {
  const res = await request(`${adminUrl}/api/v1/status`);
  if (res.statusCode !== 200) throw new Error(`GET /api/v1/status: ${res.statusCode}`);
  return (await res.body.json()) as Status;
}

export async function group(adminUrl: string, name = 'default'): Promise<GroupStatus | undefined> {
  return (await status(adminUrl)).groups.find((g) => g.name === name);
}

/** Waits until ModelGuard reports ready (every backend has a healthy endpoint). */
export async function waitReady(adminUrl: string, timeoutMs = 15_000): Promise<void> {
  await waitFor(
    'ModelGuard /readyz',
    async () => {
      const res = await request(`${adminUrl}/readyz`).catch(() => undefined);
      if (!res) return undefined;
      await res.body.dump();
      return res.statusCode === 200 ? true : undefined;
    },
    timeoutMs,
  );
}
