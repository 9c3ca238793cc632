// Who may use the local API: the Host header check (a DNS-rebinding defence: a web page on another origin
// cannot reach the API through a name it controls), the same-origin check of state-changing requests (a web
// page on another origin cannot make a browser act on the API: Origin / Sec-Fetch-Site) and the bearer token,
// required when bound off loopback.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, networkInterfaces } from 'node:os';
import { join as joinPath } from 'node:path';
import type http from 'node:http';
import { TOKEN_FILE } from '../config/files.js';
import { HttpError } from './errors.js';

/** The API token, in the data dir (mode 0600); `quorumd token` prints it. */
export { TOKEN_FILE };

const TOKEN_PATTERN = /^[A-Za-z0-9_-]{32,128}$/;

/** Reads the data dir's API token (undefined when there is none yet). */
export function readToken(dataDir: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(joinPath(dataDir, TOKEN_FILE), 'utf8').trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  if (!TOKEN_PATTERN.test(text)) throw new Error(`${joinPath(dataDir, TOKEN_FILE)} does not hold a token (32-128 URL-safe base64 characters)`);
  return text;
}

/** The data dir's API token, generated (32 random bytes, file mode 0600) when absent. */
export function loadOrCreateToken(dataDir: string): string {
  const existing = readToken(dataDir);
  if (existing !== undefined) return existing;
  const token = randomBytes(32).toString('base64url');
  const path = joinPath(dataDir, TOKEN_FILE);
  writeFileSync(path, `${token}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600); // in case a umask widened it
  return token;
}

/** 127.0.0.0/8, ::1 (also IPv4-mapped) and localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

function isWildcard(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === '0.0.0.0' || h === '::' || h === '';
}

/** How long the set of this machine's names and addresses is reused by the Host check. */
const HOST_NAMES_REFRESH_MS = 5_000;

export interface AccessOptions {
  /** The host the API is bound to (as configured: an IP, a name, 0.0.0.0 or ::). */
  readonly bindHost: string;
  /** The bound port (known once listening). */
  readonly port: () => number;
  readonly token: string;
}

/** Methods that change nothing: the only ones a page on another origin may have a browser send. */
const SAFE_METHODS = new Set(['GET', 'HEAD']);

/** Host check, same-origin check and token check for every request; throws HttpError 400/401/403. */
export class AccessPolicy {
  readonly tokenRequired: boolean;
  private readonly token: Buffer;
  private names: Set<string> | undefined;
  private namesAtMs = 0;

  constructor(private readonly options: AccessOptions) {
    this.tokenRequired = !isLoopbackHost(options.bindHost);
    this.token = Buffer.from(options.token);
  }

  /** `open`: a route that reveals nothing (liveness, the page's static files) needs no token. */
  check(req: http.IncomingMessage, open: boolean): void {
    this.checkHost(req.headers.host);
    if (!SAFE_METHODS.has(req.method ?? 'GET')) this.checkSameOrigin(req);
    const header = req.headers.authorization;
    if (header === undefined) {
      if (this.tokenRequired && !open) {
        throw new HttpError(401, 'unauthorized', 'this API listens beyond loopback: send Authorization: Bearer <token> (see quorumd token)');
      }
      return;
    }
    // A token given is always checked, also on loopback (a wrong one is a client bug worth reporting).
    const match = /^Bearer ([A-Za-z0-9_-]{1,256})$/.exec(header);
    const given = Buffer.from(match?.[1] ?? '');
    if (given.length !== this.token.length || !timingSafeEqual(given, this.token)) {
      throw new HttpError(401, 'unauthorized', 'the bearer token is wrong (see quorumd token)');
    }
  }

  private checkHost(host: string | undefined): void {
    if (host === undefined || host === '') throw new HttpError(400, 'bad_request', 'the Host header is missing');
    if (!this.isOwnHost(host)) {
      throw new HttpError(403, 'forbidden_host', `Host ${JSON.stringify(host.slice(0, 100))} is not this API's address (use the address it listens on, or localhost)`);
    }
  }

  /** `host[:port]` names this API: one of its names and the port it is served on. */
  private isOwnHost(host: string): boolean {
    const parsed = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::([0-9]{1,5}))?$/.exec(host);
    if (parsed === null) return false;
    const name = (parsed[1] ?? '').toLowerCase();
    const port = parsed[2] === undefined ? 80 : Number(parsed[2]);
    return port === this.options.port() && this.hostNames().has(name.replace(/^\[|\]$/g, ''));
  }

  /**
   * A state-changing request must not come from a page on another origin: an Origin header, when sent, must be
   * this API's own (http://one-of-its-names:its-port), and Sec-Fetch-Site must not say cross-site (nor
   * same-site, another port or subdomain, unless the Origin is ours). Clients that send neither (curl, the CLI)
   * pass; browsers send Origin with every POST, PUT and DELETE.
   */
  private checkSameOrigin(req: http.IncomingMessage): void {
    const origin = req.headers.origin;
    const site = req.headers['sec-fetch-site'];
    if (Array.isArray(origin) || Array.isArray(site)) throw crossSite('Origin or Sec-Fetch-Site is given twice');
    const ownOrigin = origin !== undefined && this.isOwnOrigin(origin);
    if (origin !== undefined && !ownOrigin) {
      throw crossSite(`a request from ${JSON.stringify(origin.slice(0, 100))} may not change anything here (only this API's own page may)`);
    }
    if (site === undefined) return;
    const kind = site.trim().toLowerCase();
    if (kind === 'same-origin' || kind === 'none' || (kind === 'same-site' && ownOrigin)) return;
    throw crossSite(`a ${JSON.stringify(site.slice(0, 40))} request may not change anything here (Sec-Fetch-Site)`);
  }

  private isOwnOrigin(origin: string): boolean {
    const match = /^http:\/\/([^/?#@]+)$/i.exec(origin.trim());
    return match?.[1] !== undefined && this.isOwnHost(match[1]);
  }

  /** Names a request may use for this API: loopback, the bound address, and (bound to all) this machine's. */
  private hostNames(): Set<string> {
    // Built on every request otherwise (with a getifaddrs call when bound to all interfaces): reuse it for a few
    // seconds, short enough to follow an address change (DHCP, Wi-Fi roaming).
    const now = performance.now();
    if (this.names === undefined || now - this.namesAtMs > HOST_NAMES_REFRESH_MS) {
      this.names = this.computeHostNames();
      this.namesAtMs = now;
    }
    return this.names;
  }

  private computeHostNames(): Set<string> {
    const names = new Set(['localhost', '127.0.0.1', '::1']);
    const bind = this.options.bindHost.replace(/^\[|\]$/g, '').toLowerCase();
    if (!isWildcard(bind)) {
      names.add(bind);
      return names;
    }
    const host = hostname().toLowerCase();
    names.add(host);
    names.add(`${host}.local`);
    for (const addrs of Object.values(networkInterfaces())) {
      for (const a of addrs ?? []) names.add(a.address.toLowerCase().replace(/%.*$/, ''));
    }
    return names;
  }
}

function crossSite(message: string): HttpError {
  return new HttpError(403, 'cross_site', message);
}
