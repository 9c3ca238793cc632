// Typed errors for expected networking and key-file failures (missing or corrupt files, failed dials).
import { QuorumdError } from '../core/errors.js';

/** The cluster key file (v1 swarm-key format) is missing, unreadable or malformed. */
export class ClusterKeyError extends QuorumdError {
  readonly path: string;
  constructor(path: string, message: string) {
    super('cluster_key', `cluster key file ${path}: ${message}`);
    this.path = path;
  }
}

/** The device identity file (peer.key) exists but cannot be read as a private key. */
export class IdentityError extends QuorumdError {
  readonly path: string;
  constructor(path: string, message: string) {
    super('identity', `identity file ${path}: ${message}`);
    this.path = path;
  }
}

/** A dial did not produce a connection (unreachable, wrong cluster key, refused, or timed out). */
export class DialError extends QuorumdError {
  readonly addr: string;
  constructor(addr: string, message: string, options?: { cause?: unknown }) {
    super('dial_failed', `dial ${addr} failed: ${message}`);
    this.addr = addr;
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

/**
 * A connection handshake failed because the two sides do not hold the same cluster key (their Noise prologues
 * differ): a device of another cluster, or one whose key file is wrong or outdated.
 */
export class ClusterKeyMismatchError extends QuorumdError {
  readonly remoteAddr: string;
  constructor(remoteAddr: string, options?: { cause?: unknown }) {
    super('cluster_key_mismatch', `handshake with ${remoteAddr} refused: the peer does not hold this cluster key (another cluster, or a wrong or outdated cluster key file)`);
    this.remoteAddr = remoteAddr;
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

/** An inbound frame would take a buffer budget (its connection's or the node's) over its limit: stream reset. */
export class FrameBudgetError extends QuorumdError {
  readonly budget: string;
  readonly limitBytes: number;
  constructor(budget: string, limitBytes: number, frameBytes: number) {
    super('frame_budget', `frame of ${frameBytes} bytes refused: the ${budget} budget for partial frames (${limitBytes} bytes) is used up`);
    this.budget = budget;
    this.limitBytes = limitBytes;
  }
}

/** A frame from a peer that is not a member, refused before decoding (too large, or over the shared rate). */
export class UntrustedFrameError extends QuorumdError {
  constructor(message: string) {
    super('untrusted_frame', message);
  }
}
