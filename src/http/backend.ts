// What the HTTP routes need from the node (HttpBackend: the daemon provides it, tests a fake) and what
// createHttpServer takes (HttpOptions: the backend plus the API's own limits, access policy and metrics).
import type http from 'node:http';
import type { ConsistencyLevel } from '../core/quorum.js';
import type { ClientContext, VersionedRecord } from '../core/record.js';
import type { Receipt } from '../core/receipt.js';
import type { AuditKind } from '../node/audit.js';
import type { ChangeFeed } from '../node/changes.js';
import type { ContextCodec } from '../node/context-token.js';
import type { AccessPolicy } from './access.js';
import type { LocalRecords } from './browse.js';
import type { ApiMetrics } from './metrics.js';

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

/** Everything the routes ask of the node. Failures are thrown: HttpError, QuorumdError (by STATUS_BY_CODE), else 500. */
export interface HttpBackend {
  /** Key-value operations, /status, and the local replica and change feed for /kv and /watch. */
  readonly backend: KvBackend;
  /** The /cluster/* operations; without it those routes are 404. */
  readonly membership?: MembershipBackend;
  /** Readiness for /readyz: the reasons it is not ready (none: ready). */
  readonly readiness: () => readonly string[];
  /** The audit log's newest entries (GET /audit). */
  readonly audit: (limit: number, kind: AuditKind | undefined) => readonly object[];
}

export interface HttpOptions extends HttpBackend {
  /** Encodes and authenticates causal-context tokens (each bound to one key). */
  readonly contexts: ContextCodec;
  readonly valueBytesMax: number;
  readonly keyBytesMax: number;
  /** Time a client has to send a whole request (slow clients cannot hold a socket forever). */
  readonly requestTimeoutMs?: number;
  /** Host and token checks (src/http/access.ts). */
  readonly access: AccessPolicy;
  readonly metrics: ApiMetrics;
  /** A request refused by the access checks (401/403), for the audit log. */
  readonly onRefused?: (req: http.IncomingMessage, status: number, code: string) => void;
}
