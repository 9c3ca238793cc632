// Browsing this device's replica: GET /kv?prefix=&limit=&cursor= (a paged listing of live keys, read locally)
// and GET /watch?prefix= (Server-Sent Events of every change stored here, resumable with Last-Event-ID), with
// the watch slots: a watcher that stops reading is closed for good and never keeps a slot from a new one.
import type http from 'node:http';
import { z } from 'zod';
import { DEFAULTS } from '../config/defaults.js';
import { type VersionedRecord, liveSiblings } from '../core/record.js';
import type { ChangeEvent, ChangeFeed } from '../node/changes.js';
import { WATCHERS_MAX } from '../node/changes.js';
import { HttpError } from './errors.js';

/** What browsing reads: the local store. */
export interface LocalRecords {
  get(key: string): VersionedRecord | undefined;
  scan(after: string | undefined, limit: number): ReadonlyArray<{ readonly key: string; readonly record: VersionedRecord }>;
}

/** Keys a list page holds without `limit` (DEFAULTS.listPageKeys). */
export const LIST_LIMIT_DEFAULT = DEFAULTS.listPageKeys;
export const LIST_LIMIT_MAX = 1000;
/** Records one listing request may step over (tombstones, keys past a sparse prefix) before it pages. */
const LIST_SCAN_MAX = 10_000;
const LIST_SCAN_BATCH = 256;
/** Bytes a watcher may leave unread before it is disconnected (it resumes with Last-Event-ID). */
export const WATCH_BUFFER_BYTES = 256 * 1024;
/** A comment line this often keeps proxies and idle timers from closing a quiet stream. */
const WATCH_KEEPALIVE_MS = 15_000;

const listQuery = z
  .object({
    prefix: z.string().optional(),
    limit: z.string().regex(/^[1-9][0-9]{0,3}$/, `an integer from 1 to ${LIST_LIMIT_MAX}`).optional(),
    cursor: z.string().max(4096).optional(),
  })
  .strict();

const watchQuery = z.object({ prefix: z.string().optional() }).strict();

export type QueryParser = <T extends z.ZodTypeAny>(schema: T, query: URLSearchParams) => z.infer<T>;

/** A key prefix: like a key but may be empty. */
function checkPrefix(prefix: string, keyBytesMax: number, checkKey: (key: string) => void): string {
  if (prefix === '') return prefix;
  if (Buffer.byteLength(prefix, 'utf8') > keyBytesMax) throw new HttpError(400, 'invalid_prefix', `the prefix is longer than ${keyBytesMax} bytes`);
  try {
    checkKey(prefix);
  } catch (error) {
    if (error instanceof HttpError) throw new HttpError(400, 'invalid_prefix', error.message.replace('the key', 'the prefix'));
    throw error;
  }
  return prefix;
}

/** Cursors are the last key listed, base64url-encoded (opaque to clients). */
export function encodeCursor(key: string): string {
  return Buffer.from(key, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string, prefix: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw new HttpError(400, 'invalid_cursor', 'the cursor is not one this API handed out');
  let key: string;
  try {
    key = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(cursor, 'base64url'));
  } catch {
    throw new HttpError(400, 'invalid_cursor', 'the cursor is not one this API handed out');
  }
  if (key === '' || encodeCursor(key) !== cursor) throw new HttpError(400, 'invalid_cursor', 'the cursor is not one this API handed out');
  if (!key.startsWith(prefix)) throw new HttpError(400, 'invalid_cursor', 'the cursor belongs to another prefix');
  return key;
}

export interface ListOptions {
  readonly records: LocalRecords;
  readonly keyBytesMax: number;
  readonly checkKey: (key: string) => void;
  readonly parseQuery: QueryParser;
}

/** GET /kv: `{keys: [{key, siblings}], cursor}`; cursor null on the last page. Live keys only, in key order. */
export function listKeys(options: ListOptions, search: URLSearchParams): object {
  const query = options.parseQuery(listQuery, search);
  const prefix = checkPrefix(query.prefix ?? '', options.keyBytesMax, options.checkKey);
  const limit = query.limit === undefined ? LIST_LIMIT_DEFAULT : Number(query.limit);
  if (limit > LIST_LIMIT_MAX) throw new HttpError(400, 'bad_request', `invalid query parameter limit: at most ${LIST_LIMIT_MAX}`);
  const keys: Array<{ key: string; siblings: number }> = [];
  const take = (key: string, record: VersionedRecord): void => {
    const live = liveSiblings(record).length;
    if (live > 0) keys.push({ key, siblings: record.siblings.length });
  };
  let after: string | undefined;
  if (query.cursor !== undefined) {
    after = decodeCursor(query.cursor, prefix);
  } else if (prefix !== '') {
    // Keys starting with the prefix are >= it: the prefix itself, then the keys after it.
    const exact = options.records.get(prefix);
    if (exact !== undefined) take(prefix, exact);
    after = prefix;
  }
  let scanned = 0;
  while (keys.length < limit) {
    if (scanned >= LIST_SCAN_MAX) return { keys, cursor: after === undefined ? null : encodeCursor(after) };
    const batch = options.records.scan(after, LIST_SCAN_BATCH);
    for (const entry of batch) {
      scanned += 1;
      if (!entry.key.startsWith(prefix)) return { keys, cursor: null };
      after = entry.key;
      take(entry.key, entry.record);
      if (keys.length === limit) return { keys, cursor: encodeCursor(entry.key) };
    }
    if (batch.length < LIST_SCAN_BATCH) return { keys, cursor: null };
  }
  return { keys, cursor: null };
}

/** One open /watch stream, as its slot sees it. */
interface OpenWatch {
  /** Bytes written but not yet taken by the kernel: > 0 means the client's windows are full (not reading). */
  readonly backlog: () => number;
  /** Ends the stream for good: unsubscribes and destroys the socket (never waits for the client to read). */
  readonly close: () => void;
}

/**
 * The WATCHERS_MAX slots of one server. A full set does not refuse a new watcher: it closes the one that stopped
 * reading (a backlog), else the oldest (a live EventSource resumes with Last-Event-ID a second later). So
 * watchers that never read cannot keep every slot.
 */
export class WatchSlots {
  private readonly open = new Set<OpenWatch>(); // insertion order: oldest first

  constructor(private readonly max: number = WATCHERS_MAX) {}

  get size(): number {
    return this.open.size;
  }

  take(watch: OpenWatch): void {
    while (this.open.size >= this.max) {
      let victim: OpenWatch | undefined;
      for (const w of this.open) {
        if (w.backlog() > 0) {
          victim = w;
          break;
        }
      }
      victim ??= this.open.values().next().value;
      if (victim === undefined) break;
      this.open.delete(victim);
      victim.close();
    }
    this.open.add(watch);
  }

  release(watch: OpenWatch): void {
    this.open.delete(watch);
  }
}

export interface WatchOptions {
  readonly changes: ChangeFeed;
  readonly slots: WatchSlots;
  readonly keyBytesMax: number;
  readonly checkKey: (key: string) => void;
  readonly parseQuery: QueryParser;
}

/**
 * GET /watch: `event: change` with `{key, kind, siblings, at}` for every change stored here whose key starts with
 * `prefix`; on reconnect (Last-Event-ID) the changes missed meanwhile first, or `event: reset` when some are
 * gone (re-list with /kv). A watcher that reads too slowly is disconnected (it resumes); so is the oldest one
 * when every slot is taken (WatchSlots).
 */
export function watch(options: WatchOptions, search: URLSearchParams, req: http.IncomingMessage, res: http.ServerResponse): void {
  const query = options.parseQuery(watchQuery, search);
  const prefix = checkPrefix(query.prefix ?? '', options.keyBytesMax, options.checkKey);
  const lastId = req.headers['last-event-id'];
  if (Array.isArray(lastId)) throw new HttpError(400, 'bad_request', 'Last-Event-ID is given twice');
  if (lastId !== undefined && lastId.length > 64) throw new HttpError(400, 'bad_request', 'Last-Event-ID is too long');
  res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
  let open = true;
  // A backlog at two keepalives in a row with no drain between them: nothing read for a whole interval.
  let backlogAtTick = false;
  let drainedSinceTick = false;
  res.on('drain', () => (drainedSinceTick = true));
  const send = (text: string): void => {
    if (!open) return;
    res.write(text);
    if (res.writableLength > WATCH_BUFFER_BYTES) close(); // too slow: it reconnects with Last-Event-ID
  };
  const sendEvent = (event: ChangeEvent): void => {
    if (!event.key.startsWith(prefix)) return;
    const at = new Date(event.atMs).toISOString();
    send(`id: ${options.changes.eventId(event)}\nevent: change\ndata: ${JSON.stringify({ key: event.key, kind: event.kind, siblings: event.siblings, at })}\n\n`);
  };
  const unsubscribe = options.changes.subscribe(sendEvent);
  const keepalive = setInterval(() => {
    if (backlogAtTick && !drainedSinceTick && res.writableLength > 0) return close();
    backlogAtTick = res.writableLength > 0;
    drainedSinceTick = false;
    send(': keepalive\n\n');
  }, WATCH_KEEPALIVE_MS);
  keepalive.unref();
  const slot: OpenWatch = { backlog: () => res.writableLength, close: () => close() };
  const close = (): void => {
    if (!open) return;
    open = false;
    unsubscribe();
    clearInterval(keepalive);
    options.slots.release(slot);
    // Not res.end(): a client that does not read would keep the socket (and its buffers) for ever.
    res.destroy();
  };
  options.slots.take(slot);
  req.on('close', close);
  res.on('error', close);
  // Tell EventSource how soon to reconnect, then what was missed.
  send('retry: 1000\n\n');
  const { events, gap } = options.changes.since(lastId);
  if (gap) send(`event: reset\ndata: ${JSON.stringify({ reason: 'some changes since Last-Event-ID are no longer kept: list the keys again' })}\n\n`);
  for (const event of events) sendEvent(event);
}
