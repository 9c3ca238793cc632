// An HTTP API without a daemon: createHttpServer over a fake HttpBackend (an in-memory replica that records every
// call and fails on request), on 127.0.0.1 with a real AccessPolicy, for tests of the routes themselves.
import type { AddressInfo } from 'node:net';
import { AccessPolicy } from '../../src/http/access.js';
import type { HttpBackend, HttpOptions, KvBackend, MembershipBackend } from '../../src/http/backend.js';
import { ApiMetrics, type MetricsSnapshot } from '../../src/http/metrics.js';
import { createHttpServer } from '../../src/http/server.js';
import type { VersionedRecord } from '../../src/core/record.js';
import { ChangeFeed } from '../../src/node/changes.js';
import { createContextCodec } from '../../src/node/context-token.js';

export const TOKEN = 'fake-api-token-0123456789abcdefghijklmnop';
export const CLUSTER_KEY = new Uint8Array(32).fill(3);

const EMPTY_SNAPSHOT: MetricsSnapshot = {
  epoch: 0,
  writable: false,
  catchingUp: false,
  members: [],
  keysLive: 0,
  keysStored: 0,
  storeBytes: 0,
  opsInFlight: 0,
  antiEntropy: { rounds: 0, matchedRounds: 0, failedRounds: 0, keysRepaired: 0, bytes: 0, converged: false },
  tombstonesWaiting: 0,
  tombstonesPurged: 0,
  hints: { queued: 0, delivered: 0, dropped: 0, expired: 0 },
};

/** A record with one version per value (several: siblings; null: a tombstone). */
export function recordOf(...values: Array<string | null>): VersionedRecord {
  const context: Record<string, number> = {};
  const siblings = values.map((value, i) => {
    const actor = `writer${i}~store`;
    context[actor] = 1;
    return { dot: { actor, counter: 1 }, value: value === null ? null : new TextEncoder().encode(value), hlc: { wallMs: 1_000 + i, logical: 0 } };
  });
  return { context, siblings };
}

export interface FakeNode {
  /** Stored records by key (what reads, receipts and listings see). */
  readonly records: Map<string, VersionedRecord>;
  /** Every backend call, as `name key-or-argument`. */
  readonly calls: string[];
  /** Thrown by the next backend call (then cleared). */
  failNext: Error | undefined;
  /** `complete` of the next writes (false: answered 202 with a receipt). */
  complete: boolean;
  notReady: string[];
  readonly refused: Array<{ status: number; code: string }>;
}

export interface FakeApi {
  readonly base: string;
  readonly node: FakeNode;
  close(): Promise<void>;
}

export interface FakeApiOptions {
  /** Offer the /cluster operations (default true). */
  readonly membership?: boolean;
  /** The address the access policy believes it is bound to (default 127.0.0.1; off loopback needs the token). */
  readonly bindHost?: string;
  readonly valueBytesMax?: number;
}

export async function startFakeApi(options: FakeApiOptions = {}): Promise<FakeApi> {
  const node: FakeNode = { records: new Map(), calls: [], failNext: undefined, complete: true, notReady: [], refused: [] };
  const call = (what: string): void => {
    node.calls.push(what);
    const error = node.failNext;
    node.failNext = undefined;
    if (error !== undefined) throw error;
  };
  const kv: KvBackend = {
    write: async (key, value, context) => {
      call(`write ${key}`);
      const created = !node.records.has(key);
      const record = recordOf(value === null ? null : new TextDecoder().decode(value));
      node.records.set(key, record);
      return { record, context: context ?? { vv: record.context, unseen: [] }, acks: 1, required: 1, created, complete: node.complete };
    },
    receipt: async (key) => {
      call(`receipt ${key}`);
      const current = node.records.get(key);
      return { current, replicas: [], votersHolding: current === undefined ? 0 : 1, quorum: 1, atQuorum: current !== undefined, everywhere: current !== undefined };
    },
    read: async (key) => {
      call(`read ${key}`);
      return { record: node.records.get(key), replies: 1, required: 1 };
    },
    status: () => {
      call('status');
      return { fake: true };
    },
    records: {
      get: (key) => node.records.get(key),
      scan: (after, limit) =>
        [...node.records.keys()]
          .sort()
          .filter((key) => after === undefined || key > after)
          .slice(0, limit)
          .map((key) => ({ key, record: node.records.get(key) as VersionedRecord })),
    },
    changes: new ChangeFeed(),
  };
  /** A backend operation: recorded, failed when asked, else `answer`. */
  const op = async <T>(what: string, answer: T): Promise<T> => {
    call(what);
    return answer;
  };
  const membership: MembershipBackend = {
    approve: (peer) => op(`approve ${peer}`, { approved: peer }),
    admit: (forMs) => op(`admit ${forMs}`, { admitting: forMs > 0 }),
    remove: (peer) => op(`remove ${peer}`, { removed: peer }),
    leave: () => op('leave', { left: true }),
  };
  const backend: HttpBackend = {
    backend: kv,
    ...(options.membership === false ? {} : { membership }),
    readiness: () => node.notReady,
    audit: (limit, kind) => {
      call(`audit ${limit} ${kind ?? '-'}`);
      return [{ kind: kind ?? 'started' }];
    },
  };
  let port = 0;
  const httpOptions: HttpOptions = {
    ...backend,
    contexts: createContextCodec(CLUSTER_KEY),
    valueBytesMax: options.valueBytesMax ?? 1024,
    keyBytesMax: 64,
    access: new AccessPolicy({ bindHost: options.bindHost ?? '127.0.0.1', token: TOKEN, port: () => port }),
    metrics: new ApiMetrics(() => EMPTY_SNAPSHOT),
    onRefused: (_req, status, code) => node.refused.push({ status, code }),
  };
  const server = createHttpServer(httpOptions);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  return {
    base: `http://127.0.0.1:${port}`,
    node,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
