// Browsing this device's replica: GET /kv (a paged listing of live keys) and GET /watch (Server-Sent Events of
// every change stored here); the listing, the stream and the watch slots are src/http/browse.ts.
import { type WatchSlots, listKeys, watch } from '../browse.js';
import type { KvBackend } from '../backend.js';
import { checkKey, parseQuery } from '../parse.js';
import { sendJson } from '../respond.js';
import type { Route } from '../router.js';

export function browseRoutes(backend: Pick<KvBackend, 'records' | 'changes'>, keyBytesMax: number, slots: WatchSlots): Route[] {
  return [
    {
      methods: ['GET', 'HEAD'],
      path: '/kv',
      query: 'handler',
      handle: ({ res, query }) => sendJson(res, 200, listKeys({ records: backend.records, keyBytesMax, checkKey, parseQuery }, query)),
    },
    {
      methods: ['GET'],
      path: '/watch',
      query: 'handler',
      handle: ({ req, res, query }) => watch({ changes: backend.changes, slots, keyBytesMax, checkKey, parseQuery }, query, req, res),
    },
  ];
}
