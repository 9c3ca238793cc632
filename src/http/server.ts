// The local HTTP API (node:http, zod-validated parameters): key-value routes, membership operations
// (/cluster/approve|admit|remove|leave), /status, /metrics, /healthz and /readyz. Every
// error is JSON `{error, message}` with a 4xx/503 status; bodies, headers and request time are bounded.
import http from 'node:http';
import type { Socket } from 'node:net';
import { z } from 'zod';
import { toString as u8ToString } from 'uint8arrays';
import { DEFAULTS } from '../config/defaults.js';
import { QuorumUnavailableError, QuorumdError } from '../core/errors.js';
import { type ConsistencyLevel, parseConsistency } from '../core/quorum.js';
import { type ClientContext, type VersionedRecord, liveSiblings, lwwWinner } from '../core/record.js';
import type { ContextCodec } from '../node/context-token.js';
import { type Receipt, isDeleted } from '../core/receipt.js';
import type { AccessPolicy } from './access.js';
import { type ApiMetrics, type Operation, consistencyLabel } from './metrics.js';
import { type LocalRecords, WatchSlots, listKeys, watch } from './browse.js';
import { HttpError, STATUS_BY_CODE } from './errors.js';
import { checkJsonContentType, checkKey, noQuery, parseContextHeader, parseKey, parseQuery, parseTarget, parseWrite, readQuery } from './parse.js';
import { PAGE_CSS, PAGE_HTML, PAGE_JS } from './page.js';
import type { ChangeFeed } from '../node/changes.js';
import { AUDIT_READ_MAX, type AuditKind } from '../node/audit.js';

export { HttpError } from './errors.js';
export { parseKey } from './parse.js';

export interface KvBackend {
  write(
    key: string,
    value: Uint8Array | null,
    context: ClientContext | undefined,
    level: ConsistencyLevel,
    wait?: { level: ConsistencyLevel; timeoutMs?: number | undefined },
  ): Promise<{
    record: VersionedRecord;
    /** What the client has seen after this write (its superseded versions and its own), for the token. */
    context: ClientContext;
    acks: number;
    required: number;
    created: boolean;
    complete: boolean;
  }>;
  /** Who holds the current version of `key` (asks every replica). */
  receipt(key: string): Promise<Receipt>;
  read(key: string, level: ConsistencyLevel): Promise<{ record: VersionedRecord | undefined; replies: number; required: number }>;
  status(): object;
  /** This device's replica, for listings. */
  readonly records: LocalRecords;
  /** Every change stored here, for /watch. */
  readonly changes: ChangeFeed;
}

/** Operator membership operations; each resolves with the resulting configuration (as JSON). */
export interface MembershipBackend {
  approve(peerId: string): Promise<object>;
  /** Opens this device's admission window for `forMs` (0 closes it); resolves with the admission state. */
  admit(forMs: number): Promise<object>;
  remove(peerId: string): Promise<object>;
  /** Removes this device, then stops the daemon. */
  leave(): Promise<object>;
}

export interface HttpOptions {
  readonly membership?: MembershipBackend;
  readonly backend: KvBackend;
  /** Encodes and authenticates causal-context tokens (each bound to one key). */
  readonly contexts: ContextCodec;
  readonly valueBytesMax: number;
  readonly keyBytesMax: number;
  /** Time a client has to send a whole request (slow clients cannot hold a socket forever). */
  readonly requestTimeoutMs?: number;
  /** Host and token checks (src/http/access.ts). */
  readonly access: AccessPolicy;
  readonly metrics: ApiMetrics;
  /** Readiness for /readyz: the reasons it is not ready (none: ready). */
  readonly readiness: () => readonly string[];
  /** The audit log's newest entries (GET /audit). */
  readonly audit: (limit: number, kind: AuditKind | undefined) => readonly object[];
  /** A request refused by the access checks (401/403), for the audit log. */
  readonly onRefused?: (req: http.IncomingMessage, status: number, code: string) => void;
}

const auditQuery = z
  .object({
    limit: z.string().regex(/^[1-9][0-9]{0,3}$/, `an integer from 1 to ${AUDIT_READ_MAX}`).optional(),
    kind: z.enum(['started', 'stopped', 'membership', 'operator', 'quorum-failure', 'unauthorized', 'catch-up']).optional(),
  })
  .strict();

const PAGE_FILES = new Map([
  ['/', { type: 'text/html; charset=utf-8', body: PAGE_HTML }],
  ['/ui/app.css', { type: 'text/css; charset=utf-8', body: PAGE_CSS }],
  ['/ui/app.js', { type: 'text/javascript; charset=utf-8', body: PAGE_JS }],
]);

/** Open connections at most (a device's API serves a few local clients and pages). */
const CONNECTIONS_MAX = 256;

/**
 * How often node checks every connection against headersTimeout and requestTimeout. Its default, 30 s, let a
 * slow client hold a connection up to 30 s past the header timeout.
 */
const CONNECTIONS_CHECK_MS = 1_000;

/** Bytes of a refused (413) body still read and dropped so the client gets the answer instead of a reset. */
const REFUSED_BODY_DRAIN_BYTES_MAX = 1024 * 1024;

export function createHttpServer(options: HttpOptions): http.Server {
  const slots = new WatchSlots();
  const server = http.createServer(
    {
      maxHeaderSize: 16 * 1024,
      requestTimeout: options.requestTimeoutMs ?? 30_000,
      headersTimeout: DEFAULTS.httpHeadersTimeoutMs,
      connectionsCheckingInterval: CONNECTIONS_CHECK_MS,
    },
    (req, res) => {
      handle(options, slots, req, res).catch((error: unknown) => sendError(res, error));
    },
  );
  server.keepAliveTimeout = 5_000;
  server.maxConnections = CONNECTIONS_MAX;
  server.maxRequestsPerSocket = 10_000;
  capConnectionsPerAddress(server, DEFAULTS.httpConnectionsPerIpMax);
  return server;
}

/** Closes a new connection at once when its address already holds `perAddressMax` (one client cannot take all). */
function capConnectionsPerAddress(server: http.Server, perAddressMax: number): void {
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? '';
    const count = open.get(address) ?? 0;
    if (count >= perAddressMax) {
      socket.destroy();
      return;
    }
    open.set(address, count + 1);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left <= 0) open.delete(address);
      else open.set(address, left);
    });
  });
}

async function handle(options: HttpOptions, slots: WatchSlots, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const { path, query } = parseTarget(req.url ?? '/');
  const method = req.method ?? 'GET';
  // The page's own files hold no data: a browser loads them without the token, then asks for it.
  const page = PAGE_FILES.get(path);
  try {
    options.access.check(req, path === '/healthz' || path === '/readyz' || page !== undefined);
  } catch (error) {
    if (error instanceof HttpError) options.onRefused?.(req, error.status, error.code);
    throw error;
  }
  if (page !== undefined) {
    allow(method, ['GET', 'HEAD']);
    parseQuery(noQuery, query);
    res.writeHead(200, {
      'Content-Type': page.type,
      'Content-Length': Buffer.byteLength(page.body),
      'Cache-Control': 'no-cache',
      'Content-Security-Policy': "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'",
      'X-Content-Type-Options': 'nosniff',
    });
    res.end(method === 'HEAD' ? undefined : page.body);
    return;
  }
  if (path === '/audit') {
    allow(method, ['GET', 'HEAD']);
    const params = parseQuery(auditQuery, query);
    const limit = params.limit === undefined ? 100 : Number(params.limit);
    if (limit > AUDIT_READ_MAX) throw new HttpError(400, 'bad_request', `invalid query parameter limit: at most ${AUDIT_READ_MAX}`);
    return sendJson(res, 200, { entries: options.audit(limit, params.kind) });
  }
  if (path === '/healthz') {
    allow(method, ['GET', 'HEAD']);
    parseQuery(noQuery, query);
    return sendJson(res, 200, { ok: true });
  }
  if (path === '/readyz') {
    allow(method, ['GET', 'HEAD']);
    parseQuery(noQuery, query);
    const reasons = options.readiness();
    if (reasons.length === 0) return sendJson(res, 200, { ready: true });
    return sendJson(res, 503, { error: 'not_ready', message: reasons.join('; '), reasons });
  }
  if (path === '/metrics') {
    allow(method, ['GET', 'HEAD']);
    parseQuery(noQuery, query);
    const text = await options.metrics.text();
    res.writeHead(200, { 'Content-Type': options.metrics.contentType, 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
    return;
  }
  if (path === '/status') {
    allow(method, ['GET', 'HEAD']);
    parseQuery(noQuery, query);
    return sendJson(res, 200, options.backend.status());
  }
  if (path === '/cluster/approve' || path === '/cluster/admit' || path === '/cluster/remove' || path === '/cluster/leave') {
    allow(method, ['POST']);
    parseQuery(noQuery, query);
    const membership = options.membership;
    if (membership === undefined) throw new HttpError(404, 'not_found', `no route for ${path}`);
    // The peer body is JSON and says so; leave takes none (curl -X POST sends no Content-Type).
    checkJsonContentType(req.headers['content-type'], path !== '/cluster/leave');
    const body = await readBody(req, 4096, 'value_too_large');
    if (path === '/cluster/leave') return sendJson(res, 200, await membership.leave());
    if (path === '/cluster/admit') return sendJson(res, 200, await membership.admit(parseAdmitBody(body)));
    const peer = parsePeerBody(body);
    return sendJson(res, 200, path === '/cluster/approve' ? await membership.approve(peer) : await membership.remove(peer));
  }
  if (path === '/kv') {
    allow(method, ['GET', 'HEAD']);
    const browse = { records: options.backend.records, keyBytesMax: options.keyBytesMax, checkKey, parseQuery };
    return sendJson(res, 200, listKeys(browse, query));
  }
  if (path === '/watch') {
    allow(method, ['GET']);
    return watch({ changes: options.backend.changes, slots, keyBytesMax: options.keyBytesMax, checkKey, parseQuery }, query, req, res);
  }
  if (path.startsWith('/kv/')) {
    allow(method, ['GET', 'HEAD', 'PUT', 'DELETE']);
    const operation: Operation = method === 'PUT' ? 'put' : method === 'DELETE' ? 'delete' : 'get';
    const consistency = consistencyLabel(query.get(operation === 'get' ? 'r' : 'w'));
    const started = performance.now();
    res.once('finish', () => options.metrics.request(operation, consistency, res.statusCode, (performance.now() - started) / 1000));
    const key = parseKey(path.slice('/kv/'.length), options.keyBytesMax);
    if (method === 'PUT') return putKey(options, key, query, req, res);
    if (method === 'DELETE') return deleteKey(options, key, query, req, res);
    return getKey(options, key, query, res);
  }
  throw new HttpError(404, 'not_found', `no route for ${path}`);
}

async function putKey(options: HttpOptions, key: string, query: URLSearchParams, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const { level, wait } = parseWrite(query);
  const context = parseContextHeader(options.contexts, req.headers['x-causal-context'], key);
  // Raw bytes, whatever their Content-Type: cross-site requests are refused by Origin/Sec-Fetch-Site (access.ts).
  const value = await readBody(req, options.valueBytesMax, 'value_too_large');
  const outcome = await options.backend.write(key, value, context, level, wait);
  options.metrics.writeAcks('put', outcome.acks);
  sendWritten(options, res, key, outcome, outcome.created ? 201 : 200);
}

function sendWritten(
  options: HttpOptions,
  res: http.ServerResponse,
  key: string,
  outcome: { context: ClientContext; acks: number; required: number; complete: boolean },
  status: number,
): void {
  // Not the written record's context: that also covers versions this write left concurrent, which the client
  // never saw, and writing again with it would silently drop them.
  const context = options.contexts.encode(key, outcome.context.vv, outcome.context.unseen);
  res.setHeader('X-Causal-Context', context);
  if (outcome.complete) return sendJson(res, status, { context, acks: outcome.acks, required: outcome.required });
  // Durable at the write's level, not yet at the wait level: follow it with the receipt.
  sendJson(res, 202, { context, acks: outcome.acks, required: outcome.required, complete: false, receipt: `/kv/${encodeURIComponent(key)}?explain=1` });
}

async function deleteKey(options: HttpOptions, key: string, query: URLSearchParams, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const { level, wait } = parseWrite(query);
  const context = parseContextHeader(options.contexts, req.headers['x-causal-context'], key);
  await readBody(req, 0, 'body_not_allowed');
  const outcome = await options.backend.write(key, null, context, level, wait);
  options.metrics.writeAcks('delete', outcome.acks);
  sendWritten(options, res, key, outcome, 200);
}

/** GET /kv/KEY?explain=1: the durability receipt (which members hold the current version). */
async function explainKey(options: HttpOptions, key: string, res: http.ServerResponse): Promise<void> {
  const receipt = await options.backend.receipt(key);
  if (receipt.current === undefined) throw new HttpError(404, 'not_found', `no replica holds key ${JSON.stringify(key)}`);
  const context = options.contexts.encode(key, receipt.current.context);
  res.setHeader('X-Causal-Context', context);
  sendJson(res, 200, {
    key,
    context,
    deleted: isDeleted(receipt.current),
    siblings: receipt.current.siblings.length,
    votersHolding: receipt.votersHolding,
    quorum: receipt.quorum,
    atQuorum: receipt.atQuorum,
    everywhere: receipt.everywhere,
    replicas: receipt.replicas,
  });
}

async function getKey(options: HttpOptions, key: string, search: URLSearchParams, res: http.ServerResponse): Promise<void> {
  const query = parseQuery(readQuery, search);
  if (query.explain !== undefined) {
    if (query.r !== undefined || query.resolve !== undefined) throw new HttpError(400, 'bad_request', 'explain takes no other parameter');
    return explainKey(options, key, res);
  }
  const level = parseConsistency(query.r, 'r');
  const { record } = await options.backend.read(key, level);
  if (record !== undefined && Object.keys(record.context).length > 0) {
    res.setHeader('X-Causal-Context', options.contexts.encode(key, record.context));
  }
  const live = record === undefined ? [] : liveSiblings(record);
  if (record === undefined || live.length === 0) {
    throw new HttpError(404, 'not_found', `key ${JSON.stringify(key)} does not exist`);
  }
  if (query.resolve === 'lww') {
    const winner = lwwWinner(record);
    if (winner === undefined || winner.value === null) {
      throw new HttpError(404, 'not_found', `key ${JSON.stringify(key)} was deleted (last writer wins)`);
    }
    res.setHeader('X-Siblings', String(record.siblings.length));
    return sendBytes(res, 200, winner.value);
  }
  if (record.siblings.length === 1 && live[0] !== undefined) {
    return sendBytes(res, 200, live[0].value as Uint8Array);
  }
  sendJson(res, 300, {
    context: options.contexts.encode(key, record.context),
    siblings: record.siblings.map((s) => ({
      value: s.value === null ? null : u8ToString(s.value, 'base64'),
      deleted: s.value === null,
      writer: s.dot.actor.split('~')[0],
      hlc: { wallMs: s.hlc.wallMs, logical: s.hlc.logical },
    })),
  });
}

// ---------------------------------------------------------------- parsing

function allow(method: string, methods: readonly string[]): void {
  if (!methods.includes(method)) {
    throw new HttpError(405, 'method_not_allowed', `${method} is not allowed here; use ${methods.join(', ')}`, {
      allow: methods.join(', '),
    });
  }
}

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

// ---------------------------------------------------------------- responses

function sendJson(res: http.ServerResponse, status: number, body: object): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function sendBytes(res: http.ServerResponse, status: number, value: Uint8Array): void {
  res.writeHead(status, { 'Content-Type': 'application/octet-stream', 'Content-Length': value.length });
  res.end(value);
}

const peerBody = z.object({ peer: z.string().regex(/^[1-9A-HJ-NP-Za-km-z]{32,128}$/, 'a base58 libp2p peer ID') }).strict();

function parsePeerBody(body: Uint8Array): string {
  let json: unknown;
  try {
    json = JSON.parse(u8ToString(body));
  } catch {
    throw new HttpError(400, 'bad_request', 'the body must be JSON {"peer": "<peer ID>"}');
  }
  const parsed = peerBody.safeParse(json);
  if (!parsed.success) throw new HttpError(400, 'bad_request', `bad body: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
  return parsed.data.peer;
}

const admitBody = z
  .object({
    forMs: z
      .number()
      .int('forMs must be an integer of milliseconds')
      .min(0, 'forMs must be at least 0 (0 closes the window)')
      .max(DEFAULTS.admissionWindowMsMax, `forMs must be at most ${DEFAULTS.admissionWindowMsMax} (an hour)`),
  })
  .strict();

function parseAdmitBody(body: Uint8Array): number {
  let json: unknown;
  try {
    json = JSON.parse(u8ToString(body));
  } catch {
    throw new HttpError(400, 'bad_request', 'the body must be JSON {"forMs": <milliseconds>}');
  }
  const parsed = admitBody.safeParse(json);
  if (!parsed.success) throw new HttpError(400, 'bad_request', `bad body: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
  return parsed.data.forMs;
}

function sendError(res: http.ServerResponse, error: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (error instanceof HttpError) {
    if ('allow' in error.extra) res.setHeader('Allow', String((error.extra as { allow: string }).allow));
    return sendJson(res, error.status, { error: error.code, message: error.message });
  }
  if (error instanceof QuorumUnavailableError) {
    return sendJson(res, 503, {
      error: error.code,
      message: error.message,
      acks: error.acks,
      required: error.required,
      voters: error.voters,
    });
  }
  if (error instanceof QuorumdError) {
    return sendJson(res, STATUS_BY_CODE[error.code], { error: error.code, message: error.message });
  }
  sendJson(res, 500, { error: 'internal', message: error instanceof Error ? error.message : String(error) });
}
