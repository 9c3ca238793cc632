// Small HTTP client helpers for tests that drive a daemon's local API.
export interface KvResponse {
  status: number;
  text: string;
  json: Record<string, unknown> | undefined;
  context: string | null;
}

export async function call(base: string, method: string, path: string, body?: string | Uint8Array, headers: Record<string, string> = {}): Promise<KvResponse> {
  const res = await fetch(`${base}${path}`, { method, body, headers, signal: AbortSignal.timeout(20_000) });
  const text = await res.text();
  let json: Record<string, unknown> | undefined;
  if ((res.headers.get('content-type') ?? '').includes('application/json')) json = JSON.parse(text) as Record<string, unknown>;
  return { status: res.status, text, json, context: res.headers.get('x-causal-context') };
}

export const put = (base: string, key: string, value: string, query = ''): Promise<KvResponse> =>
  call(base, 'PUT', `/kv/${encodeURIComponent(key)}${query}`, value);

export const get = (base: string, key: string, query = ''): Promise<KvResponse> =>
  call(base, 'GET', `/kv/${encodeURIComponent(key)}${query}`);

export const del = (base: string, key: string, query = ''): Promise<KvResponse> =>
  call(base, 'DELETE', `/kv/${encodeURIComponent(key)}${query}`);

export async function status(base: string): Promise<Record<string, unknown> & { quorum: { reachable: number; voters: number; writable: boolean }; role: string; epoch: number }> {
  const res = await call(base, 'GET', '/status');
  if (res.json === undefined) throw new Error(`status returned ${res.status}`);
  return res.json as never;
}
