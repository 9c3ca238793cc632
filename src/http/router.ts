// The route table and its dispatch: method + path pattern → handler, each route declaring its checks (token or
// open, the methods it takes: 405 with Allow for others, query parameters, body limit and Content-Type). The
// dispatch applies them in one order for every route: target, access, method, query, then the handler (which
// parses its own parameters before it reads a body, so a bad request is refused before its body is read).
import type http from 'node:http';
import { assert } from '../core/assert.js';
import type { AccessPolicy } from './access.js';
import { HttpError } from './errors.js';
import { checkJsonContentType, noQuery, parseQuery, parseTarget } from './parse.js';

export const METHODS = ['GET', 'HEAD', 'PUT', 'POST', 'DELETE'] as const;
export type Method = (typeof METHODS)[number];

/** What a route takes as a request body; a route without one never reads it. */
export interface BodyRule {
  /** Bytes at most (declared or, chunked, as they arrive): 413 `tooLarge` above. 0: no body at all. */
  readonly bytesMax: number;
  readonly tooLarge: 'value_too_large' | 'body_not_allowed';
  /**
   * `json`: Content-Type application/json required (415 otherwise: a cross-site form or no-cors request cannot
   * send it); `json-or-none`: for a route whose body may be empty, none is accepted too; `raw`: bytes, whatever
   * their Content-Type.
   */
  readonly type: 'json' | 'json-or-none' | 'raw';
}

export interface RouteRequest {
  readonly req: http.IncomingMessage;
  readonly res: http.ServerResponse;
  readonly method: Method;
  /** The path as sent (see parseTarget). */
  readonly path: string;
  /** A prefix route's rest of the path after the prefix, still percent-encoded ('' for an exact route). */
  readonly rest: string;
  readonly query: URLSearchParams;
  /** The body under the route's BodyRule (Content-Type first, then the limit). */
  body(): Promise<Uint8Array>;
}

export interface Route {
  readonly methods: readonly Method[];
  /** An exact path, or a prefix ending in `*` (e.g. `/kv/*`; the rest is RouteRequest.rest). */
  readonly path: string;
  /**
   * No token needed: the route reveals nothing (liveness, the page's static files). The Host check applies to
   * every route, and so does the cross-site refusal of state-changing methods (anything but GET and HEAD),
   * also to unknown paths, so a page on another origin learns nothing from them (AccessPolicy.check).
   */
  readonly open?: boolean;
  /** `none`: any query parameter is a 400 before the handler runs; `handler`: the handler parses its own. */
  readonly query: 'none' | 'handler';
  readonly body?: BodyRule;
  readonly handle: (request: RouteRequest) => Promise<void> | void;
}

/** The routes of one path pattern. */
interface PathRoutes {
  readonly routes: Route[];
  readonly open: boolean;
}

/** Routes by path: exact paths first, then prefixes (longest first). */
export class RouteTable {
  private readonly exact = new Map<string, PathRoutes>();
  private readonly prefixes: Array<{ readonly prefix: string; readonly entry: PathRoutes }> = [];

  constructor(routes: readonly Route[]) {
    const byPattern = new Map<string, PathRoutes>();
    for (const route of routes) {
      const entry = byPattern.get(route.path) ?? { routes: [], open: route.open === true };
      assert(entry.open === (route.open === true), `routes of ${route.path} disagree on open`);
      for (const method of route.methods) {
        assert(!entry.routes.some((r) => r.methods.includes(method)), `two routes for ${method} ${route.path}`);
      }
      if (route.body !== undefined) assert(route.methods.every((m) => m !== 'GET' && m !== 'HEAD'), `GET ${route.path} reads no body`);
      entry.routes.push(route);
      byPattern.set(route.path, entry);
    }
    for (const [pattern, entry] of byPattern) {
      if (pattern.endsWith('*')) this.prefixes.push({ prefix: pattern.slice(0, -1), entry });
      else this.exact.set(pattern, entry);
    }
    this.prefixes.sort((a, b) => b.prefix.length - a.prefix.length);
  }

  match(path: string): { readonly entry: PathRoutes; readonly rest: string } | undefined {
    const exact = this.exact.get(path);
    if (exact !== undefined) return { entry: exact, rest: '' };
    const prefix = this.prefixes.find((p) => path.startsWith(p.prefix));
    return prefix === undefined ? undefined : { entry: prefix.entry, rest: path.slice(prefix.prefix.length) };
  }
}

export interface DispatchOptions {
  readonly access: AccessPolicy;
  /** A request refused by the access checks (401/403), for the audit log. */
  readonly onRefused?: ((req: http.IncomingMessage, status: number, code: string) => void) | undefined;
}

/** Runs one request through the table; every failure is thrown (the server turns it into the JSON answer). */
export async function dispatch(table: RouteTable, options: DispatchOptions, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const { path, query } = parseTarget(req.url ?? '/');
  const method = req.method ?? 'GET';
  const matched = table.match(path);
  try {
    options.access.check(req, matched?.entry.open === true);
  } catch (error) {
    if (error instanceof HttpError) options.onRefused?.(req, error.status, error.code);
    throw error;
  }
  if (matched === undefined) throw new HttpError(404, 'not_found', `no route for ${path}`);
  const route = matched.entry.routes.find((r) => (r.methods as readonly string[]).includes(method));
  if (route === undefined) {
    const allowed = matched.entry.routes.flatMap((r) => r.methods).join(', ');
    throw new HttpError(405, 'method_not_allowed', `${method} is not allowed here; use ${allowed}`, { allow: allowed });
  }
  if (route.query === 'none') parseQuery(noQuery, query);
  const rule = route.body;
  await route.handle({
    req,
    res,
    method: method as Method,
    path,
    rest: matched.rest,
    query,
    body: () => {
      assert(rule !== undefined, `${method} ${route.path} takes no body`);
      if (rule.type !== 'raw') checkJsonContentType(req.headers['content-type'], rule.type === 'json');
      return readBody(req, rule.bytesMax, rule.tooLarge);
    },
  });
}

/** Bytes of a refused (413) body still read and dropped so the client gets the answer instead of a reset. */
const REFUSED_BODY_DRAIN_BYTES_MAX = 1024 * 1024;

/**
 * The request body, at most `bytesMax` bytes (declared or, chunked, as it arrives); 413 above. The rest of a
 * refused body is read and dropped (up to REFUSED_BODY_DRAIN_BYTES_MAX, then the connection is closed), so the
 * client reads the 413 instead of a reset.
 */
function readBody(req: http.IncomingMessage, bytesMax: number, code: 'value_too_large' | 'body_not_allowed'): Promise<Uint8Array> {
  const tooLarge = (size: string | undefined): HttpError => {
    if (bytesMax === 0) return new HttpError(413, code, 'this request takes no body');
    return new HttpError(413, code, size === undefined ? `the body exceeds ${bytesMax} bytes` : `the body is ${size} bytes; at most ${bytesMax} allowed`);
  };
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > bytesMax) {
    drain(req, 0);
    return Promise.reject(tooLarge(declared));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > bytesMax) {
        req.off('data', onData);
        drain(req, size);
        reject(tooLarge(undefined));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      resolve(new Uint8Array(body.buffer, body.byteOffset, body.byteLength));
    });
    req.on('error', reject);
  });
}

/** Reads and drops the rest of a refused body; closes the connection once more than the drain allowance came. */
function drain(req: http.IncomingMessage, alreadyRead: number): void {
  let dropped = alreadyRead;
  req.on('data', (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > REFUSED_BODY_DRAIN_BYTES_MAX) req.destroy();
  });
  req.resume();
}
