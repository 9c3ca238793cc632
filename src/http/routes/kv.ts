// The key-value routes, GET|HEAD|PUT|DELETE /kv/KEY: reads (siblings as 300, last-writer-wins on request, the
// durability receipt with ?explain=1), writes and deletes with their causal-context tokens, and their metrics.
import { toString as u8ToString } from 'uint8arrays';
import { parseConsistency } from '../../core/quorum.js';
import { type ClientContext, liveSiblings, lwwWinner } from '../../core/record.js';
import { isDeleted } from '../../core/receipt.js';
import type { HttpOptions } from '../backend.js';
import { HttpError } from '../errors.js';
import type { Operation } from '../metrics.js';
import { consistencyLabel } from '../metrics.js';
import { parseContextHeader, parseKey, parseQuery, parseWrite, readQuery } from '../parse.js';
import { sendBytes, sendJson } from '../respond.js';
import type { Route, RouteRequest } from '../router.js';

type KvOptions = Pick<HttpOptions, 'backend' | 'contexts' | 'keyBytesMax' | 'valueBytesMax' | 'metrics'>;

export function kvRoutes(options: KvOptions): Route[] {
  return [
    { methods: ['GET', 'HEAD'], path: '/kv/*', query: 'handler', handle: (request) => getKey(options, request) },
    {
      methods: ['PUT'],
      path: '/kv/*',
      query: 'handler',
      // Raw bytes, whatever their Content-Type: cross-site requests are refused by Origin/Sec-Fetch-Site (access.ts).
      body: { bytesMax: options.valueBytesMax, tooLarge: 'value_too_large', type: 'raw' },
      handle: (request) => putKey(options, request),
    },
    { methods: ['DELETE'], path: '/kv/*', query: 'handler', body: { bytesMax: 0, tooLarge: 'body_not_allowed', type: 'raw' }, handle: (request) => deleteKey(options, request) },
  ];
}

/** Counts the request once answered (also when refused), then parses the key from the path. */
function observe(options: KvOptions, request: RouteRequest, operation: Operation): string {
  const { res, query } = request;
  const consistency = consistencyLabel(query.get(operation === 'get' ? 'r' : 'w'));
  const started = performance.now();
  res.once('finish', () => options.metrics.request(operation, consistency, res.statusCode, (performance.now() - started) / 1000));
  return parseKey(request.rest, options.keyBytesMax);
}

async function putKey(options: KvOptions, request: RouteRequest): Promise<void> {
  const key = observe(options, request, 'put');
  const { level, wait } = parseWrite(request.query);
  const context = parseContextHeader(options.contexts, request.req.headers['x-causal-context'], key);
  const value = await request.body();
  const outcome = await options.backend.write(key, value, context, level, wait);
  options.metrics.writeAcks('put', outcome.acks);
  sendWritten(options, request, key, outcome, outcome.created ? 201 : 200);
}

async function deleteKey(options: KvOptions, request: RouteRequest): Promise<void> {
  const key = observe(options, request, 'delete');
  const { level, wait } = parseWrite(request.query);
  const context = parseContextHeader(options.contexts, request.req.headers['x-causal-context'], key);
  await request.body();
  const outcome = await options.backend.write(key, null, context, level, wait);
  options.metrics.writeAcks('delete', outcome.acks);
  sendWritten(options, request, key, outcome, 200);
}

function sendWritten(
  options: KvOptions,
  { res }: RouteRequest,
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

/** GET /kv/KEY?explain=1: the durability receipt (which members hold the current version). */
async function explainKey(options: KvOptions, key: string, { res }: RouteRequest): Promise<void> {
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

async function getKey(options: KvOptions, request: RouteRequest): Promise<void> {
  const key = observe(options, request, 'get');
  const { res } = request;
  const query = parseQuery(readQuery, request.query);
  if (query.explain !== undefined) {
    if (query.r !== undefined || query.resolve !== undefined) throw new HttpError(400, 'bad_request', 'explain takes no other parameter');
    return explainKey(options, key, request);
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
