// The HTTP API wired to the node: builds the server (src/http) with the access policy, metrics, the key-value
// backend (runtime), the operator's membership actions (audited) and the node's status and readiness.
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { DEFAULTS } from '../config/defaults.js';
import { QuorumUnavailableError } from '../core/errors.js';
import type { MembershipConfig } from '../core/membership.js';
import { receiptOf } from '../core/receipt.js';
import { AccessPolicy } from '../http/access.js';
import { ApiMetrics } from '../http/metrics.js';
import { createHttpServer } from '../http/server.js';
import type { AuditLog } from '../node/audit.js';
import type { ContextCodec } from '../node/context-token.js';
import type { ApiFrontEnd, NodeApi } from '../node/daemon.js';
import type { MembershipService } from '../node/membership.js';
import type { Runtime } from '../node/runtime.js';
import { admissionView } from '../node/status.js';
import type { StoragePort } from '../storage/port.js';

export interface ApiParts {
  /** Where the API listens (--http). */
  readonly httpAddr: { readonly host: string; readonly port: number };
  readonly token: string;
  readonly peerId: string;
  readonly node: NodeApi;
  readonly runtime: Runtime;
  readonly membership: MembershipService;
  readonly store: StoragePort;
  readonly audit: AuditLog;
  readonly contexts: ContextCodec;
}

export function createApiServer(parts: ApiParts): http.Server {
  const { httpAddr, runtime, membership, store, audit, node, peerId } = parts;
  const httpServer = createHttpServer({
    metrics: new ApiMetrics(() => node.metricsSnapshot()),
    readiness: () => node.readiness(),
    access: new AccessPolicy({
      bindHost: httpAddr.host,
      token: parts.token,
      port: () => (httpServer.address() as AddressInfo | null)?.port ?? httpAddr.port,
    }),
    onRefused: (req, status, code) => {
      audit.appendRepeated('unauthorized', code, { status, code, remote: req.socket.remoteAddress ?? null, host: req.headers.host ?? null, path: (req.url ?? '').slice(0, 200) });
    },
    backend: {
      write: (key, value, context, level, wait) => audited(audit, 'write', runtime.write(key, value, context, level, wait)),
      receipt: async (key) => receiptOf(runtime.config, await runtime.probe(key)),
      read: (key, level) => audited(audit, 'read', runtime.read(key, level)),
      status: () => node.status(),
      records: { get: (key) => store.get(key), scan: (after, limit) => store.scan(after, limit) },
      changes: runtime.changes,
    },
    membership: {
      approve: (peer) => operator(audit, 'approve', peer, async () => summary(await membership.approve(peer))),
      admit: (forMs) => operator(audit, 'admit', peerId, async () => admissionView(membership.openAdmission(forMs)) ?? {}, { forMs }),
      remove: (peer) => operator(audit, 'remove', peer, async () => summary(await membership.remove(peer))),
      leave: () => operator(audit, 'leave', peerId, async () => summary(await node.leave())),
    },
    audit: (limit, kind) => audit.read(limit, kind),
    contexts: parts.contexts,
    valueBytesMax: DEFAULTS.valueBytesMax,
    keyBytesMax: DEFAULTS.keyBytesMax,
  });
  return httpServer;
}

/** The node's view of the server: listen at `httpAddr`; stop accepting, then close what is left. */
export function frontEndOf(server: http.Server, httpAddr: { readonly host: string; readonly port: number }): ApiFrontEnd {
  return {
    listen: async () => {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(httpAddr.port, httpAddr.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      const address = server.address() as AddressInfo;
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      return `http://${host}:${address.port}`;
    },
    stopAccepting: () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      return closed;
    },
    closeAll: () => server.closeAllConnections(),
  };
}

/** What a membership operation returns over HTTP. */
function summary(config: MembershipConfig): object {
  return {
    epoch: config.epoch,
    voters: config.voters.map((m) => m.peerId),
    learners: config.learners.map((m) => m.peerId),
    removed: config.removed,
  };
}

/** Records a quorum failure of a client operation in the audit log (rate-limited), then passes it on. */
async function audited<T>(audit: AuditLog, operation: 'read' | 'write', work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    if (error instanceof QuorumUnavailableError) {
      audit.appendRepeated('quorum-failure', operation, { operation, acks: error.acks, required: error.required, voters: error.voters });
    }
    throw error;
  }
}

/** An operator's membership action, in the audit log with its outcome. */
async function operator(audit: AuditLog, action: string, peer: string, work: () => Promise<object>, details: object = {}): Promise<object> {
  try {
    const result = await work();
    audit.append('operator', { action, peer, ...details, outcome: 'ok' });
    return result;
  } catch (error) {
    audit.append('operator', { action, peer, ...details, outcome: 'refused', error: error instanceof Error ? error.message : String(error) });
    throw error;
  }
}
