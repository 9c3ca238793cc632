// The local HTTP API (node:http): the route table (key-value routes, membership operations, /status, /metrics,
// /healthz, /readyz, /audit, /kv and /watch, the status page; handlers in src/http/routes/) behind the server's
// limits (bodies, headers, request time, connections per address). Every error is JSON `{error, message}` with
// a 4xx/503 status.
import http from 'node:http';
import type { Socket } from 'node:net';
import { DEFAULTS } from '../config/defaults.js';
import type { HttpOptions } from './backend.js';
import { WatchSlots } from './browse.js';
import { sendError } from './respond.js';
import { type Route, RouteTable, dispatch } from './router.js';
import { browseRoutes } from './routes/browse.js';
import { clusterRoutes } from './routes/cluster.js';
import { kvRoutes } from './routes/kv.js';
import { metricsRoutes } from './routes/metrics.js';
import { pageRoutes } from './routes/page.js';
import { statusRoutes } from './routes/status.js';

export { HttpError } from './errors.js';
export { parseKey } from './parse.js';
export type { HttpBackend, HttpOptions, KvBackend, MembershipBackend } from './backend.js';

/** Open connections at most (a device's API serves a few local clients and pages). */
const CONNECTIONS_MAX = 256;

/**
 * How often node checks every connection against headersTimeout and requestTimeout. Its default, 30 s, let a
 * slow client hold a connection up to 30 s past the header timeout.
 */
const CONNECTIONS_CHECK_MS = 1_000;

/** Every route of the API, by resource. */
export function apiRoutes(options: HttpOptions, slots: WatchSlots): Route[] {
  return [
    ...pageRoutes(),
    ...statusRoutes(options),
    ...metricsRoutes(options.metrics),
    ...clusterRoutes(options.membership),
    ...browseRoutes(options.backend, options.keyBytesMax, slots),
    ...kvRoutes(options),
  ];
}

export function createHttpServer(options: HttpOptions): http.Server {
  const table = new RouteTable(apiRoutes(options, new WatchSlots()));
  const server = http.createServer(
    {
      maxHeaderSize: 16 * 1024,
      requestTimeout: options.requestTimeoutMs ?? 30_000,
      headersTimeout: DEFAULTS.httpHeadersTimeoutMs,
      connectionsCheckingInterval: CONNECTIONS_CHECK_MS,
    },
    (req, res) => {
      dispatch(table, options, req, res).catch((error: unknown) => sendError(res, error));
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
