// HTTP requests exactly as written (fetch would normalise the path and choose headers itself): for tests of the
// API's boundary (paths, origins, chunked bodies, slow clients).
import { request as httpRequest } from 'node:http';
import { type Socket, connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface RawResponse {
  status: number;
  body: string;
  json: Record<string, unknown> | undefined;
  headers: Record<string, string | string[] | undefined>;
}

export interface RawOptions {
  headers?: Record<string, string>;
  /** The body in one piece (Content-Length), or chunks sent with Transfer-Encoding: chunked. */
  body?: string | Buffer;
  chunks?: readonly Buffer[];
  timeoutMs?: number;
}

/** One request over a fresh connection; rejects on a reset or no answer within timeoutMs. */
export function rawRequest(base: string, method: string, path: string, options: RawOptions = {}): Promise<RawResponse> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        method,
        path,
        // Said explicitly: node's client sends a DELETE's body unframed otherwise.
        headers: {
          ...(options.chunks === undefined ? {} : { 'Transfer-Encoding': 'chunked' }),
          ...(options.body === undefined ? {} : { 'Content-Length': String(Buffer.byteLength(options.body)) }),
          ...options.headers,
        },
        agent: false,
        timeout: options.timeoutMs ?? 10_000,
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => {
          let json: Record<string, unknown> | undefined;
          if ((res.headers['content-type'] ?? '').includes('application/json')) json = JSON.parse(body) as Record<string, unknown>;
          resolve({ status: res.statusCode ?? 0, body, json, headers: res.headers });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer to ${method} ${path} in time`)));
    req.on('error', reject);
    if (options.chunks !== undefined) {
      void (async () => {
        for (const chunk of options.chunks ?? []) {
          if (req.destroyed) return;
          if (!req.write(chunk)) {
            await new Promise<void>((r) => {
              const done = (): void => {
                req.off('drain', done).off('close', done);
                r();
              };
              req.on('drain', done).on('close', done);
            });
          }
        }
        req.end();
      })();
    } else {
      req.end(options.body);
    }
  });
}

/** A TCP connection to the API's host and port (closed by `sockets.forEach(s => s.destroy())`). */
export function rawSocket(base: string): Promise<Socket> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: url.hostname, port: Number(url.port) }, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Polls `probe` until it resolves true; the time it took (ms), or rejects after `timeoutMs`. */
export async function timeUntil(probe: () => Promise<boolean>, timeoutMs: number, stepMs = 100): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < timeoutMs) {
    if (await probe().catch(() => false)) return performance.now() - started;
    await sleep(stepMs);
  }
  throw new Error(`not within ${timeoutMs} ms`);
}
