// The HTTP API's expected failures: each becomes a JSON {error, message} answer with its status. HttpError is
// the API's own refusals; STATUS_BY_CODE gives every QuorumdError code (src/core/errors.ts ErrorCode) its status.
import type { ErrorCode } from '../core/errors.js';

/** Codes of the API's own refusals (request parsing, routing and access). */
export type HttpErrorCode =
  | 'bad_request'
  | 'invalid_key'
  | 'invalid_prefix'
  | 'invalid_cursor'
  | 'invalid_context'
  | 'unauthorized'
  | 'forbidden_host'
  | 'cross_site'
  | 'not_found'
  | 'method_not_allowed'
  | 'value_too_large'
  | 'body_not_allowed'
  | 'unsupported_media_type';

export class HttpError extends Error {
  readonly status: number;
  /** One of HttpErrorCode (checked where it is raised; read as any code). */
  readonly code: string;
  readonly extra: object;
  constructor(status: number, code: HttpErrorCode, message: string, extra: object = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.extra = extra;
  }
}

/**
 * The status of each QuorumdError code. 4xx: the request itself is wrong or conflicts with the cluster's state
 * (retrying it unchanged will not help); 503: this device cannot serve it now (retry later, or ask another
 * device). Never 500: that is for bugs only (`internal`).
 */
export const STATUS_BY_CODE = {
  invalid_consistency: 400,
  invalid_context: 400,
  quorum_unavailable: 503,
  not_member: 503,
  too_many_siblings: 409,
  membership_change_failed: 409,
  membership_conflict: 409,
  sync_failed: 503,
  shutting_down: 503,
  storage_failed: 503,
  overloaded: 503,
  // A member refused this device's join (not admitted, or removed): a conflict with the cluster's membership,
  // like the membership_* codes. Not 403, which this API keeps for its own access refusals (host, origin): the
  // client's request was allowed; the cluster said no.
  join_refused: 409,
  // A record on this device's disk does not decode: nothing the client sent is wrong (not 400), and this device
  // cannot serve the key (another device may): 503, as for storage_failed.
  storage_corrupt: 503,
  // Raised while starting (the daemon does not start, so no API answers) or while talking to peers; if one ever
  // reaches a client it is this device failing to serve, not the request: 503.
  storage_open_failed: 503,
  cluster_key: 503,
  identity: 503,
  dial_failed: 503,
  cluster_key_mismatch: 503,
  frame_budget: 503,
  untrusted_frame: 503,
  wire_format: 503,
} as const satisfies Record<ErrorCode, 400 | 409 | 503>;
