// Typed errors for expected failures that callers handle (bad consistency levels, missing quorum, stale
// epochs). Each has a stable machine-readable `code` used in HTTP `{error, message}` bodies and the CLI.
//
// ErrorCode lists every code any QuorumdError (here or in an adapter) carries: the HTTP layer maps each to a
// status (src/http/errors.ts STATUS_BY_CODE), so a new code does not compile until it has one.

/** Every QuorumdError code, by where it is raised. */
export type ErrorCode =
  // core: client requests and membership changes (see FailureCode in replica.ts)
  | 'invalid_consistency'
  | 'invalid_context'
  | 'quorum_unavailable'
  | 'not_member'
  | 'too_many_siblings'
  | 'membership_change_failed'
  | 'membership_conflict'
  | 'sync_failed'
  | 'shutting_down'
  | 'storage_failed'
  // node: the runtime's admission limit and the join handshake
  | 'overloaded'
  | 'join_refused'
  // storage (src/storage/errors.ts)
  | 'storage_corrupt'
  | 'storage_open_failed'
  // net and wire (src/net/errors.ts, src/wire/errors.ts)
  | 'cluster_key'
  | 'identity'
  | 'dial_failed'
  | 'cluster_key_mismatch'
  | 'frame_budget'
  | 'untrusted_frame'
  | 'wire_format';

export class QuorumdError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A consistency level that cannot be parsed or cannot be met by the committed configuration. */
export class InvalidConsistencyError extends QuorumdError {
  constructor(message: string) {
    super('invalid_consistency', message);
  }
}

/** Fewer replicas acknowledged than required before the deadline; the write may still appear later. */
export class QuorumUnavailableError extends QuorumdError {
  readonly acks: number;
  readonly required: number;
  readonly voters: number;
  constructor(acks: number, required: number, voters: number) {
    super('quorum_unavailable', `only ${acks} of ${required} required replicas answered (${voters} voters)`);
    this.acks = acks;
    this.required = required;
    this.voters = voters;
  }
}

/** This device is not (yet) a member of a cluster, so it cannot coordinate requests. */
export class NotMemberError extends QuorumdError {
  constructor(message = 'this device is not a member of a cluster yet (waiting to join)') {
    super('not_member', message);
  }
}

/** A causal-context token from a client could not be decoded. */
export class InvalidContextError extends QuorumdError {
  constructor(message: string) {
    super('invalid_context', message);
  }
}

/** A membership change was refused (another change in flight, or the configuration moved on). */
export class MembershipChangeError extends QuorumdError {
  constructor(message: string) {
    super('membership_change_failed', message);
  }
}

/** A client write would leave more concurrent versions than a record may hold: read, then write with that context. */
export class TooManySiblingsError extends QuorumdError {
  constructor(siblings: number, max: number) {
    super('too_many_siblings', `the write would leave ${siblings} concurrent versions (at most ${max}); read the key and write with its context to resolve them`);
  }
}
