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

export interface SseEvent {
  id: string | undefined;
  event: string;
  data: string;
}

/** An open /watch stream: `next()` resolves with the next event (rejects after `timeoutMs`). */
export interface Watcher {
  next(timeoutMs?: number): Promise<SseEvent>;
  close(): void;
  readonly status: number;
}

export async function openWatch(base: string, query = '', headers: Record<string, string> = {}): Promise<Watcher> {
  const abort = new AbortController();
  const res = await fetch(`${base}/watch${query}`, { headers, signal: abort.signal });
  const queue: SseEvent[] = [];
  const waiters: Array<(e: SseEvent) => void> = [];
  let buffer = '';
  const push = (e: SseEvent): void => {
    const w = waiters.shift();
    if (w !== undefined) w(e);
    else queue.push(e);
  };
  if (res.body !== null && res.status === 200) {
    const decoder = new TextDecoder();
    void (async () => {
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          buffer += decoder.decode(chunk, { stream: true });
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const e: SseEvent = { id: undefined, event: 'message', data: '' };
            let fields = 0;
            for (const line of block.split('\n')) {
              if (line.startsWith(':')) continue;
              const [name, ...rest] = line.split(': ');
              const value = rest.join(': ');
              if (name === 'id') e.id = value;
              else if (name === 'event') e.event = value;
              else if (name === 'data') e.data = value;
              else if (name === 'retry') continue;
              else continue;
              fields += 1;
            }
            if (fields > 0 && (e.data !== '' || e.event !== 'message')) push(e);
          }
        }
      } catch {
        // aborted by close()
      }
    })();
  }
  return {
    status: res.status,
    next(timeoutMs = 10_000): Promise<SseEvent> {
      const queued = queue.shift();
      if (queued !== undefined) return Promise.resolve(queued);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no /watch event within ${timeoutMs} ms`)), timeoutMs);
        waiters.push((e) => {
          clearTimeout(timer);
          resolve(e);
        });
      });
    },
    close(): void {
      abort.abort();
    },
  };
}
