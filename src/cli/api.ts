// The CLI's side of the local HTTP API: where it is (--api, daemon.json, the default), the token it sends, and
// requests with one-line errors when the daemon cannot be reached.
import { readFileSync } from 'node:fs';
import { join as joinPath } from 'node:path';
import { DEFAULTS } from '../config/defaults.js';
import { DAEMON_FILE, TOKEN_FILE } from '../config/files.js';

/** Parsed flags of one command. */
export type Values = Record<string, unknown>;

/** An error answer of the API: `{error, message}`. */
export type ErrorBody = Record<string, unknown>;

export function dataDirOf(values: Values): string {
  return (values['data-dir'] as string | undefined) ?? process.env.QUORUMD_DATA_DIR ?? DEFAULTS.dataDir;
}

/** The API token to send: --token, $QUORUMD_TOKEN, or the data dir's (if readable). */
function tokenOf(values: Values): string | undefined {
  const explicit = (values.token as string | undefined) ?? process.env.QUORUMD_TOKEN;
  if (explicit !== undefined && explicit !== '') return explicit;
  try {
    return readFileSync(joinPath(dataDirOf(values), TOKEN_FILE), 'utf8').trim() || undefined;
  } catch {
    return undefined; // not readable here: requests go without (fine on loopback)
  }
}

/** The local API endpoint: --api, $QUORUMD_API, the daemon.json of --data-dir / $QUORUMD_DATA_DIR, or the default. */
function apiBase(values: Values): string {
  const explicit = (values.api as string | undefined) ?? process.env.QUORUMD_API;
  if (explicit !== undefined) return explicit.replace(/\/+$/, '');
  const dataDir = dataDirOf(values);
  try {
    const daemon = JSON.parse(readFileSync(joinPath(dataDir, DAEMON_FILE), 'utf8')) as { http?: string };
    if (typeof daemon.http === 'string') return daemon.http;
  } catch {
    // no running daemon recorded there: fall back to the default address
  }
  return `http://${DEFAULTS.http}`;
}

/** A JSON answer: the expected body when ok, an error body otherwise. */
export type JsonAnswer<T> = { readonly ok: true; readonly status: number; readonly body: T } | { readonly ok: false; readonly status: number; readonly body: ErrorBody };

export class Api {
  readonly base: string;
  private readonly token: string | undefined;

  constructor(values: Values) {
    this.base = apiBase(values);
    this.token = tokenOf(values);
  }

  /** The Authorization header, when there is a token to send. */
  authHeaders(): Record<string, string> {
    return this.token === undefined ? {} : { Authorization: `Bearer ${this.token}` };
  }

  async request(method: string, path: string, body?: Uint8Array, headers: Record<string, string> = {}): Promise<Response> {
    try {
      return await fetch(`${this.base}${path}`, { method, body, headers: { ...headers, ...this.authHeaders() }, signal: AbortSignal.timeout(30_000) });
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
      throw new Error(`cannot reach the quorumd API at ${this.base} (${cause}); is the daemon running?`, { cause: error });
    }
  }

  async getJson<T>(path: string): Promise<JsonAnswer<T>> {
    const res = await this.request('GET', path);
    const body = (await res.json()) as unknown;
    return res.ok ? { ok: true, status: res.status, body: body as T } : { ok: false, status: res.status, body: body as ErrorBody };
  }
}

export function query(params: Record<string, unknown>): string {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (typeof v === 'string') search.set(k, v);
  const text = search.toString();
  return text.length > 0 ? `?${text}` : '';
}

export function failWith(body: ErrorBody): number {
  process.stderr.write(`quorumd: ${String(body.error ?? 'error')}: ${String(body.message ?? JSON.stringify(body))}\n`);
  return 1;
}
