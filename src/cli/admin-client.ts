/** Reads the admin API, with the admin token from `--token` or MODELGUARD_ADMIN_TOKEN when set. */
export async function adminFetch(adminUrl: string, path: string): Promise<Response> {
  const token = process.env['MODELGUARD_ADMIN_TOKEN'];
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  return fetch(new URL(path, adminUrl), { headers, signal: AbortSignal.timeout(3000) });
}
