// Parsing what an HTTP client sends: the request target (taken raw, never normalised), keys, query parameters,
// the write's `w`/`wait`/`timeoutMs`, JSON bodies' Content-Type and the causal-context header. Every failure is
// an HttpError (4xx) or a typed QuorumdError with a 4xx code; nothing here throws anything else.
import { z } from 'zod';
import { DEFAULTS } from '../config/defaults.js';
import { type ConsistencyLevel, parseConsistency } from '../core/quorum.js';
import type { ClientContext } from '../core/record.js';
import type { ContextCodec } from '../node/context-token.js';
import { HttpError } from './errors.js';

/** Characters a request target may hold as sent: printable ASCII (anything else must be percent-encoded). */
const TARGET_CHARS = /^[\x21-\x7e]*$/;
/** `.` and `..` path segments, also percent-encoded (what URL parsers resolve away). */
const DOT_SEGMENT = /^(?:\.|%2e){1,2}$/i;

export interface Target {
  /** The path exactly as sent (no `.`/`..` resolution, no backslash rewriting, still percent-encoded). */
  readonly path: string;
  readonly query: URLSearchParams;
}

/**
 * Splits an origin-form request target ("/path?query") without normalising it: a URL parser would resolve
 * `/kv/a/../good` to `/kv/good` and so alias keys. Paths with `.`/`..` segments are refused instead (400).
 */
export function parseTarget(target: string): Target {
  // Only origin-form targets: "//host/..." or absolute URLs would be read as a host.
  if (!target.startsWith('/') || target.startsWith('//')) {
    throw new HttpError(400, 'bad_request', 'the request target must be a path starting with a single /');
  }
  if (!TARGET_CHARS.test(target)) throw new HttpError(400, 'bad_request', 'the request target holds characters that must be percent-encoded');
  const hash = target.indexOf('#');
  const withoutFragment = hash < 0 ? target : target.slice(0, hash);
  const mark = withoutFragment.indexOf('?');
  const path = mark < 0 ? withoutFragment : withoutFragment.slice(0, mark);
  const search = mark < 0 ? '' : withoutFragment.slice(mark + 1);
  if (path.split('/').some((segment) => DOT_SEGMENT.test(segment))) {
    throw new HttpError(400, 'bad_request', 'the path has a "." or ".." segment; paths are taken as sent, never resolved (percent-encode a key\'s slashes as %2F)');
  }
  return { path, query: new URLSearchParams(search) };
}

/** Rejects control characters (C0, DEL, C1) in keys. */
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

export function checkKey(key: string): void {
  if (CONTROL_CHARS.test(key)) throw new HttpError(400, 'invalid_key', 'the key contains control characters');
}

/** A key from the path after `/kv/` (percent-decoded UTF-8, 1..keyBytesMax bytes, no control characters). */
export function parseKey(encoded: string, keyBytesMax: number): string {
  let key: string;
  try {
    key = decodeURIComponent(encoded);
  } catch {
    throw new HttpError(400, 'invalid_key', 'the key is not valid percent-encoded UTF-8');
  }
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes === 0) throw new HttpError(400, 'invalid_key', 'the key is empty');
  if (bytes > keyBytesMax) throw new HttpError(400, 'invalid_key', `the key is ${bytes} bytes; at most ${keyBytesMax} allowed`);
  checkKey(key);
  return key;
}

/** Query parameters against a strict schema: unknown or repeated parameters are a 400. */
export function parseQuery<T extends z.ZodTypeAny>(schema: T, query: URLSearchParams): z.infer<T> {
  // No prototype: "__proto__" or "toString" are parameter names like any other (and unknown ones, refused).
  const params = Object.create(null) as Record<string, string>;
  for (const [name, value] of query) {
    if (Object.hasOwn(params, name)) throw new HttpError(400, 'bad_request', `query parameter ${name} is given twice`);
    params[name] = value;
  }
  const parsed = schema.safeParse(params);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.join('.') || (issue?.code === 'unrecognized_keys' ? issue.keys.join(', ') : 'query');
    throw new HttpError(400, 'bad_request', `invalid query parameter ${where}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

export const noQuery = z.object({}).strict();

/** Longest wait a client may ask for (the write's own deadline is the daemon's request timeout). */
export const WAIT_TIMEOUT_MS_MAX = DEFAULTS.writeWaitMsMax;
const WAIT_TIMEOUT_ALLOWED = `milliseconds from 1 to ${WAIT_TIMEOUT_MS_MAX}`;

export const writeQuery = z
  .object({
    w: z.string().optional(),
    wait: z.string().optional(),
    timeoutMs: z
      .string()
      .regex(/^[1-9][0-9]{0,15}$/, WAIT_TIMEOUT_ALLOWED)
      .refine((text) => Number(text) <= WAIT_TIMEOUT_MS_MAX, WAIT_TIMEOUT_ALLOWED)
      .optional(),
  })
  .strict();

export const readQuery = z.object({ r: z.string().optional(), resolve: z.enum(['lww']).optional(), explain: z.enum(['1', 'true']).optional() }).strict();

export interface WriteParams {
  readonly level: ConsistencyLevel;
  readonly wait: { level: ConsistencyLevel; timeoutMs: number | undefined } | undefined;
}

/**
 * `w=LEVEL[&wait=LEVEL[&timeoutMs=MS]]`. The write answers once acknowledged at `w`; `wait` only ever adds to
 * that (the runtime waits for the stronger of the two, see Runtime.write), 202 when not reached in time.
 */
export function parseWrite(query: URLSearchParams): WriteParams {
  const params = parseQuery(writeQuery, query);
  const level = parseConsistency(params.w, 'w');
  if (params.wait === undefined) {
    if (params.timeoutMs !== undefined) throw new HttpError(400, 'bad_request', 'timeoutMs goes with wait=LEVEL');
    return { level, wait: undefined };
  }
  const timeoutMs = params.timeoutMs === undefined ? undefined : Number(params.timeoutMs);
  return { level, wait: { level: parseConsistency(params.wait, 'wait'), timeoutMs } };
}

/**
 * A body parsed as JSON must say so: `Content-Type: application/json` (a cross-site form or no-cors request can
 * only send text/plain, form-urlencoded or multipart). `required: false`: a route that takes no body accepts
 * none without a Content-Type.
 */
export function checkJsonContentType(contentType: string | undefined, required: boolean): void {
  if (contentType === undefined) {
    if (!required) return;
    throw new HttpError(415, 'unsupported_media_type', 'send the body as Content-Type: application/json');
  }
  if (!/^application\/json[ \t]*(?:;.*)?$/is.test(contentType.trim())) {
    throw new HttpError(415, 'unsupported_media_type', `Content-Type ${JSON.stringify(contentType.slice(0, 100))} is not application/json`);
  }
}

/** The X-Causal-Context header (a token bound to `key`), if given. */
export function parseContextHeader(contexts: ContextCodec, header: string | string[] | undefined, key: string): ClientContext | undefined {
  if (header === undefined) return undefined;
  if (Array.isArray(header)) throw new HttpError(400, 'invalid_context', 'X-Causal-Context is given twice');
  return contexts.decode(key, header.trim());
}
